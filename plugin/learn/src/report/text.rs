//! The report as text for a terminal: one table row per window and the totals, shadow's priced effect,
//! the cost-per-task trend and the verdicts.

use super::{Report, Status, Summary};
use crate::columns::columns;
use crate::log::feedback::describe_feedback;

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), super::percent)
}

fn usd(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("${v:.decimals$}"))
}

fn summary_row(label: &str, summary: &Summary) -> Vec<String> {
    let shares: Vec<String> = summary
        .tiers
        .iter()
        .map(|tier| format!("{:.0}", 100.0 * tier.share))
        .collect();
    let accuracy = match summary.accuracy {
        Some(_) => format!("{} ({})", percent(summary.accuracy), summary.labelled),
        None => "-".to_string(),
    };
    vec![
        label.to_string(),
        summary.requests.to_string(),
        shares.join("/"),
        usd(summary.cost_usd, 4),
        usd(summary.cost_per_task_usd, 6),
        usd(summary.top_tier_cost_usd, 4),
        percent(summary.savings),
        accuracy,
        percent(summary.override_rate),
        percent(summary.escalation_rate),
        percent(summary.fail_open_share),
        summary.unknown_usage.to_string(),
        percent(summary.shadow_share),
    ]
}

fn shadow_line(summary: &Summary) -> Option<String> {
    let effect = summary.shadow_effect.as_ref()?;
    Some(format!(
        "{} shadowed, {} priced: decided tiers ${:.6} against ${:.6} served ({})",
        summary.shadow,
        effect.requests,
        effect.decided_cost_usd,
        effect.served_cost_usd,
        effect
            .change
            .map_or_else(|| "-".to_string(), |c| format!("{:+.1}%", 100.0 * c))
    ))
}

/// Requests the route table sent elsewhere: billed where they were served, and worth a look at
/// Envoy's routes.
fn mismatch_line(totals: &Summary) -> Option<String> {
    (totals.tier_mismatches > 0).then(|| {
        format!(
            "\ntier mismatches: {} of {} requests served from another cluster than the routed \
             tier's ({} from a cluster no tier names, cost unknown): check Envoy's route table\n",
            totals.tier_mismatches, totals.requests, totals.unknown_cluster
        )
    })
}

pub fn render_text(report: &Report) -> String {
    let inputs = &report.inputs;
    let mut out = format!(
        "{} decision records from {} ({} lines not records); feedback: {}\n",
        inputs.records,
        inputs.logs.join(", "),
        inputs.lines_not_records,
        describe_feedback(
            inputs.feedback_rows,
            inputs.feedback_unmatched,
            inputs.feedback_ambiguous
        )
    );
    if report.windows.is_empty() {
        out += "no decision records\n";
        return out;
    }
    out += &format!(
        "windows of {} (UTC start); costs in USD; top-tier cost and savings over requests priced both ways\n\n",
        report.window
    );
    let header = [
        "window",
        "requests",
        &format!("{} %", report.tiers.join("/")),
        "cost",
        "cost/task",
        "top-tier",
        "savings",
        "accuracy (n)",
        "override",
        "escalation",
        "fail-open",
        "no usage",
        "shadow",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = vec![header];
    rows.extend(
        report
            .windows
            .iter()
            .map(|window| summary_row(&window.start, &window.summary)),
    );
    rows.push(summary_row("totals", &report.totals));
    out += &columns(&rows, "");

    let shadowed: Vec<Vec<String>> = report
        .windows
        .iter()
        .map(|window| (window.start.as_str(), &window.summary))
        .chain([("totals", &report.totals)])
        .filter_map(|(label, summary)| Some(vec![label.to_string(), shadow_line(summary)?]))
        .collect();
    if !shadowed.is_empty() {
        out += "\nshadow mode, priced effect of enforcing:\n";
        out += &columns(&shadowed, "  ");
    }

    if let Some(line) = mismatch_line(&report.totals) {
        out += &line;
    }

    out += "\ncost per task as volume grows:\n";
    let mut trend = vec![["window", "requests", "cumulative", "cost/task"]
        .map(String::from)
        .to_vec()];
    trend.extend(report.windows.iter().map(|window| {
        vec![
            window.start.clone(),
            window.summary.requests.to_string(),
            window.cumulative_requests.to_string(),
            usd(window.summary.cost_per_task_usd, 6),
        ]
    }));
    out += &columns(&trend, "  ");
    if let (Some(first), Some(last), Some(change)) = (
        report.trend.first_cost_per_task_usd,
        report.trend.last_cost_per_task_usd,
        report.trend.change,
    ) {
        out += &format!(
            "  first -> last window: ${first:.6} -> ${last:.6} ({:+.1}%)\n",
            100.0 * change
        );
    }

    if let Some(baseline) = &report.length_baseline {
        out += &format!(
            "\naccuracy beside its baseline, over {} graded requests with a known prompt length:\n  \
             triage {}, routing by prompt length at the same tier shares {}\n",
            baseline.requests,
            super::percent(baseline.router_accuracy),
            super::percent(baseline.length_accuracy)
        );
    }

    out += "\ntargets:\n";
    let target_width = report
        .verdicts
        .iter()
        .map(|verdict| verdict.target.len())
        .max()
        .unwrap_or(0);
    for verdict in &report.verdicts {
        let status = match verdict.status {
            Status::Met => "met",
            Status::NotMet => "NOT MET",
            Status::Unknown => "unknown",
        };
        out += &format!(
            "  {:<target_width$}  {status:<7}  {}\n",
            verdict.target, verdict.detail
        );
    }
    out
}
