//! What the soak sends: the three APIs, JSON and streamed, bodies from 1 KiB to 1 MiB, anonymous
//! and verified callers, and every way triage routes (scored, by rule, overridden, pinned) plus
//! calls it must pass through. Each request knows how it asked to be routed, so the counters can be
//! checked against what was sent.

use triage_core::ApiFormat;
use triage_learn::rng::SplitMix;

use crate::auth;
use crate::bodies;
use crate::plugin_config::shipped_tier_model;

/// The cheapest tier of the shipped config: where pinned requests and most overrides go, and the
/// tier that flaps.
pub const CHEAPEST_TIER: &str = "small";
/// The dearest tier: rules send there, and nothing escalates from it.
pub const TOP_TIER: &str = "frontier";
/// A call on an LLM path that is not one of the three endpoints: triage passes it through.
pub const PASSTHROUGH_PATH: &str = "/v1/messages/count_tokens";

/// How a request asks to be routed, and so which cause its decision must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// `"model": "auto"` and an ordinary task: the score picks the tier.
    Scored,
    /// A task asking for a proof: the shipped rule `proofs` sends it to the top tier.
    ProofRule,
    /// A caller of team `legal`: the shipped rule `legal-team-frontier`.
    LegalRule,
    /// The operator (`ops-console`, allowed to override) names this tier.
    Override(&'static str),
    /// The cheapest tier's own model: never rewritten, never escalated.
    Pinned,
    /// Not one of the three endpoints: no decision, no record.
    Passthrough,
}

impl Route {
    /// The cause the decision record and `triage_requests` must name; None for a pass-through.
    pub fn cause(&self) -> Option<&'static str> {
        match self {
            Route::Scored => Some("scored"),
            Route::ProofRule | Route::LegalRule => Some("rule"),
            Route::Override(_) => Some("override"),
            Route::Pinned => Some("explicit_model"),
            Route::Passthrough => None,
        }
    }

    /// The tier the decision must name, when the request fixes it (None: the score decides).
    pub fn tier(&self) -> Option<&'static str> {
        match self {
            Route::ProofRule | Route::LegalRule => Some(TOP_TIER),
            Route::Override(tier) => Some(tier),
            Route::Pinned => Some(CHEAPEST_TIER),
            Route::Scored | Route::Passthrough => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Route::Scored => "scored".to_owned(),
            Route::ProofRule => "rule (proof)".to_owned(),
            Route::LegalRule => "rule (legal team)".to_owned(),
            Route::Override(tier) => format!("override to {tier}"),
            Route::Pinned => "pinned model".to_owned(),
            Route::Passthrough => "pass-through".to_owned(),
        }
    }
}

/// Who calls: anonymous, or with a token the gateway verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Caller {
    Anonymous,
    /// `alice` of team `research`: verified, nothing special.
    Researcher,
    /// `bob` of team `legal`, whom a rule routes.
    Lawyer,
    /// `ops-console`, whom the shipped config lets override.
    Operator,
}

/// One request's shape, drawn from the mix.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub format: ApiFormat,
    pub stream: bool,
    /// The body's length, about (the JSON around the text adds a few dozen bytes).
    pub size: usize,
    pub route: Route,
    pub caller: Caller,
}

/// Size classes for the report, by upper bound in bytes.
pub const SIZE_CLASSES: [(&str, usize); 5] = [
    ("1-4 KiB", 4 << 10),
    ("4-16 KiB", 16 << 10),
    ("16-64 KiB", 64 << 10),
    ("64-256 KiB", 256 << 10),
    ("~1 MiB", usize::MAX),
];

pub fn size_class(size: usize) -> &'static str {
    SIZE_CLASSES
        .iter()
        .find(|(_, bound)| size <= *bound)
        .map_or("~1 MiB", |(name, _)| name)
}

/// Ordinary tasks, short to long; the first is one the score sends to the cheapest tier when the
/// body around it is short.
const TASKS: [&str; 5] = [
    bodies::TRIVIAL,
    "Translate the last paragraph above into French.",
    "Summarize the notes above in three bullet points.",
    "Explain to a new team member what the notes above say about shipping delays.",
    "Design a plan to fix the carrier delays described above: analyze the trade-offs step by step.",
];
const PROOF_TASK: &str = "Prove that the sum of two even numbers is even.";

/// Context put ahead of the task to reach a body's size: operations notes, varied enough that no
/// two bodies of one size are equal.
const NOTES: [&str; 8] = [
    "Warehouse throughput rose four percent in the north region this quarter. ",
    "Two carriers missed their delivery targets during the holiday peak. ",
    "Returns stayed flat while orders grew in every region except the west. ",
    "The night shift was short-staffed for three weeks in October. ",
    "A new sorting line went live in Leeds and halved the backlog. ",
    "Customer complaints about late parcels doubled in the last month. ",
    "Fuel surcharges added two percent to the average shipping cost. ",
    "The team proposes moving weekend pickups to a second carrier. ",
];

/// Draws shapes and builds their requests' bodies and credentials; one per soak, shared by the
/// client threads.
pub struct Mix {
    /// The cheapest tier's model per format, for pinned requests.
    pinned_models: Vec<(ApiFormat, String)>,
    researcher_token: String,
    lawyer_token: String,
    operator_token: String,
}

impl Mix {
    /// Mints the callers' tokens with the harness's keys (the stack's JWKS).
    pub fn mint() -> Mix {
        Mix {
            pinned_models: ApiFormat::ALL
                .into_iter()
                .map(|format| (format, shipped_tier_model(CHEAPEST_TIER, format)))
                .collect(),
            researcher_token: auth::token("alice", Some("research")),
            lawyer_token: auth::token("bob", Some("legal")),
            operator_token: auth::token("ops-console", None),
        }
    }

