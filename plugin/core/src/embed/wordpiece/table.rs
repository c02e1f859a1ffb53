//! A map from token bytes to ids, built once per vocabulary: open addressing with linear probing
//! and a fast non-cryptographic hash (FxHash's rotate-xor-multiply, eight bytes a step). A slot
//! holds the id, a tag (hash bits and the key's length) and the key's first 8 bytes: most tokens are
//! no longer, so a lookup compares two integers and reads nothing else. A longer key is compared in
//! full with its token, a span of the vocabulary text, less `skip` leading bytes (2 for the `##` of
//! continuation pieces).

const EMPTY: u32 = u32::MAX;
const FX_SEED: u64 = 0x517c_c1b7_2722_0a95;

/// Slots per entry, at least: at most half full, so a miss ends after a probe or two.
const SLOTS_PER_ENTRY: usize = 2;

/// Filter bits per entry: an absent key passes the filter with a chance of about 1 in 8.
const FILTER_BITS_PER_ENTRY: usize = 8;

/// Keys up to this many bytes are held whole in their slot.
const INLINE: usize = 8;

#[derive(Clone, Copy)]
struct Slot {
    /// The key's first [`INLINE`] bytes, zero-padded, little-endian.
    prefix: u64,
    tag: u32,
    id: u32,
}

/// A key to look up: its bytes, and its first [`INLINE`] bytes as an integer (zero-padded,
/// little-endian), which the pre-tokenizer mostly has at hand already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Key<'k> {
    pub(super) bytes: &'k [u8],
    prefix: u64,
}

impl<'k> Key<'k> {
    pub(super) fn new(bytes: &'k [u8]) -> Key<'k> {
        Key {
            bytes,
            prefix: prefix(bytes),
        }
    }

    /// Its first 8 bytes, zero-padded, little-endian.
    pub(super) fn prefix(&self) -> u64 {
        self.prefix
    }

    /// The key `bytes`, given the 8 bytes (little-endian) read from where it starts: its own and,
    /// past its end, anything.
    #[inline]
    pub(super) fn from_eight(bytes: &'k [u8], eight: u64) -> Key<'k> {
        let mask = match bytes.len() {
            len @ 0..INLINE => (1u64 << (8 * len)) - 1,
            _ => u64::MAX,
        };
        Key {
            bytes,
            prefix: eight & mask,
        }
    }
}

/// Byte range of each token in the vocabulary text, by id.
#[derive(Clone, Copy)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) end: u32,
}

pub(super) struct TokenTable {
    slots: Box<[Slot]>,
    /// Right shift that leaves the top bits of a hash: a slot index.
    shift: u32,
    mask: usize,
    skip: usize,
    /// The longest key, in bytes: nothing longer is looked up.
    longest: usize,
    /// One bit per filter hash, set for every key: see [`TokenTable::get_rare`].
    filter: Box<[u64]>,
    filter_shift: u32,
}

impl TokenTable {
    /// The table of the given ids, each keyed by its token less `skip` leading bytes.
    pub(super) fn build(
        ids: &[u32],
        skip: usize,
        text: &str,
        spans: &[Span],
    ) -> Result<TokenTable, String> {
        let capacity = (ids.len() * SLOTS_PER_ENTRY).next_power_of_two().max(16);
        let bits = capacity.trailing_zeros();
        let filter_bits = (ids.len() * FILTER_BITS_PER_ENTRY)
            .next_power_of_two()
            .max(64);
        let mut table = TokenTable {
            slots: vec![
                Slot {
                    prefix: 0,
                    tag: 0,
                    id: EMPTY
                };
                capacity
            ]
            .into_boxed_slice(),
            shift: u64::BITS - bits,
            mask: capacity - 1,
            skip,
            longest: 0,
            filter: vec![0; filter_bits / 64].into_boxed_slice(),
            filter_shift: u64::BITS - filter_bits.trailing_zeros(),
        };
        for &id in ids {
            let key = key_of(id, skip, text, spans);
            if let Some(existing) = table.get(Key::new(key), text, spans) {
                return Err(format!(
                    "token {:?} is listed twice (ids {existing} and {id})",
                    String::from_utf8_lossy(key)
                ));
            }
            table.insert(key, id);
        }
        Ok(table)
    }

    /// A table with no key.
    pub(super) fn empty() -> TokenTable {
        TokenTable {
            slots: Box::new([]),
            shift: 0,
            mask: 0,
            skip: 0,
            longest: 0,
            filter: Box::new([]),
            filter_shift: 0,
        }
    }

