//! The plugin configuration: serde structs that refuse unknown fields, validated into an immutable
//! [`Config`]; every error names the field path.

use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::format::ApiFormat;
use crate::identity::{IdentitySource, IdentitySources};
use crate::mode::Mode;
use crate::model::Model;
use crate::pricing::Price;

mod address;
#[cfg(any(test, feature = "schema"))]
mod schema;
use crate::lifecycle::escalation::policy as escalation;
#[cfg(any(test, feature = "schema"))]
pub use schema::json_schema;
mod identity;
mod operations;
pub use crate::lifecycle::escalation::policy::EscalationPolicy;
pub use address::UpstreamAddress;
pub use operations::Override;
use operations::{RawOverride, RawPrice, RawRecord, RawUsage};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    path: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The field path, e.g. `tiers[1].max_score`; `(root)` for the document itself.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl ConfigError {
    /// What the filter logs when `on_configure` refuses a config, `triage config refused: <field>:
    /// <why>`: one spelling for the filter's log, `triage validate` and the web package.
    pub fn refusal(&self) -> String {
        format!("triage config refused: {self}")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "PluginConfig")
)]
struct RawConfig {
    route_header: Option<String>,
    default_tier: Option<String>,
    route_models: Option<Vec<String>>,
    #[cfg_attr(any(test, feature = "schema"), schemars(extend("minItems" = 1)))]
    tiers: Option<Vec<RawTier>>,
    rules: Option<Vec<RawRule>>,
    limits: Option<RawLimits>,
    /// A model file's object, embedded (the filter reads no files).
    #[cfg_attr(
        any(test, feature = "schema"),
        schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")
    )]
    model: Option<Box<RawValue>>,
    #[cfg_attr(
        any(test, feature = "schema"),
        schemars(extend("enum" = ["enforce", "shadow", "canary", null]))
    )]
    mode: Option<String>,
    canary_percent: Option<f64>,
    #[serde(rename = "override")]
    override_: Option<RawOverride>,
    record: Option<RawRecord>,
    usage: Option<RawUsage>,
    escalation: Option<escalation::RawEscalation>,
    identity: Option<identity::RawIdentity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Tier")
)]
struct RawTier {
    #[cfg_attr(any(test, feature = "schema"), schemars(extend("pattern" = "^[a-z0-9_-]+$")))]
    name: String,
    model: Option<String>,
    #[cfg_attr(
        any(test, feature = "schema"),
        schemars(extend("minimum" = 0, "maximum" = 1))
    )]
    max_score: Option<f64>,
    models: Option<RawModels>,
    price: Option<RawPrice>,
    cluster: Option<String>,
    upstream: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "TierModels")
)]
struct RawModels {
    openai_chat: Option<String>,
    openai_responses: Option<String>,
    anthropic_messages: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Rule")
)]
struct RawRule {
    name: String,
    when: RawWhen,
    tier: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "RuleCondition")
)]
struct RawWhen {
    path_prefix: Option<String>,
    header: Option<RawHeader>,
    caller: Option<String>,
    tenant: Option<String>,
    model: Option<String>,
    last_user_regex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "HeaderMatch")
)]
pub(crate) struct RawHeader {
    pub(crate) name: String,
    pub(crate) value: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Limits")
)]
struct RawLimits {
    max_body_bytes: Option<u64>,
    max_scan_bytes: Option<u64>,
    envoy_buffer_limit_bytes: Option<u64>,
    #[cfg_attr(
        any(test, feature = "schema"),
        schemars(extend("enum" = ["default_tier", "reject", null]))
    )]
    over_max_body: Option<String>,
}

/// What happens to an LLM call whose body is larger than `limits.max_body_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverMaxBody {
    /// Routed to the default tier at once and streamed through untouched (`fail_open:
    /// body_too_large`): for an Envoy limit well above the cap, where large bodies may pass.
    DefaultTier,
    /// Answered 413 by the filter (enforced requests; a shadowed one streams through as it would
    /// without triage): one cap for every LLM call, as the shipped stack has.
    Reject,
}

