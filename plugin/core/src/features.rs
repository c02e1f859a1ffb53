//! Cheap request features, each normalized to [0, 1] before weighting.

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::LazyLock;

use regex_automata::hybrid::dfa::{self, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson::pikevm::{self, PikeVM};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

use crate::format::ParsedRequest;
use crate::scan;

macro_rules! features {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// One value per feature, each in [0, 1].
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Features {
            $($(#[doc = $doc])* pub $name: f64,)*
        }

        /// Feature names, as `weights.features` keys and in reasons, in [`Features::values`] order.
        pub const FEATURE_NAMES: &[&str] = &[$(stringify!($name)),*];

        impl Features {
            pub fn values(&self) -> [f64; FEATURE_COUNT] {
                [$(self.$name),*]
            }
        }
    };
}

features! {
    /// Estimated prompt tokens (text bytes / 4, system and tools included), log scale up to 32k.
    tokens,
    /// User turns beyond the first, log scale up to 16.
    turns,
    /// System prompt tokens, log scale up to 8k.
    system_prompt,
    /// Last user message tokens, log scale up to 8k.
    last_user,
    /// Fenced code blocks (``` pairs), 2 or more = 1.
    code_fences,
    /// Share of non-empty lines that look like code.
    code_lines,
    /// LaTeX commands and display-math markers, 4 or more = 1.
    latex,
    /// Math vocabulary (theorem, integral, probability...), 3 distinct or more = 1.
    math_terms,
    /// Density of arithmetic and comparison operators among non-space characters.
    operators,
    /// Density of digits among non-space characters.
    digits,
    /// Distinct multi-step reasoning cues (step by step, prove, design, debug...), 2 or more = 1.
    reasoning_cues,
    /// Distinct simple-task cues (classify, extract, translate, yes or no...), 2 or more = 1.
    simple_task,
    /// Question marks beyond the first, 4 or more extra = 1.
    questions,
    /// Distinct constraint words (must, at least, exactly...) and bullet-list lines, 8 or more = 1.
    constraints,
    /// Tools defined, log scale up to 16.
    tools,
    /// Tool calls and tool results in the history, log scale up to 16.
    tool_depth,
    /// Images, log scale up to 8.
    images,
    /// Requested max output tokens, log scale up to 32k; 0 when not set.
    max_tokens,
    /// Requested reasoning effort: none 0, low 0.33, medium 0.67, high 1; 0 when not set.
    reasoning_effort,
    /// 1 when a JSON response format is requested.
    json_output,
    /// Share of letters outside the Latin script.
    non_latin,
}

pub const FEATURE_COUNT: usize = FEATURE_NAMES.len();

/// `ln(1 + x) / ln(1 + full)`, capped at 1.
fn log_scale(x: f64, full: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return if x == f64::INFINITY { 1.0 } else { 0.0 };
    }
    (x.ln_1p() / full.ln_1p()).min(1.0)
}

fn ratio(count: usize, full: usize) -> f64 {
    (count as f64 / full as f64).min(1.0)
}

fn density(count: usize, total: usize, full: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (count as f64 / total as f64 / full).min(1.0)
}

const REASONING_CUES: &[&str] = &[
    r"\bstep[- ]by[- ]step\b",
    r"\b(prove|proof|show that|demonstrate that)\b",
    r"\b(derive|derivation)\b",
    r"\b(analy[sz]e|analysis)\b",
    r"\b(compare|contrast)\b",
    r"\b(explain why|why (does|do|is|are|would))\b",
    r"\bplan\b",
    r"\b(design|architect\w*)\b",
    r"\btrade-?offs?\b",
    r"\b(optimi[sz]e|optimal|efficient(ly)?)\b",
    r"\b(debug\w*|stack ?trace|traceback|segfault|bug)\b",
    r"\b(algorithm|complexity|edge cases?)\b",
    r"\b(write|implement|code) (a|an) (\w+ ){0,2}(function|program|script|class|method|query)\b",
    r"\b(evaluate|critique|justify|reason about)\b",
];

/// "first ... then": both words present count as one sequencing cue.
const SEQUENCE_CUES: &[&str] = &[r"\bfirst\b", r"\bthen\b"];

const SIMPLE_TASK_CUES: &[&str] = &[
    r"\b(classify|classification)\b",
    r"\bcategori[sz]e\b",
    r"\bextract\b",
    r"\btranslat(e|ion)\b",
    r"\b(reformat|convert)\b",
    r"\bsummari[sz]e\b[a-z ]{0,24}\b(one|1|a single) sentence\b",
    r"\byes or no\b|\byes/no\b",
    r"\btrue or false\b",
    r"\bsentiment\b",
    r"\blabel\b",
    r"\b(fix|correct) (the )?(grammar|spelling|typos?)\b|\bproofread\b",
    r"\b(one|single) word\b|\banswer with (only|just)\b",
    r"\b(single|one) (choice|letter|option)\b|\bletter of the correct answer\b",
];

const MATH_TERMS: &[&str] = &[
    r"\b(theorem|lemma|corollary)\b",
    r"\b(integral|integrate|derivative|differentiate)\b",
    r"\b(polynomial|quadratic|equation)s?\b",
    r"\b(matrix|matrices|eigen\w*|determinant)\b",
    r"\b(probability|expected value|variance)\b",
    r"\b(prime|divisible|modulo|gcd|lcm)\b",
    r"\b(limit|converge\w*|series)\b",
];

/// Distinct, so that few-shot prompts repeating one instruction do not pile up.
const CONSTRAINT_WORDS: &[&str] = &[
    r"\bmust\b",
    r"\bshould\b",
    r"\b(at least|no fewer than|no less than)\b",
    r"\b(at most|no more than)\b",
    r"\bexactly\b",
    r"\bwithout\b",
    r"\bonly\b",
    r"\b(never|do not|don't)\b",
    r"\balways\b",
    r"\b(ensure|make sure)\b",
    r"\b\d+ (words|sentences|paragraphs|bullet points|items)\b",
];

/// Every cue list, in [`CueCounts`] order. One set over all of them reads the text once: five sets
/// each scanning it (their literal prefilters restarting at every candidate) cost 4x as much.
const CUE_LISTS: [&[&str]; 5] = [
    REASONING_CUES,
    SEQUENCE_CUES,
    SIMPLE_TASK_CUES,
    MATH_TERMS,
    CONSTRAINT_WORDS,
];

static CUES: LazyLock<Option<CueSet>> =
    LazyLock::new(|| CueSet::new(&CUE_LISTS.concat(), CUE_CACHE_BYTES));

/// The lazy DFA's cache, as `regex` sizes its own.
const CUE_CACHE_BYTES: usize = 2 << 20;

type CacheMaker = Box<dyn Fn() -> CueCaches + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// The cue patterns, in [`CUE_LISTS`] order: ASCII-only and case-insensitive (cheap on any text,
/// and every cue is English anyway), all matches, no literal prefilter (with this many patterns its
/// candidates are everywhere). The lazy DFA is stepped by hand, by the pass that also counts
/// characters and hashes n-grams: the text is read once, and the DFA's chain of table loads
/// overlaps the other work. Should the DFA give up (its cache thrashing on hostile text), the
/// PikeVM reads the rest, as `regex` falls back.
struct CueSet {
    dfa: DFA,
    pikevm: PikeVM,
    caches: Pool<CueCaches, CacheMaker>,
}

struct CueCaches {
    dfa: dfa::Cache,
    pikevm: pikevm::Cache,
}

impl CueSet {
    fn new(patterns: &[&str], cache_bytes: usize) -> Option<CueSet> {
        let nfa = thompson::Compiler::new()
            .syntax(
                syntax::Config::new()
                    .case_insensitive(true)
                    .unicode(false)
                    .utf8(true),
            )
            .configure(thompson::Config::new().which_captures(WhichCaptures::Implicit))
            .build_many(patterns)
            .ok()?;
        // Where `regex` gives up on its own lazy DFA. A capacity below the minimum is raised to it
        // (a test makes the DFA give up so).
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(cache_bytes)
                    .skip_cache_capacity_check(true)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa.clone())
            .ok()?;
        let pikevm = PikeVM::builder()
            .configure(PikeVM::config().match_kind(MatchKind::All))
            .build_from_nfa(nfa)
            .ok()?;
        let (for_dfa, for_pikevm) = (dfa.clone(), pikevm.clone());
        let make: CacheMaker = Box::new(move || CueCaches {
            dfa: for_dfa.create_cache(),
            pikevm: for_pikevm.create_cache(),
        });
        Some(CueSet {
            dfa,
            pikevm,
            caches: Pool::new(make),
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pikevm.get_nfa().pattern_len()
    }
}

/// The cue set run over the scanned text, a segment at a time and a byte at a time. The DFA's
/// current state is the caller's to keep (in a register).
struct CueScan<'s> {
    set: &'s CueSet,
    caches: &'s mut CueCaches,
    seen: [bool; CUE_COUNT],
    /// Segments started so far; the one the DFA gave up in, if it did.
    segments: usize,
    gave_up_in: Option<usize>,
}

impl<'s> CueScan<'s> {
    fn new(set: &'s CueSet, caches: &'s mut CueCaches) -> CueScan<'s> {
        CueScan {
            set,
            caches,
            seen: [false; CUE_COUNT],
            segments: 0,
            gave_up_in: None,
        }
    }

    /// The state before the first byte of `segment`; None once the DFA has given up.
    fn start(&mut self, segment: &str) -> Option<LazyStateID> {
        self.segments += 1;
        if self.gave_up_in.is_some() {
            return None;
        }
        let input = Input::new(segment);
        match self
            .set
            .dfa
            .start_state_forward(&mut self.caches.dfa, &input)
        {
            Ok(state) => {
                self.caches.dfa.search_start(0);
                self.tagged(state, 0)
            }
            Err(_) => self.give_up(),
        }
    }

    /// The DFA with the transitions computed so far.
    fn computed(&self) -> Computed<'_> {
        Computed {
            dfa: &self.set.dfa,
            cache: &self.caches.dfa,
        }
    }

    /// The state after byte `at` of the segment; None when no match can follow (the dead state)
    /// or the DFA gave up.
    #[inline(never)]
    fn step(&mut self, state: LazyStateID, at: usize, byte: u8) -> Option<LazyStateID> {
        match self.set.dfa.next_state(&mut self.caches.dfa, state, byte) {
            Ok(next) => self.tagged(next, at),
            Err(_) => self.give_up(),
        }
    }

    /// The end of a segment `len` bytes long: matches are seen one byte late, so the last one
    /// shows at the end-of-input transition.
    fn end(&mut self, state: Option<LazyStateID>, len: usize) {
        let Some(state) = state else {
            return;
        };
        match self.set.dfa.next_eoi_state(&mut self.caches.dfa, state) {
            Ok(last) => {
                self.tagged(last, len);
                self.caches.dfa.search_finish(len);
            }
            Err(_) => {
                self.give_up();
            }
        }
    }

    /// Notes the patterns of a match state (a match ended just before `at`). The dead state ends
    /// the segment's search; a quit state (there is none without look-behind on non-ASCII bytes)
    /// would be a question the DFA cannot answer.
    fn tagged(&mut self, state: LazyStateID, at: usize) -> Option<LazyStateID> {
        let (dfa, cache) = (&self.set.dfa, &mut self.caches.dfa);
        if state.is_match() {
            for index in 0..dfa.match_len(cache, state) {
                let pattern = dfa.match_pattern(cache, state, index);
                if let Some(flag) = self.seen.get_mut(pattern.as_usize()) {
                    *flag = true;
                }
            }
            cache.search_update(at);
        } else if state.is_dead() {
            return None;
        } else if state.is_quit() {
            return self.give_up();
        }
        Some(state)
    }

    fn give_up(&mut self) -> Option<LazyStateID> {
        self.gave_up_in = Some(self.segments.saturating_sub(1));
        None
    }

    /// Which patterns matched anywhere in `segments`, the text the scan was given: the PikeVM
    /// reads the segments from the one the DFA gave up in.
    fn finish(mut self, segments: &[&str]) -> [bool; CUE_COUNT] {
        let Some(first) = self.gave_up_in else {
            return self.seen;
        };
        let mut matched = PatternSet::new(self.set.pikevm.get_nfa().pattern_len());
        for segment in segments.get(first..).unwrap_or_default() {
            self.set.pikevm.which_overlapping_matches(
                &mut self.caches.pikevm,
                &Input::new(segment),
                &mut matched,
            );
        }
        for pattern in matched.iter() {
            if let Some(flag) = self.seen.get_mut(pattern.as_usize()) {
                *flag = true;
            }
        }
        self.seen
    }
}

