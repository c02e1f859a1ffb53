//! WordPiece tokenization exactly as the encoder's `tokenizer.json` (BertNormalizer, BertPreTokenizer,
//! WordPiece) does it.
//!
//! The ids are those of Hugging Face `tokenizers`' `encode(text, add_special_tokens=False)` with
//! truncation and padding off: added tokens (`[CLS]`, `[SEP]`, `[MASK]`, `[PAD]`, `[UNK]`) written
//! in the text are split off first, unnormalized; the rest is normalized and split into words
//! (`normalize.rs`: ASCII by 64-byte blocks in `ascii.rs`, other chars mostly from a table in
//! `chars.rs`); each word is cut greedily into the longest vocabulary pieces from its start, pieces
//! after the first looked up with the `##` prefix, and a word that cannot be cut, or has more than
//! 100 chars, is one `[UNK]`. `tests.rs` checks this against the library on every training row and
//! on edge cases (fixture written by `plugin/learn/distill/reference_tokens.py`), and the fast paths
//! against the plain pipeline on random text.
//!
//! A call allocates nothing on the paths text takes: a word is collected on the stack, and pieces
//! are looked up in two hash tables built once (`table.rs`), one for word starts and one for
//! continuations keyed without their `##`, so no string is built for a lookup. (A stretch of text
//! that must be normalized with its neighbours may allocate room for its combining marks, once per
//! call; the table of `chars.rs` is built once per process, on the first non-ASCII char.)

mod ascii;
mod chars;
mod normalize;
mod table;

use normalize::{PreToken, PreTokenizer, MAX_WORD_CHARS};
use std::sync::LazyLock;
use table::{Key, Span, TokenTable};

const UNK: &str = "[UNK]";
const CONTINUATION_PREFIX: &str = "##";
/// BERT's special tokens, split off the raw text when the vocabulary has them.
const ADDED_TOKENS: [&str; 5] = ["[PAD]", UNK, "[CLS]", "[SEP]", "[MASK]"];

const SHIPPED_VOCAB: &str = include_str!("../../models/minilm-l6-v2/vocab.txt");

static SHIPPED: LazyLock<WordPiece> =
    LazyLock::new(|| WordPiece::from_vocab(SHIPPED_VOCAB).unwrap_or_else(|_| WordPiece::empty()));

/// A WordPiece tokenizer over one vocabulary.
pub struct WordPiece {
    /// The vocabulary text: every token's bytes are a span of it.
    text: Box<str>,
    spans: Box<[Span]>,
    /// Tokens that may start a word.
    starts: TokenTable,
    /// `##` tokens, keyed without the `##`.
    continuations: TokenTable,
    unk: u32,
    pre_tokenizer: PreTokenizer,
}

impl std::fmt::Debug for WordPiece {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WordPiece")
            .field("tokens", &self.len())
            .finish_non_exhaustive()
    }
}

impl WordPiece {
    /// vocab: one token per line, id = line index. It must hold `[UNK]` and list no token twice.
    pub fn from_vocab(vocab: &str) -> Result<WordPiece, String> {
        let mut spans = Vec::new();
        let mut starts = Vec::new();
        let mut continuations = Vec::new();
        let mut offset = 0;
        for line in vocab.split_inclusive('\n') {
            let token = line.trim_end_matches(['\n', '\r']);
            let id = u32::try_from(spans.len())
                .map_err(|_| "the vocabulary has more than 2^32 tokens".to_string())?;
            spans.push(Span {
                start: span_offset(offset)?,
                end: span_offset(offset + token.len())?,
            });
            if token.starts_with(CONTINUATION_PREFIX) {
                // A word never holds `#` (punctuation is a word of its own), so a `##` token can
                // only ever continue one.
                continuations.push(id);
            } else {
                starts.push(id);
            }
            offset += line.len();
        }
        let text: Box<str> = vocab.into();
        let starts = TokenTable::build(&starts, 0, &text, &spans)?;
        let continuations =
            TokenTable::build(&continuations, CONTINUATION_PREFIX.len(), &text, &spans)?;
        let unk = starts
            .get(Key::new(UNK.as_bytes()), &text, &spans)
            .ok_or_else(|| format!("the vocabulary has no {UNK} token"))?;
        let added = ADDED_TOKENS
            .iter()
            .filter_map(|token| {
                let id = starts.get(Key::new(token.as_bytes()), &text, &spans)?;
                Some((token.as_bytes().into(), id))
            })
            .collect();
        Ok(WordPiece {
            text,
            spans: spans.into_boxed_slice(),
            starts,
            continuations,
            unk,
            pre_tokenizer: PreTokenizer::new(added),
        })
    }