impl OverMaxBody {
    fn parse(value: Option<&str>) -> Result<OverMaxBody, ConfigError> {
        match value {
            None | Some("default_tier") => Ok(OverMaxBody::DefaultTier),
            Some("reject") => Ok(OverMaxBody::Reject),
            Some(other) => Err(ConfigError::new(
                "limits.over_max_body",
                format!("{other:?} is not one of \"default_tier\", \"reject\""),
            )),
        }
    }
}

const DEFAULT_ROUTE_HEADER: &str = "x-triage-route";
/// Every header triage writes starts so; the filter strips client headers that do.
pub const OWN_HEADER_PREFIX: &str = "x-triage-";
const DEFAULT_TIER: &str = "mid";
const DEFAULT_ROUTE_MODEL: &str = "auto";
const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
const DEFAULT_MAX_SCAN_BYTES: u64 = 64 * 1024;
/// Bounds the memory a rule regex may take inside the VM.
const RULE_REGEX_SIZE_LIMIT: usize = 1 << 21;

fn default_tiers() -> Vec<RawTier> {
    let tier = |name: &str, model: &str, max_score: Option<f64>, anthropic: &str| RawTier {
        name: name.into(),
        model: Some(model.into()),
        max_score,
        models: Some(RawModels {
            openai_chat: None,
            openai_responses: None,
            anthropic_messages: Some(anthropic.into()),
        }),
        // Prices are the operator's contract, not ours to guess: unpriced tiers record no cost.
        price: None,
        cluster: None,
        upstream: None,
    };
    // No max_score: the shipped model's calibrated thresholds apply.
    vec![
        tier("small", "gpt-4o-mini", None, "claude-haiku-4-5"),
        tier("mid", "gpt-4o", None, "claude-sonnet-4-5"),
        tier("frontier", "o3", None, "claude-opus-4-1"),
    ]
}

#[derive(Clone, Debug)]
pub(crate) struct Tier {
    pub(crate) name: String,
    /// Some on every tier but the last: the config's, else the model's threshold.
    pub(crate) max_score: Option<f64>,
    model: Option<String>,
    /// Per-format overrides, in [`ApiFormat::ALL`] order.
    models: [Option<String>; 3],
    pub(crate) price: Option<Price>,
    /// The Envoy cluster an escalated attempt is sent to (`tier_<name>` unless configured), and by
    /// which a served answer is known as this tier's.
    pub(crate) cluster: String,
    /// Where the tier's model server listens, for the generated gateway config.
    upstream: Option<UpstreamAddress>,
}

impl Tier {
    /// The model this tier writes into a body of `format`, if any.
    pub(crate) fn model_for(&self, format: ApiFormat) -> Option<&str> {
        let index = ApiFormat::ALL.iter().position(|known| *known == format);
        index
            .and_then(|index| self.models.get(index))
            .and_then(Option::as_deref)
            .or(self.model.as_deref())
    }

    pub(crate) fn lists(&self, model: &str) -> bool {
        self.model.as_deref() == Some(model) || self.models.iter().flatten().any(|m| m == model)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) tier: usize,
    pub(crate) when: Condition,
}

/// All present fields must match.
#[derive(Clone, Debug)]
pub(crate) struct Condition {
    pub(crate) path_prefix: Option<String>,
    /// (lowercase name, exact value)
    pub(crate) header: Option<(String, String)>,
    /// The verified caller and tenant, matched exactly (`identity`).
    pub(crate) caller: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) last_user_regex: Option<Regex>,
}

impl Condition {
    pub(crate) fn needs_body(&self) -> bool {
        self.model.is_some() || self.last_user_regex.is_some()
    }
}