    /// One request's shape. The weights: most traffic scored, a tenth each pinned, overridden and
    /// by rule, a few pass-through calls; one body in 33 about 1 MiB, the rest log-uniform between
    /// 1 and 256 KiB (so as many of 1-4 KiB as of 64-256 KiB). While `warming`, one body in 3 is
    /// about 1 MiB: Envoy and the wasm VMs reach the memory that large bodies in flight at once
    /// need before memory is judged, rather than meeting a rarer coincidence of them later.
    pub fn draw(&self, rng: &mut SplitMix, warming: bool) -> Shape {
        let format = ApiFormat::ALL[rng.below(3) as usize];
        let (route, caller) = match rng.below(100) {
            0..=1 => (Route::Passthrough, Caller::Anonymous),
            2..=9 => (Route::Pinned, Caller::Anonymous),
            10..=18 => (Route::Override(CHEAPEST_TIER), Caller::Operator),
            19..=21 => (Route::Override("mid"), Caller::Operator),
            22..=29 => (Route::LegalRule, Caller::Lawyer),
            30..=34 => (Route::ProofRule, Caller::Anonymous),
            35..=54 => (Route::Scored, Caller::Researcher),
            _ => (Route::Scored, Caller::Anonymous),
        };
        Shape {
            format,
            stream: route != Route::Passthrough && rng.below(2) == 0,
            size: draw_size(rng, if warming { 3 } else { 33 }),
            route,
            caller,
        }
    }

    pub fn path(&self, shape: &Shape) -> &'static str {
        match shape.route {
            Route::Passthrough => PASSTHROUGH_PATH,
            _ => shape.format.path(),
        }
    }

    /// The credential header the caller sends (either header the gateway reads), if any.
    pub fn credential(&self, shape: &Shape) -> Option<(&'static str, String)> {
        let token = match shape.caller {
            Caller::Anonymous => return None,
            Caller::Researcher => &self.researcher_token,
            Caller::Lawyer => &self.lawyer_token,
            Caller::Operator => &self.operator_token,
        };
        Some(match shape.format {
            ApiFormat::AnthropicMessages => ("x-api-key", token.clone()),
            _ => ("authorization", format!("Bearer {token}")),
        })
    }

    /// The body, as a client of its API writes it: notes up to the size, then the task. A proof
    /// task comes first: a rule's regex reads only the first `limits.max_scan_bytes` (64 KiB) of
    /// the last user message, so after the notes of a large body it would not fire.
    pub fn body(&self, shape: &Shape, rng: &mut SplitMix) -> String {
        let (task, task_first) = match shape.route {
            Route::ProofRule => (PROOF_TASK, true),
            _ => (TASKS[rng.below(TASKS.len() as u64) as usize], false),
        };
        let mut notes = String::with_capacity(shape.size);
        let mut note = rng.below(NOTES.len() as u64) as usize;
        while notes.len() + task.len() + 200 < shape.size {
            notes.push_str(NOTES[note]);
            note = (note + 1 + rng.below(2) as usize) % NOTES.len();
        }
        let text = if task_first {
            format!("{task}\n\n{notes}")
        } else {
            format!("{notes}\n\n{task}")
        };
        let model = match shape.route {
            Route::Pinned => self.pinned_model(shape.format),
            _ => "auto",
        };
        let body = match shape.format {
            ApiFormat::OpenAiChat => bodies::chat(Some(model), &text),
            ApiFormat::OpenAiResponses => bodies::responses(Some(model), &text),
            ApiFormat::AnthropicMessages => bodies::messages(Some(model), &text),
        };
        match (shape.stream, body.strip_prefix('{')) {
            (true, Some(members)) => format!("{{\"stream\": true, {members}"),
            _ => body,
        }
    }

    fn pinned_model(&self, format: ApiFormat) -> &str {
        self.pinned_models
            .iter()
            .find(|(of, _)| *of == format)
            .map_or("", |(_, model)| model.as_str())
    }
}

/// One in `large_one_in` about 1 MiB (within 5 % under it), else log-uniform in [1 KiB, 256 KiB).
fn draw_size(rng: &mut SplitMix, large_one_in: u64) -> usize {
    const MIB: f64 = 1_048_576.0;
    if rng.below(large_one_in) == 0 {
        return (MIB * (1.0 - 0.05 * unit(rng))) as usize;
    }
    (1024.0 * 256f64.powf(unit(rng))) as usize
}

/// Uniform in [0, 1).
fn unit(rng: &mut SplitMix) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_span_1_kib_to_1_mib_with_large_bodies_rare() {
        let mut rng = SplitMix::new(7);
        let sizes: Vec<usize> = (0..33_000).map(|_| draw_size(&mut rng, 33)).collect();
        assert!(sizes.iter().all(|&size| (1024..=1 << 20).contains(&size)));
        let large = sizes.iter().filter(|&&size| size > 256 << 10).count();
        assert!((800..1200).contains(&large), "{large} of 33,000 near 1 MiB");
        let smallest = sizes.iter().filter(|&&size| size <= 4 << 10).count();
        let larger = sizes
            .iter()
            .filter(|&&size| (64 << 10..256 << 10).contains(&size))
            .count();
        assert!(smallest.abs_diff(larger) < 1000, "{smallest} vs {larger}");
    }

    #[test]
    fn size_classes_cover_every_size() {
        assert_eq!(size_class(1024), "1-4 KiB");
        assert_eq!(size_class(4097), "4-16 KiB");
        assert_eq!(size_class(1 << 20), "~1 MiB");
    }
}
