use super::*;
use crate::baselines::tests::row;
use crate::plot;

/// Four rows with known outcomes; "hard problem" has no mid tier (a two-model set).
fn rows() -> Vec<Row> {
    vec![
        row(
            "easy",
            "easy one",
            &[
                ("small", 1.0, 1.0),
                ("mid", 1.0, 3.0),
                ("frontier", 1.0, 10.0),
            ],
        ),
        row(
            "medium",
            "medium",
            &[
                ("small", 0.0, 1.0),
                ("mid", 1.0, 3.0),
                ("frontier", 1.0, 10.0),
            ],
        ),
        row(
            "two-tier",
            "hard problem, two tiers",
            &[("small", 0.0, 1.0), ("frontier", 1.0, 10.0)],
        ),
        row(
            "small-wins",
            "hard, and only small gets it right",
            &[
                ("small", 1.0, 1.0),
                ("mid", 0.0, 3.0),
                ("frontier", 0.0, 10.0),
            ],
        ),
    ]
}

fn config(json: &str) -> Config {
    match Config::from_json(json.as_bytes()) {
        Ok(config) => config,
        Err(error) => panic!("test config refused: {error}"),
    }
}

fn report_for(config: &Config, rows: &[Row]) -> Report {
    let judged = judge(config, rows).unwrap();
    evaluate("test", config, rows, &judged).unwrap()
}

fn policy<'a>(report: &'a Report, name: &str) -> &'a Policy {
    report
        .policy(name)
        .unwrap_or_else(|| panic!("no policy {name}"))
}

const FORCE_FRONTIER: &str =
    r#"{"rules": [{"name": "everything", "when": {"path_prefix": "/"}, "tier": "frontier"}]}"#;

/// Prompts with "hard" go to mid, the rest to small.
const HARD_TO_MID: &str = r#"{"rules": [
    {"name": "hard", "when": {"last_user_regex": "hard"}, "tier": "mid"},
    {"name": "rest", "when": {"path_prefix": "/"}, "tier": "small"}]}"#;

#[test]
fn a_rule_forcing_frontier_scores_exactly_always_frontier() {
    let report = report_for(&config(FORCE_FRONTIER), &rows());
    let router = policy(&report, ROUTER);
    let frontier = policy(&report, "always-frontier");
    assert_eq!(
        (router.quality, router.cost_usd),
        (frontier.quality, frontier.cost_usd)
    );
    assert_eq!(router.quality_vs_top, 1.0);
    assert_eq!(router.cost_vs_top, 1.0);
    assert_eq!(report.decisions.rule, 4);
    assert_eq!(report.shares[2].share, 1.0);
    // No scores: nothing to sweep, and it says so.
    assert_eq!(report.sweep.rows, 0);
    assert_eq!(report.sweep.unscored_excluded, 4);
    assert_eq!(report.sweep.router.apgr, None);
    assert_eq!(report.sweep.random.apgr, None);
}

#[test]
fn rules_give_the_hand_computed_router_and_the_next_dearer_tier() {
    let report = report_for(&config(HARD_TO_MID), &rows());
    // easy -> small (1, $1), medium -> small (0, $1), two-tier -> mid = frontier there (1, $10),
    // small-wins -> mid (0, $3).
    let router = policy(&report, ROUTER);
    assert!((router.quality - 0.5).abs() < 1e-12);
    assert!((router.cost_usd - 15.0 / 4.0).abs() < 1e-12);
    let shares: Vec<(&str, f64)> = report
        .shares
        .iter()
        .map(|share| (share.tier.as_str(), share.share))
        .collect();
    assert_eq!(
        shares,
        vec![("small", 0.5), ("mid", 0.5), ("frontier", 0.0)]
    );
    // Random at the router's cost: p = (3.75 - 1) / (10 - 1) of the way to always-frontier, whose
    // quality is 0.75 against always-small's 0.5.
    let p = 2.75 / 9.0;
    let random = policy(&report, RANDOM_SAME_COST);
    assert!((report.random_share_strong - p).abs() < 1e-12);
    assert!((random.quality - (0.5 + p * 0.25)).abs() < 1e-12);
    assert!((random.cost_usd - 3.75).abs() < 1e-12);
    // The best mix at $3.75: small (0.5, $1) with always-mid (0.75, $4.75), 2.75/3.75 of mid.
    let best = policy(&report, RANDOM_BEST_MIX);
    assert!((best.quality - (0.5 + 0.25 * 2.75 / 3.75)).abs() < 1e-12);
    assert!((best.cost_usd - 3.75).abs() < 1e-12);
    // Length at the router's shares: the two shortest ("medium", "easy one") to small, the rest
    // to mid: the same assignment as the router here.
    let length = policy(&report, LENGTH_SAME_SHARES);
    assert!((length.quality - 0.5).abs() < 1e-12);
    assert!((length.cost_usd - 3.75).abs() < 1e-12);
}