/// The shipped model is shared, not copied, by every config that names none.
#[derive(Clone, Debug)]
enum ConfigModel {
    Shipped(&'static Model),
    Embedded(Arc<Model>),
}

impl ConfigModel {
    fn get(&self) -> &Model {
        match self {
            ConfigModel::Shipped(model) => model,
            ConfigModel::Embedded(model) => model,
        }
    }
}

/// The validated, immutable plugin configuration.
#[derive(Clone, Debug)]
pub struct Config {
    route_header: String,
    default_tier: usize,
    route_models: Vec<String>,
    pub(crate) tiers: Vec<Tier>,
    pub(crate) rules: Vec<Rule>,
    /// Distinct header names the rules read, worked out once: the filter fetches these per request.
    rule_headers: Vec<String>,
    max_body_bytes: usize,
    pub(crate) max_scan_bytes: usize,
    envoy_buffer_limit_bytes: usize,
    over_max_body: OverMaxBody,
    model: ConfigModel,
    mode: Mode,
    pub(crate) override_policy: Option<Override>,
    identity: IdentitySources,
    record_body_bytes: usize,
    request_stream_usage: bool,
    escalation: Option<EscalationPolicy>,
}

impl Config {
    /// Parses and validates a plugin configuration; empty or whitespace-only means the defaults.
    pub fn from_json(json: &[u8]) -> Result<Config, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Ok(Config::default());
        }
        // A refusal of the deserializer is one of the config's structure (an unknown field, a
        // wrong type, a missing field), which the JSON Schema states too; the tests hold the two
        // to agreeing on every config they read.
        #[cfg_attr(not(test), allow(unused_variables))]
        let (outcome, structural) = match read(json) {
            Ok(raw) => (validate(raw), false),
            Err(error) => (Err(error), true),
        };
        #[cfg(test)]
        schema::agrees_with_the_schema(json, &outcome, structural);
        outcome
    }

    pub fn route_header(&self) -> &str {
        &self.route_header
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The body limit Envoy shares with the filter (the listener's
    /// `per_connection_buffer_limit_bytes`), as the config states it, else the least it needs:
    /// `max_body_bytes` plus [`crate::max_growth`]. Envoy answers 413 to a buffered body the filter
    /// makes longer than this, so the filter never hands Envoy one.
    pub fn envoy_buffer_limit_bytes(&self) -> usize {
        self.envoy_buffer_limit_bytes
    }

    pub fn over_max_body(&self) -> OverMaxBody {
        self.over_max_body
    }

    /// Most text bytes that the text features and rule regexes read per request.
    pub fn max_scan_bytes(&self) -> usize {
        self.max_scan_bytes
    }

    /// Lowercase names of the request headers the decision reads: the rules' and the override's
    /// (the filter fetches only these).
    pub fn decision_header_names(&self) -> &[String] {
        &self.rule_headers
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Where the gateway puts the verified caller and tenant: the filter reads them per request.
    pub fn identity_sources(&self) -> &IdentitySources {
        &self.identity
    }

    pub fn override_policy(&self) -> Option<&Override> {
        self.override_policy.as_ref()
    }

    /// The largest request body the decision record carries (0: none). Logging bodies is what
    /// lets `triage train --from-log` learn from live traffic; it is off unless asked for.
    pub fn record_body_bytes(&self) -> usize {
        self.record_body_bytes
    }

    /// Whether the filter asks OpenAI chat streams for a final usage chunk.
    pub fn request_stream_usage(&self) -> bool {
        self.request_stream_usage
    }

    /// The price of the tier named `tier`, if the config gives one.
    pub fn price(&self, tier: &str) -> Option<Price> {
        self.tiers
            .iter()
            .find(|known| known.name == tier)
            .and_then(|known| known.price)
    }

    /// The escalation policy; None when escalation is off.
    pub fn escalation(&self) -> Option<&EscalationPolicy> {
        self.escalation.as_ref()
    }

    pub fn tier_index(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|tier| tier.name == name)
    }

    pub fn tier_name(&self, index: usize) -> Option<&str> {
        self.tiers.get(index).map(|tier| tier.name.as_str())
    }

    /// The Envoy cluster of the tier at `index`.
    pub fn tier_cluster(&self, index: usize) -> Option<&str> {
        self.tiers.get(index).map(|tier| tier.cluster.as_str())
    }

    /// The configured `upstream` of the tier at `index`.
    pub fn tier_upstream(&self, index: usize) -> Option<&UpstreamAddress> {
        self.tiers
            .get(index)
            .and_then(|tier| tier.upstream.as_ref())
    }

    /// The tier whose cluster is `cluster`; None when it is no tier's. Tiers may share a cluster:
    /// then `preferred` wins when it is one of them, so a request served where it was routed is
    /// never read as another tier's.
    pub fn tier_of_cluster<'a>(&'a self, cluster: &str, preferred: &str) -> Option<&'a str> {
        let mut sharing = self.tiers.iter().filter(|tier| tier.cluster == cluster);
        let first = sharing.clone().next()?;
        let tier = sharing.find(|tier| tier.name == preferred).unwrap_or(first);
        Some(tier.name.as_str())
    }

    /// The model the tier at `index` writes into a body of `format`, if any.
    pub fn tier_model(&self, index: usize, format: ApiFormat) -> Option<&str> {
        self.tiers
            .get(index)
            .and_then(|tier| tier.model_for(format))
    }

    /// The dearest tier: what every request would cost without routing.
    pub fn top_tier_name(&self) -> &str {
        self.tiers.last().map_or("", |tier| tier.name.as_str())
    }

    pub fn default_tier_name(&self) -> &str {
        self.tiers
            .get(self.default_tier)
            .map_or("", |tier| tier.name.as_str())
    }

    /// Tier names, cheapest first.
    pub fn tier_names(&self) -> Vec<&str> {
        self.tiers.iter().map(|tier| tier.name.as_str()).collect()
    }

    /// The score upper bound of every tier but the last, cheapest first: the config's `max_score`s,
    /// else the model's thresholds.
    pub fn thresholds(&self) -> Vec<f64> {
        self.tiers
            .iter()
            .filter_map(|tier| tier.max_score)
            .collect()
    }

    /// The embedded model, else the shipped one.
    pub fn model(&self) -> &Model {
        self.model.get()
    }

    pub(crate) fn default_tier(&self) -> usize {
        self.default_tier
    }

    /// Whether the router decides for a request that names `model`.
    pub(crate) fn routes(&self, model: &str) -> bool {
        self.route_models.iter().any(|routed| routed == model)
    }
}