/// Distinct patterns of each cue list matched anywhere in the scanned text.
struct CueCounts {
    reasoning: usize,
    sequence: usize,
    simple_task: usize,
    math: usize,
    constraint: usize,
}

impl CueCounts {
    fn of(seen: &[bool; CUE_COUNT]) -> CueCounts {
        let mut counts = [0; CUE_LISTS.len()];
        let mut start = 0;
        for (count, list) in counts.iter_mut().zip(CUE_LISTS) {
            let flags = seen.get(start..start + list.len()).unwrap_or_default();
            *count = flags.iter().filter(|flag| **flag).count();
            start += list.len();
        }
        let [reasoning, sequence, simple_task, math, constraint] = counts;
        CueCounts {
            reasoning,
            sequence,
            simple_task,
            math,
            constraint,
        }
    }
}

const CUE_COUNT: usize = REASONING_CUES.len()
    + SEQUENCE_CUES.len()
    + SIMPLE_TASK_CUES.len()
    + MATH_TERMS.len()
    + CONSTRAINT_WORDS.len();

const CODE_PREFIXES: &[&str] = &[
    "def ",
    "fn ",
    "pub fn ",
    "class ",
    "import ",
    "from ",
    "return ",
    "#include",
    "public ",
    "private ",
    "function ",
    "const ",
    "let ",
    "var ",
    "if (",
    "for (",
    "while (",
    "print(",
    "console.",
    ">>> ",
    "SELECT ",
    "package ",
    "using ",
    "func ",
    "@",
    "try:",
    "except",
    "elif ",
    "else:",
];

