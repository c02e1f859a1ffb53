//! Envoy Gateway: a Gateway whose HTTPRoute has a rule per tier on the routing header, a Backend per
//! upstream host, triage as an EnvoyExtensionPolicy's Wasm extension (Envoy Gateway fetches the
//! module by URL, checks its SHA-256 and serves it to Envoy), the gateway's caller authentication
//! (SecurityPolicy) and the listener settings triage needs (ClientTrafficPolicy), and an
//! EnvoyPatchPolicy for the two Wasm filter settings Envoy Gateway's API has no field for.

use serde_json::{json, Value};
use triage_core::{Config, UpstreamAddress};

use super::yaml::{documents, Document};
use super::{
    control_plane_plugin_config, metadata, object_name, tier_labels, K8sStack, ManifestFile,
    CLIENT_HEADERS_REMOVED, NAME, NAMESPACE, ROUTE_TIMEOUT, SHIPPED_JWT_PAYLOAD_KEY, TOKEN_HEADERS,
};
use crate::tiers::GatewayTier;

const GATEWAY_API: &str = "gateway.networking.k8s.io";
const ENVOY_GATEWAY_API: &str = "gateway.envoyproxy.io";
/// The Gateway's one listener; Envoy Gateway names its Envoy listener `<namespace>/<gateway>/<this>`.
const LISTENER: &str = "http";

