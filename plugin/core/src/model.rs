//! The router's model: logistic regression over the hand-made [`Features`] and hashed word and
//! character n-grams of the scanned text (see `model/ngrams.rs` for the hashing), Platt-calibrated,
//! predicting the probability that the cheapest tier fails where the dearest succeeds; the tier
//! thresholds apply to that probability.
//!
//! The filter's [`Model::predict`] and the training side's [`model_inputs`] hash the same capped
//! segments ([`crate::scan`]) with the same per-segment hasher, so training and inference cannot
//! disagree; the filter path hashes in the features' own pass over the text, sums weights as it
//! goes and builds no [`ModelInputs`].

mod file;
mod ngrams;

use std::fmt;
use std::sync::LazyLock;

pub use file::ModelError;

use crate::decision::FailOpen;
use crate::embed::{self, Embedder};
use crate::features::{Features, TextReader, FEATURE_COUNT, FEATURE_NAMES};
use crate::format::{parse_request, ApiFormat, ParsedRequest};
use crate::scan;
use ngrams::{bucket, scales, Kind, SegmentHasher, KINDS};

/// The features and hashing this build computes; a model trained on another is refused. Bump it when
/// a feature or the hashing changes.
pub const FEATURE_SET: &str = "triage-features-v1";

/// What the model reads from one request, for training and evaluation (the filter never builds it).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInputs {
    /// [`Features::values`].
    pub dense: [f64; FEATURE_COUNT],
    /// (bucket, value) sorted by bucket, merged, no zeros. A bucket's value is the sum over its
    /// n-grams of `1 / sqrt(n-grams of that kind in the request)`.
    pub sparse: Vec<(u32, f64)>,
    /// [`semantic_inputs`] of the request (zeros when the shipped table did not load).
    pub semantic: [f64; embed::DIMS],
}

/// The representation the semantic weights multiply: the unit-length embedding scaled by
/// `sqrt(DIMS)`, so a component is about 1 in size, like the dense features, and one L2 strength
/// suits both.
pub fn semantic_inputs(request: &ParsedRequest) -> [f64; embed::DIMS] {
    let mut out = [0.0; embed::DIMS];
    if let Ok(embedder) = Embedder::shipped() {
        let scale = (embed::DIMS as f64).sqrt();
        for (value, unit) in out.iter_mut().zip(embedder.embed_request(request)) {
            *value = scale * f64::from(unit);
        }
    }
    out
}

impl ModelInputs {
    /// Encodes an already parsed request; `buckets` is the model's (a power of two).
    pub fn from_request(
        request: &ParsedRequest,
        max_scan_bytes: usize,
        buckets: u32,
    ) -> ModelInputs {
        let dense = Features::extract(request, max_scan_bytes).values();
        let segments = scan::all_segments(request, max_scan_bytes);
        let mut hits: Vec<(u32, usize)> = Vec::new();
        let mut counts = [0u64; KINDS];
        ngrams::visit(segments.iter().copied(), |kind, hash| {
            let kind = kind as usize;
            hits.push((bucket(hash, buckets), kind));
            if let Some(count) = counts.get_mut(kind) {
                *count += 1;
            }
        });
        let scales = scales(&counts);
        hits.sort_unstable();
        let mut sparse: Vec<(u32, f64)> = Vec::new();
        for (bucket, kind) in hits {
            let value = scales.get(kind).copied().unwrap_or(0.0);
            match sparse.last_mut() {
                Some((last, sum)) if *last == bucket => *sum += value,
                _ => sparse.push((bucket, value)),
            }
        }
        sparse.retain(|(_, value)| *value != 0.0);
        ModelInputs {
            dense,
            sparse,
            semantic: semantic_inputs(request),
        }
    }
}

/// Parses `body` as [`crate::decide`] does and encodes it for a model of `buckets` buckets;
/// Err when the body does not parse (the filter would fail open).
pub fn model_inputs(
    format: ApiFormat,
    body: &[u8],
    max_scan_bytes: usize,
    buckets: u32,
) -> Result<ModelInputs, FailOpen> {
    let request = parse_request(format, body)?;
    Ok(ModelInputs::from_request(&request, max_scan_bytes, buckets))
}