#[test]
fn shares_sum_to_one_and_the_oracle_beats_every_policy() {
    for json in ["{}", FORCE_FRONTIER, HARD_TO_MID] {
        let report = report_for(&config(json), &rows());
        let total: f64 = report.shares.iter().map(|share| share.share).sum();
        assert!((total - 1.0).abs() < 1e-12, "{json}");
        let oracle = policy(&report, ORACLE).quality;
        assert_eq!(oracle, 1.0);
        for other in &report.policies {
            assert!(other.quality <= oracle + 1e-12, "{json}: {}", other.name);
        }
        // The best mix is never worse than the cheapest-dearest mix at the same cost.
        let best = policy(&report, RANDOM_BEST_MIX);
        let same_cost = policy(&report, RANDOM_SAME_COST);
        assert!(best.quality >= same_cost.quality - 1e-12, "{json}");
        assert!(best.cost_usd <= same_cost.cost_usd + 1e-12, "{json}");
        let names: Vec<&str> = report.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                ROUTER,
                "always-small",
                "always-mid",
                "always-frontier",
                RANDOM_SAME_COST,
                RANDOM_BEST_MIX,
                RANDOM_SAME_SHARES,
                LENGTH_SAME_SHARES,
                ORACLE
            ]
        );
    }
}

#[test]
fn the_default_config_scores_every_row_and_sweeps_them() {
    let rows = rows();
    let report = report_for(&Config::default(), &rows);
    assert_eq!(report.decisions.scored, 4);
    assert_eq!(report.sweep.rows, 4);
    assert_eq!(report.sweep.random.apgr, Some(0.5));
    assert!(report.sweep.router.apgr.is_some());
    // The curves run from always-small to always-frontier over the same rows.
    let first = report.curves.router.first().unwrap();
    let last = report.curves.router.last().unwrap();
    assert_eq!((first.quality, first.cost), (0.5, 1.0));
    assert_eq!((last.quality, last.cost), (0.75, 10.0));
    // Prompt length as the score: ranks by length, so its APGR is computable by hand.
    // Lengths: easy 8, medium 6, two-tier 23, small-wins 34 -> order small-wins, two-tier, easy,
    // medium; PGR (gap 0.25): 0, -1, 0, 0, 1 over quarters -> (-0.5 - 0.5 + 0 + 0.5) / 4.
    assert_eq!(report.sweep.prompt_length.apgr, Some(-0.125));
}

