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

const fn normalise(byte: u8) -> u8 {
    if byte.is_ascii_digit() {
        b'0'
    } else {
        byte.to_ascii_lowercase()
    }
}

const fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// Per byte: its normalised value in the low 8 bits, [`WORD`] and [`SPACE`] flags above.
const BYTES: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut entry = normalise(byte as u8) as u16;
        if is_word_byte(byte as u8) {
            entry |= WORD;
        }
        if (byte as u8).is_ascii_whitespace() {
            entry |= SPACE;
        }
        table[byte] = entry;
        byte += 1;
    }
    table
};
const WORD: u16 = 1 << 8;
const SPACE: u16 = 1 << 9;

/// Calls `emit(kind, hash)` for every n-gram of `segments`, segment by segment (n-grams never span two
/// segments), without allocating.
#[inline]
pub(crate) fn visit<'t>(
    segments: impl IntoIterator<Item = &'t str>,
    mut emit: impl FnMut(Kind, u64),
) {
    for segment in segments {
        let mut hasher = SegmentHasher::new();
        for &byte in segment.as_bytes() {
            hasher.byte(byte, &mut emit);
        }
        hasher.finish(&mut emit);
    }
}

/// The n-grams of one segment, fed a byte at a time: what [`visit`] does per segment, for a caller
/// that reads the bytes in a pass of its own.
#[derive(Clone, Copy)]
pub(crate) struct SegmentHasher {
    /// The running FNV-1a hash of the current word.
    hash: u64,
    in_word: bool,
    previous: Option<u64>,
    /// The last 4 bytes pushed, the space before the first one included, and how many. The last
    /// one is a space exactly when a whitespace run has begun: no other byte normalises to it.
    window: u32,
    filled: u32,
}

impl SegmentHasher {
    pub(crate) fn new() -> SegmentHasher {
        SegmentHasher {
            hash: FNV_OFFSET,
            in_word: false,
            previous: None,
            window: u32::from(b' '),
            filled: 1,
        }
    }

    #[inline(always)]
    pub(crate) fn byte(&mut self, byte: u8, emit: &mut impl FnMut(Kind, u64)) {
        let entry = BYTES.get(usize::from(byte)).copied().unwrap_or(0);
        let normalised = entry as u8;
        if entry & WORD != 0 {
            self.hash = (self.hash ^ u64::from(normalised)).wrapping_mul(FNV_PRIME);
            self.in_word = true;
        } else if self.in_word {
            end_word(self.hash, &mut self.previous, emit);
            self.hash = FNV_OFFSET;
            self.in_word = false;
        }
        let pushed = if entry & SPACE != 0 {
            if self.after_space() {
                return;
            }
            b' '
        } else {
            normalised
        };
        self.push_char(pushed, emit);
    }

    /// Ends the segment: its last word, and the space after it. Returns how many character 4-grams
    /// the segment had.
    #[inline(always)]
    pub(crate) fn finish(mut self, emit: &mut impl FnMut(Kind, u64)) -> u64 {
        if self.in_word {
            end_word(self.hash, &mut self.previous, emit);
        }
        if !self.after_space() {
            self.push_char(b' ', emit);
        }
        u64::from(self.filled.saturating_sub(CHAR_GRAM - 1))
    }

    fn after_space(&self) -> bool {
        self.window as u8 == b' '
    }

    #[inline(always)]
    fn push_char(&mut self, pushed: u8, emit: &mut impl FnMut(Kind, u64)) {
        self.window = (self.window << 8) | u32::from(pushed);
        self.filled += 1;
        if self.filled >= CHAR_GRAM {
            emit(Kind::Chars, chars_hash(self.window));
        }
    }
}

/// Emits a finished word's unigram and, after the segment's first word, its bigram.
#[inline(always)]
fn end_word(hash: u64, previous: &mut Option<u64>, emit: &mut impl FnMut(Kind, u64)) {
    emit(Kind::Word, fmix64(hash ^ WORD_SEED));
    if let Some(previous) = *previous {
        emit(Kind::WordPair, fmix64(fmix64(previous ^ PAIR_SEED) ^ hash));
    }
    *previous = Some(hash);
}

#[inline(always)]
fn chars_hash(window: u32) -> u64 {
    let hash = (u64::from(window) ^ CHARS_SEED).wrapping_mul(CHARS_MULTIPLIER);
    hash ^ (hash >> 32)
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
