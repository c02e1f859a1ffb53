//! The prompt's semantic representation: a static token-embedding table distilled from the sentence
//! encoder all-MiniLM-L6-v2 (`plugin/learn/distill/distill.py`: each vocabulary token through the
//! encoder, PCA, frequency weighting folded in, int8 with one scale), looked up per WordPiece token of the
//! request's last user message and summed; the sum, scaled to unit length, is the representation.
//!
//! Only the tail of the last user message is read ([`EMBED_BYTES`]): that is where the task is
//! asked, a long pasted context or a few-shot block ahead of it would otherwise drown it, and it bounds
//! the work per request. The table is compiled into the build and pinned by its SHA-256; a model
//! names the table it was trained on and is refused with another.

pub mod wordpiece;

use std::sync::LazyLock;

use crate::format::ParsedRequest;
use wordpiece::WordPiece;

/// Width of the shipped table.
pub const DIMS: usize = 64;
/// Name and SHA-256 of the shipped representation, as a model file records them: the table, and
/// how much of the request it reads ([`EMBED_BYTES`], in the name), so that a model trained on
/// another tail is refused rather than fed vectors it never saw.
pub const TABLE_NAME: &str = "all-MiniLM-L6-v2/static-64/tail-512";
pub const TABLE_SHA256: &str =
    "sha256:5aa96bf3f693dac1e48610f8ef21801c730e889beb807fcaba3622fb8fc1e75f";
/// Most bytes of the last user message embedded, counted from its end. 512: in Envoy the embedding's
/// cost follows the bytes it reads (about 20 us a request for 1 KiB), and a model trained on 512
/// ranks the training sources and the simple-work probe as one trained on 1 KiB did (README).
/// Changing it changes [`TABLE_NAME`].
pub const EMBED_BYTES: usize = 512;

const TABLE_BYTES: &[u8] = include_bytes!("../models/minilm-l6-v2/static-64.bin");
const MAGIC: &[u8; 8] = b"TRGEMB02";

/// The table, borrowed from the bytes it ships in: one scale for the whole table and a row of i8
/// per token, so a request's rows are summed in integers (no float work per token) and the sum is
/// scaled once; it is then normalized, so the scale itself only has to be positive.
#[derive(Clone, Copy)]
struct Table<'a> {
    values: &'a [u8],
}

/// A sum of rows: exact in i32 for any text under 16 Mi tokens (127 * 2^24 < 2^31), and the filter
/// embeds at most [`EMBED_BYTES`].
type RowSum = [i32; DIMS];

impl<'a> Table<'a> {
    /// Checks the header against this build's [`DIMS`] and the vocabulary size, and the length.
    fn parse(bytes: &'a [u8], vocab: usize) -> Result<Table<'a>, String> {
        let header = MAGIC.len() + 12;
        let (magic, rest) = bytes
            .split_at_checked(MAGIC.len())
            .ok_or("shorter than its header")?;
        if magic != MAGIC {
            return Err("not a triage embedding table".into());
        }
        let word = |at: usize| -> Option<[u8; 4]> { rest.get(at..at + 4)?.try_into().ok() };
        let rows = word(0).map_or(0, |b| u32::from_le_bytes(b) as usize);
        let dims = word(4).map_or(0, |b| u32::from_le_bytes(b) as usize);
        let scale = word(8).map_or(0.0, f32::from_le_bytes);
        if rows != vocab || dims != DIMS {
            return Err(format!(
                "{rows} rows x {dims} dims, this build needs {vocab} x {DIMS}"
            ));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(format!("scale {scale} is not a positive number"));
        }
        if bytes.len() != header + rows * dims {
            return Err(format!(
                "{} bytes, expected {}",
                bytes.len(),
                header + rows * dims
            ));
        }
        Ok(Table {
            values: bytes.get(header..).unwrap_or_default(),
        })
    }

    /// Adds token `id`'s row to `sum` (nothing for an id past the table).
    #[inline]
    fn add_row(&self, id: u32, sum: &mut RowSum) {
        let start = DIMS * id as usize;
        if let Some(row) = self.values.get(start..start + DIMS) {
            for (total, &value) in sum.iter_mut().zip(row) {
                *total = total.wrapping_add(i32::from(value as i8));
            }
        }
    }
}

/// The tokenizer and the table, paired.
pub struct Embedder {
    wordpiece: &'static WordPiece,
    table: Table<'static>,
}

static SHIPPED: LazyLock<Result<Embedder, String>> = LazyLock::new(|| {
    let wordpiece = WordPiece::shipped();
    let table = Table::parse(TABLE_BYTES, wordpiece.len())?;
    Ok(Embedder { wordpiece, table })
});

impl Embedder {
    /// The embedder this build ships, or why its table does not load (a test proves it does).
    pub fn shipped() -> Result<&'static Embedder, &'static str> {
        SHIPPED.as_ref().map_err(String::as_str)
    }

