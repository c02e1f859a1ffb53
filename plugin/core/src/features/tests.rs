use super::*;
use crate::format::{parse_request, ApiFormat};

const CAP: usize = 64 * 1024;

fn chat(user: &str) -> String {
    serde_json::json!({"messages": [{"role": "user", "content": user}]}).to_string()
}

fn features_of(format: ApiFormat, body: &str) -> Features {
    let request = parse_request(format, body.as_bytes()).unwrap();
    Features::extract(&request, CAP)
}

fn feature(features: &Features, name: &str) -> f64 {
    let index = FEATURE_NAMES
        .iter()
        .position(|known| *known == name)
        .unwrap();
    features.values()[index]
}

#[test]
fn cue_regexes_compile() {
    let set = CUES.as_ref().expect("the cue set compiles");
    assert_eq!(set.len(), CUE_COUNT);
    assert_eq!(
        CUE_LISTS.iter().map(|list| list.len()).sum::<usize>(),
        CUE_COUNT
    );
}

/// (feature, body that moves it, body that does not).
#[test]
fn each_feature_moves_on_its_signal_only() {
    let long = "word ".repeat(4000);
    let code = "```python\ndef f(x):\n    return x + 1\n```\n```js\nlet y = 2;\n```";
    let cases: Vec<(&str, String, String)> = vec![
        ("tokens", chat(&long), chat("")),
        (
            "turns",
            r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}"#.into(),
            chat("a"),
        ),
        (
            "system_prompt",
            r#"{"messages":[{"role":"system","content":"You are a careful assistant."},{"role":"user","content":"a"}]}"#.into(),
            chat("a"),
        ),
        ("last_user", chat("a considerably longer request text"), chat("")),
        ("code_fences", chat(code), chat("no code here")),
        ("code_lines", chat("import os\nx = 1;\nclass A {\n}"), chat("Tell me about Paris.\nIt is nice.")),
        ("latex", chat(r"Compute $$\frac{1}{2} + \sqrt{x}$$"), chat("Compute a half plus the root of x")),
        ("math_terms", chat("State the theorem about the integral of a polynomial"), chat("State the capital of France")),
        ("operators", chat("x=y+z*2/3"), chat("x equals y")),
        ("digits", chat("12345 67890"), chat("numbers")),
        ("reasoning_cues", chat("Prove it step by step and analyze the trade-offs"), chat("Say hello")),
        ("reasoning_cues", chat("First read the file, then summarize it"), chat("Read the file")),
        ("simple_task", chat("Classify the sentiment of this review"), chat("Write a story")),
        ("questions", chat("Why? How? When? Where?"), chat("Why is the sky blue?")),
        ("constraints", chat("You must answer in exactly 3 words without punctuation\n- one\n- two"), chat("Answer this")),
        (
            "tools",
            r#"{"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"a"}]}"#.into(),
            chat("a"),
        ),
        (
            "tool_depth",
            r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"1"}]},{"role":"tool","content":"r"}]}"#.into(),
            chat("a"),
        ),
        (
            "images",
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"a"}]}]}"#.into(),
            chat("a"),
        ),
        ("max_tokens", r#"{"max_tokens":4000,"messages":[]}"#.into(), r#"{"messages":[]}"#.into()),
        ("reasoning_effort", r#"{"reasoning_effort":"medium","messages":[]}"#.into(), r#"{"messages":[]}"#.into()),
        ("json_output", r#"{"response_format":{"type":"json_object"},"messages":[]}"#.into(), r#"{"messages":[]}"#.into()),
        ("non_latin", chat("Объясни, пожалуйста"), chat("Explique, s'il vous plaît, café")),
    ];
    let mut covered: Vec<&str> = Vec::new();
    for (name, moves, stays) in &cases {
        let high = feature(&features_of(ApiFormat::OpenAiChat, moves), name);
        let low = feature(&features_of(ApiFormat::OpenAiChat, stays), name);
        assert!(
            high > 0.0 && high <= 1.0,
            "{name} should move on {moves}: {high}"
        );
        assert_eq!(low, 0.0, "{name} should not move on {stays}");
        covered.push(name);
    }
    for name in FEATURE_NAMES {
        assert!(covered.contains(name), "feature {name} has no test case");
    }
}

#[test]
fn every_value_is_in_unit_range() {
    let body = chat(&format!(
        "{}\n{}",
        "```\nfn x() {}\n```\n".repeat(50),
        r"\frac ? must ".repeat(500)
    ));
    let values = features_of(ApiFormat::OpenAiChat, &body).values();
    assert!(
        values.iter().all(|value| (0.0..=1.0).contains(value)),
        "{values:?}"
    );
}

#[test]
fn repeated_constraint_words_count_once() {
    let once = feature(
        &features_of(ApiFormat::OpenAiChat, &chat("Print only A")),
        "constraints",
    );
    let many = feature(
        &features_of(ApiFormat::OpenAiChat, &chat(&"Print only A\n".repeat(5))),
        "constraints",
    );
    assert_eq!(once, many);
}

#[test]
fn scan_cap_bounds_text_features() {
    let padding = "a".repeat(1000);
    let body = serde_json::json!({"messages": [
        {"role": "user", "content": "Prove the theorem step by step"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": format!("{padding} Prove the theorem step by step")}
    ]})
    .to_string();
    let request = parse_request(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
    let capped = Features::extract(&request, 500);
    let full = Features::extract(&request, CAP);
    assert_eq!(
        capped.reasoning_cues, 0.0,
        "cues past the cap must not be seen"
    );
    assert_eq!(capped.math_terms, 0.0);
    assert!(full.reasoning_cues > 0.0 && full.math_terms > 0.0);
    assert_eq!(
        capped.tokens, full.tokens,
        "token estimate is a length sum, not a scan"
    );
}

#[test]
fn last_user_message_is_scanned_first() {
    let body = serde_json::json!({"messages": [
        {"role": "user", "content": format!("{} prove", "a".repeat(1000))},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Classify this review"}
    ]})
    .to_string();
    let request = parse_request(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
    let features = Features::extract(&request, 100);
    assert!(features.simple_task > 0.0);
    assert_eq!(features.reasoning_cues, 0.0);
}

#[test]
fn log_scale_and_density_edges() {
    assert_eq!(log_scale(0.0, 10.0), 0.0);
    assert_eq!(log_scale(-5.0, 10.0), 0.0);
    assert_eq!(log_scale(f64::NAN, 10.0), 0.0);
    assert_eq!(log_scale(f64::INFINITY, 10.0), 1.0);
    assert_eq!(log_scale(10.0, 10.0), 1.0);
    assert_eq!(log_scale(1e9, 10.0), 1.0);
    assert_eq!(density(1, 0, 1.0), 0.0);
    assert_eq!(ratio(10, 4), 1.0);
}

/// Deterministic pseudo-random texts: pieces of `vocabulary` with random ASCII case.
fn random_texts(vocabulary: &[&str], seed: u64, count: usize, pieces: usize) -> Vec<String> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % pieces as u64) as usize;
            let mut text = String::new();
            for _ in 0..len {
                let piece = vocabulary[(next() % vocabulary.len() as u64) as usize];
                if next() % 4 == 0 {
                    text.push_str(&piece.to_ascii_uppercase());
                } else {
                    text.push_str(piece);
                }
            }
            text
        })
        .collect()
}

