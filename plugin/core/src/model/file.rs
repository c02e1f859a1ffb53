//! The model file: JSON with the sparse weights as base64 of little-endian f32s, and a SHA-256
//! checksum over a canonical byte encoding of everything but `meta` (free-form provenance).
//!
//! Canonical bytes, in order: `"triage-model\0"`, version (u32 LE), feature set bytes and `\0`,
//! buckets (u32 LE), bias (f64 LE), the dense weights in `FEATURE_NAMES` order (f64 LE each),
//! calibration `a` and `b` (f64 LE), the thresholds' count (u32 LE) and each (f64 LE), the tiers'
//! count (u32 LE) and each name's bytes and `\0`, then the sparse weights (f32 LE each); with semantic
//! weights, then `"semantic\0"`, the table's name and `\0`, its SHA-256 and `\0`, and the weights (f64
//! LE each). A model without them hashes as before they existed, so older files still verify.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Calibration, Model, FEATURE_SET};
use crate::embed::{self, Embedder};
use crate::features::{FEATURE_COUNT, FEATURE_NAMES};

pub(crate) const FORMAT: &str = "triage-model";
pub(crate) const VERSION: u32 = 1;
const CHECKSUM_PREFIX: &str = "sha256:";
/// 2^28 f32s is 1 GiB: far beyond any model worth embedding in a plugin config.
const MAX_BUCKETS: u32 = 1 << 28;

/// Why a model file was refused: the field (e.g. `thresholds[1]`, `(root)` for the document) and
/// the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    field: String,
    message: String,
}

impl ModelError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> ModelError {
        ModelError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field path inside the model document, e.g. `checksum` or `dense.tokens`.
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ModelError {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    version: u32,
    feature_set: String,
    buckets: u32,
    bias: f64,
    dense: BTreeMap<String, f64>,
    sparse_f32le_base64: String,
    calibration: CalibrationFile,
    thresholds: Vec<f64>,
    tiers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    semantic: Option<SemanticFile>,
    #[serde(default)]
    meta: serde_json::Value,
    checksum: String,
}

/// The weights of the prompt's embedding and the table they were trained on.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SemanticFile {
    table: String,
    table_sha256: String,
    weights: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalibrationFile {
    a: f64,
    b: f64,
}

fn checksum(model: &Model) -> String {
    let mut hash = Sha256::new();
    hash.update(FORMAT.as_bytes());
    hash.update([0]);
    hash.update(VERSION.to_le_bytes());
    hash.update(FEATURE_SET.as_bytes());
    hash.update([0]);
    hash.update(model.buckets.to_le_bytes());
    hash.update(model.bias.to_le_bytes());
    for weight in &model.dense {
        hash.update(weight.to_le_bytes());
    }
    hash.update(model.calibration.a.to_le_bytes());
    hash.update(model.calibration.b.to_le_bytes());
    hash.update(count(model.thresholds.len()).to_le_bytes());
    for threshold in &model.thresholds {
        hash.update(threshold.to_le_bytes());
    }
    hash.update(count(model.tiers.len()).to_le_bytes());
    for tier in &model.tiers {
        hash.update(tier.as_bytes());
        hash.update([0]);
    }
    hash.update(sparse_bytes(&model.sparse));
    if let Some(weights) = &model.semantic {
        for part in ["semantic", embed::TABLE_NAME, embed::TABLE_SHA256] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        for weight in weights {
            hash.update(weight.to_le_bytes());
        }
    }
    let digest = hash.finalize();
    let mut hex = String::with_capacity(CHECKSUM_PREFIX.len() + 2 * digest.len());
    hex.push_str(CHECKSUM_PREFIX);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: [u8; 16] = *b"0123456789abcdef";

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn sparse_bytes(sparse: &[f32]) -> Vec<u8> {
    sparse
        .iter()
        .flat_map(|weight| weight.to_le_bytes())
        .collect()
}

pub(crate) fn to_json(model: &Model) -> String {
    let dense = FEATURE_NAMES
        .iter()
        .zip(&model.dense)
        .map(|(name, weight)| (name.to_string(), *weight))
        .collect();
    let file = ModelFile {
        format: FORMAT.into(),
        version: VERSION,
        feature_set: FEATURE_SET.into(),
        buckets: model.buckets,
        bias: model.bias,
        dense,
        sparse_f32le_base64: BASE64.encode(sparse_bytes(&model.sparse)),
        calibration: CalibrationFile {
            a: model.calibration.a,
            b: model.calibration.b,
        },
        thresholds: model.thresholds.clone(),
        tiers: model.tiers.clone(),
        semantic: model.semantic.as_ref().map(|weights| SemanticFile {
            table: embed::TABLE_NAME.into(),
            table_sha256: embed::TABLE_SHA256.into(),
            weights: weights.clone(),
        }),
        meta: model.meta.clone(),
        checksum: checksum(model),
    };
    let mut json = serde_json::to_string_pretty(&file).unwrap_or_default();
    json.push('\n');
    json
}

pub(crate) fn from_json(bytes: &[u8]) -> Result<Model, ModelError> {
    if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ModelError::new("(root)", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let file: ModelFile = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." || path == "?" {
            "(root)".to_string()
        } else {
            path
        };
        ModelError::new(path, error.into_inner().to_string())
    })?;
    deserializer
        .end()
        .map_err(|error| ModelError::new("(root)", error.to_string()))?;