pub(super) fn render(
    stack: &K8sStack,
    config: &Config,
    tiers: &[GatewayTier],
) -> Result<Vec<ManifestFile>, String> {
    let labels = tier_labels(tiers)?;
    // Envoy Gateway names the cluster of an HTTPRoute rule `httproute/<namespace>/<route>/rule/<i>`
    // (unless the EnvoyProxy's mergeBackends shares clusters between routes); rule i is tier i's.
    let clusters: Vec<String> = (0..tiers.len())
        .map(|index| format!("httproute/{NAMESPACE}/{NAME}/rule/{index}"))
        .collect();
    // Envoy Gateway's jwt_authn puts the payload under the provider's name, so a provider named as
    // the shipped Envoy config's key leaves the plugin config's identity sources as they are.
    let plugin_config = control_plane_plugin_config(
        stack.plugin_config,
        tiers,
        &clusters,
        SHIPPED_JWT_PAYLOAD_KEY,
    )?;

    let gateway_ref = json!([{ "group": GATEWAY_API, "kind": "Gateway", "name": NAME }]);
    let route_ref = json!([{ "group": GATEWAY_API, "kind": "HTTPRoute", "name": NAME }]);
    let mut backends: Vec<&UpstreamAddress> = Vec::new();
    for tier in tiers {
        if let Some(known) = backends
            .iter()
            .find(|known| known.host == tier.upstream.host)
        {
            if **known != tier.upstream {
                return Err(format!(
                    "tier {:?} reaches {} as {}, another tier as {}: one Backend per host",
                    tier.name, tier.upstream.host, tier.upstream, known
                ));
            }
            continue;
        }
        backends.push(&tier.upstream);
    }
    let default_tier = config.default_tier_name();
    let rules: Vec<Value> = tiers
        .iter()
        .zip(&labels)
        .map(|(tier, label)| {
            let mut matches = vec![json!({
                "headers": [{ "type": "Exact", "name": config.route_header(), "value": tier.name }],
            })];
            if tier.name == default_tier {
                // Requests triage does not route (other paths and methods) take the default
                // tier's rule; a header match outranks this one, so routed requests never do.
                matches.push(json!({ "path": { "type": "PathPrefix", "value": "/" } }));
            }
            json!({
                "name": label,
                "matches": matches,
                "filters": [
                    { "type": "RequestHeaderModifier", "requestHeaderModifier": { "remove": TOKEN_HEADERS } },
                    // A provider serves its own host name, not the gateway's.
                    { "type": "URLRewrite", "urlRewrite": { "hostname": tier.upstream.host } },
                ],
                "backendRefs": [{
                    "group": ENVOY_GATEWAY_API,
                    "kind": "Backend",
                    "name": object_name(&tier.upstream),
                    "port": tier.upstream.port,
                }],
                "timeouts": { "request": ROUTE_TIMEOUT },
            })
        })
        .collect();
    let mut route_documents = vec![Document {
        comment: "The filter names the tier in the routing header and clears the route cache; \
                  rule i sends tier i\nto its upstream (Envoy Gateway's cluster for rule i is \
                  the one the plugin config names for\nthe tier). The caller's token never \
                  reaches a tier."
            .into(),
        value: json!({
            "apiVersion": format!("{GATEWAY_API}/v1"),
            "kind": "HTTPRoute",
            "metadata": metadata(NAME, NAMESPACE),
            "spec": { "parentRefs": [{ "name": NAME }], "rules": rules },
        }),
    }];
    route_documents.extend(backends.iter().map(|upstream| backend(upstream)));

    Ok(vec![
        ManifestFile {
            name: "gateway.yaml",
            yaml: documents(
                "The gateway for LLM traffic (plain HTTP on port 80; add an HTTPS listener once \
                 it works), and the\nlistener settings triage needs.",
                &[
                    Document {
                        comment: String::new(),
                        value: json!({
                            "apiVersion": format!("{GATEWAY_API}/v1"),
                            "kind": "GatewayClass",
                            "metadata": { "name": NAME },
                            "spec": { "controllerName": "gateway.envoyproxy.io/gatewayclass-controller" },
                        }),
                    },
                    Document {
                        comment: String::new(),
                        value: json!({
                            "apiVersion": format!("{GATEWAY_API}/v1"),
                            "kind": "Gateway",
                            "metadata": metadata(NAME, NAMESPACE),
                            "spec": {
                                "gatewayClassName": NAME,
                                "listeners": [{ "name": LISTENER, "protocol": "HTTP", "port": 80 }],
                            },
                        }),
                    },
                    client_traffic_policy(&gateway_ref, config.envoy_buffer_limit_bytes()),
                ],
            ),
        },
        ManifestFile {
            name: "authentication.yaml",
            yaml: documents(
                "Who is calling, verified by the gateway: the identity triage's rules and overrides \
                 trust.",
                &[security_policy(stack, &route_ref)],
            ),
        },
        ManifestFile {
            name: "triage-extension.yaml",
            yaml: documents(
                "triage on the LLM route: the module, fetched by Envoy Gateway and checked against \
                 its SHA-256, with\nthe plugin config; and the two filter settings Envoy \
                 Gateway's API lacks (see README.md).",
                &[
                    Document {
                        comment: String::new(),
                        value: json!({
                            "apiVersion": format!("{ENVOY_GATEWAY_API}/v1alpha1"),
                            "kind": "EnvoyExtensionPolicy",
                            "metadata": metadata(NAME, NAMESPACE),
                            "spec": {
                                "targetRefs": route_ref,
                                "wasm": [{
                                    "name": NAME,
                                    "rootID": NAME,
                                    "code": {
                                        "type": "HTTP",
                                        "http": { "url": stack.module_url, "sha256": stack.module_sha256 },
                                    },
                                    "config": plugin_config,
                                    // A module that cannot be fetched or loaded stops the route
                                    // (500) rather than routing without triage.
                                    "failOpen": false,
                                }],
                            },
                        }),
                    },
                    wasm_settings_patch(),
                ],
            ),
        },
        ManifestFile {
            name: "routes.yaml",
            yaml: documents(
                "One rule per tier on the routing header the filter sets, and a Backend per \
                 upstream host.",
                &route_documents,
            ),
        },
    ])
}

/// Before any filter, the client's `x-triage-*` headers go (so no client picks its tier, even
/// while the Wasm VM reloads); Envoy's body limit is the plugin config's; paths are read one way.
fn client_traffic_policy(gateway_ref: &Value, buffer_limit: usize) -> Document {
    Document {
        comment: String::new(),
        value: json!({
            "apiVersion": format!("{ENVOY_GATEWAY_API}/v1alpha1"),
            "kind": "ClientTrafficPolicy",
            "metadata": metadata(NAME, NAMESPACE),
            "spec": {
                "targetRefs": gateway_ref,
                "headers": {
                    "earlyRequestHeaders": {
                        "removeOnMatch": [{ "type": "RegularExpression", "value": CLIENT_HEADERS_REMOVED }],
                    },
                },
                "connection": { "bufferLimit": buffer_limit.to_string() },
                "path": { "escapedSlashesAction": "RejectRequest", "disableMergeSlashes": false },
            },
        }),
    }
}