    /// The unit-length representation of `text` (all zeros when it has no token with a vector).
    pub fn embed_text(&self, text: &str) -> [f32; DIMS] {
        let mut sum = [0; DIMS];
        self.wordpiece
            .tokenize(text, |id| self.table.add_row(id, &mut sum));
        unit(&sum)
    }

    /// The representation of a request: its last user message's last [`EMBED_BYTES`] bytes.
    pub fn embed_request(&self, request: &ParsedRequest) -> [f32; DIMS] {
        let mut sum = [0; DIMS];
        for text in tail(request, EMBED_BYTES) {
            self.wordpiece
                .tokenize(text, |id| self.table.add_row(id, &mut sum));
        }
        unit(&sum)
    }
}

/// `sum` scaled to unit length; zeros for a zero sum.
fn unit(sum: &RowSum) -> [f32; DIMS] {
    let mut out = sum.map(|value| value as f32);
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for value in out.iter_mut() {
            *value /= norm;
        }
    } else {
        out = [0.0; DIMS];
    }
    out
}

/// The last `budget` bytes of the last user message's texts, in order. A text cut at the front
/// loses the rest of the word cut there ([`word_start_after`]), so no word is read from its middle.
fn tail<'r>(request: &'r ParsedRequest, budget: usize) -> impl Iterator<Item = &'r str> {
    let texts: &'r [std::borrow::Cow<'r, str>] = request
        .last_user_message()
        .map_or(&[], |message| message.texts.as_slice());
    let mut left = budget;
    let mut first = texts.len();
    let mut cut = 0;
    for (index, text) in texts.iter().enumerate().rev() {
        if left == 0 {
            break;
        }
        first = index;
        if text.len() <= left {
            left -= text.len();
            cut = 0;
        } else {
            cut = text.len() - left;
            left = 0;
        }
    }
    texts
        .get(first..)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(move |(offset, text)| {
            if offset == 0 && cut > 0 {
                word_start_after(text, cut)
            } else {
                text.as_ref()
            }
        })
}

/// `text` from byte `at` (moved up to a char boundary), less the rest of a word cut there. CJK
/// ideographs are words of their own (the tokenizer splits them one by one), so never skipped.
fn word_start_after(text: &str, at: usize) -> &str {
    const LONGEST_WORD: usize = 100;
    let Some(start) = (at..=text.len()).find(|&index| text.is_char_boundary(index)) else {
        return "";
    };
    let rest = text.get(start..).unwrap_or("");
    let in_word = |c: char| c.is_alphanumeric() && !is_cjk_ideograph(c);
    let cut_inside_a_word = text
        .get(..start)
        .and_then(|head| head.chars().next_back())
        .is_some_and(in_word);
    if !cut_inside_a_word {
        return rest;
    }
    let skip = rest
        .char_indices()
        .take(LONGEST_WORD)
        .find(|(_, c)| !in_word(*c))
        .map_or(rest.len(), |(index, _)| index);
    rest.get(skip..).unwrap_or("")
}

fn is_cjk_ideograph(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

#[cfg(test)]
mod tests;
