//! Leave-one-source-out: how the chosen grid point does on a task family it never saw.
//!
//! k-fold cross-validation deals every source into every fold, so each out-of-fold score comes from a
//! model that learnt that source's own cues from its other rows. Here, for each source, the chosen
//! point is fitted on the rows of every other source and scores that source's rows; the numbers
//! are then the k-fold table's, computed by the same code ([`train::source_report`],
//! [`train::add_interval`]).
//!
//! No Platt scaling: AUC, APGR and CPT depend only on how the scores rank the rows, which a
//! monotone map of the logits does not change. No pooled row either: it would rank rows scored by
//! models fitted on very different data (leaving out the largest source removes most of it)
//! against each other.

use indicatif::ProgressBar;

use crate::bootstrap::Bootstrap;
use crate::dataset::Row;
use crate::logistic::{self, Example, FitOptions};
use crate::train::{self, Source, SourceReport, TrainError, TrainOptions};

/// Per source that has rows, the chosen point's numbers on its rows when fitted on the other
/// sources' rows; None with fewer than two such sources. `examples` are `rows` encoded for the
/// chosen point and `fit` its options.
pub(crate) fn reports(
    sources: &[Source],
    rows: &[(usize, &Row)],
    examples: &[Example],
    fit: &FitOptions,
    options: &TrainOptions,
    progress: &ProgressBar,
) -> Result<Option<Vec<SourceReport>>, TrainError> {
    let held_out = sources_with_rows(sources, rows);
    if held_out.len() < 2 {
        return Ok(None);
    }
    progress.inc_length(held_out.len() as u64);
    progress.set_message("leave-one-source-out");
    let logits = held_out_logits(rows, examples, fit, options.threads, progress)?;
    Ok(Some(reports_of(sources, rows, &logits, options.bootstrap)))
}

/// The indices of the sources some row comes from.
fn sources_with_rows(sources: &[Source], rows: &[(usize, &Row)]) -> Vec<usize> {
    (0..sources.len())
        .filter(|&source| rows.iter().any(|(s, _)| *s == source))
        .collect()
}

/// Every row's logit from a fit on the rows of the other sources only: one fit per source, on
/// `threads` threads, each single-threaded, so the logits do not depend on the thread count.
fn held_out_logits(
    rows: &[(usize, &Row)],
    examples: &[Example],
    fit: &FitOptions,
    threads: usize,
    progress: &ProgressBar,
) -> Result<Vec<f64>, TrainError> {
    let mut held_out: Vec<usize> = rows.iter().map(|(source, _)| *source).collect();
    held_out.sort_unstable();
    held_out.dedup();
    let scored = train::run_jobs(held_out.len(), threads, progress, |job| {
        let left_out = held_out.get(job).copied();
        let in_left_out = |index: usize| rows.get(index).map(|(s, _)| *s) == left_out;
        let others: Vec<&Example> = examples
            .iter()
            .enumerate()
            .filter(|(index, _)| !in_left_out(*index))
            .map(|(_, example)| example)
            .collect();
        let fitted = logistic::fit(&others, fit).map_err(|e| {
            TrainError(format!(
                "leave-one-source-out, source {}: {e}",
                left_out.unwrap_or(job)
            ))
        })?;
        Ok(examples
            .iter()
            .enumerate()
            .filter(|(index, _)| in_left_out(*index))
            .map(|(index, example)| (index, fitted.weights.logit(example)))
            .collect::<Vec<_>>())
    })?;
    let mut logits = vec![0.0; rows.len()];
    for (index, logit) in scored.into_iter().flatten() {
        if let Some(slot) = logits.get_mut(index) {
            *slot = logit;
        }
    }
    Ok(logits)
}