fn looks_like_code(line: &str) -> bool {
    let line = line.trim();
    // The first byte rules out most prefixes without a call to compare them.
    let first = line.as_bytes().first();
    line.ends_with(['{', '}', ';'])
        || (line.ends_with(':') && line.contains('('))
        || CODE_PREFIXES
            .iter()
            .any(|prefix| prefix.as_bytes().first() == first && line.starts_with(prefix))
}

fn is_bullet(line: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with("- ") || line.starts_with("* ") || line.starts_with("• ") {
        return true;
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && line
            .as_bytes()
            .get(digits)
            .is_some_and(|byte| matches!(byte, b'.' | b')'))
}

const LATEX_COMMANDS: &[&str] = &[
    "frac", "dfrac", "sum", "int", "iint", "oint", "sqrt", "lim", "prod", "partial", "infty",
    "alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "sigma", "omega", "pi",
    "cdot", "times", "leq", "geq", "neq", "le", "ge", "approx", "equiv", "mathbb", "mathbf",
    "mathrm", "mathcal", "begin", "binom", "pmod", "forall", "exists", "subseteq", "cup", "cap",
    "vec", "nabla", "log", "ln", "sin", "cos", "tan", "left", "right", "[", "(",
];

/// Whether the bytes after a backslash name a LaTeX command (or open display or inline math).
fn is_latex_command(rest: &[u8]) -> bool {
    let name_len = rest
        .iter()
        .take_while(|byte| byte.is_ascii_alphabetic())
        .count()
        .max(1);
    let name = rest.get(..name_len).unwrap_or_default();
    LATEX_COMMANDS
        .iter()
        .any(|command| command.as_bytes() == name)
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || ('\u{00C0}'..='\u{024F}').contains(&c)
        || ('\u{1E00}'..='\u{1EFF}').contains(&c)
}

const OPERATORS: &[char] = &[
    '=', '+', '*', '/', '^', '<', '>', '×', '÷', '±', '√', '∑', '∫', '≤', '≥', '≠',
];

/// Character, line and marker counts over the scanned text, in one pass per segment.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct TextCounts {
    non_space: usize,
    digits: usize,
    operators: usize,
    letters: usize,
    non_latin_letters: usize,
    lines: usize,
    code_lines: usize,
    bullet_lines: usize,
    fences: usize,
    latex: usize,
}

