use indicatif::ProgressBar;

use super::*;
use crate::calibrate::Target;
use crate::loso::cue_source;

/// Three-rune words, runes the encoder's vocabulary lacks (so they embed alike and trip the same
/// features), from a range of the Runic block the other source's words do not touch (so no
/// character 4-gram is shared with them).
fn rune_words(count: usize, offset: u32) -> Vec<String> {
    (0..count as u32)
        .map(|k| {
            let k = k + offset;
            [k % 32, (7 * k + 3) % 32, (13 * k + 5) % 32]
                .iter()
                .filter_map(|&c| char::from_u32(0x16A0 + c))
                .collect()
        })
        .collect()
}

/// `left` is the unseen family: 480 rows whose label follows 24 words only it uses, so a few
/// labelled rows teach a few words and more rows teach more. `other` has a cue of its own.
fn sources() -> Vec<Source> {
    let (hard, easy) = (rune_words(12, 0), rune_words(12, 12));
    let hard: Vec<&str> = hard.iter().map(String::as_str).collect();
    let easy: Vec<&str> = easy.iter().map(String::as_str).collect();
    vec![
        cue_source("other", &["ᛉᛉᛉ"], &["ᛟᛟᛟ"], 120),
        cue_source("left", &hard, &easy, 480),
    ]
}

fn options() -> TrainOptions {
    TrainOptions {
        buckets: vec![1 << 14],
        l2: vec![1e-2],
        threads: 2,
        target: Target::MaxTopShare(0.5),
        tiers: vec!["small".into(), "frontier".into()],
        bootstrap: Bootstrap {
            resamples: 200,
            seed: 1,
        },
        ..TrainOptions::default()
    }
}

fn curve_options() -> CurveOptions {
    CurveOptions {
        sizes: vec![64, 4, 16, 200],
        ..CurveOptions::new("data/left.jsonl")
    }
}

fn measure(options: &TrainOptions, curve: &CurveOptions) -> Result<LearningCurve, TrainError> {
    learning_curve(&sources(), options, curve, &ProgressBar::hidden())
}

fn apgr(point: &CurvePoint) -> f64 {
    point.apgr.unwrap_or(f64::NAN)
}

fn at(curve: &LearningCurve, arm: Arm, size: usize) -> &CurvePoint {
    let found = curve
        .points
        .iter()
        .find(|p| p.arm == Some(arm) && p.labelled == Some(size));
    found.unwrap_or_else(|| panic!("no point for {arm:?} at {size}"))
}