/// The cue set as `regex` ran it before the scan stepped its DFA by hand.
fn regex_set() -> regex_automata::meta::Regex {
    regex_automata::meta::Regex::builder()
        .configure(
            regex_automata::meta::Regex::config()
                .match_kind(MatchKind::All)
                .utf8_empty(true)
                .auto_prefilter(false),
        )
        .syntax(
            syntax::Config::new()
                .case_insensitive(true)
                .unicode(false)
                .utf8(true),
        )
        .build_many(&CUE_LISTS.concat())
        .unwrap()
}

/// The patterns the scan sees in `segments`, and whether its DFA gave up.
fn scan_cues(set: &CueSet, segments: &[&str]) -> ([bool; CUE_COUNT], bool) {
    let mut caches = set.caches.get();
    let mut scan = CueScan::new(set, &mut caches);
    let mut counts = TextCounts::default();
    for segment in segments {
        read_segment(segment, &mut counts, Some(&mut scan), &mut ());
    }
    let gave_up = scan.gave_up_in.is_some();
    (scan.finish(segments), gave_up)
}

/// Cue words, near misses and separators, `|`-separated.
const CUE_PIECES: &str = " | | |  |\n|-|/|, |.|'|\t|é|日本|_|x|9|12 |step|by|step-by-step|prove|\
    show that|derive|analyse|compare|why does|plan|architecting|trade-off|tradeoffs|efficiently|\
    debugging|stacktrace|stack trace|edge case|write a|implement an|code a|quick|small|function|\
    query|reason about|first|then|classify|categorise|extract|translation|convert|summarize|\
    summarise|in|one|1|a single|sentence|yes or no|yes/no|true or false|sentiment|label|fix the|\
    grammar|typos|proofread|single word|answer with only|one letter|letter of the correct answer|\
    lemma|integrate|equations|eigenvalues|expected value|gcd|converges|series|must|should|\
    at least|no more than|exactly|without|only|don't|never|always|make sure|words|sentences|items|\
    bullet points";

fn cue_pieces() -> Vec<&'static str> {
    CUE_PIECES.split('|').collect()
}