    if file.format != FORMAT {
        return Err(ModelError::new(
            "format",
            format!("must be {FORMAT:?}, got {:?}", file.format),
        ));
    }
    if file.version != VERSION {
        return Err(ModelError::new(
            "version",
            format!("this build reads version {VERSION}, got {}", file.version),
        ));
    }
    if file.feature_set != FEATURE_SET {
        return Err(ModelError::new(
            "feature_set",
            format!(
                "the model was trained on {:?} but this build computes {FEATURE_SET:?}: retrain it",
                file.feature_set
            ),
        ));
    }
    if !file.buckets.is_power_of_two() || file.buckets > MAX_BUCKETS {
        return Err(ModelError::new(
            "buckets",
            format!(
                "must be a power of two up to {MAX_BUCKETS}, got {}",
                file.buckets
            ),
        ));
    }
    let dense = dense_weights(&file.dense)?;
    let sparse = sparse_weights(&file.sparse_f32le_base64, file.buckets)?;
    let semantic = file.semantic.map(semantic_weights).transpose()?;
    let model = Model {
        buckets: file.buckets,
        bias: file.bias,
        dense,
        sparse,
        calibration: Calibration {
            a: file.calibration.a,
            b: file.calibration.b,
        },
        thresholds: file.thresholds,
        tiers: file.tiers,
        semantic,
        meta: file.meta,
    };
    validate(&model)?;
    let expected = checksum(&model);
    if file.checksum != expected {
        return Err(ModelError::new(
            "checksum",
            format!(
                "{:?} does not match the weights ({expected}): the file was altered or truncated",
                file.checksum
            ),
        ));
    }
    Ok(model)
}

fn dense_weights(named: &BTreeMap<String, f64>) -> Result<Vec<f64>, ModelError> {
    if let Some(unknown) = named
        .keys()
        .find(|name| !FEATURE_NAMES.contains(&name.as_str()))
    {
        return Err(ModelError::new(
            format!("dense.{unknown}"),
            format!(
                "unknown feature in feature set {FEATURE_SET} (known: {})",
                FEATURE_NAMES.join(", ")
            ),
        ));
    }
    let mut dense = Vec::with_capacity(FEATURE_COUNT);
    for name in FEATURE_NAMES {
        match named.get(*name) {
            Some(weight) => dense.push(*weight),
            None => {
                return Err(ModelError::new(
                    format!("dense.{name}"),
                    "missing: the model must weigh every feature of its feature set",
                ))
            }
        }
    }
    Ok(dense)
}

/// The weights, if they were trained on the table this build ships.
fn semantic_weights(file: SemanticFile) -> Result<Vec<f64>, ModelError> {
    if file.table != embed::TABLE_NAME || file.table_sha256 != embed::TABLE_SHA256 {
        return Err(ModelError::new(
            "semantic.table_sha256",
            format!(
                "the model was trained on embedding table {} ({}) but this build ships {} ({}): retrain it",
                file.table,
                file.table_sha256,
                embed::TABLE_NAME,
                embed::TABLE_SHA256
            ),
        ));
    }
    Ok(file.weights)
}