#[test]
fn labelled_rows_of_an_unseen_family_lift_it_from_chance_toward_the_in_domain_model() {
    let curve = measure(&options(), &curve_options()).unwrap();
    let table = curve.table();
    assert_eq!(
        (curve.rows, curve.pool, curve.test),
        (480, 240, 240),
        "{table}"
    );
    assert_eq!(curve.other_rows, 120);
    assert!((100..140).contains(&curve.test_positives), "{table}");
    // About half the test rows need the frontier: a perfect ranking has APGR about 0.75, chance 0.5.
    assert!((apgr(&curve.base) - 0.5).abs() < 0.05, "{table}");
    assert!(apgr(&curve.in_domain) > 0.72, "{table}");
    let sizes: Vec<usize> = curve.points.iter().filter_map(|p| p.labelled).collect();
    assert_eq!(
        sizes[..4],
        [4; 4],
        "sizes ascending, one point per arm: {table}"
    );
    for arm in Arm::ALL {
        let curve_of: Vec<f64> = [4, 16, 64, 200]
            .iter()
            .map(|&size| apgr(at(&curve, arm, size)))
            .collect();
        // Monotone but for noise, from above chance to the in-domain model's level.
        assert!(
            curve_of.windows(2).all(|w| w[1] > w[0] - 0.02),
            "{arm:?}: {table}"
        );
        assert!(curve_of[0] > apgr(&curve.base), "{arm:?}: {table}");
        assert!(curve_of[3] > apgr(&curve.base) + 0.15, "{arm:?}: {table}");
        assert!(
            (curve_of[3] - apgr(&curve.in_domain)).abs() < 0.03,
            "{arm:?}: {table}"
        );
    }
    // Only the scratch fit on the others and the whole pool is the in-domain model itself.
    let in_domain = curve.in_domain.minus_in_domain.unwrap();
    assert_eq!(
        (in_domain.estimate, in_domain.low, in_domain.high),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(curve.in_domain.training_rows, Some(360));
    assert_eq!(at(&curve, Arm::WarmAlone, 16).training_rows, Some(16));
    assert_eq!(at(&curve, Arm::WarmPooled, 16).training_rows, Some(136));
    for point in std::iter::once(&curve.base).chain(&curve.points) {
        let interval = point.apgr_interval.unwrap();
        assert!(interval.contains(apgr(point)), "{point:?}");
        let gap = point.minus_in_domain.unwrap();
        assert!((gap.estimate - (apgr(point) - apgr(&curve.in_domain))).abs() < 1e-12);
    }
    assert!(
        table.contains("warm, N only") && table.contains("in-domain"),
        "{table}"
    );
    assert_eq!(curve.target, None, "1,000 is not among the sizes");
}

#[test]
fn a_strong_pull_keeps_the_warm_start_at_the_base_model() {
    let curve = measure(
        &options(),
        &CurveOptions {
            warm_l2: Some(1e4),
            ..curve_options()
        },
    )
    .unwrap();
    for arm in [Arm::WarmAlone, Arm::WarmPooled] {
        for size in [4, 200] {
            let point = at(&curve, arm, size);
            assert!(
                (apgr(point) - apgr(&curve.base)).abs() < 0.01,
                "{arm:?} {size}: {}",
                curve.table()
            );
        }
    }

    // The weights themselves: the n-gram and dense weights stay at the base model's, the bias
    // alone follows the new rows' share of labels.
    let sources = sources();
    let options = options();
    let (rows, _) = train::usable_rows(&sources, &options);
    let examples = train::encode_rows(&rows, &options, 1 << 14).unwrap();
    let of_source = |wanted: usize| -> Vec<&Example> {
        let with_rows = examples.iter().zip(&rows);
        with_rows
            .filter(|(_, (source, _))| *source == wanted)
            .map(|(e, _)| e)
            .collect()
    };
    let (other, left) = (of_source(0), of_source(1));
    let fit = options.fit_options(1 << 14, 1e-2, options.prior_l2[0]);
    let base = logistic::fit(&other, &fit).unwrap().weights;
    let held = logistic::fit(&left, &warm_options(&fit, &base, 1e4))
        .unwrap()
        .weights;
    let weights = |w: &Weights| w.dense.iter().chain(&w.sparse).copied().collect::<Vec<_>>();
    for (k, (w, b)) in weights(&held).iter().zip(weights(&base)).enumerate() {
        assert!((w - b).abs() < 1e-3, "weight {k}: {w} vs {b}");
    }
    // With the grid point's own pull, the left-out family's words get weights of their own.
    let adapted = logistic::fit(&left, &warm_options(&fit, &base, 1e-2))
        .unwrap()
        .weights;
    let moved = weights(&adapted)
        .iter()
        .zip(weights(&base))
        .filter(|(w, b)| (*w - b).abs() > 0.05)
        .count();
    assert!(moved > 10, "{moved} weights moved");
}

#[test]
fn the_curve_is_the_same_for_a_seed_whatever_the_threads() {
    let curve = measure(&options(), &curve_options()).unwrap();
    let one_thread = TrainOptions {
        threads: 1,
        ..options()
    };
    assert_eq!(measure(&one_thread, &curve_options()).unwrap(), curve);
    let other_seed = TrainOptions {
        seed: 2,
        ..options()
    };
    let other = measure(&other_seed, &curve_options()).unwrap();
    assert_ne!(other.points, curve.points, "another seed, another split");
    let json = serde_json::to_value(&curve).unwrap();
    assert_eq!(json["points"][2]["arm"], "warm-alone");
    assert_eq!(json["base"]["labelled"], 0);
}

#[test]
fn the_target_names_the_best_way_at_a_thousand_rows() {
    let point = |arm, labelled, apgr| CurvePoint {
        model: String::new(),
        arm,
        labelled,
        training_rows: None,
        auc: None,
        apgr,
        apgr_interval: None,
        minus_in_domain: None,
    };
    let in_domain = point(None, Some(3000), Some(0.62));
    let points = vec![
        point(Some(Arm::ScratchPooled), Some(300), Some(0.7)),
        point(Some(Arm::ScratchPooled), Some(1000), Some(0.59)),
        point(Some(Arm::WarmAlone), Some(1000), Some(0.605)),
        point(Some(Arm::WarmPooled), Some(1000), None),
    ];
    let check = target_check(&points, &in_domain).unwrap();
    assert_eq!(check.best, Arm::WarmAlone);
    assert!((check.gap - 0.015).abs() < 1e-12 && check.met, "{check:?}");
    let behind = target_check(&points[..2], &in_domain).unwrap();
    assert!(!behind.met, "{behind:?}");
    assert_eq!(target_check(&points[..1], &in_domain), None);
}

#[test]
fn impossible_curves_are_refused_with_the_reason() {
    let refused = |options: &TrainOptions, curve: &CurveOptions| match measure(options, curve) {
        Ok(_) => String::new(),
        Err(error) => error.0,
    };
    let too_many = CurveOptions {
        sizes: vec![100, 241],
        ..curve_options()
    };
    assert!(refused(&options(), &too_many).contains("more than the 240 rows"));
    let unknown = CurveOptions::new("data/elsewhere.jsonl");
    assert!(refused(&options(), &unknown).contains("not one of the training files"));
    let grid = TrainOptions {
        l2: vec![1e-2, 1e-3],
        ..options()
    };
    assert!(refused(&grid, &curve_options()).contains("one point"));
    let no_test = CurveOptions {
        test_share: 1.0,
        ..curve_options()
    };
    assert!(refused(&options(), &no_test).contains("test share"));
    let alone = vec![sources().remove(1)];
    let error = learning_curve(&alone, &options(), &curve_options(), &ProgressBar::hidden());
    assert!(error.unwrap_err().0.contains("another source"));
}
