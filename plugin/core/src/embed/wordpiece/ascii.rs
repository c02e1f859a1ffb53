//! The fast path of the pre-tokenizer: ASCII text read 64 bytes at a time. Each block is classified
//! into bitmasks (letters and digits, punctuation, and the bytes this path leaves to the byte path)
//! eight bytes a step without a branch, and lowercased on the stack; its words and punctuation are
//! then read off the masks with bit arithmetic. The branches per byte and per word of a byte loop
//! mispredict at every word end in real text; here a word costs a few integer operations.

use super::normalize::ADDED_TOKEN_START;
use super::table::{load, Key};

const BLOCK: usize = 64;
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// One block of text, classified: bit `i` of each mask is about byte `i`.
struct Block {
    /// The bytes, lowercased; past the text's end spaces; then 8 more bytes, so that 8 bytes can be
    /// read from any position.
    lowercase: [u8; BLOCK + 8],
    /// ASCII letters and digits: word bytes.
    alnum: u64,
    /// ASCII punctuation: each a word of its own.
    punct: u64,
    /// Bytes this path does not take: non-ASCII bytes, controls that cleaning removes, and
    /// [`ADDED_TOKEN_START`].
    other: u64,
}

impl Block {
    fn read(text: &[u8]) -> Block {
        let mut block = Block {
            lowercase: [b' '; BLOCK + 8],
            alnum: 0,
            punct: 0,
            other: 0,
        };
        for step in 0..BLOCK / 8 {
            let at = step * 8;
            let chunk = match text.get(at..at + 8) {
                Some(chunk) => load::<8>(chunk, 0),
                None => {
                    let mut padded = [b' '; 8];
                    let tail = text.get(at..).unwrap_or_default();
                    if let Some(head) = padded.get_mut(..tail.len()) {
                        head.copy_from_slice(tail);
                    }
                    u64::from_le_bytes(padded)
                }
            };
            let classes = Classes::of(chunk);
            if let Some(lowercase) = block.lowercase.get_mut(at..at + 8) {
                lowercase.copy_from_slice(&(chunk | (classes.uppercase >> 2)).to_le_bytes());
            }
            block.alnum |= movemask(classes.alnum) << at;
            block.punct |= movemask(classes.punct) << at;
            block.other |= movemask(classes.other) << at;
        }
        block
    }
}

/// The classes of 8 bytes: the high bit of each byte of a mask is set where the byte is in it.
struct Classes {
    uppercase: u64,
    alnum: u64,
    punct: u64,
    other: u64,
}

impl Classes {
    #[inline]
    fn of(chunk: u64) -> Classes {
        let ascii = !chunk & HIGH_BITS;
        // High bits cleared, so the sums below never carry into the next byte.
        let seven_bits = chunk & !HIGH_BITS;
        // Letters of either case, with bit 5 set; the uppercase ones have it clear.
        let letters = in_range(seven_bits | (LOW_BITS * 0x20), b'a', b'z') & ascii;
        let uppercase = letters & !(seven_bits << 2);
        let alnum = letters | (in_range(seven_bits, b'0', b'9') & ascii);
        // Below 0x20, or 0x7f.
        let control = (!(seven_bits + LOW_BITS * 0x60) | (seven_bits + LOW_BITS)) & ascii;
        let control_whitespace =
            (in_range(seven_bits, b'\t', b'\n') | equal(seven_bits, b'\r')) & ascii;
        let space = equal(seven_bits, b' ') & ascii;
        let added = equal(seven_bits, ADDED_TOKEN_START) & ascii;
        Classes {
            uppercase,
            alnum,
            punct: ascii & !(alnum | control | space | added),
            other: (!ascii & HIGH_BITS) | (control & !control_whitespace) | added,
        }
    }
}

/// The high bit of each byte (all below 0x80) that is `byte`.
#[inline]
fn equal(seven_bits: u64, byte: u8) -> u64 {
    !((seven_bits ^ (LOW_BITS * u64::from(byte))) + LOW_BITS * 0x7f) & HIGH_BITS
}

/// The high bit of each byte (all below 0x80) that lies in `low..=high`.
#[inline]
fn in_range(seven_bits: u64, low: u8, high: u8) -> u64 {
    let at_least_low = seven_bits + LOW_BITS * u64::from(0x80 - low);
    let above_high = seven_bits + LOW_BITS * u64::from(0x7f - high);
    at_least_low & !above_high & HIGH_BITS
}

/// The high bits of the 8 bytes of `mask` gathered into its low 8 bits, byte `i` to bit `i`.
#[inline]
fn movemask(mask: u64) -> u64 {
    // The multiplier moves the bit of byte i (at 8i) to 56 + i; no two partial products meet.
    ((mask >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Pre-tokens of `text` from `start`, block by block, handed to `on_word` (each a lowercase ASCII
/// word or one punctuation byte). Returns where the byte path must take over: at a byte of
/// [`Block::other`], at a word that reaches one (it may go on past it), at a word of 64 bytes or
/// more, or at the end. `start` must not be inside a word.
#[inline]
pub(super) fn pre_tokenize_blocks(
    text: &[u8],
    mut start: usize,
    mut on_word: impl FnMut(Key<'_>),
) -> usize {
    while let Some(rest) = text.get(start..).filter(|rest| !rest.is_empty()) {
        let block = Block::read(rest);
        let stop = block.other.trailing_zeros();
        let before_stop = u64::MAX.checked_shr(64 - stop).unwrap_or(0);
        let word_starts = block.alnum & !(block.alnum << 1);
        let mut starts = (word_starts | block.punct) & before_stop;
        let ends = !block.alnum;
        while starts != 0 {
            let at = starts.trailing_zeros();
            // A word runs to the next byte that is not a word byte; punctuation is one byte.
            let len = (ends >> at).trailing_zeros().max(1);
            let end = at + len;
            if end >= stop {
                // A word reaching the block's end or an `other` byte may go on past it.
                if stop == BLOCK as u32 && at > 0 {
                    start += at as usize;
                    break;
                }
                return start + at as usize;
            }
            let lowercase = &block.lowercase;
            let word = lowercase.get(at as usize..end as usize).unwrap_or_default();
            on_word(Key::from_eight(word, load::<8>(lowercase, at as usize)));
            starts &= starts - 1;
        }
        if starts == 0 {
            if stop < BLOCK as u32 {
                return start + stop as usize;
            }
            start += BLOCK;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movemask_gathers_each_byte_high_bit() {
        for bits in 0u64..256 {
            let spread = (0..8).fold(0u64, |mask, byte| {
                mask | ((bits >> byte) & 1) << (8 * byte + 7)
            });
            assert_eq!(movemask(spread), bits, "{bits:08b}");
        }
    }
}
