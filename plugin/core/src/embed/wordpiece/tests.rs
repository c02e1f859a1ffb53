use super::chars::{kind_of, normalize_char, Char, Kind};
use super::normalize::{is_punctuation, normalized, PreToken, PreTokenizer};
use super::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Written by `plugin/learn/distill/reference_tokens.py` with Hugging Face `tokenizers`.
const REFERENCE: &str = include_str!("reference.json");

#[derive(Deserialize)]
struct Reference {
    tokenizers: String,
    sources: BTreeMap<String, String>,
    edge_cases: Vec<EdgeCase>,
    /// Per data file: (row, message, token count, digest).
    messages: BTreeMap<String, Vec<(usize, usize, usize, String)>>,
}

#[derive(Deserialize)]
struct EdgeCase {
    text: String,
    ids: Vec<u32>,
}

fn reference() -> Reference {
    serde_json::from_str(REFERENCE).expect("reference.json parses")
}

fn ids(wordpiece: &WordPiece, text: &str) -> Vec<u32> {
    let mut ids = Vec::new();
    wordpiece.tokenize(text, |id| ids.push(id));
    ids
}

fn tokens(wordpiece: &WordPiece, text: &str) -> Vec<String> {
    ids(wordpiece, text)
        .into_iter()
        .map(|id| wordpiece.token(id))
        .collect()
}

impl WordPiece {
    fn token(&self, id: u32) -> String {
        let span = self.spans[id as usize];
        self.text[span.start as usize..span.end as usize].to_string()
    }
}

/// The first 16 hex digits of SHA-256 over the ids as little-endian u32, as the script computes it.
fn digest(ids: &[u32]) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.to_le_bytes());
    }
    hex(&hasher.finalize()[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

fn dataset_dir() -> PathBuf {
    std::env::var_os("TRIAGE_ROUTING_DATA").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/routing/train"
            ))
        },
        PathBuf::from,
    )
}

/// A routing data message: where it is and its text.
struct DataMessage {
    row: usize,
    index: usize,
    text: String,
}

/// The string contents of every message of every row of `file`, as the script reads them.
fn data_messages(file: &str) -> Vec<DataMessage> {
    let path = dataset_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error} (the routing data is at ../shared next to the checkout; TRIAGE_ROUTING_DATA overrides)",
            path.display()
        )
    });
    let mut messages = Vec::new();
    for (row, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("{file}:{}: {error}", row + 1));
        let contents = value["request"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (index, message) in contents.iter().enumerate() {
            if let Some(text) = message["content"].as_str() {
                messages.push(DataMessage {
                    row,
                    index,
                    text: text.to_string(),
                });
            }
        }
    }
    messages
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

#[test]
fn shipped_vocabulary_loads() {
    let shipped = WordPiece::shipped();
    assert_eq!(shipped.len(), 30_522);
    assert_eq!(shipped.unk, 100);
    assert_eq!(
        WordPiece::from_vocab(SHIPPED_VOCAB).map(|wordpiece| wordpiece.len()),
        Ok(30_522)
    );
}