/// Platt scaling: `p = sigmoid(a * raw_logit + b)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    pub a: f64,
    pub b: f64,
}

/// A model, read from its file ([`Model::from_json`]) or built by training.
#[derive(Clone, PartialEq)]
pub struct Model {
    /// Power of two; `sparse.len()`.
    pub buckets: u32,
    pub bias: f64,
    /// One weight per feature, in [`FEATURE_NAMES`] order.
    pub dense: Vec<f64>,
    /// One weight per bucket.
    pub sparse: Vec<f32>,
    pub calibration: Calibration,
    /// Calibrated-probability upper bounds of every tier but the last, strictly increasing.
    pub thresholds: Vec<f64>,
    /// The tier names the thresholds were calibrated for, cheapest first.
    pub tiers: Vec<String>,
    /// One weight per dimension of [`semantic_inputs`]; None for a model without them (every model
    /// before the embeddings), which then costs no embedding.
    pub semantic: Option<Vec<f64>>,
    /// Free-form provenance (data files, seed, folds, cross-validation summary); not checksummed.
    pub meta: serde_json::Value,
}

/// A model's answer for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Calibrated probability that the cheapest tier fails where the dearest succeeds.
    pub probability: f64,
    /// The dense features that moved the calibrated logit most, either way, and the n-grams' total, as
    /// "simple_task-0.41" or "ngrams+0.83", largest first.
    pub reasons: Vec<String>,
}

/// Dense features named in the reasons, besides the n-grams' total.
const TOP_FEATURES: usize = 3;

impl Model {
    /// Reads a model file and checks format, version, feature set, buckets against the sparse
    /// weights, every feature weighed, finite weights, thresholds and tiers, and the checksum.
    pub fn from_json(bytes: &[u8]) -> Result<Model, ModelError> {
        file::from_json(bytes)
    }

    /// The model file, checksum included (pretty-printed JSON, one trailing newline).
    pub fn to_json(&self) -> String {
        file::to_json(self)
    }

    /// The checks [`Model::from_json`] makes, but the checksum: for a model built in memory.
    pub fn validate(&self) -> Result<(), ModelError> {
        file::validate(self)
    }

    /// `bias + dense · x + sparse · x`, before calibration.
    pub fn raw_logit(&self, inputs: &ModelInputs) -> f64 {
        let dense: f64 = self
            .dense
            .iter()
            .zip(inputs.dense)
            .map(|(weight, value)| weight * value)
            .sum();
        let sparse: f64 = inputs
            .sparse
            .iter()
            .map(|(bucket, value)| self.sparse_weight(*bucket) * value)
            .sum();
        self.bias + dense + sparse + self.semantic_logit(&inputs.semantic)
    }

    /// The calibrated probability of `inputs`.
    pub fn probability(&self, inputs: &ModelInputs) -> f64 {
        self.calibrated(self.raw_logit(inputs))
    }

    /// `sigmoid(a * raw_logit + b)`, in [0, 1] (0.5 if the logit is not a number).
    pub fn calibrated(&self, raw_logit: f64) -> f64 {
        sigmoid(self.calibration.a * raw_logit + self.calibration.b)
    }

    /// The filter's path: the calibrated probability of a parsed request and its reasons, hashing the
    /// n-grams as it sums their weights (nothing allocated per n-gram).
    pub fn predict(&self, request: &ParsedRequest, max_scan_bytes: usize) -> Prediction {
        let mut sums = NgramSums::new(self);
        let values = Features::extract_reading(request, max_scan_bytes, &mut sums).values();
        let ngrams = sums.logit();
        let mut dense = [0.0; FEATURE_COUNT];
        for ((contribution, weight), value) in dense.iter_mut().zip(&self.dense).zip(values) {
            *contribution = weight * value;
        }
        let semantic = match &self.semantic {
            Some(_) => self.semantic_logit(&semantic_inputs(request)),
            None => 0.0,
        };
        let raw_logit = self.bias + dense.iter().sum::<f64>() + ngrams + semantic;
        Prediction {
            probability: self.calibrated(raw_logit),
            reasons: self.reasons(&dense, &[("ngrams", ngrams), ("semantic", semantic)]),
        }
    }

