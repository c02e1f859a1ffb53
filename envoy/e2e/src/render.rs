//! Renders `envoy/envoy.yaml.in` exactly as `envoy/render.sh` does:
//! 1. the line `${HTTP_FILTERS}` becomes `envoy/filters/<flavour>.yaml.in`;
//! 2. every `${NAME}` becomes its value with `'` doubled and line breaks turned into spaces (each
//!    placeholder sits in a single-quoted YAML scalar or is a bare number).

use std::collections::HashMap;
use std::path::Path;

use crate::paths::repo_root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The triage wasm filter.
    Triage,
    /// Envoy's native buffer filter in its place (the performance baseline).
    Baseline,
}

impl Flavour {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Triage => "triage",
            Flavour::Baseline => "baseline",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub listen: u16,
    pub admin: u16,
    pub small: u16,
    pub mid: u16,
    pub frontier: u16,
}

/// `wasm` is needed by the triage flavour only; `access_log` is where Envoy writes decision records;
/// `jwks` holds the keys the gateway's `jwt_authn` filter verifies caller tokens with.
pub fn render(
    flavour: Flavour,
    ports: Ports,
    wasm: Option<&Path>,
    plugin_config: &str,
    access_log: &Path,
    jwks: &Path,
) -> String {
    let envoy_dir = repo_root().join("envoy");
    let stack = read(&envoy_dir.join("envoy.yaml.in"));
    let filters = read(&envoy_dir.join(format!("filters/{}.yaml.in", flavour.as_str())));
    let template = stack.replace("${HTTP_FILTERS}\n", &filters);
    let mut values = HashMap::from([
        ("LISTEN_PORT", ports.listen.to_string()),
        ("ADMIN_PORT", ports.admin.to_string()),
        ("SMALL_PORT", ports.small.to_string()),
        ("MID_PORT", ports.mid.to_string()),
        ("FRONTIER_PORT", ports.frontier.to_string()),
        ("PLUGIN_CONFIG", plugin_config.to_owned()),
        ("ACCESS_LOG", access_log.display().to_string()),
        ("JWKS_PATH", jwks.display().to_string()),
    ]);
    if let Some(wasm) = wasm {
        values.insert("WASM_PATH", wasm.display().to_string());
    }
    substitute(&template, &values)
}

fn substitute(template: &str, values: &HashMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .unwrap_or_else(|| panic!("unclosed placeholder in the template: {}", &rest[start..]));
        let name = &after[..end];
        let value = values
            .get(name)
            .unwrap_or_else(|| panic!("the template uses an unknown placeholder ${{{name}}}"));
        out.push_str(&yaml_single_quoted_content(value));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn yaml_single_quoted_content(value: &str) -> String {
    value
        .replace("\r\n", " ")
        .replace(['\r', '\n'], " ")
        .replace('\'', "''")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_made_safe_for_single_quoted_yaml() {
        let values = HashMap::from([("A", "it's\n{\"x\": 1}".to_owned())]);
        assert_eq!(substitute("v: '${A}'", &values), "v: 'it''s {\"x\": 1}'");
    }
}