    fn insert(&mut self, key: &[u8], id: u32) {
        let prefix = prefix(key);
        let hash = hash(key, prefix);
        let mut index = self.home(hash);
        while let Some(slot) = self.slots.get_mut(index) {
            if slot.id == EMPTY {
                *slot = Slot {
                    prefix,
                    tag: tag(hash, key.len()),
                    id,
                };
                self.longest = self.longest.max(key.len());
                let (word, bit) = self.filter_bit(hash);
                if let Some(word) = self.filter.get_mut(word) {
                    *word |= bit;
                }
                return;
            }
            index = (index + 1) & self.mask;
        }
    }

    /// The longest key, in bytes.
    pub(super) fn longest(&self) -> usize {
        self.longest
    }

    #[inline]
    pub(super) fn get(&self, key: Key<'_>, text: &str, spans: &[Span]) -> Option<u32> {
        let Key { bytes: key, prefix } = key;
        if key.len() > self.longest {
            return None;
        }
        self.probe(key, prefix, hash(key, prefix), text, spans)
    }

    /// [`TokenTable::get`] for keys that are mostly absent, as the pieces a longest match tries:
    /// the filter, small enough to stay in the L1 cache, turns away all but about 1 in 8 absent
    /// keys before they cost a probe of the table, which would mostly miss the cache.
    #[inline]
    pub(super) fn get_rare(&self, key: Key<'_>, text: &str, spans: &[Span]) -> Option<u32> {
        let Key { bytes: key, prefix } = key;
        if key.len() > self.longest {
            return None;
        }
        let hash = hash(key, prefix);
        let (word, bit) = self.filter_bit(hash);
        if self.filter.get(word).is_none_or(|word| word & bit == 0) {
            return None;
        }
        self.probe(key, prefix, hash, text, spans)
    }

    /// The filter word and bit of a hash: from bits mixed again, since the filter is indexed by
    /// other bits than the slots are.
    #[inline]
    fn filter_bit(&self, hash: u64) -> (usize, u64) {
        let mixed = (hash ^ hash >> 29).wrapping_mul(FX_SEED);
        let index = mixed.checked_shr(self.filter_shift).unwrap_or(0);
        ((index / 64) as usize, 1 << (index % 64))
    }

    #[inline]
    fn probe(&self, key: &[u8], prefix: u64, hash: u64, text: &str, spans: &[Span]) -> Option<u32> {
        let tag = tag(hash, key.len());
        let mut index = self.home(hash);
        // The table is at most half full, so an empty slot ends every probe sequence.
        loop {
            let slot = self.slots.get(index)?;
            if slot.id == EMPTY {
                return None;
            }
            if slot.tag == tag
                && slot.prefix == prefix
                && (key.len() <= INLINE || key_of(slot.id, self.skip, text, spans) == key)
            {
                return Some(slot.id);
            }
            index = (index + 1) & self.mask;
        }
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }
}

fn key_of<'v>(id: u32, skip: usize, text: &'v str, spans: &[Span]) -> &'v [u8] {
    spans
        .get(id as usize)
        .and_then(|span| {
            let start = span.start as usize + skip;
            text.as_bytes().get(start..span.end as usize)
        })
        .unwrap_or_default()
}

/// Hash bits, and the key's length in the low byte: with [`prefix`], a key of at most [`INLINE`]
/// bytes is matched without reading it.
#[inline]
fn tag(hash: u64, len: usize) -> u32 {
    ((hash >> 24) as u32 & !0xff) | (len.min(0xff) as u32)
}

/// The key's first [`INLINE`] bytes, zero-padded, little-endian. Without a variable-length copy
/// (a call to memcpy): two loads that may overlap, their bytes being the same where they do.
#[inline]
fn prefix(key: &[u8]) -> u64 {
    let len = key.len();
    match len {
        0 => 0,
        1 => load::<1>(key, 0),
        2 => load::<2>(key, 0),
        3 => load::<2>(key, 0) | load::<1>(key, 2) << 16,
        4..INLINE => load::<4>(key, 0) | load::<4>(key, len - 4) << (8 * (len - 4)),
        _ => load::<INLINE>(key, 0),
    }
}

/// `N` bytes of `bytes` from `at`, little-endian (0 past the end, which callers never ask for).
#[inline]
pub(super) fn load<const N: usize>(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; INLINE];
    if let (Some(to), Some(from)) = (word.get_mut(..N), bytes.get(at..at + N)) {
        to.copy_from_slice(from);
    }
    u64::from_le_bytes(word)
}

/// The key's hash, given its [`prefix`]. A single multiply for a short key: its top bits, which
/// index the slot, depend on every byte.
#[inline]
fn hash(key: &[u8], prefix: u64) -> u64 {
    let mut folded = prefix;
    if let Some(rest) = key.get(INLINE..) {
        for chunk in rest.chunks(INLINE) {
            folded = (folded.rotate_left(5) ^ self::prefix(chunk)).wrapping_mul(FX_SEED);
        }
    }
    folded.wrapping_mul(FX_SEED)
}