/// The k-fold table's numbers, with intervals, of each source that has rows, on `logits`.
fn reports_of(
    sources: &[Source],
    rows: &[(usize, &Row)],
    logits: &[f64],
    bootstrap: Bootstrap,
) -> Vec<SourceReport> {
    let held_out = sources_with_rows(sources, rows);
    sources
        .iter()
        .enumerate()
        .filter(|(index, _)| held_out.contains(index))
        .map(|(index, source)| {
            let name = train::display_name(&source.name);
            let mut report = train::source_report(name, rows, logits, Some(index));
            train::add_interval(&mut report, rows, logits, Some(index), bootstrap);
            report
        })
        .collect()
}

/// The sources on which the model's APGR is below prompt length's.
pub fn below_length(reports: &[SourceReport]) -> Vec<&SourceReport> {
    reports
        .iter()
        .filter(|report| match (report.model.apgr, report.length.apgr) {
            (Some(model), Some(length)) => model < length,
            _ => false,
        })
        .collect()
}

/// The leave-one-source-out table, in the k-fold table's columns, and the sources where the model
/// does worse than prompt length.
pub(crate) fn table(reports: &[SourceReport]) -> String {
    let mut out = String::from(
        "leave-one-source-out (fit on the other sources; rank metrics, no Platt; intervals as above):\n",
    );
    out += &train::source_table(reports);
    let below = below_length(reports);
    out += &if below.is_empty() {
        format!(
            "leave-one-source-out: the model's APGR is at or above prompt length's on all {} sources\n",
            reports.len()
        )
    } else {
        let names: Vec<String> = below
            .iter()
            .map(|report| {
                format!(
                    "{} ({:.3} < {:.3})",
                    report.source,
                    report.model.apgr.unwrap_or(f64::NAN),
                    report.length.apgr.unwrap_or(f64::NAN)
                )
            })
            .collect();
        format!(
            "leave-one-source-out: the model's APGR is below prompt length's on {} of {} sources: {}\n",
            below.len(),
            reports.len(),
            names.join(", ")
        )
    };
    out
}

