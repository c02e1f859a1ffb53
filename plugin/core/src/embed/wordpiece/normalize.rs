//! Hugging Face's BertNormalizer (clean text, space around CJK ideographs, strip accents, lowercase)
//! and BertPreTokenizer (split on whitespace, isolate punctuation) as one pass over the text, words
//! handed out as normalized bytes.
//!
//! [`normalize`] is the normalizer: the same steps as Hugging Face's, in the same order, with the
//! same Unicode tables: `unicode_categories` (Unicode 9) for control, format, private-use,
//! nonspacing-mark and punctuation characters, `unicode-normalization-alignments` (Unicode 9) for
//! canonical decompositions and combining classes (NFD's reordering is done here: the crate's
//! iterator would link its compatibility tables too, 110 KB of wasm), and std for whitespace and
//! lowercase. It is only run where it must be: ASCII goes by 64-byte
//! blocks ([`super::ascii`]) or through a byte table, and most other chars are looked up one by one
//! ([`super::chars`]). Each step but NFD's canonical reordering is char by char, and that reordering
//! never crosses a starter: so a stretch of non-ASCII text can be normalized on its own as long as it
//! ends at an ASCII character that survives cleaning (every such character is a starter).

use super::ascii::pre_tokenize_blocks;
use super::chars::{kind_of, normalize_char, Char, Kind};
use super::table::{load, Key};
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::char::{canonical_combining_class, decompose_canonical};

/// WordPiece's `max_input_chars_per_word`: a longer word is one `[UNK]`.
pub(super) const MAX_WORD_CHARS: usize = 100;
const MAX_WORD_BYTES: usize = MAX_WORD_CHARS * 4;

/// What the pre-tokenizer hands on, in text order.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PreToken<'w> {
    /// A normalized word (or one punctuation character) of at most [`MAX_WORD_CHARS`] chars.
    Word(Key<'w>),
    /// A word of more than [`MAX_WORD_CHARS`] chars.
    Overlong,
    /// An added token matched in the raw text.
    Added(u32),
}

/// The class of an ASCII byte, or its lowercase form for a word byte.
const REMOVED: u8 = 0x80;
const SPACE: u8 = 0x81;
const PUNCT: u8 = 0x82;
/// [`ADDED_TOKEN_START`], punctuation unless an added token starts there.
const ADDED_START: u8 = 0x83;

const fn ascii_class(byte: u8) -> u8 {
    match byte {
        b'\t' | b'\n' | b'\r' | b' ' => SPACE,
        // NUL, and every other C0 control and DEL: cleaning removes them, even the ones std calls
        // whitespace (vertical tab, form feed), before whitespace is mapped to spaces.
        0..=0x1f | 0x7f => REMOVED,
        ADDED_TOKEN_START => ADDED_START,
        _ if byte.is_ascii_punctuation() => PUNCT,
        _ => byte.to_ascii_lowercase(),
    }
}

/// [`ascii_class`] of every ASCII byte.
const ASCII_CLASSES: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut byte = 0;
    while byte < 128 {
        table[byte] = ascii_class(byte as u8);
        byte += 1;
    }
    table
};

/// The first byte of every added token the pre-tokenizer splits off (BERT's all start with it).
pub(super) const ADDED_TOKEN_START: u8 = b'[';

/// The pre-tokenizer, with the added tokens (`[CLS]` and the like) it splits off first: they are
/// matched in the raw text, before normalization, the leftmost match first and, at one position, the
/// longest.
pub(super) struct PreTokenizer {
    /// Longest first.
    added: Vec<(Box<[u8]>, u32)>,
}

impl PreTokenizer {
    /// `added`: each token's text and id. A token that does not start with [`ADDED_TOKEN_START`]
    /// is never matched.
    pub(super) fn new(mut added: Vec<(Box<[u8]>, u32)>) -> PreTokenizer {
        added.retain(|(bytes, _)| bytes.first() == Some(&ADDED_TOKEN_START));
        added.sort_by_key(|(bytes, _)| std::cmp::Reverse(bytes.len()));
        PreTokenizer { added }
    }

    /// The id and length of an added token at the start of `text`.
    fn added_at(&self, text: &[u8]) -> Option<(u32, usize)> {
        self.added
            .iter()
            .find(|(bytes, _)| text.starts_with(bytes))
            .map(|(bytes, id)| (*id, bytes.len()))
    }

