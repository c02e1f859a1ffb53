//! BertNormalizer and BertPreTokenizer one non-ASCII char at a time, without running
//! [`super::normalize::normalize`] per char (a dozen binary searches in the Unicode tables, about
//! 70 ns a char): CJK ideographs and Hangul syllables are worked out directly, and the blocks
//! prompts mostly use (Latin, Greek, Cyrillic, Hebrew, Arabic, Indic scripts, Thai, punctuation and
//! symbols, kana, fullwidth forms, emoji) are looked up in a table that function fills once, on
//! first use (about 1 ms).
//!
//! A char's result depends on its neighbours only through NFD's canonical reordering, which sorts
//! runs of non-starters (combining marks) and never moves one across a starter. Nonspacing marks are
//! dropped after it, so only kept non-starters can come out in another order: a char whose
//! decomposition has one is [`Char::Contextual`] and is normalized with its neighbours, up to the
//! next char that starts with a starter.

use super::normalize::{is_punctuation, is_removed, normalized};
use std::sync::LazyLock;
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::char::{canonical_combining_class, decompose_canonical};

/// How a normalized char takes part in pre-tokenization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Part of the current word.
    Word,
    /// Whitespace: ends the word.
    Space,
    /// A word of its own: punctuation, or a CJK ideograph (BERT puts spaces around those).
    Alone,
}

/// What one char becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Char {
    /// Up to 3 normalized chars, whatever surrounds it. `starts_with_starter`: its decomposition
    /// starts with a starter, so no reordering reaches across it.
    Fixed {
        chars: [char; 3],
        kinds: [Kind; 3],
        len: u8,
        starts_with_starter: bool,
    },
    /// Normalized with its neighbours (see the module doc), or not in the table.
    Contextual,
}

impl Char {
    /// The normalized chars and how each takes part in pre-tokenization.
    pub(super) fn chars(&self) -> impl Iterator<Item = (char, Kind)> + '_ {
        let (chars, kinds, len): (&[char], &[Kind], u8) = match self {
            Char::Fixed {
                chars, kinds, len, ..
            } => (chars, kinds, *len),
            Char::Contextual => (&[], &[], 0),
        };
        chars
            .iter()
            .copied()
            .zip(kinds.iter().copied())
            .take(len as usize)
    }

    /// Whether a run of contextual chars ends before this one.
    pub(super) fn ends_context(&self) -> bool {
        matches!(
            self,
            Char::Fixed {
                starts_with_starter: true,
                ..
            }
        )
    }

    fn one(c: char, kind: Kind) -> Char {
        Char::Fixed {
            chars: [c; 3],
            kinds: [kind; 3],
            len: 1,
            starts_with_starter: true,
        }
    }
}

/// What `c` becomes, on its own.
#[inline]
pub(super) fn normalize_char(c: char) -> Char {
    let code = c as u32;
    match code {
        // CJK Unified Ideographs and extension A: no decomposition, no case, spaced apart.
        0x4E00..=0x9FFF | 0x3400..=0x4DBF => Char::one(c, Kind::Alone),
        HANGUL_FIRST..=HANGUL_LAST => hangul_jamo(code),
        _ => TABLE.get(code),
    }
}

const HANGUL_FIRST: u32 = 0xAC00;
const HANGUL_LAST: u32 = 0xD7A3;

/// A Hangul syllable's NFD, by the Unicode algorithm: two or three jamo, letters without case.
fn hangul_jamo(code: u32) -> Char {
    const LEADING: u32 = 0x1100;
    const VOWEL: u32 = 0x1161;
    const TRAILING: u32 = 0x11A7;
    const TRAILING_COUNT: u32 = 28;
    const PER_LEADING: u32 = 21 * TRAILING_COUNT;
    let index = code - HANGUL_FIRST;
    let jamo = |code: u32| char::from_u32(code).unwrap_or(' ');
    let trailing = index % TRAILING_COUNT;
    Char::Fixed {
        chars: [
            jamo(LEADING + index / PER_LEADING),
            jamo(VOWEL + index % PER_LEADING / TRAILING_COUNT),
            jamo(TRAILING + trailing),
        ],
        kinds: [Kind::Word; 3],
        len: if trailing == 0 { 2 } else { 3 },
        starts_with_starter: true,
    }
}

