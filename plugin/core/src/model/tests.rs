use super::ngrams::Kind;
use super::*;
use crate::config::Config;
use crate::policy::{decide, RequestHead};

/// Deterministic pseudo-random numbers in [-1, 1) (xorshift64*).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// A model whose every weight matters: random dense and sparse weights, a non-trivial calibration.
fn random_model(buckets: u32, seed: u64) -> Model {
    let mut noise = Noise(seed);
    let mut model = Model::hand_set(buckets);
    model.bias = noise.next();
    for weight in &mut model.dense {
        *weight = 2.0 * noise.next();
    }
    for weight in &mut model.sparse {
        *weight = noise.next() as f32;
    }
    model.semantic = Some(
        (0..crate::embed::DIMS)
            .map(|_| 0.5 * noise.next())
            .collect(),
    );
    model.calibration = Calibration { a: 0.7, b: -0.2 };
    model.thresholds = vec![0.3, 0.6];
    model.meta = serde_json::json!({"seed": seed, "data": ["train/a.jsonl"], "cv": {"auc": 0.71}});
    model
}

fn ngrams_of(text: &str, buckets: u32) -> Vec<(Kind, u32)> {
    let mut out = Vec::new();
    ngrams::visit([text], |kind, hash| out.push((kind, bucket(hash, buckets))));
    out
}

#[test]
fn hashing_is_pinned() {
    // A change here changes the buckets every trained model refers to: bump FEATURE_SET with it.
    assert_eq!(FEATURE_SET, "triage-features-v1");
    // " hi there ": "hi" ends at the space, then " hi " completes; "there" ends at the text's end,
    // then its pair with "hi", then the closing "ere ".
    let expected = [
        (Kind::Word, 61069),
        (Kind::Chars, 62911),
        (Kind::Chars, 45591),
        (Kind::Chars, 45203),
        (Kind::Chars, 21844),
        (Kind::Chars, 23135),
        (Kind::Chars, 16338),
        (Kind::Word, 2396),
        (Kind::WordPair, 31264),
        (Kind::Chars, 30119),
    ];
    assert_eq!(ngrams_of("Hi there", 1 << 16), expected);
}

#[test]
fn hashing_normalises_case_digits_and_whitespace() {
    let buckets = 1 << 16;
    let same = [
        ("Hi there", "hi   THERE"),
        ("route 17 items", "route 42 items"),
        ("a\n\tb", "a b"),
        ("  padded  ", "padded"),
    ];
    for (a, b) in same {
        assert_eq!(
            ngrams_of(a, buckets),
            ngrams_of(b, buckets),
            "{a:?} vs {b:?}"
        );
    }
    let different = [
        ("hi there", "there hi"),
        ("prove", "proof"),
        ("日本語", "中文字"),
    ];
    for (a, b) in different {
        assert_ne!(
            ngrams_of(a, buckets),
            ngrams_of(b, buckets),
            "{a:?} vs {b:?}"
        );
    }
    // Kinds: " hi there " has 10 bytes, so 7 character 4-grams; 2 words; 1 pair. Punctuation splits
    // words but not pairs; "don't" is two words; non-ASCII bytes belong to words.
    let count = |text: &str, kind: Kind| {
        ngrams_of(text, buckets)
            .iter()
            .filter(|(k, _)| *k == kind)
            .count()
    };
    assert_eq!(count("hi there", Kind::Chars), 7);
    assert_eq!(count("hi, there!", Kind::Word), 2);
    assert_eq!(count("hi, there!", Kind::WordPair), 1);
    assert_eq!(count("don't", Kind::Word), 2);
    assert_eq!(count("naïve café", Kind::Word), 2);
    assert_eq!(count("", Kind::Chars), 0);
    assert_eq!(count("a", Kind::Chars), 0, "\" a \" is 3 bytes");
    // Each kind has its own seed: "alpha" as a word and "alpha alpha" as a pair land apart.
    let pair = ngrams_of("alpha alpha", buckets);
    let bucket_of = |kind: Kind| pair.iter().find(|(k, _)| *k == kind).map(|(_, b)| *b);
    assert_ne!(bucket_of(Kind::Word), bucket_of(Kind::WordPair));
}