/// Bytes the per-char counts need no more than a table for: ASCII but newlines, backticks, dollars
/// and backslashes. Each entry adds 1 to 16-bit lanes: non-space, digit, operator, letter (the char
/// tests on the byte: `is_whitespace`, `is_ascii_digit`, [`OPERATORS`], `is_alphabetic`).
const PLAIN: [u64; 256] = {
    let mut table = [SPECIAL; 256];
    let mut byte = 0;
    while byte < 128 {
        table[byte] = match byte as u8 {
            b'\n' | b'`' | b'$' | b'\\' => SPECIAL,
            b'\t' | b'\r' | 0x0B | 0x0C | b' ' => 0,
            b'0'..=b'9' => NON_SPACE | DIGIT,
            b'=' | b'+' | b'*' | b'/' | b'^' | b'<' | b'>' => NON_SPACE | OPERATOR,
            b'a'..=b'z' | b'A'..=b'Z' => NON_SPACE | LETTER,
            _ => NON_SPACE,
        };
        byte += 1;
    }
    table
};
const NON_SPACE: u64 = 1;
const DIGIT: u64 = 1 << 16;
const OPERATOR: u64 = 1 << 32;
const LETTER: u64 = 1 << 48;
/// Not a sum of lanes any byte of a run of at most `u16::MAX` bytes can reach.
const SPECIAL: u64 = u64::MAX;