#[test]
fn the_cue_scan_sees_what_the_regex_set_sees() {
    let regex = regex_set();
    let set = CUES.as_ref().unwrap();
    // A cache this small makes the DFA give up, and the PikeVM take over.
    let thrashing = CueSet::new(&CUE_LISTS.concat(), 0).unwrap();
    let mut gave_up = 0;
    for (index, text) in random_texts(&cue_pieces(), 7, 3000, 40).iter().enumerate() {
        let mut segments: Vec<&str> = text.split('|').collect();
        if index % 3 == 0 {
            segments = text.splitn(3, ' ').collect();
        }
        let mut matched = PatternSet::new(regex.pattern_len());
        for segment in &segments {
            regex.which_overlapping_matches(&Input::new(segment), &mut matched);
        }
        let mut expected = [false; CUE_COUNT];
        for pattern in matched.iter() {
            expected[pattern.as_usize()] = true;
        }
        assert_eq!(scan_cues(set, &segments).0, expected, "{segments:?}");
        let (seen, thrashed) = scan_cues(&thrashing, &segments);
        assert_eq!(seen, expected, "{segments:?} (small cache)");
        gave_up += usize::from(thrashed);
    }
    assert!(gave_up > 0, "the small cache never made the DFA give up");
}

/// The counts by their char-by-char definitions.
fn counted_char_by_char(text: &str) -> TextCounts {
    let mut counts = TextCounts::default();
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        counts.non_space += 1;
        if c.is_ascii_digit() {
            counts.digits += 1;
        } else if OPERATORS.contains(&c) {
            counts.operators += 1;
        } else if c.is_alphabetic() {
            counts.letters += 1;
            counts.non_latin_letters += usize::from(!is_latin(c));
        }
    }
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        counts.lines += 1;
        counts.code_lines += usize::from(looks_like_code(line));
        counts.bullet_lines += usize::from(is_bullet(line));
    }
    counts.fences = text.matches("```").count();
    let commands = text
        .match_indices('\\')
        .filter(|(index, _)| is_latex_command(&text.as_bytes()[index + 1..]))
        .count();
    counts.latex = text.matches("$$").count() + commands;
    counts
}

#[test]
fn text_counts_follow_their_char_by_char_definitions() {
    let pieces = &[
        " ",
        "  ",
        "\n",
        "\r\n",
        "\r",
        "\t",
        "\u{b}",
        "\u{a0}",
        "\u{3000}",
        "```",
        "``",
        "`",
        "$$",
        "$",
        "\\frac",
        "\\",
        "\\\\",
        "\\(",
        "\\lex",
        "- ",
        "* ",
        "• ",
        "1. ",
        "12) ",
        "def f(x):",
        "{",
        "}",
        ";",
        "import os",
        "é",
        "Ж",
        "日本",
        "×",
        "≤",
        "√",
        "a",
        "word",
        "7",
        "42",
        "=",
        "+",
        "<",
        "?",
        "_",
        "😀",
        "Ω",
    ];
    let thrashing = CueSet::new(&CUE_LISTS.concat(), 0).unwrap();
    for text in random_texts(pieces, 11, 3000, 60) {
        let expected = counted_char_by_char(&text);
        let mut counts = TextCounts::default();
        read_segment(&text, &mut counts, None, &mut ());
        assert_eq!(counts, expected, "{text:?}");
        for set in [CUES.as_ref().unwrap(), &thrashing] {
            let mut caches = set.caches.get();
            let mut scan = CueScan::new(set, &mut caches);
            let mut counts = TextCounts::default();
            read_segment(&text, &mut counts, Some(&mut scan), &mut ());
            assert_eq!(counts, expected, "{text:?} (with the cue scan)");
        }
    }
}

/// A reader that folds what it is handed into a hash.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Echo {
    hash: u64,
    segments: usize,
}

impl TextReader for Echo {
    fn byte(&mut self, byte: u8) {
        self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn segment_end(&mut self) {
        self.hash = self.hash.rotate_left(7) ^ 0xff;
        self.segments += 1;
    }
}

#[test]
fn the_reader_gets_every_byte_once_in_order_whatever_the_cue_scan_does() {
    let thrashing = CueSet::new(&CUE_LISTS.concat(), 0).unwrap();
    for text in random_texts(&cue_pieces(), 13, 1000, 60) {
        let segments: Vec<&str> = text.splitn(3, '\n').collect();
        let mut expected = Echo::default();
        for segment in &segments {
            segment.bytes().for_each(|byte| expected.byte(byte));
            expected.segment_end();
        }
        for set in [None, CUES.as_ref(), Some(&thrashing)] {
            let mut caches = set.map(|set| set.caches.get());
            let mut scan = set
                .zip(caches.as_deref_mut())
                .map(|(set, caches)| CueScan::new(set, caches));
            let (mut counts, mut echo) = (TextCounts::default(), Echo::default());
            for segment in &segments {
                read_segment(segment, &mut counts, scan.as_mut(), &mut echo);
            }
            assert_eq!(echo, expected, "{segments:?}");
        }
    }
}