#[test]
fn buckets_stay_below_the_count() {
    for buckets in [1, 2, 1024, 1 << 16] {
        let all = ngrams_of("The quick brown fox jumps over the lazy dog 0123.", buckets);
        assert!(all.iter().all(|(_, bucket)| *bucket < buckets), "{buckets}");
    }
}

fn bodies() -> Vec<(ApiFormat, String)> {
    let long = "The ledger writes stall under load; explain why and propose a fix. ".repeat(40);
    vec![
        (
            ApiFormat::OpenAiChat,
            serde_json::json!({"model": "auto", "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Classify the sentiment: great phone!"}]})
            .to_string(),
        ),
        (
            ApiFormat::OpenAiChat,
            serde_json::json!({"messages": [
                {"role": "user", "content": "Prove that √2 is irrational, step by step. $$x^2 = 2$$"},
                {"role": "assistant", "content": "Suppose p/q..."},
                {"role": "user", "content": [{"type": "text", "text": long}]}],
                "max_tokens": 900, "response_format": {"type": "json_object"}})
            .to_string(),
        ),
        (
            ApiFormat::OpenAiResponses,
            serde_json::json!({"model": "auto", "instructions": "Answer in French.",
                "input": "Write a function that merges two sorted lists:\n```python\ndef merge(a, b):\n    pass\n```",
                "reasoning": {"effort": "high"}})
            .to_string(),
        ),
        (
            ApiFormat::AnthropicMessages,
            serde_json::json!({"model": "auto", "max_tokens": 100, "system": "日本語で答えてください。",
                "messages": [{"role": "user", "content": "東京の人口は？ Also: what is 17 * 23?"}]})
            .to_string(),
        ),
        (
            ApiFormat::OpenAiChat,
            serde_json::json!({"messages": [{"role": "user", "content": ""}]}).to_string(),
        ),
    ]
}

#[test]
fn the_filter_path_and_the_training_inputs_agree() {
    let model = random_model(1 << 12, 7);
    for cap in [64, 1000, 65536] {
        let config = Config::from_json(
            format!(
                r#"{{"limits":{{"max_scan_bytes":{cap}}}, "model":{}}}"#,
                model.to_json()
            )
            .as_bytes(),
        )
        .unwrap();
        for (format, body) in bodies() {
            let inputs = model_inputs(format, body.as_bytes(), cap, model.buckets).unwrap();
            let expected = model.probability(&inputs);
            let request = parse_request(format, body.as_bytes()).unwrap();
            let predicted = model.predict(&request, cap).probability;
            assert!(
                (predicted - expected).abs() < 1e-12,
                "{cap} {body}: {predicted} vs {expected}"
            );
            let head = RequestHead {
                format,
                path: "/",
                headers: &[],
                identity: crate::Identity::ANONYMOUS,
            };
            let decided = decide(&config, &head, body.as_bytes()).score.unwrap();
            assert!((decided - expected).abs() < 1e-12, "{cap} {body}");
            assert!(
                inputs.sparse.windows(2).all(|pair| pair[0].0 < pair[1].0),
                "sorted, merged"
            );
            assert!(inputs.sparse.iter().all(|(_, value)| *value > 0.0));
            assert_eq!(
                inputs.dense,
                Features::extract(&request, cap).values(),
                "dense = Features::values"
            );
        }
    }
}

#[test]
fn inputs_fail_open_like_decide() {
    assert_eq!(
        model_inputs(ApiFormat::OpenAiChat, b"{not json", 100, 16),
        Err(FailOpen::InvalidJson)
    );
    assert_eq!(
        model_inputs(ApiFormat::OpenAiChat, b"  ", 100, 16),
        Err(FailOpen::EmptyBody)
    );
}