impl Default for Config {
    fn default() -> Self {
        validate(RawConfig::default()).unwrap_or_else(|_| Config {
            route_header: DEFAULT_ROUTE_HEADER.into(),
            default_tier: 0,
            route_models: vec![DEFAULT_ROUTE_MODEL.into()],
            tiers: vec![Tier {
                name: DEFAULT_TIER.into(),
                max_score: None,
                model: None,
                models: Default::default(),
                price: None,
                cluster: format!("tier_{DEFAULT_TIER}"),
                upstream: None,
            }],
            rules: Vec::new(),
            rule_headers: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES as usize,
            max_scan_bytes: DEFAULT_MAX_SCAN_BYTES as usize,
            envoy_buffer_limit_bytes: DEFAULT_MAX_BODY_BYTES as usize,
            over_max_body: OverMaxBody::DefaultTier,
            model: ConfigModel::Shipped(Model::shipped()),
            mode: Mode::Enforce,
            override_policy: None,
            identity: IdentitySources::default(),
            record_body_bytes: 0,
            request_stream_usage: false,
            escalation: None,
        })
    }
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A lowercased HTTP header name that is not a pseudo-header.
pub(crate) fn header_name(path: &str, name: &str) -> Result<String, ConfigError> {
    if name.starts_with(':') {
        return Err(ConfigError::new(
            path,
            format!("{name:?} is a pseudo-header"),
        ));
    }
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(ConfigError::new(
            path,
            format!("{name:?} is not a valid header name"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

fn non_empty(path: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(value) if value.is_empty() => Err(ConfigError::new(path, "must not be empty")),
        other => Ok(other),
    }
}

fn tier_index(tiers: &[Tier], path: &str, name: &str) -> Result<usize, ConfigError> {
    tiers
        .iter()
        .position(|tier| tier.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = tiers.iter().map(|tier| tier.name.as_str()).collect();
            ConfigError::new(
                path,
                format!("no tier named {name:?} (tiers: {})", known.join(", ")),
            )
        })
}

/// The config's fields as JSON gives them, refused with the path of the field at fault.
fn read(json: &[u8]) -> Result<RawConfig, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." || path == "?" {
            "(root)".to_string()
        } else {
            path
        };
        ConfigError::new(path, error.into_inner().to_string())
    })?;
    deserializer
        .end()
        .map_err(|error| ConfigError::new("(root)", error.to_string()))?;
    Ok(raw)
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let route_header = header_name(
        "route_header",
        raw.route_header.as_deref().unwrap_or(DEFAULT_ROUTE_HEADER),
    )?;
    let route_models = raw
        .route_models
        .unwrap_or_else(|| vec![DEFAULT_ROUTE_MODEL.into()]);
    for (index, model) in route_models.iter().enumerate() {
        if model.is_empty() {
            return Err(ConfigError::new(
                format!("route_models[{index}]"),
                "must not be empty",
            ));
        }
    }
    let model = match raw.model {
        Some(raw) => ConfigModel::Embedded(Arc::new(embedded_model(&raw)?)),
        None => ConfigModel::Shipped(Model::shipped()),
    };
    let custom_tiers = raw.tiers.is_some();
    let tiers = validate_tiers(raw.tiers.unwrap_or_else(default_tiers), &model)?;
    let default_tier = match &raw.default_tier {
        Some(name) => tier_index(&tiers, "default_tier", name)?,
        // Custom tiers without a "mid": fail open to the dearest tier, the quality-safe side.
        None if custom_tiers => tier_index(&tiers, "default_tier", DEFAULT_TIER)
            .unwrap_or(tiers.len().saturating_sub(1)),
        None => tier_index(&tiers, "default_tier", DEFAULT_TIER)?,
    };
    let identity = identity::sources(raw.identity, &route_header)?;
    let rules = raw
        .rules
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, rule)| validate_rule(&tiers, &identity, index, rule))
        .collect::<Result<Vec<Rule>, ConfigError>>()?;
    for (index, rule) in rules.iter().enumerate() {
        if rules
            .iter()
            .take(index)
            .any(|earlier| earlier.name == rule.name)
        {
            return Err(ConfigError::new(
                format!("rules[{index}].name"),
                format!("duplicate rule name {:?}", rule.name),
            ));
        }
    }
    let limits = raw.limits.unwrap_or_default();
    let max_body_bytes = positive_size(
        "limits.max_body_bytes",
        limits.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
    )?;
    let max_scan_bytes = positive_size(
        "limits.max_scan_bytes",
        limits.max_scan_bytes.unwrap_or(DEFAULT_MAX_SCAN_BYTES),
    )?;
    let over_max_body = OverMaxBody::parse(limits.over_max_body.as_deref())?;
    let mode = operations::mode(raw.mode.as_deref(), raw.canary_percent)?;
    let override_policy = operations::override_policy(raw.override_, &route_header, &identity)?;
    let escalation = escalation::policy(raw.escalation)?;
    let rule_headers = decision_headers(
        &rules,
        override_policy.as_ref(),
        &identity,
        escalation.as_ref(),
    );
    let mut config = Config {
        route_header,
        default_tier,
        route_models,
        tiers,
        rules,
        rule_headers,
        max_body_bytes,
        max_scan_bytes,
        envoy_buffer_limit_bytes: 0,
        over_max_body,
        model,
        mode,
        override_policy,
        identity,
        record_body_bytes: operations::record_body_bytes(raw.record),
        request_stream_usage: operations::request_stream_usage(raw.usage),
        escalation,
    };
    config.envoy_buffer_limit_bytes = envoy_buffer_limit(&config, limits.envoy_buffer_limit_bytes)?;
    Ok(config)
}

