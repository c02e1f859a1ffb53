//! Small serde pieces for reading answers without collecting what is not needed.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

/// The answer text parses as one JSON value.
pub(crate) fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// Tool-call arguments: one JSON object.
pub(crate) fn is_json_object(text: &str) -> bool {
    text.trim_start().starts_with('{') && is_json(text)
}

/// The first element of a JSON array (the rest is skipped, not collected); None for `[]`.
#[derive(Debug)]
pub(crate) struct First<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
            type Value = First<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }

        deserializer.deserialize_seq(FirstVisitor(PhantomData))
    }
}

/// Sum and count of the `logprob` of an array of token entries (`{"token", "logprob", "bytes",
/// "top_logprobs"}`), added up as they are read: nothing is kept per token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct LogprobSum {
    pub sum: f64,
    pub count: u64,
}

impl LogprobSum {
    pub fn add(&mut self, other: LogprobSum) {
        self.sum += other.sum;
        self.count += other.count;
    }

    /// None without tokens.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

impl<'de> Deserialize<'de> for LogprobSum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            logprob: Option<f64>,
        }

        struct SumVisitor;

        impl<'de> Visitor<'de> for SumVisitor {
            type Value = LogprobSum;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of token logprobs")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut total = LogprobSum::default();
                while let Some(token) = seq.next_element::<Token>()? {
                    if let Some(logprob) = token.logprob {
                        total.sum += logprob;
                        total.count += 1;
                    }
                }
                Ok(total)
            }
        }

        deserializer.deserialize_seq(SumVisitor)
    }
}