#[test]
fn an_all_report_follows_several_datasets() {
    let datasets = vec![
        ("a".to_string(), rows()),
        ("b".to_string(), rows()[..2].to_vec()),
    ];
    let reports = evaluate_all(&config(HARD_TO_MID), &datasets).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.dataset.as_str()).collect();
    assert_eq!(names, vec!["a", "b", "all"]);
    assert_eq!(reports[2].rows, 6);
    // One dataset alone: no "all".
    assert_eq!(
        evaluate_all(&config(HARD_TO_MID), &datasets[..1])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_config_tier_without_outcomes_is_refused() {
    let json = r#"{"default_tier": "cheap", "tiers": [{"name": "cheap", "max_score": 0.5}, {"name": "frontier"}]}"#;
    let error = judge(&config(json), &rows()).unwrap_err();
    assert!(error.0.contains("\"cheap\""), "{error}");
}

#[test]
fn the_text_report_has_every_policy_and_metric() {
    let report = report_for(&config(HARD_TO_MID), &rows());
    let text = render_text(&[report]);
    for needle in [
        "== test (4 rows) ==",
        "small 50.0%, mid 50.0%, frontier 0.0%",
        "rule 4",
        "vs always-frontier",
        "always-mid",
        "random-same-cost (30.6% strong)",
        "length-same-shares",
        "random-best-mix",
        "oracle",
        "APGR",
        "APGR by cost",
        "CPT(80%)",
        "4 unscored left out",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // Aligned: every line of the policy table has the same width.
    let widths: Vec<usize> = text
        .lines()
        .skip_while(|line| !line.starts_with("policy"))
        .take_while(|line| !line.is_empty())
        .map(|line| line.chars().count())
        .collect();
    assert_eq!(widths.len(), 10);
    assert!(
        widths.windows(2).all(|pair| pair[0] == pair[1]),
        "{widths:?}"
    );
}

/// Tag names in document order, checking that every element closes in order.
fn check_balanced(svg: &str) -> Result<usize, String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut elements = 0;
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').ok_or("unterminated tag")? + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
        } else if !tag.starts_with('?') && !tag.starts_with('!') {
            let name = tag.split_whitespace().next().ok_or("empty tag")?;
            elements += 1;
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    if stack.is_empty() {
        Ok(elements)
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

#[test]
fn the_svg_is_well_formed_and_has_its_legend() {
    let mut report = report_for(&Config::default(), &rows());
    report.dataset = "mix & <match>".into();
    let svg = plot::render(&report);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let elements = check_balanced(&svg).unwrap_or_else(|error| panic!("{error}\n{svg}"));
    assert!(elements > 30, "{elements}");
    assert!(svg.contains("mix &amp; &lt;match&gt;: quality vs cost (4 rows)"));
    for legend in [
        "router score sweep",
        "prompt length sweep",
        "random router",
        "router (configured tiers)",
        "oracle",
        "always one tier",
        "cost per request relative to always-frontier",
        "mean quality",
        "APGR (by calls / by cost):",
    ] {
        assert!(svg.contains(legend), "missing {legend:?}");
    }
    // Three curves (router, length, random) and one label per always-tier.
    assert_eq!(svg.matches("<polyline").count(), 3);
    for tier in ["small", "mid", "frontier"] {
        assert!(svg.contains(&format!(">{tier}</text>")), "{tier}");
    }
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
    // The cost axis ends at always-frontier's 100%, not a tick beyond it.
    assert!(svg.contains(">100%</text>") && !svg.contains(">120%</text>"));
    assert!(check_balanced("<svg><g></svg>").is_err());
}

/// 40 rows: the small tier (and mid) fails every fourth, frontier answers all; eight other models
/// fail exactly where small does. Every fourth prompt from the second on says "hard".
fn rows_with_other_models() -> Vec<Row> {
    (0..40)
        .map(|i| {
            let fails = i % 4 == 0;
            let cheap = if fails { 0.0 } else { 1.0 };
            let prompt = if i % 4 == 1 {
                format!("a hard question, number {i}")
            } else {
                format!("question {i}: {}", "words ".repeat(i % 7))
            };
            let mut row = row(
                &format!("r{i}"),
                &prompt,
                &[
                    ("small", cheap, 1.0),
                    ("mid", cheap, 3.0),
                    ("frontier", 1.0, 10.0),
                ],
            );
            let tiers = ["small-model", "mid-model", "frontier-model"].map(String::from);
            let others = (0..8).map(|k| format!("other-{k}"));
            for model in tiers.into_iter().chain(others) {
                let outcome = crate::dataset::ModelOutcome {
                    quality: cheap,
                    cost_usd: 1.0,
                };
                row.all_models.insert(model, outcome);
            }
            row
        })
        .collect()
}

/// Sends the "hard" prompts (a quarter, none of them the rows small fails) to frontier.
const HARD_TO_FRONTIER: &str = r#"{"rules": [
    {"name": "hard", "when": {"last_user_regex": "hard"}, "tier": "frontier"},
    {"name": "rest", "when": {"path_prefix": "/"}, "tier": "small"}]}"#;

#[test]
fn other_models_failing_where_small_fails_rank_like_the_oracle() {
    let rows = rows_with_other_models();
    let report = report_for(&Config::default(), &rows);
    let reference = report.other_models_reference.as_ref().unwrap();
    assert_eq!(reference.models_per_row, [8, 8]);
    // The perfect ranking: PGR reaches 1 at a quarter of strong calls, 0.25 / 2 + 0.75.
    let oracle_score: Vec<Scored> = rows
        .iter()
        .map(|row| {
            crate::train::scored(row, f64::from(u8::from(crate::train::label(row).unwrap())))
                .unwrap()
        })
        .collect();
    assert_eq!(reference.sweep.apgr, metrics::apgr(&oracle_score));
    assert_eq!(reference.sweep.apgr, Some(0.875));
    assert_eq!(reference.sweep.auc, Some(1.0));
    assert_eq!(reference.sweep.cpt80, Some(0.2));
    let interval = reference.sweep.apgr_interval.unwrap();
    assert!(
        interval.contains(0.875) && interval.high <= 1.0 + 1e-12,
        "{interval:?}"
    );

    // At the rules' shares (a quarter to frontier) it sends exactly the failing rows there: the
    // oracle's quality and cost, where the rules, on the wrong rows, lose a quarter of the quality.
    let report = report_for(&config(HARD_TO_FRONTIER), &rows);
    let reference = report.other_models_reference.as_ref().unwrap();
    let oracle = policy(&report, ORACLE);
    assert_eq!(reference.same_shares.name, OTHER_MODELS_SAME_SHARES);
    assert!((reference.same_shares.quality - oracle.quality).abs() < 1e-12);
    assert!((reference.same_shares.cost_usd - oracle.cost_usd).abs() < 1e-12);
    assert!((policy(&report, ROUTER).quality - 0.75).abs() < 1e-12);
    // The rules score nothing: no sweep for the reference either.
    assert_eq!(reference.sweep.apgr, None);
    assert!(
        report.policy(OTHER_MODELS_SAME_SHARES).is_none(),
        "not a policy"
    );
}

#[test]
fn rows_without_every_models_outcome_have_no_reference() {
    let report = report_for(&Config::default(), &rows());
    assert!(report.other_models_reference.is_none());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["other_models_reference"].is_null(), "{json}");
    assert!(!render_text(&[report]).contains("other-models"));
    // One row short of other models is enough to leave the reference out.
    let mut rows = rows_with_other_models();
    rows[3]
        .all_models
        .retain(|model, _| !model.starts_with("other-") || model == "other-0");
    assert!(report_for(&Config::default(), &rows)
        .other_models_reference
        .is_none());
}