/// Envoy keeps a body the filter buffers in one buffer per stream, limited by the listener's
/// `per_connection_buffer_limit_bytes`, and answers 413 as soon as it holds more, also when the
/// filter replaces the body with a longer one (the model rewrite) after deciding. So a body of
/// `max_body_bytes` must still fit once the filter has grown it by the most it can: a stated Envoy
/// limit below that is refused, and without one the config needs exactly that much.
fn envoy_buffer_limit(config: &Config, stated: Option<u64>) -> Result<usize, ConfigError> {
    const PATH: &str = "limits.envoy_buffer_limit_bytes";
    let growth = crate::upstream::max_growth(config);
    let needed = config.max_body_bytes.saturating_add(growth);
    let Some(stated) = stated else {
        return Ok(needed);
    };
    let stated = positive_size(PATH, stated)?;
    if stated < needed {
        return Err(ConfigError::new(
            PATH,
            format!(
                "must be at least {needed}: limits.max_body_bytes ({}) plus the {growth} bytes the \
                 filter may add to a body (the longest model it writes, and what it asks of an \
                 answer); Envoy answers 413 to a body the filter grows past its limit",
                config.max_body_bytes
            ),
        ));
    }
    Ok(stated)
}

fn decision_headers(
    rules: &[Rule],
    override_policy: Option<&Override>,
    identity: &IdentitySources,
    escalation: Option<&EscalationPolicy>,
) -> Vec<String> {
    let rule_headers = rules.iter().filter_map(|rule| rule.when.header.as_ref());
    let override_header = override_policy.map(|policy| &policy.header);
    let identity_headers = [&identity.caller, &identity.tenant]
        .into_iter()
        .filter_map(|source| match source {
            Some(IdentitySource::Header(name)) => Some(name),
            _ => None,
        });
    let never_headers = escalation
        .into_iter()
        .flat_map(|policy| policy.never_when.iter().map(|(name, _)| name));
    let mut names: Vec<String> = Vec::new();
    for name in rule_headers
        .map(|(name, _)| name)
        .chain(override_header)
        .chain(identity_headers)
        .chain(never_headers)
    {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn positive_size(path: &str, value: u64) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(path, "must be at least 1"));
    }
    usize::try_from(value)
        .map_err(|_| ConfigError::new(path, format!("must be at most {}", usize::MAX)))
}