    /// The semantic weights times `inputs` (0 without semantic weights).
    fn semantic_logit(&self, inputs: &[f64; embed::DIMS]) -> f64 {
        self.semantic.as_ref().map_or(0.0, |weights| {
            weights.iter().zip(inputs).map(|(w, x)| w * x).sum()
        })
    }

    /// Contributions to the calibrated logit (`a * w * x`), the largest first; zeros are left out.
    /// The top dense features, and each of `totals` (the n-grams', the embedding's) by name.
    fn reasons(&self, dense: &[f64], totals: &[(&'static str, f64)]) -> Vec<String> {
        let a = self.calibration.a;
        let mut features: Vec<(&str, f64)> = FEATURE_NAMES
            .iter()
            .zip(dense)
            .map(|(name, contribution)| (*name, a * contribution))
            .filter(|(_, contribution)| *contribution != 0.0)
            .collect();
        features.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()));
        features.truncate(TOP_FEATURES);
        for (name, total) in totals {
            if a * total != 0.0 {
                features.push((name, a * total));
            }
        }
        features.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()));
        features
            .iter()
            .map(|(name, contribution)| format!("{name}{contribution:+.2}"))
            .collect()
    }

    /// The weight of dense feature `name`.
    pub fn dense_weight(&self, name: &str) -> Option<f64> {
        let index = FEATURE_NAMES.iter().position(|known| *known == name)?;
        self.dense.get(index).copied()
    }

    fn sparse_weight(&self, bucket: u32) -> f64 {
        self.sparse
            .get(bucket as usize)
            .copied()
            .map_or(0.0, f64::from)
    }

    /// The default model, embedded from `plugin/core/models/default.json` and parsed once. Should
    /// that file not load (a test proves it does), the hand-set weights below stand in; see
    /// [`Model::shipped_error`].
    pub fn shipped() -> &'static Model {
        &SHIPPED.model
    }

    /// Why the embedded default model did not load, if it did not.
    pub fn shipped_error() -> Option<&'static ModelError> {
        SHIPPED.error.as_ref()
    }

    /// The hand-set linear weights triage shipped before it learned any, no n-gram weights,
    /// identity calibration and the old default thresholds.
    pub fn hand_set(buckets: u32) -> Model {
        let dense = FEATURE_NAMES
            .iter()
            .map(|name| {
                HAND_SET_WEIGHTS
                    .iter()
                    .find(|(known, _)| known == name)
                    .map_or(0.0, |(_, weight)| *weight)
            })
            .collect();
        Model {
            buckets,
            bias: HAND_SET_BIAS,
            dense,
            sparse: vec![0.0; buckets as usize],
            calibration: Calibration { a: 1.0, b: 0.0 },
            thresholds: vec![0.35, 0.65],
            tiers: ["small", "mid", "frontier"].map(String::from).to_vec(),
            semantic: None,
            meta: serde_json::json!({"source": "bootstrap: hand-set weights"}),
        }
    }
}

/// The n-grams' part of the raw logit, summed as the features' pass reads the text.
#[derive(Clone, Copy)]
struct NgramSums<'m> {
    segment: SegmentHasher,
    sums: KindSums<'m>,
}

/// One named accumulator per kind, not an array indexed by kind: they stay in registers. Character
/// 4-grams are counted once per segment, by the hasher.
#[derive(Clone, Copy)]
struct KindSums<'m> {
    weights: &'m [f32],
    buckets: u32,
    words: (f64, u64),
    pairs: (f64, u64),
    chars: (f64, u64),
}

