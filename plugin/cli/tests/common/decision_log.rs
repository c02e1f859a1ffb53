//! A constructed access log of decision records for the `--from-log` tests: hard multiple-choice
//! questions that the small tier failed (graded by feedback, corrected by an override, or escalated),
//! short everyday tasks the small tier answered, and records that cannot be rows.

use serde_json::{json, Value};

use super::TempDir;

/// Questions the small tier got wrong and the frontier tier right, from the MMLU rows of
/// `../shared/data/routing/train/mmlu.jsonl` (lm-sys/RouteLLM, Apache-2.0).
pub const HARD: [&str; 12] = [
    "Change 34 L 18 cL to liters.\nA. 34.18 L\nB. 35.8 L\nC. 34.018 L\nD. 214 L\nAnswer:",
    "\" _Ad novitatem_ \" is a specific kind of fallacy of\nA. Division\nB. False sign\nC. False cause\nD. Hasty Generalization\nAnswer:",
    "Black is the combination of\nA. all the colors together\nB. two or more appropriate colors\nC. light when a prism is held upside down\nD. None of these\nAnswer:",
    "Which of the following is an example of a bulk-gaining industry?\nA. Steel\nB. Bottled orange juice\nC. Paper\nD. Copper\nAnswer:",
    "A significance test of the hypothesis H0: p= 0.3 against the alternative HA: p> 0.3 found a value of = 0.35 for a random sample of size 95. What is the P-value of this test?\nA. 1.06\nB. 0.1446\nC. 0.2275\nD. 0.8554\nAnswer:",
    "Which of the Three Stooges was not related to the others?\nA. Moe\nB. Larry\nC. Curly\nD. Shemp\nAnswer:",
    "The mutational mechanism in \u{3b4}\u{3b2}-thalassaemia consists of:\nA. a deletion.\nB. a duplication.\nC. an insertion.\nD. a point mutation.\nAnswer:",
    "When recording peak flow results, within how many litres/minute should the three readings be?\nA. 10 litres per minute of each other.\nB. 20 litres per minute of each other.\nC. 100 litres per minute of each other.\nD. 30 litres per minute of each other.\nAnswer:",
    "Which of these is a member of the cucumber family?\nA. green pepper\nB. watermelon\nC. potato\nD. green bean\nAnswer:",
    "Find the characteristic of the ring Z_3 x Z_3.\nA. 0\nB. 3\nC. 12\nD. 30\nAnswer:",
    "If all the values of a data set are the same, all of the following must equal zero except for which one?\nA. Mean\nB. Standard deviation\nC. Variance\nD. Range\nAnswer:",
    "There are 7 desks arranged in a row in Mr. Thompson\u{2019}s classroom. Hector sits 2 seats to the right of Kim. Tonya sits 3 seats to the right of Hector. How many seats to the left of Tonya does Kim sit?\nA. 2\nB. 3\nC. 5\nD. 12\nAnswer:",
];

/// Everyday requests the small tier answers.
pub const EASY: [&str; 16] = [
    "Classify the sentiment of this review as positive or negative: The pasta was cold and the waiter ignored us.",
    "Translate to French: Where is the train station?",
    "Extract the email address from: Contact Dana at dana.lee@example.org for the invoice.",
    "Is Paris the capital of France? Answer yes or no.",
    "Reformat this date as YYYY-MM-DD: March 3rd, 2021",
    "Classify this support ticket as billing, shipping or other: My parcel has not arrived yet.",
    "Translate to German: Thank you very much.",
    "Extract the city from: Ship to 12 Harbour Road, Galway, Ireland.",
    "Answer yes or no: is 12 an even number?",
    "Convert this list to a comma-separated line: apples, pears and plums",
    "Classify the sentiment: Absolutely loved the new update!",
    "Translate to Spanish: Good morning, how are you?",
    "Extract the order number from: Re: order #48213 arrived damaged",
    "Reformat as title case: the quick brown fox",
    "Is water wet? Answer yes or no.",
    "Classify the language of this sentence: Ik hou van fietsen.",
];

pub const PRICES: &str = r#"{"tiers": [
  {"name": "small", "model": "s", "max_score": 0.2, "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
  {"name": "mid", "model": "m", "max_score": 0.6, "price": {"input_per_mtok": 2.5, "output_per_mtok": 10}},
  {"name": "frontier", "model": "f", "price": {"input_per_mtok": 15, "output_per_mtok": 60}}
]}"#;

pub fn body(prompt: &str) -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": prompt}]})
}

/// An enforced request served by `tier` with a 2xx answer and its body logged.
pub fn record(id: &str, index: u64, tier: &str, prompt: &str) -> Value {
    json!({
        "v": 3, "decision_id": format!("d-{id}"), "request_id": id, "start_ms": 1_714_557_600_000u64 + index * 1_000,
        "api": "openai_chat", "mode": "enforce", "tier": tier, "decided_tier": tier,
        "cause": "scored", "rule": null, "fail_open": null, "score": 0.1, "reasons": [],
        "requested_model": "auto", "model": tier, "override": null, "escalations": [],
        "status": 200, "usage": {"prompt_tokens": 120, "completion_tokens": 40},
        "cost_micro_usd": null, "top_tier_cost_micro_usd": null, "decided_cost_micro_usd": null,
        "decision_us": 30, "request": body(prompt)
    })
}