#[test]
fn every_training_message_tokenizes_as_hugging_face_does() {
    let reference = reference();
    let dir = dataset_dir();
    // A checkout without the routing data beside it (../shared) skips, like the host's equivalence
    // test; files added to that directory later are not this fixture's business, the pinned ones are.
    if !dir.is_dir() {
        eprintln!(
            "skipped: {} is not a directory (the routing data is at ../shared next to the checkout; TRIAGE_ROUTING_DATA overrides)",
            dir.display()
        );
        return;
    }
    for (file, sha256) in &reference.sources {
        let bytes = std::fs::read(dir.join(file)).expect("data file reads");
        assert_eq!(
            &hex(&Sha256::digest(&bytes)),
            sha256,
            "{file} changed since reference.json was written: rerun plugin/learn/distill/reference_tokens.py"
        );
    }

    let wordpiece = WordPiece::shipped();
    let mut checked = 0;
    let mut rows = 0;
    let mut mismatches = Vec::new();
    for (file, expected) in &reference.messages {
        let messages = data_messages(file);
        assert_eq!(
            messages.len(),
            expected.len(),
            "{file}: message count differs from reference.json"
        );
        let mut last_row = None;
        for (message, (row, index, count, hash)) in messages.iter().zip(expected) {
            assert_eq!(
                (message.row, message.index),
                (*row, *index),
                "{file}: messages out of step with reference.json"
            );
            if last_row != Some(*row) {
                rows += 1;
                last_row = Some(*row);
            }
            let ids = ids(wordpiece, &message.text);
            if (ids.len(), digest(&ids)) != (*count, hash.clone()) {
                mismatches.push(format!(
                    "{file} row {row} message {index}: {} tokens, expected {count}; text {:?}; ids {:?}",
                    ids.len(),
                    shorten(&message.text),
                    &ids[..ids.len().min(40)],
                ));
            }
            checked += 1;
        }
    }
    eprintln!(
        "checked {checked} messages of {rows} rows against tokenizers {}: {} mismatches",
        reference.tokenizers,
        mismatches.len()
    );
    assert!(checked > 0, "reference.json lists no message");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} messages tokenize differently; the first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn edge_cases_tokenize_as_hugging_face_does() {
    let reference = reference();
    assert!(reference.edge_cases.len() > 40);
    let wordpiece = WordPiece::shipped();
    let failures: Vec<String> = reference
        .edge_cases
        .iter()
        .filter_map(|case| {
            let got = ids(wordpiece, &case.text);
            (got != case.ids).then(|| {
                let position = got
                    .iter()
                    .zip(&case.ids)
                    .take_while(|(a, b)| a == b)
                    .count();
                format!(
                    "{:?}\n  got      {got:?}\n  expected {:?}\n  first difference at {position}",
                    case.text, case.ids
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn normalizer_cleans_strips_accents_lowercases_and_spaces_ideographs() {
    let cases = [
        ("Hello World", "hello world"),
        ("Café RÉSUMÉ naïve", "cafe resume naive"),
        // NFD then the nonspacing mark dropped, then lowercase.
        ("\u{130}stanbul", "istanbul"),
        ("\u{212b}\u{2126}", "aω"),
        ("e\u{301}", "e"),
        // Lowercase only: the capital sharp s has no decomposition.
        ("\u{1e9e}STRASSE", "ßstrasse"),
        // Compatibility characters are not decomposed (NFD, not NFKD).
        ("\u{fb01}\u{2163}\u{ff21}", "\u{fb01}\u{2173}\u{ff41}"),
        // Controls, format characters, NUL and U+FFFD removed; whitespace of any kind a space.
        ("a\u{0}b\u{7}c\u{200b}d\u{feff}e\u{fffd}f", "abcdef"),
        ("a\u{b}b\u{c}c\u{85}d", "abcd"),
        ("a\tb\nc\rd\u{a0}e\u{3000}f\u{2028}g", "a b c d e f g"),
        ("x\u{e000}y", "xy"),
        // CJK ideographs get spaces around them; kana and hangul do not (hangul decomposes).
        ("日本語", " 日  本  語 "),
        ("かな한", "かな\u{1112}\u{1161}\u{11ab}"),
        ("\u{f900}", " \u{8c48} "),
        // Emoji and symbols pass through.
        ("😀€©", "😀€©"),
    ];
    for (text, expected) in cases {
        assert_eq!(
            normalized(text).into_iter().collect::<String>(),
            expected,
            "{text:?}"
        );
    }
}

/// The pre-tokens of `text`, words as strings and added tokens as `<id>`.
fn pre_tokens(pre_tokenizer: &PreTokenizer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    pre_tokenizer.pre_tokenize(text, |pre_token| {
        out.push(match pre_token {
            PreToken::Word(word) => String::from_utf8_lossy(word.bytes).into_owned(),
            PreToken::Overlong => "<overlong>".to_string(),
            PreToken::Added(id) => format!("<{id}>"),
        })
    });
    out
}

fn bert_pre_tokenizer() -> PreTokenizer {
    PreTokenizer::new(vec![
        (b"[CLS]".as_slice().into(), 101),
        (b"[SEP]".as_slice().into(), 102),
        (b"[MASK]".as_slice().into(), 103),
    ])
}

#[test]
fn pre_tokenizer_splits_on_whitespace_and_isolates_punctuation() {
    let cases: [(&str, &[&str]); 14] = [
        ("Hello, world!", &["hello", ",", "world", "!"]),
        ("  spaced\t\tout \r\n", &["spaced", "out"]),
        ("don't", &["don", "'", "t"]),
        (
            "a+b=c $5 #1 @x ~y `z` |w|",
            &[
                "a", "+", "b", "=", "c", "$", "5", "#", "1", "@", "x", "~", "y", "`", "z", "`",
                "|", "w", "|",
            ],
        ),
        ("“quoted” — fine…", &["“", "quoted", "”", "—", "fine", "…"]),
        ("¿qué?", &["¿", "que", "?"]),
        // Symbols are not punctuation.
        ("5€ ©x a→b", &["5€", "©x", "a→b"]),
        ("中文abc字", &["中", "文", "abc", "字"]),
        ("zero\u{200b}width", &["zerowidth"]),
        ("x[CLS]y [SEP]", &["x", "<101>", "y", "<102>"]),
        (
            "[cls] [CLS [MASK]]",
            &["[", "cls", "]", "[", "cls", "<103>", "]"],
        ),
        ("[[CLS]]", &["[", "<101>", "]"]),
        ("Ünï\u{0}cödé", &["unicode"]),
        ("", &[]),
    ];
    let pre_tokenizer = bert_pre_tokenizer();
    for (text, expected) in cases {
        assert_eq!(pre_tokens(&pre_tokenizer, text), expected, "{text:?}");
    }
}

#[test]
fn words_longer_than_100_chars_are_overlong() {
    let pre_tokenizer = bert_pre_tokenizer();
    let cases = [
        ("a".repeat(100), false),
        ("a".repeat(101), true),
        // Chars, not bytes, and counted after normalization.
        ("é".repeat(100), false),
        ("É".repeat(101), true),
        (format!("{}\u{301}", "a".repeat(100)), false),
        (format!("{}\u{200b}b", "a".repeat(99)), false),
    ];
    for (word, overlong) in cases {
        let got = pre_tokens(&pre_tokenizer, &word);
        assert_eq!(got.len(), 1, "{word:?}");
        assert_eq!(got[0] == "<overlong>", overlong, "{word:?}");
    }
}

/// The pre-tokens of `text` the slow way: every char through [`normalized`], then split. The
/// tokenizer takes an ASCII byte table instead where it can; both must agree.
fn pre_tokens_char_by_char(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    fn flush(word: &mut String, out: &mut Vec<String>) {
        if !word.is_empty() {
            out.push(if word.chars().count() > 100 {
                "<overlong>".to_string()
            } else {
                word.clone()
            });
            word.clear();
        }
    }
    for c in normalized(text) {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
        } else if is_punctuation(c) {
            flush(&mut word, &mut out);
            out.push(c.to_string());
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// [`pre_tokens_char_by_char`] after splitting off the added tokens of [`bert_pre_tokenizer`]: the
/// leftmost first, the longest at one position.
fn pre_tokens_reference(text: &str) -> Vec<String> {
    let added = [("[CLS]", 101), ("[SEP]", 102), ("[MASK]", 103)];
    let first = added
        .iter()
        .filter_map(|&(token, id)| Some((text.find(token)?, std::cmp::Reverse(token.len()), id)))
        .min();
    let Some((at, std::cmp::Reverse(len), id)) = first else {
        return pre_tokens_char_by_char(text);
    };
    let mut out = pre_tokens_char_by_char(&text[..at]);
    out.push(format!("<{id}>"));
    out.extend(pre_tokens_reference(&text[at + len..]));
    out
}

/// Pieces random texts are made of: ASCII of every class, added tokens, long words (blocks are
/// 64 bytes, words over 100 chars are overlong), and non-ASCII of every path: the table, CJK
/// ideographs and Hangul worked out directly, and chars normalized with their neighbours.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "q",
    "7",
    "0",
    " ",
    " ",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    ".",
    ",",
    "!",
    "?",
    "'",
    "\"",
    "-",
    "_",
    "#",
    "$",
    "+",
    "=",
    "@",
    "\\",
    "/",
    "(",
    ")",
    "]",
    "[",
    "{",
    "}",
    "~",
    "`",
    "|",
    "\0",
    "\u{7}",
    "\u{b}",
    "\u{c}",
    "\u{1b}",
    "\u{7f}",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "[cls]",
    "[CLS",
    "[[",
    "the",
    "The",
    "THE",
    "unbelievable",
    "Hello",
    "world",
    "x1y2",
    "123456",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "é",
    "É",
    "ñ",
    "ß",
    "ẞ",
    "İ",
    "ı",
    "ø",
    "Å",
    "ﬁ",
    "Ⅻ",
    "Ω",
    "Ａ",
    "ά",
    "Ά",
    "ё",
    "Й",
    "Привет",
    "мир",
    "ελληνικά",
    "\u{301}",
    "\u{316}",
    "\u{345}",
    "\u{1d165}",
    "\u{1d16d}",
    "\u{1d16e}",
    "\u{f39}",
    "\u{f71}\u{f72}",
    "\u{f73}",
    "\u{344}",
    "\u{bcd}",
    "\u{94d}",
    "\u{93c}",
    "क़",
    "हिन्दी",
    "مرحبا",
    "\u{64e}",
    "\u{5b0}",
    "שלום",
    "สวัสดี",
    "\u{e31}",
    "日",
    "本",
    "語",
    "豈",
    "\u{2f800}",
    "\u{20000}",
    "한",
    "국",
    "ᄀ",
    "ᅡ",
    "か",
    "カ",
    "ｶ",
    "\u{ff9e}",
    "😀",
    "🥰",
    "👍🏽",
    "\u{200d}",
    "\u{fe0f}",
    "\u{20e3}",
    "🇫🇷",
    "\u{a0}",
    "\u{2009}",
    "\u{3000}",
    "\u{2028}",
    "\u{85}",
    "\u{200b}",
    "\u{feff}",
    "\u{ad}",
    "\u{e000}",
    "\u{fffd}",
    "\u{10fffd}",
    "“",
    "”",
    "—",
    "…",
    "«",
    "»",
    "、",
    "。",
    "¿",
    "¡",
    "·",
    "\u{37e}",
    "\u{387}",
    "€",
    "©",
    "→",
    "∑",
    "\u{2163}",
];

/// A deterministic pseudo-random sequence (xorshift64*).
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    }
}

#[test]
fn fast_paths_agree_with_the_char_by_char_pipeline() {
    let pre_tokenizer = bert_pre_tokenizer();
    let mut texts: Vec<String> = (0u8..128)
        .map(|byte| format!("Ab{}cD é{}ü", byte as char, byte as char))
        .collect();
    texts.extend(
        [
            "x\u{0}\u{301}y",
            "é\u{1}\u{316}x",
            "a\u{1d16d}\u{7}\u{1d165}b",
            "a\u{1d16d}\u{301}\u{1d165}b",
            "a\u{1d16d}\u{200b}\u{1d165}b",
            "Mixed ASCII and ÜNÏCÖDÉ, with\u{b}controls\u{7f}",
            "\u{85}\u{a0}\u{2000}\u{3000}",
        ]
        .map(String::from),
    );
    texts.extend(reference().edge_cases.into_iter().map(|case| case.text));
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let pieces = 1 + random.below(120);
        texts.push(
            (0..pieces)
                .map(|_| PIECES[random.below(PIECES.len())])
                .collect(),
        );
    }
    for text in texts {
        assert_eq!(
            pre_tokens(&pre_tokenizer, &text),
            pre_tokens_reference(&text),
            "{text:?}"
        );
    }
}

/// Normalized chars as pre-tokenization sees them: word chars, and `|` where a word ends.
fn boundaries(chars: impl Iterator<Item = (char, Kind)>) -> String {
    let mut out = String::from("|");
    for (c, kind) in chars {
        match kind {
            Kind::Word => out.push(c),
            Kind::Space => out.push('|'),
            Kind::Alone => {
                out.push('|');
                out.push(c);
                out.push('|');
            }
        }
    }
    out.push('|');
    while out.contains("||") {
        out = out.replace("||", "|");
    }
    out
}

#[test]
fn chars_worked_out_alone_match_the_pipeline() {
    let mut worked_out = 0;
    for code in 0x80..0x3_0000 {
        let Some(c) = char::from_u32(code) else {
            continue;
        };
        let alone = normalize_char(c);
        if alone == Char::Contextual {
            continue;
        }
        worked_out += 1;
        let mut utf8 = [0; 4];
        let pipeline = normalized(c.encode_utf8(&mut utf8))
            .into_iter()
            .map(|out| (out, kind_of(out)));
        assert_eq!(
            boundaries(alone.chars()),
            boundaries(pipeline),
            "U+{code:04X}"
        );
    }
    assert!(worked_out > 30_000, "{worked_out}");
}

const TOY_VOCAB: &str =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\naff\n##aff\n##able\n##a\nb\n##b\nж\n##ы\n##ыж\nx\n!\n";

#[test]
fn words_are_cut_into_the_longest_pieces_from_the_start() {
    let wordpiece = WordPiece::from_vocab(TOY_VOCAB).expect("toy vocabulary loads");
    let cases: [(&str, &[&str]); 12] = [
        ("unaffable", &["un", "##aff", "##able"]),
        ("affable", &["aff", "##able"]),
        // Longest first, in chars of any width: "##ыж" before "##ы".
        ("жыж", &["ж", "##ыж"]),
        ("ЖЫЫ", &["ж", "##ы", "##ы"]),
        ("bbb", &["b", "##b", "##b"]),
        // A word whose start or middle matches nothing is one [UNK].
        ("able", &["[UNK]"]),
        ("unz", &["[UNK]"]),
        ("zzz", &["[UNK]"]),
        // Pieces are looked up in the normalized word; punctuation is a word of its own.
        ("UNAFF! x", &["un", "##aff", "!", "x"]),
        ("?", &["[UNK]"]),
        // Added tokens in the text; [MASK] is not in this vocabulary.
        (
            "x[CLS]x [MASK]",
            &["x", "[CLS]", "x", "[UNK]", "[UNK]", "[UNK]"],
        ),
        ("", &[]),
    ];
    for (text, expected) in cases {
        assert_eq!(tokens(&wordpiece, text), expected, "{text:?}");
    }
}

#[test]
fn a_word_over_100_chars_is_one_unk() {
    let wordpiece = WordPiece::from_vocab(TOY_VOCAB).expect("toy vocabulary loads");
    let hundred = "b".repeat(100);
    assert_eq!(ids(&wordpiece, &hundred).len(), 100);
    assert_eq!(tokens(&wordpiece, &format!("{hundred}b x")), ["[UNK]", "x"]);
    let shipped = WordPiece::shipped();
    assert_eq!(ids(shipped, &"a".repeat(101)), [100]);
    assert_eq!(
        ids(shipped, &format!("{} the", "a".repeat(150))),
        [100, 1996]
    );
}

#[test]
fn vocabularies_without_unk_or_with_a_token_twice_are_refused() {
    let cases = [
        ("a\nb\n", "no [UNK] token"),
        ("[UNK]\na\nb\na\n", "\"a\" is listed twice (ids 1 and 3)"),
        ("[UNK]\n##a\n##a\n", "\"a\" is listed twice"),
    ];
    for (vocab, error) in cases {
        let got = WordPiece::from_vocab(vocab).expect_err(vocab);
        assert!(got.contains(error), "{vocab:?}: {got}");
    }
    let crlf = WordPiece::from_vocab("[UNK]\r\nab\r\n##c").expect("CRLF vocabulary loads");
    assert_eq!(ids(&crlf, "abc"), [1, 2]);
}

#[test]
fn an_empty_tokenizer_yields_nothing() {
    let empty = WordPiece::empty();
    assert!(empty.is_empty());
    assert_eq!(ids(&empty, "hello [CLS]"), Vec::<u32>::new());
}

/// Prints the speed: the training messages tokenized in one pass (the tables mostly out of cache,
/// the text streaming through it), and 4 KB prompts cut from them, each tokenized repeatedly (the
/// tables' hot part in cache, as in a filter serving requests). Run with
/// `cargo test --release -p triage-core wordpiece_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn wordpiece_speed() {
    let texts: Vec<String> = reference()
        .sources
        .keys()
        .flat_map(|file| data_messages(file).into_iter().map(|message| message.text))
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let wordpiece = WordPiece::shipped();
    let mut best = f64::MAX;
    let mut tokens = 0u64;
    for _ in 0..5 {
        tokens = 0;
        let started = std::time::Instant::now();
        for text in &texts {
            wordpiece.tokenize(text, |id| {
                std::hint::black_box(id);
                tokens += 1;
            });
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    eprintln!(
        "all {} messages, {:.1} MB, {tokens} tokens: best of 5 passes {:.1} ms, {:.2} µs/KB, {:.1} ns/token",
        texts.len(),
        bytes as f64 / 1e6,
        best * 1e3,
        best * 1e6 / (bytes as f64 / 1024.0),
        best * 1e9 / tokens as f64,
    );

    let joined = texts.join("\n");
    let mut prompts = Vec::new();
    let mut rest = joined.as_str();
    while rest.len() >= 4096 && prompts.len() < 200 {
        let mut end = 4096;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (prompt, after) = rest.split_at(end);
        prompts.push(prompt);
        rest = after;
    }
    let mut per_prompt: Vec<f64> = prompts
        .iter()
        .map(|prompt| {
            const REPEATS: u32 = 50;
            let started = std::time::Instant::now();
            for _ in 0..REPEATS {
                wordpiece.tokenize(std::hint::black_box(prompt), |id| {
                    std::hint::black_box(id);
                });
            }
            started.elapsed().as_secs_f64() / f64::from(REPEATS)
        })
        .collect();
    per_prompt.sort_by(f64::total_cmp);
    eprintln!(
        "{} prompts of 4 KB, each tokenized 50 times: median {:.1} µs ({:.2} µs/KB), slowest {:.1} µs",
        per_prompt.len(),
        per_prompt[per_prompt.len() / 2] * 1e6,
        per_prompt[per_prompt.len() / 2] * 1e6 / 4.0,
        per_prompt[per_prompt.len() - 1] * 1e6,
    );

    for (script, sample) in [
        (
            "Russian",
            "Привет, мир! Это пример текста на русском языке, с ёлкой и «кавычками». ",
        ),
        (
            "Chinese",
            "这是一个中文文本的例子，用于测试分词器的速度。我们需要知道它有多快！",
        ),
        (
            "French",
            "Voilà un exemple de texte français, où l'on trouve des accents: é, è, à, ç. ",
        ),
        (
            "emoji",
            "Great job 👍🏽 on the release 🎉🎉 — see you tomorrow 😀! ",
        ),
    ] {
        let mut prompt = sample.repeat(4096 / sample.len() + 1);
        let mut end = 4096;
        while !prompt.is_char_boundary(end) {
            end -= 1;
        }
        prompt.truncate(end);
        const REPEATS: u32 = 50;
        let started = std::time::Instant::now();
        for _ in 0..REPEATS {
            wordpiece.tokenize(std::hint::black_box(&prompt), |id| {
                std::hint::black_box(id);
            });
        }
        let seconds = started.elapsed().as_secs_f64() / f64::from(REPEATS);
        eprintln!("4 KB of {script}: {:.1} µs", seconds * 1e6);
    }

    let started = std::time::Instant::now();
    let built = WordPiece::from_vocab(SHIPPED_VOCAB).map(|wordpiece| wordpiece.len());
    eprintln!(
        "vocabulary of {built:?} tokens built in {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = std::time::Instant::now();
    let chars = super::chars::build_table();
    eprintln!(
        "table of {chars} non-ASCII chars built in {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}