fn embedded_model(raw: &RawValue) -> Result<Model, ConfigError> {
    if raw.get().starts_with('"') {
        return Err(ConfigError::new(
            "model",
            "must be the model object itself, not a file name: the filter reads no files \
             (`triage calibrate` writes a config with the model embedded)",
        ));
    }
    Model::from_json(raw.get().as_bytes()).map_err(|error| {
        let path = match error.field() {
            "(root)" => "model".to_string(),
            field => format!("model.{field}"),
        };
        ConfigError::new(path, error.message())
    })
}

fn validate_tiers(raw: Vec<RawTier>, model: &ConfigModel) -> Result<Vec<Tier>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new("tiers", "must list at least one tier"));
    }
    let last = raw.len() - 1;
    let mut tiers: Vec<Tier> = Vec::with_capacity(raw.len());
    for (index, tier) in raw.into_iter().enumerate() {
        let path = format!("tiers[{index}]");
        let name_is_valid = !tier.name.is_empty()
            && tier
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_is_valid {
            return Err(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} must match [a-z0-9_-]+", tier.name),
            ));
        }
        if tiers.iter().any(|earlier| earlier.name == tier.name) {
            return Err(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate tier name {:?}", tier.name),
            ));
        }
        let max_score_path = format!("{path}.max_score");
        match (index == last, tier.max_score) {
            (true, Some(_)) => {
                return Err(ConfigError::new(
                    max_score_path,
                    "the last tier takes every score above the others and has no max_score",
                ))
            }
            (false, Some(score)) if !(0.0..=1.0).contains(&score) => {
                return Err(ConfigError::new(
                    max_score_path,
                    format!("must be within [0, 1], got {score}"),
                ))
            }
            _ => {}
        }
        let previous = index.checked_sub(1).and_then(|i| tiers.get(i));
        if let (Some(previous), Some(score)) = (previous, tier.max_score) {
            if previous.max_score.is_some_and(|before| score <= before) {
                return Err(ConfigError::new(
                    max_score_path,
                    format!(
                        "must be greater than tiers[{}].max_score ({})",
                        index - 1,
                        previous.max_score.unwrap_or_default()
                    ),
                ));
            }
        }
        let model = non_empty(&format!("{path}.model"), tier.model)?;
        let models = match tier.models {
            None => Default::default(),
            Some(models) => [
                non_empty(&format!("{path}.models.openai_chat"), models.openai_chat)?,
                non_empty(
                    &format!("{path}.models.openai_responses"),
                    models.openai_responses,
                )?,
                non_empty(
                    &format!("{path}.models.anthropic_messages"),
                    models.anthropic_messages,
                )?,
            ],
        };
        let cluster = non_empty(&format!("{path}.cluster"), tier.cluster)?
            .unwrap_or_else(|| format!("tier_{}", tier.name));
        let upstream = tier
            .upstream
            .map(|text| UpstreamAddress::parse(&format!("{path}.upstream"), &text))
            .transpose()?;
        tiers.push(Tier {
            upstream,
            price: operations::price(&format!("{path}.price"), tier.price)?,
            cluster,
            name: tier.name,
            max_score: tier.max_score,
            model,
            models,
        });
    }
    thresholds_from_model(&mut tiers, model)?;
    Ok(tiers)
}