pub fn with(mut record: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

/// 12 hard questions: 4 graded by feedback (served small), 4 overridden small -> frontier, 4
/// escalated small -> mid; 16 easy tasks served by small, 4 of them graded small while served by mid;
/// and 7 records that cannot be rows. Returns the log and the feedback.
pub fn log_and_feedback() -> (String, String) {
    let mut records = Vec::new();
    let mut feedback = String::new();
    for (i, prompt) in HARD.iter().enumerate() {
        let id = format!("hard-{i}");
        let record = record(&id, i as u64, "small", prompt);
        records.push(match i % 3 {
            0 => {
                feedback += &format!(
                    "{}\n",
                    json!({"decision_id": format!("d-{id}"), "correct_tier": "frontier"})
                );
                record
            }
            1 => with(
                record,
                json!({"cause": "override", "caller": "ops-console", "tier": "frontier", "decided_tier": "frontier",
                       "override": {"from": "small", "to": "frontier"}}),
            ),
            _ => with(
                record,
                json!({"tier": "mid",
                       "escalations": [{"from": "small", "to": "mid", "cause": "refusal"}]}),
            ),
        });
    }
    for (i, prompt) in EASY.iter().enumerate() {
        let id = format!("easy-{i}");
        if i < 4 {
            feedback += &format!(
                "{}\n",
                json!({"decision_id": format!("d-{id}"), "correct_tier": "small"})
            );
            records.push(record(&id, 100 + i as u64, "mid", prompt));
        } else {
            records.push(record(&id, 100 + i as u64, "small", prompt));
        }
    }
    let unusable = [
        with(
            record("no-body", 200, "small", ""),
            json!({"request": null}),
        ),
        with(
            record("no-body-2", 201, "small", ""),
            json!({"request": null}),
        ),
        with(
            record("failed", 202, "small", EASY[0]),
            json!({"status": 503}),
        ),
        with(
            record("no-status", 203, "small", EASY[1]),
            json!({"status": null}),
        ),
        record("mid-quiet", 204, "mid", EASY[2]),
        record("frontier-quiet", 205, "frontier", HARD[0]),
        with(
            record("anthropic", 206, "small", EASY[3]),
            json!({"api": "anthropic_messages"}),
        ),
    ];
    records.extend(unusable);
    let mut log = String::from("-\n\n");
    for record in records {
        log += &format!("{record}\n");
    }
    (log, feedback)
}

/// Writes the log, its feedback and the config it was made with: access.log, feedback.jsonl and
/// config.json.
pub fn write_log(dir: &TempDir) {
    let (log, feedback) = log_and_feedback();
    dir.write("access.log", &log);
    dir.write("feedback.jsonl", &feedback);
    dir.write("config.json", PRICES);
}

/// The log's 28 prompts as dataset rows (small fails the hard ones, frontier answers all).
pub fn dataset_rows() -> String {
    let row = |id: usize, prompt: &str, small: f64| {
        json!({"id": format!("d{id}"), "source": "d", "request": body(prompt), "outcomes": {
            "small": {"model": "s", "quality": small, "cost_usd": 0.0001},
            "frontier": {"model": "f", "quality": 1.0, "cost_usd": 0.002}}})
        .to_string()
    };
    let rows: Vec<String> = HARD
        .iter()
        .map(|prompt| row(0, prompt, 0.0))
        .chain(EASY.iter().map(|prompt| row(1, prompt, 1.0)))
        .collect();
    rows.join("\n")
}

/// `triage route --config config` (a file in `dir`) over the HARD then the EASY prompts: one JSON
/// decision per prompt, in that order.
pub fn route_prompts(dir: &TempDir, config: &str) -> Vec<Value> {
    let bodies: String = HARD
        .iter()
        .chain(&EASY)
        .map(|prompt| format!("{}\n", body(prompt)))
        .collect();
    dir.write("bodies.jsonl", &bodies);
    let routed = super::triage_in(
        &dir.0,
        &["route", "--config", config, "--input", "bodies.jsonl"],
    );
    assert!(routed.status.success(), "{}", super::text(&routed.stderr));
    super::text(&routed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What `train --from-log` and `calibrate --from-log` print first for [`write_log`]'s log.
pub const LOG_SUMMARY: &str = "from the log: 28 rows of 35 records (2 lines not records); by label rule: feedback 8, override 4, escalation 4, served 12\n\
     skipped 7 records: 2 without a request body, 1 of an API other than openai_chat, 2 without a 2xx answer or a correction, 2 without label information (cheapest or dearest tier unknown)\n\
     feedback: 8 rows, 0 matching no record, 0 matching several records\n";
