//! The routing decision: rules, then explicit models, then fail-open, then the model's calibrated
//! probability against the tier thresholds.

use std::borrow::Cow;

use crate::config::{Condition, Config};
use crate::decision::{Cause, Decision, FailOpen};
use crate::format::{parse_request, probe_model, ApiFormat, ModelField, ParsedRequest};
use crate::identity::Identity;
use crate::lifecycle::escalation::answer::Expectations;
use crate::scan;

/// What the filter knows from the request headers.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    pub format: ApiFormat,
    pub path: &'a str,
    /// Lowercase names; only the rule headers are needed.
    pub headers: &'a [(String, String)],
    /// What the gateway verified about the caller (never read from a client's own headers).
    pub identity: Identity<'a>,
}

/// The body's requested model, and whether the router may write another one into the body.
struct Requested<'b> {
    model: Option<Cow<'b, str>>,
    routable: bool,
}

impl Requested<'_> {
    fn of<'b>(config: &Config, field: ModelField<'b>) -> Requested<'b> {
        match field {
            ModelField::Absent => Requested {
                model: None,
                routable: true,
            },
            ModelField::Named(model) => Requested {
                routable: config.routes(&model),
                model: Some(model),
            },
            ModelField::Unusable => Requested {
                model: None,
                routable: false,
            },
        }
    }
}

/// The whole decision; never panics, whatever the bytes.
pub fn decide(config: &Config, head: &RequestHead, body: &[u8]) -> Decision {
    let parsed = parse_request(head.format, body);
    let field = match &parsed {
        Ok(request) => request
            .model
            .clone()
            .map_or(ModelField::Absent, ModelField::Named),
        Err(FailOpen::UnknownShape) => probe_model(body),
        Err(_) => ModelField::Unusable,
    };
    let requested = Requested::of(config, field);
    let request = parsed.as_ref().ok();
    let stream = request.is_some_and(|request| request.stream);
    let expect = request.map(Expectations::of).unwrap_or_default();

    let decision = |tier: usize, score: Option<f64>, cause: Cause, reasons: Vec<String>| {
        let model = if requested.routable {
            config
                .tiers
                .get(tier)
                .and_then(|tier| tier.model_for(head.format))
                .filter(|model| Some(*model) != requested.model.as_deref())
                .map(str::to_string)
        } else {
            None
        };
        Decision {
            tier: config
                .tiers
                .get(tier)
                .map_or_else(String::new, |tier| tier.name.clone()),
            score,
            model,
            requested_model: requested.model.as_deref().map(str::to_string),
            cause,
            reasons,
            stream,
            expect,
        }
    };

    // A verified, allowed caller's override replaces the tier of an automatic decision (a rule's or the
    // model's) and keeps what triage would have chosen; a pinned model or a fail-open is not routed.
    let chosen =
        |tier: usize, score: Option<f64>, cause: Cause, reasons: Vec<String>| match override_tier(
            config, head,
        ) {
            Some(wanted) => {
                let from = config
                    .tiers
                    .get(tier)
                    .map_or_else(String::new, |tier| tier.name.clone());
                decision(wanted, score, Cause::Override { from }, reasons)
            }
            None => decision(tier, score, cause, reasons),
        };

    if let Some(rule) = config
        .rules
        .iter()
        .find(|rule| matches(&rule.when, config, head, request))
    {
        let reasons = vec![format!("rule: {}", rule.name)];
        return chosen(rule.tier, None, Cause::Rule(rule.name.clone()), reasons);
    }
    if let (Some(model), false) = (requested.model.as_deref(), requested.routable) {
        let tier = config
            .tiers
            .iter()
            .position(|tier| tier.lists(model))
            .unwrap_or(config.default_tier());
        return decision(
            tier,
            None,
            Cause::ExplicitModel,
            vec![format!("explicit_model: {model}")],
        );
    }
    let request = match parsed {
        Ok(request) => request,
        Err(cause) => {
            let reasons = vec![format!("fail_open: {}", cause.as_str())];
            return decision(config.default_tier(), None, Cause::FailOpen(cause), reasons);
        }
    };
    let prediction = config.model().predict(&request, config.max_scan_bytes);
    let tier = config
        .tiers
        .iter()
        .position(|tier| {
            tier.max_score
                .is_some_and(|max| prediction.probability <= max)
        })
        .unwrap_or(config.tiers.len().saturating_sub(1));
    chosen(
        tier,
        Some(prediction.probability),
        Cause::Scored,
        prediction.reasons,
    )
}

/// The tier a verified, allowed caller asked for; None for anyone else or an unknown tier.
fn override_tier(config: &Config, head: &RequestHead) -> Option<usize> {
    let policy = config.override_policy.as_ref()?;
    if !policy.allows(head.identity) {
        return None;
    }
    let (_, wanted) = head
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&policy.header))?;
    config.tiers.iter().position(|tier| tier.name == *wanted)
}

/// Moves a decision to the tier at `tier` (past a tier whose circuit breaker is open, or up after a
/// failure), with that tier's model when the request's model is routable.
pub fn retarget(config: &Config, decision: &mut Decision, tier: usize, format: ApiFormat) {
    let Some(target) = config.tiers.get(tier) else {
        return;
    };
    let routable = decision
        .requested_model
        .as_deref()
        .is_none_or(|model| config.routes(model));
    decision.tier = target.name.clone();
    decision.model = if routable {
        target
            .model_for(format)
            .filter(|model| Some(*model) != decision.requested_model.as_deref())
            .map(str::to_string)
    } else {
        None
    };
}

/// Fail-open decision without a body (e.g. body over the cap): the body stays untouched.
pub fn fail_open(config: &Config, cause: FailOpen) -> Decision {
    Decision {
        tier: config.default_tier_name().to_string(),
        score: None,
        model: None,
        requested_model: None,
        cause: Cause::FailOpen(cause),
        reasons: vec![format!("fail_open: {}", cause.as_str())],
        stream: false,
        expect: Expectations::default(),
    }
}

fn matches(
    when: &Condition,
    config: &Config,
    head: &RequestHead,
    request: Option<&ParsedRequest>,
) -> bool {
    if when.needs_body() && request.is_none() {
        return false;
    }
    let path_matches = when
        .path_prefix
        .as_ref()
        .is_none_or(|prefix| head.path.starts_with(prefix.as_str()));
    let header_matches = when.header.as_ref().is_none_or(|(name, value)| {
        head.headers.iter().any(|(have_name, have_value)| {
            have_name.eq_ignore_ascii_case(name) && have_value == value
        })
    });
    let identity_matches = when
        .caller
        .as_deref()
        .is_none_or(|caller| head.identity.caller == Some(caller))
        && when
            .tenant
            .as_deref()
            .is_none_or(|tenant| head.identity.tenant == Some(tenant));
    let model_matches = when
        .model
        .as_ref()
        .is_none_or(|model| request.and_then(|r| r.model.as_deref()) == Some(model.as_str()));
    let regex_matches = when.last_user_regex.as_ref().is_none_or(|regex| {
        request.is_some_and(|request| {
            scan::last_user_segments(request, config.max_scan_bytes)
                .iter()
                .any(|segment| regex.is_match(segment))
        })
    });
    path_matches && header_matches && identity_matches && model_matches && regex_matches
}

#[cfg(test)]
mod tests;