#[test]
fn the_scan_cap_bounds_the_ngrams() {
    let text = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu";
    let body = |text: &str| {
        serde_json::json!({"messages": [{"role": "user", "content": text}]})
            .to_string()
            .into_bytes()
    };
    for cap in [1, 10, 23, 40] {
        let capped = model_inputs(ApiFormat::OpenAiChat, &body(text), cap, 1 << 16).unwrap();
        let truncated =
            model_inputs(ApiFormat::OpenAiChat, &body(&text[..cap]), 1 << 16, 1 << 16).unwrap();
        assert_eq!(capped.sparse, truncated.sparse, "cap {cap}");
    }
    let full = model_inputs(ApiFormat::OpenAiChat, &body(text), 1 << 16, 1 << 16).unwrap();
    let capped = model_inputs(ApiFormat::OpenAiChat, &body(text), 10, 1 << 16).unwrap();
    assert!(capped.sparse.len() < full.sparse.len());
}

#[test]
fn ngram_values_are_normalised_per_kind() {
    // "hi there": 2 words, 1 pair, 7 character 4-grams; with every sparse weight w the n-grams add
    // w * (2/sqrt(2) + 1/sqrt(1) + 7/sqrt(7)).
    let mut model = Model::hand_set(1 << 10);
    model.dense.fill(0.0);
    model.bias = 0.0;
    model.sparse.fill(0.5);
    let body = br#"{"messages":[{"role":"user","content":"hi there"}]}"#;
    let inputs = model_inputs(ApiFormat::OpenAiChat, body, 1000, model.buckets).unwrap();
    let expected = 0.5 * (2f64.sqrt() + 1.0 + 7f64.sqrt());
    assert!((model.raw_logit(&inputs) - expected).abs() < 1e-12);
    let request = parse_request(ApiFormat::OpenAiChat, body).unwrap();
    let prediction = model.predict(&request, 1000);
    assert_eq!(prediction.reasons, vec![format!("ngrams+{expected:.2}")]);
    // A longer text does not grow the n-grams' part in proportion.
    let long = format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "hi there ".repeat(100)
    );
    let long_inputs = model_inputs(ApiFormat::OpenAiChat, long.as_bytes(), 1 << 16, 1024).unwrap();
    assert!(model.raw_logit(&long_inputs) < 20.0 * expected);
}

#[test]
fn reasons_name_the_largest_contributions_and_the_ngrams() {
    let mut model = Model::hand_set(16);
    model.bias = 0.0;
    model.dense.fill(0.0);
    let set = |model: &mut Model, name: &str, weight: f64| {
        let index = FEATURE_NAMES.iter().position(|n| *n == name).unwrap();
        model.dense[index] = weight;
    };
    set(&mut model, "simple_task", -2.0);
    set(&mut model, "tokens", 0.1);
    set(&mut model, "last_user", 0.05);
    set(&mut model, "questions", 3.0);
    set(&mut model, "turns", 5.0);
    model.sparse.fill(-0.05);
    model.calibration = Calibration { a: 2.0, b: 0.0 };
    let body = br#"{"messages":[{"role":"user","content":"Classify and extract the sentiment, yes or no? ok?"}]}"#;
    let request = parse_request(ApiFormat::OpenAiChat, body).unwrap();
    let prediction = model.predict(&request, 1000);
    let features = Features::extract(&request, 1000);
    assert_eq!(features.simple_task, 1.0);
    assert_eq!(features.turns, 0.0, "a zero contribution is no reason");
    // Contributions to the calibrated logit: a * w * x.
    let reasons = &prediction.reasons;
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0], "simple_task-4.00");
    assert_eq!(reasons[1], "questions+1.50");
    assert!(
        reasons.iter().any(|r| r.starts_with("ngrams-")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("questions+")),
        "{reasons:?}"
    );
    assert!(
        !reasons.iter().any(|r| r.starts_with("last_user")),
        "{reasons:?}"
    );
    let magnitude = |reason: &String| -> f64 {
        let at = reason.find(['+', '-']).unwrap();
        reason[at + 1..].parse().unwrap()
    };
    assert!(reasons
        .windows(2)
        .all(|w| magnitude(&w[0]) >= magnitude(&w[1])));
}