/// The blocks the table covers.
const TABLE_RANGES: [(u32, u32); 8] = [
    // Latin-1 Supplement to Cyrillic Supplement (Latin Extended, IPA, combining marks, Greek).
    (0x0080, 0x0530),
    // Hebrew, Arabic.
    (0x0590, 0x0700),
    // Devanagari to Thai.
    (0x0900, 0x0E80),
    // Latin Extended Additional, Greek Extended.
    (0x1E00, 0x2000),
    // General Punctuation to Supplemental Arrows-B, Miscellaneous Mathematical Symbols-B.
    (0x2000, 0x2C00),
    // CJK Symbols and Punctuation, Hiragana, Katakana.
    (0x3000, 0x3100),
    // Halfwidth and Fullwidth Forms.
    (0xFF00, 0xFFF0),
    // Emoji and pictographs.
    (0x1F300, 0x1FB00),
];

static TABLE: LazyLock<CharTable> = LazyLock::new(CharTable::build);

/// [`Char`] of every char of [`TABLE_RANGES`], in range order.
struct CharTable {
    chars: Box<[Char]>,
}

impl CharTable {
    fn build() -> CharTable {
        let chars = TABLE_RANGES
            .iter()
            .flat_map(|&(start, end)| start..end)
            .map(|code| char::from_u32(code).map_or(Char::Contextual, normalize_alone))
            .collect();
        CharTable { chars }
    }

    #[inline]
    fn get(&self, code: u32) -> Char {
        let mut offset = 0;
        for &(start, end) in &TABLE_RANGES {
            if code < start {
                break;
            }
            if code < end {
                return self
                    .chars
                    .get(offset + (code - start) as usize)
                    .copied()
                    .unwrap_or(Char::Contextual);
            }
            offset += (end - start) as usize;
        }
        Char::Contextual
    }
}

/// How many chars a freshly built table holds (for timing the build).
#[cfg(test)]
pub(super) fn build_table() -> usize {
    CharTable::build().chars.len()
}

/// What the whole pipeline makes of `c` alone, and whether that holds whatever surrounds it.
fn normalize_alone(c: char) -> Char {
    if is_removed(c) {
        // Gone before NFD: marks on both sides of it meet, so it does not end a contextual run.
        return Char::Fixed {
            chars: [' '; 3],
            kinds: [Kind::Space; 3],
            len: 0,
            starts_with_starter: false,
        };
    }
    let mut decomposition = Vec::new();
    decompose_canonical(c, |part| decomposition.push(part));
    let kept_non_starter = decomposition
        .iter()
        .any(|&part| canonical_combining_class(part) != 0 && !part.is_mark_nonspacing());
    let mut utf8 = [0; 4];
    let output = normalized(c.encode_utf8(&mut utf8));
    if kept_non_starter || output.len() > 3 {
        return Char::Contextual;
    }
    let mut chars = [' '; 3];
    let mut kinds = [Kind::Space; 3];
    for ((char_slot, kind_slot), &out) in chars.iter_mut().zip(&mut kinds).zip(&output) {
        *char_slot = out;
        *kind_slot = kind_of(out);
    }
    Char::Fixed {
        chars,
        kinds,
        len: output.len() as u8,
        starts_with_starter: decomposition
            .first()
            .is_some_and(|&first| canonical_combining_class(first) == 0),
    }
}

/// How a normalized char takes part in pre-tokenization.
pub(super) fn kind_of(c: char) -> Kind {
    if c.is_whitespace() {
        Kind::Space
    } else if is_punctuation(c) {
        Kind::Alone
    } else {
        Kind::Word
    }
}
