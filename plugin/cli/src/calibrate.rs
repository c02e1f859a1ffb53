//! `triage calibrate`: sets a model's tier thresholds to meet a business target on routing-dataset
//! rows and on rows made from decision logs (`--from-log`), prints what they do per tier, and writes
//! the plugin config with the model embedded.

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use triage_core::{model_inputs, ApiFormat, Config, Model};
use triage_learn::calibrate::{self, Target, THRESHOLD_QUANTILES_DEFAULT};
use triage_learn::dataset::Row;
use triage_learn::enough::LabelCounts;

use crate::train::{command_line, label_rule, log_sources, read_sources};

#[derive(clap::Args, Debug)]
#[command(group(
    clap::ArgGroup::new("rows").args(["data", "from_log"]).required(true).multiple(true)
))]
pub struct CalibrateArgs {
    /// Model file (from `triage train`).
    #[arg(long)]
    model: PathBuf,
    /// Routing-dataset files to calibrate on (rows the model was not trained on, for honest numbers).
    #[arg(long, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Access logs of decision records to calibrate on, beside or instead of --data (needs
    /// --base-config, the config the log was made with: its tiers and prices). A record with a
    /// logged openai_chat body is a row whose outcomes are its labels: feedback, else an override,
    /// else an escalation for a weak answer (not an outage), else a quiet 2xx answer (the served
    /// tier and dearer ones answer well).
    /// Records whose labels leave the cheapest tier unknown (a quiet answer from a dearer tier) are
    /// skipped, so the shares, costs and a min-quality target are those of the labelled rows, as
    /// the labels see them, not of all traffic.
    #[arg(long, num_args = 1.., requires = "base_config")]
    from_log: Vec<PathBuf>,
    /// Feedback files for --from-log: JSON lines {"decision_id": ..., "correct_tier": ...} (a
    /// row keyed on a "request_id" labels only a record that id names alone).
    #[arg(long, num_args = 1.., requires = "from_log")]
    feedback: Vec<PathBuf>,
    /// The label rules --from-log learns from, as for `triage train` (all by default).
    #[arg(long, value_delimiter = ',', value_parser = label_rule, requires = "from_log")]
    label_rules: Vec<triage_learn::log::rows::LabelRule>,
    /// max-top-share=X (share of top-tier calls <= X), max-cost=X (mean cost <= X × always-top-tier)
    /// or min-quality=X (mean quality >= X × always-top-tier).
    #[arg(long)]
    target: Target,
    /// Write the plugin config (the base config with the model embedded and every tier's max_score).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Plugin config whose tiers, models and rules the written config keeps; without it the tiers
    /// are the model's. With --from-log, the config the log was made with.
    #[arg(long)]
    base_config: Option<PathBuf>,
    /// Also write the model file with these thresholds.
    #[arg(long)]
    model_out: Option<PathBuf>,
    /// Candidate score quantiles for each threshold.
    #[arg(long, default_value_t = THRESHOLD_QUANTILES_DEFAULT)]
    quantiles: usize,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(args: CalibrateArgs) -> Result<bool, String> {
    let mut model = Model::from_json(&read(&args.model)?)
        .map_err(|e| format!("{}: {e}", args.model.display()))?;
    let base: Option<(Value, Config)> = match &args.base_config {
        Some(path) => {
            let bytes = read(path)?;
            let config = Config::from_json(&bytes)
                .map_err(|e| format!("{}: config refused: {e}", path.display()))?;
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            Some((value, config))
        }
        None => None,
    };
    let tiers: Vec<String> = match &base {
        Some((_, config)) => config.tier_names().into_iter().map(String::from).collect(),
        None => model.tiers.clone(),
    };
    let max_scan_bytes = base
        .as_ref()
        .map_or(Config::default().max_scan_bytes(), |(_, c)| {
            c.max_scan_bytes()
        });

    let mut sources = read_sources(&args.data)?;
    if !args.from_log.is_empty() {
        let Some((_, config)) = &base else {
            return Err(
                "--from-log needs --base-config, the plugin config the log was made with".into(),
            );
        };
        sources.extend(log_sources(
            &args.from_log,
            &args.feedback,
            &args.label_rules,
            config,
        )?);
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut scores = Vec::new();
    let mut skipped = 0;
    for row in sources.into_iter().flat_map(|source| source.rows) {
        match model_inputs(
            ApiFormat::OpenAiChat,
            row.request.as_bytes(),
            max_scan_bytes,
            model.buckets,
        ) {
            Ok(inputs) => {
                scores.push(model.probability(&inputs));
                rows.push(row);
            }
            Err(_) => skipped += 1,
        }
    }
    if skipped > 0 {
        eprintln!("triage: skipped {skipped} rows whose request does not parse (the filter fails them open)");
    }
    if let Some(warning) =
        LabelCounts::of(rows.iter().filter_map(triage_learn::train::label)).warning()
    {
        eprintln!("triage: warning: {warning}");
    }
    let routed = calibrate::routed_rows(&rows, &scores, &tiers).map_err(|e| e.to_string())?;
    let point = calibrate::calibrate(&routed, &tiers, args.target, args.quantiles)
        .map_err(|e| e.to_string())?;
    println!("{} on {} rows:", args.target, rows.len());
    print!("{}", point.table());

    model.thresholds = point.thresholds.clone();
    model.tiers = tiers.clone();
    if let Value::Object(meta) = &mut model.meta {
        meta.insert(
            "calibrated".into(),
            json!({
                "command": command_line(),
                "target": args.target.to_string(),
                "data": displayed(&args.data),
                "from_log": displayed(&args.from_log),
                "feedback": displayed(&args.feedback),
                "rows": rows.len(),
                "operating_point": point.to_json(),
            }),
        );
    }
    let model_json = model.to_json();
    if let Some(path) = &args.model_out {
        std::fs::write(path, &model_json).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote model {}", path.display());
    }
    if let Some(path) = &args.out {
        let config = plugin_config(
            base.map(|(value, _)| value),
            &tiers,
            &point.thresholds,
            &model_json,
        )?;
        let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())? + "\n";
        Config::from_json(text.as_bytes())
            .map_err(|e| format!("the written config would be refused: {e}"))?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote config {}", path.display());
    }
    Ok(true)
}

fn displayed(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect()
}

/// The base config (or one with just the tiers) with every tier's `max_score` set from the
/// thresholds (none on the last) and the model embedded.
fn plugin_config(
    base: Option<Value>,
    tiers: &[String],
    thresholds: &[f64],
    model_json: &str,
) -> Result<Value, String> {
    let mut config = match base {
        Some(Value::Object(map)) => map,
        Some(_) => return Err("the base config is not a JSON object".into()),
        None => {
            let mut map = Map::new();
            let names: Vec<Value> = tiers.iter().map(|name| json!({"name": name})).collect();
            map.insert("tiers".into(), Value::Array(names));
            map
        }
    };
    if let Some(Value::Array(list)) = config.get_mut("tiers") {
        for (index, tier) in list.iter_mut().enumerate() {
            if let Value::Object(tier) = tier {
                match thresholds.get(index) {
                    Some(max) => tier.insert("max_score".into(), json!(max)),
                    None => tier.remove("max_score"),
                };
            }
        }
    }
    let model: Value = serde_json::from_str(model_json).map_err(|e| e.to_string())?;
    config.insert("model".into(), model);
    Ok(Value::Object(config))
}
