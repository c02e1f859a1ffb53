//! Feature hashing of the scanned text: one pass over each segment's bytes, no allocation.
//!
//! Every byte is normalised first: ASCII letters lowercased, ASCII digits folded to `0` (so "37" and
//! "41" share their n-grams), other bytes kept. Three kinds of n-grams are hashed:
//!
//! - word unigrams: a word is a maximal run of ASCII letters, digits, `_` or non-ASCII bytes (so a
//!   word of any script stays whole); hashed with 64-bit FNV-1a over its normalised bytes;
//! - word bigrams: two consecutive words of one segment (punctuation between them ignored);
//! - character 4-grams: every 4 consecutive bytes of the segment with whitespace runs collapsed to one
//!   space and one space added before and after it (so " the" marks a word start).
//!
//! Word hashes are finished with murmur3's fmix64 over the kind's own seed; a 4-gram (its 4 bytes as a
//! big-endian u32) is mixed more cheaply, since it is hashed at every byte: xor its seed, multiply by
//! an odd 64-bit constant, xor the high half into the low half. A bucket is the low bits of the hash:
//! `hash & (buckets - 1)`. Everything is fixed-width integer arithmetic: the same buckets on
//! every platform (no `RandomState`). Changing any of this changes the buckets a trained model refers
//! to: bump [`crate::FEATURE_SET`].

/// Number of n-gram kinds; each is normalised on its own (see [`Kind`]).
pub(crate) const KINDS: usize = 3;

/// The n-gram kinds, as indices into per-kind sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Word = 0,
    WordPair = 1,
    Chars = 2,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const WORD_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const PAIR_SEED: u64 = 0xc2b2_ae3d_27d4_eb4f;
const CHARS_SEED: u64 = 0x1656_67b1_9e37_79f9;
const CHAR_GRAM: u32 = 4;
const CHARS_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// murmur3's 64-bit finaliser: every input bit reaches every output bit.
fn fmix64(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

fn normalise(byte: u8) -> u8 {
    if byte.is_ascii_digit() {
        b'0'
    } else {
        byte.to_ascii_lowercase()
    }
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// The words of one segment; emits unigrams and bigrams.
struct Words {
    hash: u64,
    in_word: bool,
    previous: Option<u64>,
}

impl Words {
    fn new() -> Words {
        Words {
            hash: FNV_OFFSET,
            in_word: false,
            previous: None,
        }
    }

    #[inline(always)]
    fn push(&mut self, byte: u8, normalised: u8, emit: &mut impl FnMut(Kind, u64)) {
        if is_word_byte(byte) {
            self.hash = (self.hash ^ u64::from(normalised)).wrapping_mul(FNV_PRIME);
            self.in_word = true;
        } else {
            self.end_word(emit);
        }
    }

    #[inline(always)]
    fn end_word(&mut self, emit: &mut impl FnMut(Kind, u64)) {
        if !self.in_word {
            return;
        }
        let word = self.hash;
        emit(Kind::Word, fmix64(word ^ WORD_SEED));
        if let Some(previous) = self.previous {
            emit(Kind::WordPair, fmix64(fmix64(previous ^ PAIR_SEED) ^ word));
        }
        self.previous = Some(word);
        self.hash = FNV_OFFSET;
        self.in_word = false;
    }
}

/// The character 4-grams of one segment, whitespace collapsed, framed by spaces.
struct Chars {
    window: u32,
    filled: u32,
    after_space: bool,
}

impl Chars {
    fn new() -> Chars {
        Chars {
            window: u32::from(b' '),
            filled: 1,
            after_space: true,
        }
    }

    #[inline(always)]
    fn push(&mut self, byte: u8, normalised: u8, emit: &mut impl FnMut(Kind, u64)) {
        let byte = if byte.is_ascii_whitespace() {
            if self.after_space {
                return;
            }
            self.after_space = true;
            b' '
        } else {
            self.after_space = false;
            normalised
        };
        self.window = (self.window << 8) | u32::from(byte);
        self.filled += 1;
        if self.filled >= CHAR_GRAM {
            let hash = (u64::from(self.window) ^ CHARS_SEED).wrapping_mul(CHARS_MULTIPLIER);
            emit(Kind::Chars, hash ^ (hash >> 32));
        }
    }

    fn finish(&mut self, emit: &mut impl FnMut(Kind, u64)) {
        if !self.after_space {
            self.push(b' ', b' ', emit);
        }
    }
}

/// Calls `emit(kind, hash)` for every n-gram of `segments`, segment by segment (n-grams never span two
/// segments), without allocating.
#[inline]
pub(crate) fn visit<'t>(
    segments: impl IntoIterator<Item = &'t str>,
    mut emit: impl FnMut(Kind, u64),
) {
    for segment in segments {
        let mut words = Words::new();
        let mut chars = Chars::new();
        for &byte in segment.as_bytes() {
            let normalised = normalise(byte);
            words.push(byte, normalised, &mut emit);
            chars.push(byte, normalised, &mut emit);
        }
        words.end_word(&mut emit);
        chars.finish(&mut emit);
    }
}

/// The bucket of `hash` among `buckets` (a power of two).
#[inline(always)]
pub(crate) fn bucket(hash: u64, buckets: u32) -> u32 {
    (hash as u32) & buckets.wrapping_sub(1)
}

/// Per-kind scale of one n-gram's count: `1 / sqrt(n-grams of that kind in the request)`. The
/// n-grams' part of the logit is then a term-frequency dot product normalised as L2 would (exactly so
/// when no n-gram repeats) whatever the text's length, and computable in one streaming pass.
pub(crate) fn scales(counts: &[u64; KINDS]) -> [f64; KINDS] {
    counts.map(|count| {
        if count == 0 {
            0.0
        } else {
            1.0 / (count as f64).sqrt()
        }
    })
}