/// How many times `byte` repeats from the start of `bytes`.
fn run_len(bytes: &[u8], byte: u8) -> usize {
    bytes.iter().take_while(|next| **next == byte).count()
}

/// Where the current line starts, and the non-space count there (a line counts if it has more).
struct Line {
    start: usize,
    non_space: usize,
}

impl TextCounts {
    #[inline(always)]
    fn add_lanes(&mut self, lanes: u64) {
        self.non_space += (lanes & 0xffff) as usize;
        self.digits += ((lanes >> 16) & 0xffff) as usize;
        self.operators += ((lanes >> 32) & 0xffff) as usize;
        self.letters += (lanes >> 48) as usize;
    }

    /// Byte `index` of `text`, one [`PLAIN`] has no entry for. Lines are those of `str::lines` with
    /// some non-space char, fences and `$$` the non-overlapping matches of `str::matches` (a run of n
    /// backticks holds n / 3): the counts of the char-by-char definitions.
    #[inline(always)]
    fn add_special(&mut self, text: &str, index: usize, line: &mut Line) {
        let bytes = text.as_bytes();
        let Some(&byte) = bytes.get(index) else {
            return;
        };
        match byte {
            b'\n' => {
                if self.non_space > line.non_space {
                    let text = text.get(line.start..index).unwrap_or_default();
                    self.add_line(text.strip_suffix('\r').unwrap_or(text));
                }
                *line = Line {
                    start: index + 1,
                    non_space: self.non_space,
                };
            }
            b'`' | b'$' => {
                self.non_space += 1;
                let run_starts = index == 0 || bytes.get(index - 1) != Some(&byte);
                if run_starts {
                    let run = run_len(bytes.get(index..).unwrap_or_default(), byte);
                    if byte == b'`' {
                        self.fences += run / 3;
                    } else {
                        self.latex += run / 2;
                    }
                }
            }
            b'\\' => {
                self.non_space += 1;
                let rest = bytes.get(index + 1..).unwrap_or_default();
                self.latex += usize::from(is_latex_command(rest));
            }
            // UTF-8 continuation bytes: their char was counted at its first byte.
            0x80..=0xBF => {}
            _ => {
                let c = text
                    .get(index..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                self.add_non_ascii(c);
            }
        }
    }

    #[inline(never)]
    fn add_non_ascii(&mut self, c: char) {
        if c.is_whitespace() {
            return;
        }
        self.non_space += 1;
        if OPERATORS.contains(&c) {
            self.operators += 1;
        } else if c.is_alphabetic() {
            self.letters += 1;
            if !is_latin(c) {
                self.non_latin_letters += 1;
            }
        }
    }

    /// The segment's last line, if it has no newline after it.
    fn end_segment(&mut self, text: &str, line: &Line) {
        if self.non_space > line.non_space {
            self.add_line(text.get(line.start..).unwrap_or_default());
        }
    }

    /// A line with some non-space char.
    fn add_line(&mut self, line: &str) {
        self.lines += 1;
        self.code_lines += usize::from(looks_like_code(line));
        self.bullet_lines += usize::from(is_bullet(line));
    }
}

/// Reads a segment once for everything that reads text: the character counts, the cue DFA and
/// `reader`. Runs of bytes that need nothing but the common case go to [`read_plain`]; a byte that
/// needs more (a special char, a match state, a DFA transition not computed yet) is taken here.
fn read_segment(
    text: &str,
    counts: &mut TextCounts,
    mut cues: Option<&mut CueScan>,
    reader: &mut impl TextReader,
) {
    let bytes = text.as_bytes();
    let mut state = cues.as_mut().and_then(|cues| cues.start(text));
    let mut line = Line {
        start: 0,
        non_space: counts.non_space,
    };
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let entry = PLAIN.get(usize::from(byte)).copied().unwrap_or(SPECIAL);
        if entry != SPECIAL && !state.is_some_and(|state| state.is_tagged()) {
            // No 16-bit lane of the table's sums can overflow before they are added up.
            let chunk = bytes.get(..bytes.len().min(index + usize::from(u16::MAX)));
            let chunk = chunk.unwrap_or_default();
            let run = match (state, cues.as_deref()) {
                (Some(current), Some(cues)) => {
                    read_plain(chunk, index, current, cues.computed(), reader)
                }
                _ => read_plain(chunk, index, LazyStateID::default(), NoDfa, reader),
            };
            counts.add_lanes(run.lanes);
            index = run.end;
            state = state.map(|_| run.state);
            if index == chunk.len() {
                continue;
            }
        }
        let Some(&byte) = bytes.get(index) else {
            break;
        };
        reader.byte(byte);
        if let (Some(current), Some(cues)) = (state, cues.as_deref_mut()) {
            let quick = if current.is_tagged() {
                None
            } else {
                cues.computed().quick_step(current, byte)
            };
            state = quick.or_else(|| cues.step(current, index, byte));
        }
        match PLAIN.get(usize::from(byte)).copied().unwrap_or(SPECIAL) {
            SPECIAL => counts.add_special(text, index, &mut line),
            entry => counts.add_lanes(entry),
        }
        index += 1;
    }
    counts.end_segment(text, &line);
    if let Some(cues) = cues {
        cues.end(state, bytes.len());
    }
    reader.segment_end();
}