fn sparse_weights(base64: &str, buckets: u32) -> Result<Vec<f32>, ModelError> {
    const FIELD: &str = "sparse_f32le_base64";
    let bytes = BASE64
        .decode(base64)
        .map_err(|error| ModelError::new(FIELD, format!("invalid base64: {error}")))?;
    let expected = u64::from(buckets) * 4;
    if bytes.len() as u64 != expected {
        return Err(ModelError::new(
            "buckets",
            format!(
                "is {buckets}, but {FIELD} holds {} bytes ({} weights)",
                bytes.len(),
                bytes.len() / 4
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|chunk| chunk.try_into().map_or(f32::NAN, f32::from_le_bytes))
        .collect())
}

/// The checks every model passes, whether read from a file or built in memory.
pub(crate) fn validate(model: &Model) -> Result<(), ModelError> {
    if !model.buckets.is_power_of_two() || model.buckets > MAX_BUCKETS {
        return Err(ModelError::new(
            "buckets",
            format!(
                "must be a power of two up to {MAX_BUCKETS}, got {}",
                model.buckets
            ),
        ));
    }
    if model.sparse.len() as u64 != u64::from(model.buckets) {
        return Err(ModelError::new(
            "buckets",
            format!(
                "is {}, but there are {} sparse weights",
                model.buckets,
                model.sparse.len()
            ),
        ));
    }
    if model.dense.len() != FEATURE_COUNT {
        return Err(ModelError::new(
            "dense",
            format!(
                "holds {} weights, the feature set has {FEATURE_COUNT}",
                model.dense.len()
            ),
        ));
    }
    finite("bias", model.bias)?;
    for (name, weight) in FEATURE_NAMES.iter().zip(&model.dense) {
        finite(&format!("dense.{name}"), *weight)?;
    }
    if let Some(index) = model.sparse.iter().position(|weight| !weight.is_finite()) {
        return Err(ModelError::new(
            "sparse_f32le_base64",
            format!(
                "bucket {index} holds {}; every weight must be finite",
                model.sparse.get(index).copied().unwrap_or(f32::NAN)
            ),
        ));
    }
    if let Some(weights) = &model.semantic {
        if weights.len() != embed::DIMS {
            return Err(ModelError::new(
                "semantic.weights",
                format!(
                    "holds {} weights, the embedding has {} dimensions",
                    weights.len(),
                    embed::DIMS
                ),
            ));
        }
        if let Some(index) = weights.iter().position(|weight| !weight.is_finite()) {
            return Err(ModelError::new(
                format!("semantic.weights[{index}]"),
                "must be a finite number",
            ));
        }
        if let Err(error) = Embedder::shipped() {
            return Err(ModelError::new(
                "semantic",
                format!("this build's embedding table does not load: {error}"),
            ));
        }
    }
    finite("calibration.a", model.calibration.a)?;
    finite("calibration.b", model.calibration.b)?;
    validate_tiers(&model.tiers)?;
    if model.thresholds.len() + 1 != model.tiers.len() {
        return Err(ModelError::new(
            "thresholds",
            format!(
                "needs one threshold per tier but the last ({} for {} tiers), got {}",
                model.tiers.len() - 1,
                model.tiers.len(),
                model.thresholds.len()
            ),
        ));
    }
    for (index, threshold) in model.thresholds.iter().enumerate() {
        let field = format!("thresholds[{index}]");
        if !(0.0..=1.0).contains(threshold) {
            return Err(ModelError::new(
                field,
                format!("must be within [0, 1], got {threshold}"),
            ));
        }
        let previous = index.checked_sub(1).and_then(|i| model.thresholds.get(i));
        if let Some(previous) = previous.filter(|previous| threshold <= previous) {
            return Err(ModelError::new(
                field,
                format!(
                    "must be greater than thresholds[{}] ({previous}), got {threshold}",
                    index - 1
                ),
            ));
        }
    }
    Ok(())
}

fn finite(field: &str, value: f64) -> Result<(), ModelError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ModelError::new(
            field,
            format!("must be a finite number, got {value}"),
        ))
    }
}

fn validate_tiers(tiers: &[String]) -> Result<(), ModelError> {
    if tiers.is_empty() {
        return Err(ModelError::new("tiers", "must list at least one tier"));
    }
    for (index, tier) in tiers.iter().enumerate() {
        let valid = !tier.is_empty()
            && tier
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(ModelError::new(
                format!("tiers[{index}]"),
                format!("{tier:?} must match [a-z0-9_-]+"),
            ));
        }
        if tiers.iter().take(index).any(|earlier| earlier == tier) {
            return Err(ModelError::new(
                format!("tiers[{index}]"),
                format!("duplicate tier name {tier:?}"),
            ));
        }
    }
    Ok(())
}