impl<'m> NgramSums<'m> {
    fn new(model: &'m Model) -> NgramSums<'m> {
        NgramSums {
            segment: SegmentHasher::new(),
            sums: KindSums {
                weights: &model.sparse,
                buckets: model.buckets,
                words: (0.0, 0),
                pairs: (0.0, 0),
                chars: (0.0, 0),
            },
        }
    }

    /// Each kind's weight sum times its scale, summed.
    fn logit(&self) -> f64 {
        let KindSums {
            words,
            pairs,
            chars,
            ..
        } = self.sums;
        scales(&[words.1, pairs.1, chars.1])
            .iter()
            .zip([words.0, pairs.0, chars.0])
            .map(|(scale, sum)| scale * sum)
            .sum()
    }
}

impl KindSums<'_> {
    #[inline(always)]
    fn add(&mut self, kind: Kind, hash: u64) {
        let weight = f64::from(
            self.weights
                .get(bucket(hash, self.buckets) as usize)
                .copied()
                .unwrap_or(0.0),
        );
        match kind {
            Kind::Word => {
                self.words.0 += weight;
                self.words.1 += 1;
            }
            Kind::WordPair => {
                self.pairs.0 += weight;
                self.pairs.1 += 1;
            }
            Kind::Chars => self.chars.0 += weight,
        }
    }
}

impl TextReader for NgramSums<'_> {
    #[inline(always)]
    fn byte(&mut self, byte: u8) {
        let sums = &mut self.sums;
        self.segment
            .byte(byte, &mut |kind, hash| sums.add(kind, hash));
    }

    fn segment_end(&mut self) {
        let sums = &mut self.sums;
        let segment = std::mem::replace(&mut self.segment, SegmentHasher::new());
        sums.chars.1 += segment.finish(&mut |kind, hash| sums.add(kind, hash));
    }
}

impl fmt::Debug for Model {
    /// Everything but the sparse weights themselves (65,536 numbers help no one in a log).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("buckets", &self.buckets)
            .field("bias", &self.bias)
            .field("dense", &self.dense)
            .field(
                "sparse_non_zero",
                &self.sparse.iter().filter(|weight| **weight != 0.0).count(),
            )
            .field("calibration", &self.calibration)
            .field("thresholds", &self.thresholds)
            .field("tiers", &self.tiers)
            .field("semantic", &self.semantic.as_ref().map(Vec::len))
            .field("meta", &self.meta)
            .finish()
    }
}

fn sigmoid(logit: f64) -> f64 {
    let value = 1.0 / (1.0 + (-logit).exp());
    if value.is_nan() {
        0.5
    } else {
        value
    }
}

/// Simple tasks pull down; reasoning, math, code, constraints and tool use push up; length pushes up
/// gently.
const HAND_SET_BIAS: f64 = -0.6;
const HAND_SET_WEIGHTS: &[(&str, f64)] = &[
    ("tokens", 0.8),
    ("turns", 0.4),
    ("system_prompt", 0.2),
    ("last_user", 0.2),
    ("code_fences", 0.6),
    ("code_lines", 0.8),
    ("latex", 1.0),
    ("math_terms", 0.6),
    ("operators", 0.4),
    ("digits", 0.2),
    ("reasoning_cues", 1.8),
    ("simple_task", -2.4),
    ("questions", 0.3),
    ("constraints", 0.9),
    ("tools", 0.3),
    ("tool_depth", 0.8),
    ("images", 0.3),
    ("max_tokens", 0.3),
    ("reasoning_effort", 1.2),
    ("json_output", -0.4),
    ("non_latin", 0.2),
];

const SHIPPED_JSON: &[u8] = include_bytes!("../models/default.json");

struct Shipped {
    model: Model,
    error: Option<ModelError>,
}

static SHIPPED: LazyLock<Shipped> = LazyLock::new(|| load_shipped(SHIPPED_JSON));

/// The embedded model, or the hand-set weights and the reason it did not load.
fn load_shipped(json: &[u8]) -> Shipped {
    match Model::from_json(json) {
        Ok(model) => Shipped { model, error: None },
        Err(error) => {
            let mut model = Model::hand_set(1);
            model.meta = serde_json::json!({
                "source": "fallback: hand-set weights",
                "error": error.to_string(),
            });
            Shipped {
                model,
                error: Some(error),
            }
        }
    }
}

#[cfg(test)]
mod tests;
