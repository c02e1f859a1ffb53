//! Who served the answer, by Envoy's word rather than by triage's intent.
//!
//! triage routes with a header, and the operator's Envoy route table turns that header into a
//! cluster: a typo, a hand-edited route or a catch-all can send a tier's requests to another tier's
//! cluster, or to one no tier names. The filter reads the cluster Envoy used for the attempt it
//! routed (the only attempt that goes through the route table: an escalated attempt is sent by
//! triage to its tier's own cluster), and the record bills the tier whose cluster that is.

use serde::{Deserialize, Serialize};

use super::{DecisionRecord, Escalation};
use crate::config::Config;
use crate::usage::Usage;

/// Why the routed attempt was served by another cluster than the routed tier's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchCause {
    /// Envoy's route table sent the tier's header value to another tier's cluster.
    RouteTable,
    /// Envoy's route table sent it to a cluster no tier names: its price is unknown.
    UnknownCluster,
}

/// The routed attempt went to another cluster than the routed tier's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The tier triage routed to (shadowed: the default tier, whose route un-routed requests take).
    pub routed: String,
    /// The cluster Envoy's route table used instead.
    pub served_cluster: String,
    /// The tier whose cluster that is; null when it is no tier's.
    pub served: Option<String>,
    pub cause: MismatchCause,
}

/// A cheaper tier's answer that escalation dropped, billed all the same.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DroppedAnswer<'a> {
    /// The tier that gave it; None when a cluster no tier names did.
    pub tier: Option<&'a str>,
    pub usage: Usage,
    /// Null when the tier is unknown or has no price.
    pub cost_micro_usd: Option<f64>,
}

impl DecisionRecord {
    /// Envoy's word on the attempt triage routed: the cluster its route table picked (None when it
    /// names none, e.g. for a reply no upstream gave). Called when that attempt's response headers
    /// arrive, while `tier` still names the routed tier.
    pub fn routed_attempt_served_by(&mut self, config: &Config, cluster: Option<&str>) {
        self.served_cluster = cluster.map(str::to_string);
        self.mismatch = cluster.and_then(|cluster| {
            let served = config.tier_of_cluster(cluster, &self.tier);
            (served != Some(self.tier.as_str())).then(|| Mismatch {
                routed: self.tier.clone(),
                served_cluster: cluster.to_string(),
                served: served.map(str::to_string),
                cause: match served {
                    Some(_) => MismatchCause::RouteTable,
                    None => MismatchCause::UnknownCluster,
                },
            })
        });
    }

    /// The client gets an escalated answer: triage sent that attempt to `tier`'s own `cluster`,
    /// past the route table, writing `model`. A mismatch of the routed attempt stays recorded.
    pub fn answered_by_escalation(&mut self, tier: &str, cluster: &str, model: Option<String>) {
        self.tier = tier.to_string();
        self.served_cluster = Some(cluster.to_string());
        self.model = model;
    }

    /// The tier whose answer the client got: when that is the routed attempt's and Envoy served it
    /// elsewhere, the mismatch's served tier; otherwise `tier`. None when a cluster no tier names
    /// gave it, so no tier's price or quality can be read from it.
    pub fn serving_tier(&self) -> Option<&str> {
        match &self.mismatch {
            Some(mismatch) if self.served_cluster.as_ref() == Some(&mismatch.served_cluster) => {
                mismatch.served.as_deref()
            }
            _ => Some(&self.tier),
        }
    }

    /// The tier whose answer `step` dropped: the routed attempt's answer came from wherever Envoy's
    /// route table sent it; every later attempt went to its own tier's cluster.
    pub fn dropped_by<'a>(&'a self, step: &'a Escalation) -> Option<&'a str> {
        match &self.mismatch {
            Some(mismatch) if step.from == mismatch.routed => mismatch.served.as_deref(),
            _ => Some(&step.from),
        }
    }

    /// The answers escalation dropped (those with usage: a failed attempt used nothing), each
    /// priced at the tier that gave it.
    pub fn dropped_answers<'a>(
        &'a self,
        config: &'a Config,
    ) -> impl Iterator<Item = DroppedAnswer<'a>> + 'a {
        self.escalations.iter().filter_map(|step| {
            let usage = step.abandoned_usage?;
            let tier = self.dropped_by(step);
            Some(DroppedAnswer {
                tier,
                usage,
                cost_micro_usd: tier
                    .and_then(|tier| config.price(tier))
                    .map(|price| price.cost_micro_usd(&usage)),
            })
        })
    }

    /// What the answer the client got cost at its serving tier's price; null without usage, price
    /// or a known serving tier.
    pub fn served_answer_cost(&self, config: &Config) -> Option<f64> {
        let usage = self.usage?;
        let price = config.price(self.serving_tier()?)?;
        Some(price.cost_micro_usd(&usage))
    }
}