/// The gateway's `jwt_authn`: a token in either header is checked against the provider's keys,
/// issuer and audience; its payload goes to dynamic metadata under the provider's name, where the
/// plugin config's `identity` reads it. `optional`: no token passes anonymously, an invalid one
/// gets 401. Envoy Gateway forwards the token; the routes remove it before any tier.
fn security_policy(stack: &K8sStack, route_ref: &Value) -> Document {
    Document {
        comment: String::new(),
        value: json!({
            "apiVersion": format!("{ENVOY_GATEWAY_API}/v1alpha1"),
            "kind": "SecurityPolicy",
            "metadata": metadata(NAME, NAMESPACE),
            "spec": {
                "targetRefs": route_ref,
                "jwt": {
                    "optional": true,
                    "providers": [{
                        "name": SHIPPED_JWT_PAYLOAD_KEY,
                        "issuer": stack.jwt.issuer,
                        "audiences": [stack.jwt.audience],
                        "remoteJWKS": { "uri": stack.jwt.jwks_uri },
                        "extractFrom": {
                            "headers": [
                                { "name": "authorization", "valuePrefix": "Bearer " },
                                { "name": "x-api-key" },
                            ],
                        },
                    }],
                },
            },
        }),
    }
}

/// Envoy Gateway builds the Wasm filter without `allow_on_headers_stop_iteration` (without it Envoy
/// turns triage's pause on the request headers into a hang) and with only `failOpen` for failures;
/// this patch sets the first and `FAIL_RELOAD` (a panicking VM answers 503 briefly, then reloads,
/// where `failOpen: false` alone would keep it failed). Needs the EnvoyPatchPolicy API enabled.
fn wasm_settings_patch() -> Document {
    let filter = format!(
        "..http_filters[?(@.name=='envoy.filters.http.wasm/envoyextensionpolicy/{NAMESPACE}/{NAME}/wasm/0')]"
    );
    let set = |field: &str, value: Value| {
        json!({
            "type": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "name": format!("{NAMESPACE}/{NAME}/{LISTENER}"),
            "operation": {
                "op": "add",
                "jsonPath": filter,
                "path": format!("/typed_config/config/{field}"),
                "value": value,
            },
        })
    };
    Document {
        comment: String::new(),
        value: json!({
            "apiVersion": format!("{ENVOY_GATEWAY_API}/v1alpha1"),
            "kind": "EnvoyPatchPolicy",
            "metadata": metadata("triage-wasm-settings", NAMESPACE),
            "spec": {
                "targetRef": { "group": GATEWAY_API, "kind": "Gateway", "name": NAME },
                "type": "JSONPatch",
                "jsonPatches": [
                    set("allow_on_headers_stop_iteration", Value::Bool(true)),
                    set("failure_policy", Value::from("FAIL_RELOAD")),
                ],
            },
        }),
    }
}

fn backend(upstream: &UpstreamAddress) -> Document {
    let endpoint = if upstream.is_ip() {
        json!({ "ip": { "address": upstream.host, "port": upstream.port } })
    } else {
        json!({ "fqdn": { "hostname": upstream.host, "port": upstream.port } })
    };
    let mut spec = json!({ "endpoints": [endpoint] });
    let mut comment = format!("{}:{}", upstream.host, upstream.port);
    if upstream.tls {
        spec["tls"] = json!({ "sni": upstream.host, "wellKnownCACertificates": "System" });
        comment.push_str(
            ", over TLS with the host as SNI, its certificate checked against the system CAs",
        );
    }
    comment.push('.');
    Document {
        comment,
        value: json!({
            "apiVersion": format!("{ENVOY_GATEWAY_API}/v1alpha1"),
            "kind": "Backend",
            "metadata": metadata(&object_name(upstream), NAMESPACE),
            "spec": spec,
        }),
    }
}