/// Where [`read_plain`] stopped, the DFA state there and the table's sums of the bytes before.
struct Plain {
    end: usize,
    state: LazyStateID,
    lanes: u64,
}

/// The cue DFA as [`read_plain`] steps it: by transitions already computed, between states that
/// are neither match, dead nor quit states.
trait QuickStep: Copy {
    /// None when the transition needs [`CueScan::step`].
    fn quick_step(self, state: LazyStateID, byte: u8) -> Option<LazyStateID>;
}

#[derive(Clone, Copy)]
struct Computed<'c> {
    dfa: &'c DFA,
    cache: &'c dfa::Cache,
}

impl QuickStep for Computed<'_> {
    #[inline(always)]
    fn quick_step(self, state: LazyStateID, byte: u8) -> Option<LazyStateID> {
        let next = self.dfa.next_state_untagged(self.cache, state, byte);
        (!next.is_tagged()).then_some(next)
    }
}

/// No DFA to step: the cue set did not compile, its DFA gave up, or no match can follow.
#[derive(Clone, Copy)]
struct NoDfa;

impl QuickStep for NoDfa {
    #[inline(always)]
    fn quick_step(self, state: LazyStateID, _: u8) -> Option<LazyStateID> {
        Some(state)
    }
}

/// Reads `bytes` from `index` (`state` not tagged there) to the end or the first byte that needs
/// more than the common case: a byte [`PLAIN`] has an entry for, a quick DFA step, and `reader`.
/// It calls nothing and works on a local copy of `reader`, so the DFA state, the table's sums and
/// the reader's state stay in registers: a call anywhere in the loop (every SSE register is the
/// caller's to save) or stores through `shared` put them in memory, on the loop's critical path.
#[inline(never)]
fn read_plain<R: TextReader>(
    bytes: &[u8],
    mut index: usize,
    mut state: LazyStateID,
    dfa: impl QuickStep,
    shared: &mut R,
) -> Plain {
    let mut reader = *shared;
    let mut lanes = 0u64;
    while let Some(&byte) = bytes.get(index) {
        let entry = PLAIN.get(usize::from(byte)).copied().unwrap_or(SPECIAL);
        if entry == SPECIAL {
            break;
        }
        let Some(next) = dfa.quick_step(state, byte) else {
            break;
        };
        state = next;
        reader.byte(byte);
        lanes += entry;
        index += 1;
    }
    *shared = reader;
    Plain {
        end: index,
        state,
        lanes,
    }
}

/// Reads the scanned text in the same pass as the text features: the bytes of each segment, in
/// order (the model's n-grams are hashed so, without a pass of their own).
pub(crate) trait TextReader: Copy {
    fn byte(&mut self, byte: u8);
    fn segment_end(&mut self);
}

