//! The tiers as a gateway sees them: each tier's name, its cluster and the upstream its requests go
//! to, from the plugin config with any upstream the operator gives in its place. Every gateway
//! config this crate renders (Envoy's, Istio's, Envoy Gateway's) routes the same tiers.

use triage_core::{Config, UpstreamAddress};

/// A tier as the gateway sees it.
pub(crate) struct GatewayTier<'c> {
    pub(crate) name: &'c str,
    /// The plugin config's cluster for the tier (`tiers[].cluster`, default `tier_<name>`).
    pub(crate) cluster: &'c str,
    pub(crate) upstream: UpstreamAddress,
}

/// Every tier of `config`, cheapest first, each at the upstream `overrides` gives for it, else at
/// its configured `upstream`; an override for a tier the config lacks, or a tier with neither, is
/// an error naming it.
pub(crate) fn resolve<'c>(
    config: &'c Config,
    overrides: &[(String, UpstreamAddress)],
) -> Result<Vec<GatewayTier<'c>>, String> {
    let names = config.tier_names();
    if let Some((unknown, _)) = overrides.iter().find(|(name, _)| !names.contains(&&**name)) {
        return Err(format!(
            "an upstream is given for tier {unknown:?}, which the plugin config does not have \
             (its tiers: {})",
            names.join(", ")
        ));
    }
    names
        .iter()
        .enumerate()
        .map(|(index, &name)| {
            let given = overrides
                .iter()
                .find(|(tier, _)| tier == name)
                .map(|(_, upstream)| upstream);
            let upstream = given
                .or(config.tier_upstream(index))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "tiers[{index}].upstream: tier {name:?} has no upstream (write \
                         \"upstream\": \"https://host[:port]\" in the plugin config, or give one \
                         with --upstream {name}=URL)"
                    )
                })?;
            Ok(GatewayTier {
                name,
                cluster: config.tier_cluster(index).unwrap_or(name),
                upstream,
            })
        })
        .collect()
}