    /// The pre-tokens of `text`, in order: by blocks of ASCII while it can ([`ascii`]), byte by
    /// byte (and char by char past ASCII) where it cannot.
    pub(super) fn pre_tokenize(&self, text: &str, mut on_pre_token: impl FnMut(PreToken<'_>)) {
        let bytes = text.as_bytes();
        let mut word = Word::new();
        let mut at = 0;
        while at < bytes.len() {
            // Blocks only where ASCII goes on for a while: between the words of other scripts a
            // block would be read for a byte or two.
            if word.is_empty() && ascii_ahead(bytes, at) {
                at = pre_tokenize_blocks(bytes, at, |key| on_pre_token(PreToken::Word(key)));
            }
            at = self.step(text, at, &mut word, &mut on_pre_token);
        }
        word.end(&mut on_pre_token);
    }

    /// Reads what is at `at`: a stretch of non-ASCII text, an added token, or one ASCII byte (a
    /// whole word if one starts there). Returns where to go on.
    fn step(
        &self,
        text: &str,
        at: usize,
        word: &mut Word,
        on_pre_token: &mut impl FnMut(PreToken<'_>),
    ) -> usize {
        let bytes = text.as_bytes();
        let Some(&byte) = bytes.get(at) else {
            return at;
        };
        let Some(&class) = ASCII_CLASSES.get(byte as usize) else {
            let end = non_ascii_end(bytes, at);
            word.push_non_ascii(text.get(at..end).unwrap_or_default(), on_pre_token);
            return end;
        };
        match class {
            REMOVED => {}
            SPACE => word.end(on_pre_token),
            ADDED_START => {
                word.end(on_pre_token);
                match self.added_at(bytes.get(at..).unwrap_or_default()) {
                    Some((id, len)) => {
                        on_pre_token(PreToken::Added(id));
                        return at + len;
                    }
                    None => on_pre_token(PreToken::Word(Key::new(std::slice::from_ref(&byte)))),
                }
            }
            PUNCT => {
                word.end(on_pre_token);
                on_pre_token(PreToken::Word(Key::new(std::slice::from_ref(&byte))));
            }
            _ if word.is_empty() => return self.ascii_word(bytes, at, word, on_pre_token),
            lowercase => word.push_byte(lowercase),
        }
        at + 1
    }

    /// A word of ASCII letters and digits from `start`, handed on as a slice of the text
    /// (lowercased on the stack if need be). Returns where it ends. Should it go on past a non-ASCII
    /// or removed byte, its bytes are put in `word` instead.
    fn ascii_word(
        &self,
        bytes: &[u8],
        start: usize,
        word: &mut Word,
        on_pre_token: &mut impl FnMut(PreToken<'_>),
    ) -> usize {
        let end = bytes
            .iter()
            .skip(start)
            .position(|byte| !byte.is_ascii_alphanumeric())
            .map_or(bytes.len(), |len| start + len);
        let goes_on = bytes.get(end).is_some_and(|&byte| {
            ASCII_CLASSES
                .get(byte as usize)
                .is_none_or(|&class| class == REMOVED)
        });
        let text = bytes.get(start..end).unwrap_or_default();
        if goes_on {
            text.iter()
                .for_each(|byte| word.push_byte(byte.to_ascii_lowercase()));
        } else if text.len() > MAX_WORD_CHARS {
            on_pre_token(PreToken::Overlong);
        } else {
            let mut lowercase = [0u8; MAX_WORD_CHARS];
            let lowercase = lowercase.get_mut(..text.len()).unwrap_or_default();
            lowercase.copy_from_slice(text);
            lowercase.make_ascii_lowercase();
            on_pre_token(PreToken::Word(Key::new(lowercase)));
        }
        end
    }
}

/// Whether the 8 bytes from `at` (or all, if fewer are left) are ASCII.
#[inline]
fn ascii_ahead(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at..at + 8) {
        Some(eight) => load::<8>(eight, 0) & 0x8080_8080_8080_8080 == 0,
        None => bytes.get(at..).unwrap_or_default().is_ascii(),
    }
}

/// Where a stretch of non-ASCII text starting at `start` ends: at the next ASCII byte that cleaning
/// keeps (removed control bytes stay inside, so that NFD sees the marks around them side by side,
/// as it does after Hugging Face's cleaning).
fn non_ascii_end(bytes: &[u8], start: usize) -> usize {
    bytes
        .iter()
        .skip(start)
        .position(|&byte| byte.is_ascii() && ascii_class(byte) != REMOVED)
        .map_or(bytes.len(), |offset| start + offset)
}

/// BertNormalizer's output for `text`, char by char, to `out`: cleaned, CJK ideographs spaced
/// apart, NFD, nonspacing marks dropped, lowercased. `marks` holds the combining marks NFD puts in
/// order: the caller keeps it, so it allocates once at most, not per call.
pub(super) fn normalize(text: &str, marks: &mut Vec<(u8, char)>, mut out: impl FnMut(char)) {
    marks.clear();
    let mut emit = |c: char| {
        if !c.is_mark_nonspacing() {
            c.to_lowercase().for_each(&mut out);
        }
    };
    let mut decompose = |c: char, marks: &mut Vec<(u8, char)>| {
        decompose_canonical(c, |part| match canonical_combining_class(part) {
            0 => {
                release_marks(marks, &mut emit);
                emit(part);
            }
            class => marks.push((class, part)),
        })
    };
    for c in text.chars().filter(|&c| !is_removed(c)) {
        if c.is_whitespace() {
            decompose(' ', marks);
        } else if is_cjk_ideograph(c) {
            decompose(' ', marks);
            decompose(c, marks);
            decompose(' ', marks);
        } else {
            decompose(c, marks);
        }
    }
    release_marks(marks, &mut emit);
}

/// NFD's canonical reordering: a run of combining marks, sorted by class (stably), goes out before
/// the starter that ends it.
fn release_marks(marks: &mut Vec<(u8, char)>, emit: &mut impl FnMut(char)) {
    marks.sort_by_key(|&(class, _)| class);
    marks.drain(..).for_each(|(_, mark)| emit(mark));
}

/// [`normalize`], collected.
pub(super) fn normalized(text: &str) -> Vec<char> {
    let mut out = Vec::new();
    normalize(text, &mut Vec::new(), |c| out.push(c));
    out
}

/// Cleaning drops NUL, U+FFFD and every control, format and private-use character but tab, CR and
/// LF (which are whitespace).
pub(super) fn is_removed(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        '\0' | '\u{fffd}' => true,
        _ => c.is_other(),
    }
}

/// The CJK Unified Ideographs blocks BERT treats as Chinese (not kana, not hangul).
fn is_cjk_ideograph(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// BertPreTokenizer's punctuation: ASCII punctuation (symbols such as `$` and `+` included) and
/// Unicode punctuation (P*), but not other symbols.
pub(super) fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The word being read: its normalized bytes while it fits [`MAX_WORD_CHARS`], and its length in
/// chars. On the stack: a word costs no allocation.
struct Word {
    bytes: [u8; MAX_WORD_BYTES],
    len: usize,
    chars: usize,
    /// [`normalize`]'s room for combining marks.
    marks: Vec<(u8, char)>,
}

impl Word {
    fn new() -> Word {
        Word {
            bytes: [0; MAX_WORD_BYTES],
            len: 0,
            chars: 0,
            marks: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.chars == 0
    }

    #[inline]
    fn push_byte(&mut self, byte: u8) {
        if self.chars < MAX_WORD_CHARS {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
        self.chars += 1;
    }

    /// A stretch of non-ASCII text (and the removed control bytes in it), char by char: each
    /// looked up on its own ([`normalize_char`]) but those that must be normalized with their
    /// neighbours.
    fn push_non_ascii(&mut self, text: &str, on_pre_token: &mut impl FnMut(PreToken<'_>)) {
        let mut chars = text.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            let normalized_char = normalize_char(c);
            if normalized_char != Char::Contextual {
                for (c, kind) in normalized_char.chars() {
                    self.push(c, kind, on_pre_token);
                }
                continue;
            }
            let mut end = text.len();
            while let Some(&(next_start, next)) = chars.peek() {
                if normalize_char(next).ends_context() {
                    end = next_start;
                    break;
                }
                chars.next();
            }
            let mut marks = std::mem::take(&mut self.marks);
            normalize(text.get(start..end).unwrap_or_default(), &mut marks, |c| {
                self.push(c, kind_of(c), on_pre_token)
            });
            self.marks = marks;
        }
    }

    /// A normalized char: whitespace ends the word, punctuation is a word of its own.
    fn push(&mut self, c: char, kind: Kind, on_pre_token: &mut impl FnMut(PreToken<'_>)) {
        match kind {
            Kind::Space => self.end(on_pre_token),
            Kind::Alone => {
                self.end(on_pre_token);
                let mut utf8 = [0; 4];
                on_pre_token(PreToken::Word(Key::new(
                    c.encode_utf8(&mut utf8).as_bytes(),
                )));
            }
            Kind::Word => {
                if self.chars < MAX_WORD_CHARS {
                    let end = self.len + c.len_utf8();
                    if let Some(slot) = self.bytes.get_mut(self.len..end) {
                        c.encode_utf8(slot);
                        self.len = end;
                    }
                }
                self.chars += 1;
            }
        }
    }

    #[inline]
    fn end(&mut self, on_pre_token: &mut impl FnMut(PreToken<'_>)) {
        if self.chars == 0 {
            return;
        }
        if self.chars > MAX_WORD_CHARS {
            on_pre_token(PreToken::Overlong);
        } else {
            // The buffer goes on past the word: its first 8 bytes can always be read.
            let word = self.bytes.get(..self.len).unwrap_or_default();
            on_pre_token(PreToken::Word(Key::from_eight(
                word,
                load::<8>(&self.bytes, 0),
            )));
        }
        self.len = 0;
        self.chars = 0;
    }
}