    /// The shipped vocabulary (all-MiniLM-L6-v2's), built on first use, once per process or VM.
    /// Should it not load (a test proves it does), an empty tokenizer: no ids, and `len()` 0.
    pub fn shipped() -> &'static WordPiece {
        &SHIPPED
    }

    /// A tokenizer with no vocabulary: it yields no ids.
    fn empty() -> WordPiece {
        WordPiece {
            text: "".into(),
            spans: Box::new([]),
            starts: TokenTable::empty(),
            continuations: TokenTable::empty(),
            unk: 0,
            pre_tokenizer: PreTokenizer::new(Vec::new()),
        }
    }

    /// The vocabulary size.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The ids Hugging Face's `tokenizer.encode(text, add_special_tokens=False)` gives (no
    /// truncation, no padding), in order, each passed to `on_token`.
    pub fn tokenize(&self, text: &str, mut on_token: impl FnMut(u32)) {
        if self.is_empty() {
            return;
        }
        self.pre_tokenizer
            .pre_tokenize(text, |pre_token| match pre_token {
                PreToken::Word(word) => self.word_pieces(word, &mut on_token),
                PreToken::Overlong => on_token(self.unk),
                PreToken::Added(id) => on_token(id),
            });
    }

    /// A word's pieces: the longest vocabulary token from its start, then the longest `##` token
    /// from there on, and so on; `[UNK]` alone if some point has none.
    #[inline]
    fn word_pieces(&self, key: Key<'_>, on_token: &mut impl FnMut(u32)) {
        let word = key.bytes;
        if let Some(id) = self.starts.get(key, &self.text, &self.spans) {
            on_token(id);
            return;
        }
        // Every piece holds a char at least.
        let mut pieces = [0u32; MAX_WORD_CHARS];
        let mut count = 0;
        let mut start = 0;
        while start < word.len() {
            let table = if start == 0 {
                &self.starts
            } else {
                &self.continuations
            };
            let rest = word.get(start..).unwrap_or_default();
            let (Some((id, len)), Some(piece)) =
                (self.longest_piece(table, rest), pieces.get_mut(count))
            else {
                on_token(self.unk);
                return;
            };
            *piece = id;
            count += 1;
            start += len;
        }
        pieces.iter().take(count).for_each(|&id| on_token(id));
    }

    /// The id and length of the longest token of `table` that `text` starts with.
    fn longest_piece(&self, table: &TokenTable, text: &[u8]) -> Option<(u32, usize)> {
        // Every piece's key from the word's first 8 bytes: no load per piece.
        let eight = Key::new(text).prefix();
        (1..=text.len().min(table.longest()))
            .rev()
            .filter(|&len| is_char_boundary(text, len))
            .find_map(|len| {
                let key = Key::from_eight(text.get(..len)?, eight);
                let id = table.get_rare(key, &self.text, &self.spans)?;
                Some((id, len))
            })
    }
}

fn is_char_boundary(utf8: &[u8], index: usize) -> bool {
    // Not a UTF-8 continuation byte (0b10xx_xxxx), or the end.
    utf8.get(index).is_none_or(|&byte| (byte as i8) >= -0x40)
}

fn span_offset(offset: usize) -> Result<u32, String> {
    u32::try_from(offset).map_err(|_| "the vocabulary is over 4 GiB".to_string())
}

#[cfg(test)]
mod tests;