impl TextReader for () {
    fn byte(&mut self, _: u8) {}
    fn segment_end(&mut self) {}
}

impl Features {
    /// Computes the features of `request`; text features read at most `max_scan_bytes` of text.
    pub fn extract(request: &ParsedRequest, max_scan_bytes: usize) -> Features {
        Features::extract_reading(request, max_scan_bytes, &mut ())
    }

    /// [`Features::extract`], handing `reader` every byte the text features read as they read it.
    pub(crate) fn extract_reading(
        request: &ParsedRequest,
        max_scan_bytes: usize,
        reader: &mut impl TextReader,
    ) -> Features {
        let system_bytes: usize = request.system.iter().map(|text| text.len()).sum();
        let message_bytes: usize = request
            .messages
            .iter()
            .map(|message| message.text_bytes())
            .sum();
        let prompt_tokens = (system_bytes + message_bytes + request.structured_bytes) as f64 / 4.0;
        let last_user_bytes = request
            .last_user_message()
            .map_or(0, |message| message.text_bytes());

        let segments = scan::all_segments(request, max_scan_bytes);
        let mut counts = TextCounts::default();
        let set = CUES.as_ref();
        let mut caches = set.map(|set| set.caches.get());
        let mut cues = set
            .zip(caches.as_deref_mut())
            .map(|(set, caches)| CueScan::new(set, caches));
        for segment in &segments {
            read_segment(segment, &mut counts, cues.as_mut(), reader);
        }
        let seen = cues.map_or([false; CUE_COUNT], |cues| cues.finish(&segments));
        let cues = CueCounts::of(&seen);
        let last_user = scan::last_user_segments(request, max_scan_bytes);
        let questions: usize = last_user.iter().map(|text| text.matches('?').count()).sum();
        let sequence = cues.sequence == SEQUENCE_CUES.len();
        let reasoning = cues.reasoning + usize::from(sequence);

        Features {
            tokens: log_scale(prompt_tokens, 32768.0),
            turns: log_scale(request.user_turns().saturating_sub(1) as f64, 16.0),
            system_prompt: log_scale(system_bytes as f64 / 4.0, 8192.0),
            last_user: log_scale(last_user_bytes as f64 / 4.0, 8192.0),
            code_fences: ratio(counts.fences / 2, 2),
            code_lines: density(counts.code_lines, counts.lines, 1.0),
            latex: ratio(counts.latex, 4),
            math_terms: ratio(cues.math, 3),
            operators: density(counts.operators, counts.non_space, 0.1),
            digits: density(counts.digits, counts.non_space, 0.25),
            reasoning_cues: ratio(reasoning, 2),
            simple_task: ratio(cues.simple_task, 2),
            questions: ratio(questions.saturating_sub(1), 4),
            constraints: ratio(cues.constraint + counts.bullet_lines, 8),
            tools: log_scale(request.tools_defined as f64, 16.0),
            tool_depth: log_scale((request.tool_calls + request.tool_results) as f64, 16.0),
            images: log_scale(request.images as f64, 8.0),
            max_tokens: log_scale(request.max_output_tokens.unwrap_or(0.0), 32768.0),
            reasoning_effort: request.reasoning_effort.unwrap_or(0.0).clamp(0.0, 1.0),
            json_output: f64::from(u8::from(request.json_output)),
            non_latin: density(counts.non_latin_letters, counts.letters, 1.0),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod plain_table_tests {
    use super::*;

    #[test]
    fn the_byte_table_agrees_with_the_char_tests() {
        for byte in 0..=u8::MAX {
            let entry = PLAIN[usize::from(byte)];
            let c = char::from(byte);
            if !byte.is_ascii() || matches!(byte, b'\n' | b'`' | b'$' | b'\\') {
                assert_eq!(entry, SPECIAL, "{byte}");
                continue;
            }
            let non_space = !c.is_whitespace();
            let digit = non_space && c.is_ascii_digit();
            let operator = non_space && !digit && OPERATORS.contains(&c);
            let letter = non_space && !digit && !operator && c.is_alphabetic();
            let expected = u64::from(non_space) * NON_SPACE
                + u64::from(digit) * DIGIT
                + u64::from(operator) * OPERATOR
                + u64::from(letter) * LETTER;
            assert_eq!(entry, expected, "{byte}");
        }
    }
}