#[test]
fn the_sweep_carries_intervals_and_the_paired_lead_over_length() {
    let report = report_for(&Config::default(), &rows_with_other_models());
    let sweep = &report.sweep;
    assert_eq!(sweep.bootstrap, Bootstrap::default());
    for metrics in [&sweep.router, &sweep.prompt_length] {
        let (apgr, interval) = (metrics.apgr.unwrap(), metrics.apgr_interval.unwrap());
        assert!(interval.contains(apgr), "{apgr} {interval:?}");
    }
    assert_eq!(sweep.random.apgr_interval, None);
    let lead = sweep.router_minus_length.unwrap();
    let expected = sweep.router.apgr.unwrap() - sweep.prompt_length.apgr.unwrap();
    assert!((lead.estimate - expected).abs() < 1e-12);
    assert!(lead.low <= lead.estimate && lead.estimate <= lead.high);
    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json["sweep"]["router"]["apgr_interval"]["low"].is_f64(),
        "{json}"
    );
    assert_eq!(json["sweep"]["bootstrap"]["resamples"], 1000);
    assert!(json["other_models_reference"]["same_shares"]["quality"].is_f64());

    let text = render_text(&[report]);
    for needle in [
        "95% CI",
        "router - prompt length APGR: ",
        "1000 resamples, seed 1",
        "other-models-same-shares*",
        "other-models reference*",
        "* other-models reference (knows 8 other models' results per item; not a deployable router)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}