/// Every tier but the last gives `max_score` (the config wins), or none does and the model's
/// thresholds apply, which needs a model calibrated for the same tiers.
fn thresholds_from_model(tiers: &mut [Tier], model: &ConfigModel) -> Result<(), ConfigError> {
    let Some((_, priced)) = tiers.split_last_mut() else {
        return Ok(());
    };
    let given = priced
        .iter()
        .filter(|tier| tier.max_score.is_some())
        .count();
    if given == priced.len() {
        return Ok(());
    }
    if let Some(index) = priced.iter().position(|tier| tier.max_score.is_none()) {
        if given > 0 {
            return Err(ConfigError::new(
                format!("tiers[{index}].max_score"),
                "required on every tier but the last once one sets it \
                 (or set none to use the model's thresholds)",
            ));
        }
    }
    let model = model.get();
    let names: Vec<&str> = tiers.iter().map(|tier| tier.name.as_str()).collect();
    if model.tiers != names {
        return Err(ConfigError::new(
            "model.tiers",
            format!(
                "the model's thresholds are for tiers [{}], not [{}]: set tiers[].max_score \
                 on every tier but the last, or use a model calibrated for these tiers",
                model.tiers.join(", "),
                names.join(", ")
            ),
        ));
    }
    for (tier, threshold) in tiers.iter_mut().zip(&model.thresholds) {
        tier.max_score = Some(*threshold);
    }
    Ok(())
}

fn validate_rule(
    tiers: &[Tier],
    identity: &IdentitySources,
    index: usize,
    rule: RawRule,
) -> Result<Rule, ConfigError> {
    let path = format!("rules[{index}]");
    if rule.name.is_empty() || !rule.name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            format!("{path}.name"),
            "must be non-empty visible ASCII without spaces (it is sent in a header)",
        ));
    }
    let tier = tier_index(tiers, &format!("{path}.tier"), &rule.tier)?;
    let when = rule.when;
    let header = match when.header {
        Some(header) => Some((
            header_name(&format!("{path}.when.header.name"), &header.name)?,
            header.value,
        )),
        None => None,
    };
    let last_user_regex = match when.last_user_regex {
        Some(pattern) => Some(
            RegexBuilder::new(&pattern)
                .size_limit(RULE_REGEX_SIZE_LIMIT)
                .build()
                .map_err(|error| {
                    ConfigError::new(
                        format!("{path}.when.last_user_regex"),
                        format!("invalid regex: {error}"),
                    )
                })?,
        ),
        None => None,
    };
    for (field, value, source) in [
        ("caller", &when.caller, &identity.caller),
        ("tenant", &when.tenant, &identity.tenant),
    ] {
        if value.is_some() && source.is_none() {
            return Err(ConfigError::new(
                format!("{path}.when.{field}"),
                format!("needs identity.{field}: where the gateway puts the {field} it verified"),
            ));
        }
    }
    let when = Condition {
        path_prefix: when.path_prefix,
        header,
        caller: when.caller,
        tenant: when.tenant,
        model: when.model,
        last_user_regex,
    };
    if when.path_prefix.is_none()
        && when.header.is_none()
        && when.caller.is_none()
        && when.tenant.is_none()
        && when.model.is_none()
        && when.last_user_regex.is_none()
    {
        return Err(ConfigError::new(
            format!("{path}.when"),
            "needs at least one of path_prefix, header, caller, tenant, model, last_user_regex",
        ));
    }
    Ok(Rule {
        name: rule.name,
        tier,
        when,
    })
}

#[cfg(test)]
mod tests;