/// A source of `rows` rows whose label is decided by words only this source uses: every other row
/// holds one of the `hard` words, answered by the frontier tier only, the rest one of the `easy`
/// words, answered by both tiers (each list taken in turn). Words of the same length in scripts the
/// encoder's vocabulary lacks trip no hand-made feature alone and embed alike, so nothing else tells
/// them apart.
#[cfg(test)]
pub(crate) fn cue_source(name: &str, hard: &[&str], easy: &[&str], rows: usize) -> Source {
    let outcome = |quality: f64, cost_usd: f64| crate::dataset::Outcome {
        model: "m".into(),
        quality,
        cost_usd,
        cost_estimated: false,
    };
    let rows = (0..rows)
        .map(|i| {
            let needs_frontier = i % 2 == 0;
            let words = if needs_frontier { hard } else { easy };
            let word = words.get((i / 2) % words.len().max(1)).unwrap_or(&"");
            // Each item number once hard, once easy: the numbers say nothing about the label.
            let text = format!("tell me about the {word}, item {}", i / 2);
            let request =
                serde_json::json!({"model": "auto", "messages": [{"role": "user", "content": text}]});
            Row {
                id: format!("{name}/{i}"),
                source: name.into(),
                request: request.to_string(),
                outcomes: [
                    (
                        "small".to_string(),
                        outcome(f64::from(u8::from(!needs_frontier)), 0.001),
                    ),
                    ("frontier".to_string(), outcome(1.0, 0.01)),
                ]
                .into_iter()
                .collect(),
                all_models: Default::default(),
            }
        })
        .collect();
    Source {
        name: format!("data/{name}.jsonl"),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use crate::train::DENSE_LEN;
    use indicatif::ProgressBar;

    use super::*;
    use crate::baselines;
    use crate::bootstrap;
    use crate::calibrate::Target;
    use crate::metrics::{self, Scored};

    fn two_sources() -> Vec<Source> {
        // Letters of scripts the encoder's vocabulary lacks: each word is one [UNK], whose
        // embedding row is zero, and each counts as non-Latin alike; so neither the embedding nor a
        // feature carries what one source's cue means over to the other.
        vec![
            cue_source("a", &["ꙮꙮꙮ"], &["ᚠᚠᚠ"], 60),
            cue_source("b", &["ᛉᛉᛉ"], &["ᛟᛟᛟ"], 60),
        ]
    }

    fn options() -> TrainOptions {
        TrainOptions {
            folds: 3,
            buckets: vec![1 << 12],
            l2: vec![1e-2],
            threads: 2,
            target: Target::MaxTopShare(0.5),
            tiers: vec!["small".into(), "frontier".into()],
            ..TrainOptions::default()
        }
    }

    fn indexed(sources: &[Source]) -> Vec<(usize, &Row)> {
        sources
            .iter()
            .enumerate()
            .flat_map(|(index, source)| source.rows.iter().map(move |row| (index, row)))
            .collect()
    }

    fn fit_options() -> FitOptions {
        FitOptions {
            max_iters: 400,
            ..FitOptions::new(DENSE_LEN, 1 << 12, 1e-2)
        }
    }

    #[test]
    fn a_cue_only_its_own_source_has_helps_k_fold_but_not_leave_one_source_out() {
        let sources = two_sources();
        let trained = train::train(&sources, &options(), &ProgressBar::hidden()).unwrap();
        let report = &trained.report;
        let k_fold = &report.chosen().unwrap().sources;
        let loso = report.leave_one_source_out.as_ref().unwrap();
        assert_eq!(loso.len(), 2, "one entry per source, no pooled row");
        for (index, name) in ["a.jsonl", "b.jsonl"].into_iter().enumerate() {
            let (seen, unseen) = (&k_fold[index], &loso[index]);
            assert_eq!((seen.source.as_str(), unseen.source.as_str()), (name, name));
            assert_eq!(unseen.rows, 60);
            // Half the rows need the frontier: a perfect ranking has APGR 0.75, chance 0.5.
            let (seen_apgr, unseen_apgr) = (seen.model.apgr.unwrap(), unseen.model.apgr.unwrap());
            assert!(seen_apgr > 0.7, "{name}: k-fold APGR {seen_apgr}");
            assert!(
                (unseen_apgr - 0.5).abs() < 0.05,
                "{name}: LOSO APGR {unseen_apgr}"
            );
            assert!((unseen.model.auc.unwrap() - 0.5).abs() < 0.05, "{unseen:?}");
            assert!(unseen.model_apgr_interval.is_some() && unseen.model_minus_length.is_some());
        }

        let meta = &trained.model.meta;
        let entries = meta["leave_one_source_out"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["source"], "a.jsonl");
        let keys = |entry: &serde_json::Value| {
            entry
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&entries[1]), keys(&meta["cross_validation"][1]));
        let table = report.table();
        assert!(
            table.contains("leave-one-source-out (fit on the other sources"),
            "{table}"
        );

        let off = TrainOptions {
            leave_one_source_out: false,
            ..options()
        };
        let quick = train::train(&sources, &off, &ProgressBar::hidden()).unwrap();
        assert_eq!(quick.report.leave_one_source_out, None);
        assert!(quick.model.meta.get("leave_one_source_out").is_none());
        assert!(!quick.report.table().contains("leave-one-source-out"));
        // The rest of training does not depend on it.
        assert_eq!(quick.model.sparse, trained.model.sparse);
        assert_eq!(quick.report.grid, report.grid);
    }

    #[test]
    fn a_source_is_scored_by_a_fit_that_never_saw_its_rows() {
        let sources = two_sources();
        let rows = indexed(&sources);
        let encode = |(_, row): &(usize, &Row)| train::encode(row, 4096, 1 << 12).unwrap();
        let examples: Vec<Example> = rows.iter().map(encode).collect();
        let progress = ProgressBar::hidden();
        let logits = held_out_logits(&rows, &examples, &fit_options(), 2, &progress).unwrap();

        // Source a's logits are those of a fit on source b's rows alone, bit for bit.
        let b_only: Vec<&Example> = examples[60..].iter().collect();
        let b_fit = logistic::fit(&b_only, &fit_options()).unwrap();
        for (example, logit) in examples[..60].iter().zip(&logits[..60]) {
            assert_eq!(b_fit.weights.logit(example), *logit);
        }
        // Flipping every label of a leaves a's logits alone and moves b's, whose fit learns from a.
        let flipped: Vec<Example> = examples
            .iter()
            .enumerate()
            .map(|(index, example)| Example {
                label: example.label != (index < 60),
                ..example.clone()
            })
            .collect();
        let again = held_out_logits(&rows, &flipped, &fit_options(), 1, &progress).unwrap();
        assert_eq!(again[..60], logits[..60]);
        assert_ne!(again[60..], logits[60..]);
    }

    #[test]
    fn per_source_numbers_are_metrics_and_bootstrap_of_the_same_scores() {
        let sources = two_sources();
        let rows = indexed(&sources);
        // Hand-fed scores: source a ranked the wrong way round with ties, source b noisily right.
        let logits: Vec<f64> = rows
            .iter()
            .enumerate()
            .map(|(i, (source, row))| {
                let needs_frontier = train::label(row).unwrap();
                let sign = if *source == 0 { -1.0 } else { 1.0 };
                sign * f64::from(u8::from(needs_frontier)) + ((i * 7) % 5) as f64 * 0.3
            })
            .collect();
        let bootstrap = Bootstrap {
            resamples: 200,
            seed: 3,
        };
        let reports = reports_of(&sources, &rows, &logits, bootstrap);
        assert_eq!(reports.len(), 2);
        for (index, report) in reports.iter().enumerate() {
            let (model, length): (Vec<Scored>, Vec<Scored>) = rows
                .iter()
                .zip(&logits)
                .filter(|((source, _), _)| *source == index)
                .map(|((_, row), &logit)| {
                    let model = train::scored(row, logit).unwrap();
                    let length = Scored {
                        score: baselines::prompt_length(row),
                        ..model
                    };
                    (model, length)
                })
                .unzip();
            assert_eq!(report.rows, 60);
            assert_eq!(report.positives, 30);
            assert_eq!(report.model.auc, metrics::auc(&model));
            assert_eq!(report.model.apgr, metrics::apgr(&model));
            assert_eq!(report.model.cpt50, metrics::cpt(&model, 0.5));
            assert_eq!(report.model.cpt80, metrics::cpt(&model, 0.8));
            assert_eq!(report.length.apgr, metrics::apgr(&length));
            assert_eq!(report.length.auc, metrics::auc(&length));
            assert_eq!(
                report.model_apgr_interval,
                bootstrap::apgr_interval(&model, bootstrap)
            );
            assert_eq!(
                report.model_minus_length,
                bootstrap::paired_difference(&model, &length, bootstrap)
            );
        }
        // The verdict names the source ranked backwards, and only it.
        let below: Vec<&str> = below_length(&reports)
            .iter()
            .map(|r| r.source.as_str())
            .collect();
        assert_eq!(below, ["a.jsonl"]);
        let table = table(&reports);
        assert!(
            table.contains("below prompt length's on 1 of 2 sources: a.jsonl ("),
            "{table}"
        );
    }

    #[test]
    fn one_source_with_rows_has_nothing_to_leave_out() {
        let mut sources = two_sources();
        sources[1].rows.clear();
        let rows = indexed(&sources);
        let examples: Vec<Example> = rows
            .iter()
            .map(|(_, row)| train::encode(row, 4096, 1 << 12).unwrap())
            .collect();
        let progress = ProgressBar::hidden();
        let none = reports(
            &sources,
            &rows,
            &examples,
            &fit_options(),
            &options(),
            &progress,
        );
        assert_eq!(none, Ok(None));
    }
}