#[test]
fn the_embedding_adds_its_contribution_and_names_it() {
    let mut model = Model::hand_set(16);
    model.dense.fill(0.0);
    let body =
        br#"{"messages":[{"role":"user","content":"Translate this sentence into French."}]}"#;
    let request = parse_request(ApiFormat::OpenAiChat, body).unwrap();
    let without = model.predict(&request, 1000);
    assert!(!without.reasons.iter().any(|r| r.starts_with("semantic")));
    // Weights along the request's own embedding, whose inputs have |x|^2 = DIMS: the contribution
    // is 1.
    let inputs = crate::model::semantic_inputs(&request);
    let dims = crate::embed::DIMS as f64;
    model.semantic = Some(inputs.iter().map(|x| x / dims).collect());
    let with = model.predict(&request, 1000);
    let logit = |p: f64| (p / (1.0 - p)).ln();
    assert!((logit(with.probability) - logit(without.probability) - 1.0).abs() < 1e-5);
    assert_eq!(with.reasons[0], "semantic+1.00");
    // The filter's path and the training inputs agree on it.
    let trained = model.probability(&model_inputs(ApiFormat::OpenAiChat, body, 1000, 16).unwrap());
    assert!((trained - with.probability).abs() < 1e-12);
}

#[test]
fn json_round_trip_is_exact() {
    let mut model = random_model(1 << 8, 11);
    model.bias = 0.1 + 0.2;
    model.dense[0] = 1e-300;
    model.dense[1] = -123456.789e10;
    model.sparse[0] = f32::MIN_POSITIVE;
    let json = model.to_json();
    let back = Model::from_json(json.as_bytes()).unwrap();
    assert_eq!(back, model);
    assert_eq!(back.to_json(), json, "writing is deterministic");
    let file: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(file["format"], "triage-model");
    assert_eq!(file["version"], 1);
    assert_eq!(file["feature_set"], FEATURE_SET);
    assert_eq!(file["buckets"], 256);
    assert_eq!(
        file["dense"].as_object().unwrap().len(),
        FEATURE_COUNT,
        "every feature by name"
    );
    assert!(file["checksum"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(file["checksum"].as_str().unwrap().len(), 7 + 64);
}

/// Edits the model file as JSON, keeping the checksum unless the edit sets it.
fn edited(model: &Model, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut file: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    edit(&mut file);
    file.to_string().into_bytes()
}

/// The file of `model` written after `change`, with a matching checksum: only the validation refuses.
fn rewritten(change: impl FnOnce(&mut Model)) -> Vec<u8> {
    let mut model = random_model(1 << 4, 3);
    change(&mut model);
    model.to_json().into_bytes()
}

#[test]
fn every_problem_is_refused_naming_its_field() {
    let model = random_model(1 << 4, 3);
    let nan_sparse = {
        let mut bytes: Vec<u8> = model.sparse.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edited(&model, |f| f["bias"] = 0.125.into()),
            "checksum: \"sha256:",
        ),
        (
            edited(&model, |f| f["checksum"] = "sha256:00".into()),
            "checksum: \"sha256:00\" does not match",
        ),
        (
            edited(&model, |f| f["meta"] = "edited provenance".into()),
            "",
        ),
        (
            edited(&model, |f| f["feature_set"] = "triage-features-v0".into()),
            "feature_set: the model was trained on \"triage-features-v0\"",
        ),
        (
            edited(&model, |f| f["format"] = "onnx".into()),
            "format: must be \"triage-model\"",
        ),
        (
            edited(&model, |f| f["version"] = 2.into()),
            "version: this build reads version 1",
        ),
        (
            edited(&model, |f| f["buckets"] = 32.into()),
            "buckets: is 32, but sparse_f32le_base64 holds 64 bytes",
        ),
        (
            edited(&model, |f| f["buckets"] = 24.into()),
            "buckets: must be a power of two",
        ),
        (
            rewritten(|m| {
                m.sparse.pop();
            }),
            "buckets: is 16, but sparse_f32le_base64 holds 60 bytes",
        ),
        (
            edited(&model, |f| {
                f["sparse_f32le_base64"] = nan_sparse.clone().into()
            }),
            "sparse_f32le_base64: bucket 2 holds NaN",
        ),
        (
            edited(&model, |f| f["sparse_f32le_base64"] = "!!".into()),
            "sparse_f32le_base64: invalid base64",
        ),
        (
            edited(&model, |f| {
                f["semantic"]["table_sha256"] = "sha256:0123".into()
            }),
            "semantic.table_sha256: the model was trained on embedding table all-MiniLM-L6-v2/static-64/tail-512 (sha256:0123) but this build ships",
        ),
        (
            edited(&model, |f| f["semantic"]["table"] = "bge-small/static-64".into()),
            "semantic.table_sha256: the model was trained on embedding table bge-small/static-64",
        ),
        (
            rewritten(|m| {
                if let Some(weights) = m.semantic.as_mut() {
                    weights.pop();
                }
            }),
            "semantic.weights: holds 63 weights, the embedding has 64 dimensions",
        ),
        (
            edited(&model, |f| f["semantic"]["weights"][0] = 0.125.into()),
            "checksum: \"sha256:",
        ),
        (
            edited(&model, |f| f["semantic"]["extra"] = 1.into()),
            "semantic.extra: unknown field `extra`",
        ),
        (
            rewritten(|m| m.dense[0] = f64::INFINITY),
            "dense.tokens: invalid type: null",
        ),
        (
            edited(&model, |f| f["dense"]["tokens"] = serde_json::Value::Null),
            "dense.tokens: invalid type: null",
        ),
        (
            br#"{"format":"triage-model","version":1,"feature_set":"x","buckets":1,"bias":1e999}"#
                .to_vec(),
            "bias: number out of range",
        ),
        (
            edited(&model, |f| {
                f["dense"].as_object_mut().unwrap().remove("latex");
            }),
            "dense.latex: missing",
        ),
        (
            edited(&model, |f| f["dense"]["colour"] = 1.0.into()),
            "dense.colour: unknown feature",
        ),
        (rewritten(|m| m.bias = f64::NAN), "bias: invalid type: null"),
        (
            rewritten(|m| m.thresholds = vec![0.6, 0.6]),
            "thresholds[1]: must be greater than thresholds[0] (0.6)",
        ),
        (
            rewritten(|m| m.thresholds = vec![0.7, 0.2]),
            "thresholds[1]: must be greater",
        ),
        (
            rewritten(|m| m.thresholds = vec![-0.1, 0.2]),
            "thresholds[0]: must be within [0, 1]",
        ),
        (
            rewritten(|m| m.thresholds = vec![0.5]),
            "thresholds: needs one threshold per tier but the last (2 for 3 tiers), got 1",
        ),
        (
            rewritten(|m| m.tiers = vec![]),
            "tiers: must list at least one tier",
        ),
        (
            rewritten(|m| m.tiers[1] = "small".into()),
            "tiers[1]: duplicate tier name \"small\"",
        ),
        (
            rewritten(|m| m.tiers[2] = "Frontier".into()),
            "tiers[2]: \"Frontier\" must match",
        ),
        (
            edited(&model, |f| f["colour"] = 1.into()),
            "colour: unknown field",
        ),
        (
            edited(&model, |f| f["calibration"]["a"] = "x".into()),
            "calibration.a: invalid type",
        ),
        (b"[1,2]".to_vec(), "(root): must be a JSON object"),
        (b"  ".to_vec(), "(root): must be a JSON object"),
        (b"{} x".to_vec(), "(root):"),
    ];
    for (json, expected) in cases {
        let text = String::from_utf8_lossy(&json)
            .chars()
            .take(200)
            .collect::<String>();
        match (Model::from_json(&json), expected) {
            (Ok(_), "") => {}
            (Ok(_), _) => panic!("accepted: {text}"),
            (Err(error), expected) => assert!(
                !expected.is_empty() && error.to_string().starts_with(expected),
                "{text}\n  got:      {error}\n  expected: {expected}"
            ),
        }
    }
}

#[test]
fn validate_checks_models_built_in_memory() {
    let mut model = random_model(1 << 4, 5);
    assert_eq!(model.validate(), Ok(()));
    model.dense[3] = f64::NAN;
    assert_eq!(model.validate().unwrap_err().field(), "dense.last_user");
    let mut model = random_model(1 << 4, 5);
    model.sparse[7] = f32::INFINITY;
    assert_eq!(model.validate().unwrap_err().field(), "sparse_f32le_base64");
    let mut model = random_model(1 << 4, 5);
    model.calibration.a = f64::INFINITY;
    assert_eq!(model.validate().unwrap_err().field(), "calibration.a");
    let mut model = random_model(1 << 4, 5);
    model.dense.pop();
    assert_eq!(model.validate().unwrap_err().field(), "dense");
}

#[test]
fn config_refusals_name_the_model_field() {
    let model = random_model(1 << 4, 9);
    let config = |file: Vec<u8>, tiers: &str| {
        let json = format!(r#"{{{tiers}"model":{}}}"#, String::from_utf8(file).unwrap());
        Config::from_json(json.as_bytes())
    };
    let cases = [
        (edited(&model, |f| f["checksum"] = "sha256:ab".into()), "", "model.checksum:"),
        (
            edited(&model, |f| f["feature_set"] = "v0".into()),
            "",
            "model.feature_set:",
        ),
        (edited(&model, |f| f["buckets"] = 8.into()), "", "model.buckets:"),
        (
            rewritten(|m| m.tiers = vec!["cheap".into(), "dear".into(), "top".into()]),
            "",
            "model.tiers: the model's thresholds are for tiers [cheap, dear, top], not [small, mid, frontier]",
        ),
        (
            model.to_json().into_bytes(),
            r#""tiers":[{"name":"a"},{"name":"b"}],"#,
            "model.tiers: the model's thresholds are for tiers [small, mid, frontier], not [a, b]",
        ),
    ];
    for (file, tiers, expected) in cases {
        let error = config(file, tiers).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{error}\n expected {expected}");
    }
    // With every max_score given the config wins, whatever tiers the model was calibrated for.
    let file = rewritten(|m| m.tiers = vec!["cheap".into(), "dear".into(), "top".into()]);
    let accepted = config(
        file,
        r#""tiers":[{"name":"a","max_score":0.1},{"name":"b"}],"#,
    )
    .unwrap();
    assert_eq!(accepted.thresholds(), vec![0.1]);
}

#[test]
fn model_thresholds_apply_when_the_config_sets_none() {
    let mut model = random_model(1 << 4, 13);
    model.tiers = vec!["cheap".into(), "dear".into()];
    model.thresholds = vec![0.42];
    let json = format!(
        r#"{{"tiers":[{{"name":"cheap","model":"c"}},{{"name":"dear","model":"d"}}],"model":{}}}"#,
        model.to_json()
    );
    let config = Config::from_json(json.as_bytes()).unwrap();
    assert_eq!(config.thresholds(), vec![0.42]);
    assert_eq!(config.model(), &model);
    // Routing follows them: sigmoid(-0.3228) = 0.41999 goes cheap, sigmoid(-0.3) = 0.4256 goes dear.
    for (bias, tier) in [(-0.3228, "cheap"), (-0.3, "dear")] {
        let mut constant = model.clone();
        constant.dense.fill(0.0);
        constant.sparse.fill(0.0);
        constant.semantic = None;
        constant.calibration = Calibration { a: 1.0, b: 0.0 };
        constant.bias = bias;
        let json = format!(
            r#"{{"tiers":[{{"name":"cheap"}},{{"name":"dear"}}],"model":{}}}"#,
            constant.to_json()
        );
        let config = Config::from_json(json.as_bytes()).unwrap();
        let head = RequestHead {
            format: ApiFormat::OpenAiChat,
            path: "/",
            headers: &[],
            identity: crate::Identity::ANONYMOUS,
        };
        let decision = decide(
            &config,
            &head,
            br#"{"messages":[{"role":"user","content":"x"}]}"#,
        );
        assert_eq!(decision.tier, tier, "{:?}", decision.score);
    }
}

#[test]
fn the_shipped_model_loads() {
    assert_eq!(
        Model::shipped_error(),
        None,
        "plugin/core/models/default.json"
    );
    let model = Model::shipped();
    assert_eq!(
        model.tiers,
        vec!["small", "mid", "frontier"],
        "the default tiers"
    );
    assert_eq!(model.buckets as usize, model.sparse.len());
    assert_eq!(model.validate(), Ok(()));
    assert!(model.meta.is_object(), "provenance");
    let config = Config::default();
    assert_eq!(config.thresholds(), model.thresholds);
}

#[test]
fn the_shipped_model_ranks_a_hard_task_above_a_trivial_one() {
    let model = Model::shipped();
    let probability = |text: &str| {
        let body = serde_json::json!({"messages": [{"role": "user", "content": text}]}).to_string();
        let request = parse_request(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
        model.predict(&request, 1 << 16).probability
    };
    let trivial = probability("Translate 'good morning' to French.");
    let hard = probability(
        "Prove that there are infinitely many primes p such that p + 2 is also prime, or explain \
         precisely why the known techniques fail. Derive the Hardy-Littlewood constant step by step.",
    );
    assert!(hard > trivial, "hard {hard} trivial {trivial}");
}

#[test]
fn a_broken_embedded_model_falls_back_to_the_hand_set_weights() {
    for broken in [&b""[..], b"{", b"{}", br#"{"format":"triage-model"}"#] {
        let shipped = load_shipped(broken);
        assert!(shipped.error.is_some());
        assert_eq!(shipped.model.dense_weight("simple_task"), Some(-2.4));
        assert_eq!(shipped.model.thresholds, vec![0.35, 0.65]);
        assert_eq!(shipped.model.validate(), Ok(()));
        assert_eq!(shipped.model.meta["source"], "fallback: hand-set weights");
    }
    let good = load_shipped(SHIPPED_JSON);
    assert_eq!(good.error, None);
}

#[test]
fn the_hand_set_model_weighs_every_feature_it_names() {
    for (name, weight) in HAND_SET_WEIGHTS {
        assert_eq!(
            Model::hand_set(1).dense_weight(name),
            Some(*weight),
            "{name}"
        );
    }
    assert_eq!(HAND_SET_WEIGHTS.len(), FEATURE_COUNT);
}

#[test]
fn probabilities_stay_in_range() {
    let mut model = random_model(1 << 4, 17);
    let inputs = ModelInputs {
        dense: [1.0; FEATURE_COUNT],
        sparse: vec![(3, 1.0), (99, 5.0)],
        semantic: [1.0; crate::embed::DIMS],
    };
    for bias in [-1e308, 1e308, 0.0] {
        model.bias = bias;
        let p = model.probability(&inputs);
        assert!((0.0..=1.0).contains(&p), "{bias} {p}");
    }
    model.bias = 1e308;
    model.dense.fill(1e308);
    model.calibration.a = -1.0;
    let p = model.probability(&inputs);
    assert!((0.0..=1.0).contains(&p), "{p}");
}
