//! Istio: triage in the ingress gateway (and, for workloads that opt in, in their sidecars), its
//! module fetched by the Istio agent by URL and checked against its SHA-256, one VirtualService
//! route per tier on the routing header, and a ServiceEntry and DestinationRule per upstream host.
//!
//! Why an EnvoyFilter and not a WasmPlugin: Istio builds a WasmPlugin's filter without
//! `allow_on_headers_stop_iteration` (neither the WasmPlugin nor the TrafficExtension CRD has the
//! field), and without it Envoy turns triage's pause on the request headers into a hang (the e2e
//! test `config::without_allow_on_headers_stop_iteration_an_llm_request_hangs`). An EnvoyFilter
//! that adds the same Wasm filter through extension config discovery (ECDS) can set it, and the
//! Istio agent fetches and checks a module named there by URL and SHA-256 exactly as it does a
//! WasmPlugin's.

use serde_json::{json, Value};
use triage_core::{Config, UpstreamAddress};

use super::yaml::{documents, Document};
use super::{
    control_plane_plugin_config, in_cluster, metadata, object_name, pretty, tier_labels, K8sStack,
    ManifestFile, CLIENT_HEADERS_REMOVED, NAME, NAMESPACE, ROUTE_TIMEOUT, TOKEN_HEADERS,
};
use crate::tiers::GatewayTier;

/// Where `istioctl install` (the default profile) runs the ingress gateway, and its pods' label.
const GATEWAY_NAMESPACE: &str = "istio-system";
const GATEWAY_LABEL: (&str, &str) = ("istio", "ingressgateway");
/// The sidecar case: workloads in this namespace carrying this label get triage in their sidecar.
const CLIENT_NAMESPACE: &str = "llm-clients";
const CLIENT_LABEL: (&str, &str) = ("triage-routing", "enabled");
/// Istio's `jwt_authn` puts a verified payload under this key (`payload_in_metadata`), in the same
/// namespace as the shipped Envoy config's.
const ISTIO_JWT_PAYLOAD_KEY: &str = "payload";
/// The plain-HTTP port an https upstream is known by inside the mesh: the proxy originates the TLS
/// (the DestinationRule), so the routes, and apps in the mesh, speak HTTP to it.
const ORIGINATION_PORT: u16 = 80;
const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// An upstream host and the tiers routed to it.
struct Host<'t> {
    upstream: &'t UpstreamAddress,
    /// The port the routes send to: the upstream's own, or [`ORIGINATION_PORT`] for an external
    /// https upstream.
    mesh_port: u16,
    tiers: Vec<usize>,
}

pub(super) fn render(
    stack: &K8sStack,
    config: &Config,
    tiers: &[GatewayTier],
) -> Result<Vec<ManifestFile>, String> {
    let labels = tier_labels(tiers)?;
    let hosts = hosts(tiers)?;
    let host_of = |tier: usize| {
        hosts
            .iter()
            .find(|host| host.tiers.contains(&tier))
            .ok_or_else(|| format!("tier {:?} has no host", tiers[tier].name))
    };
    let mut clusters = Vec::with_capacity(tiers.len());
    for (index, tier) in tiers.iter().enumerate() {
        let host = host_of(index)?;
        // Istio's name for the cluster of a DestinationRule subset.
        clusters.push(format!(
            "outbound|{}|{}|{}",
            host.mesh_port, labels[index], tier.upstream.host
        ));
    }
    let plugin_config =
        control_plane_plugin_config(stack.plugin_config, tiers, &clusters, ISTIO_JWT_PAYLOAD_KEY)?;
    let extension = wasm_extension(stack, &pretty(&plugin_config)?);
    let buffer_limit = config.envoy_buffer_limit_bytes();

    let mut routes = Vec::with_capacity(tiers.len() + 1);
    let default_tier = config.default_tier_name();
    let mut default_route = None;
    for (index, tier) in tiers.iter().enumerate() {
        let host = host_of(index)?;
        let mut route = route(&labels[index], host, &tier.upstream);
        let header_match =
            json!([{ "headers": { config.route_header(): { "exact": tier.name } } }]);
        if tier.name == default_tier {
            let mut catch_all = route.clone();
            catch_all["name"] = Value::from("default");
            default_route = Some(catch_all);
        }
        route["match"] = header_match;
        routes.push(route);
    }
    // Requests triage does not route (other paths and methods) take the default tier's route.
    routes.extend(default_route);

    let external: Vec<&Host> = hosts
        .iter()
        .filter(|host| !in_cluster(host.upstream))
        .collect();
    let mut files = vec![
        ManifestFile {
            name: "gateway.yaml",
            yaml: documents(
                "The ingress gateway's server for LLM traffic (plain HTTP on port 80; terminate TLS \
                 here\nwith a `tls` block and a credential once it works).",
                &[gateway()],
            ),
        },
        ManifestFile {
            name: "authentication.yaml",
            yaml: documents(
                "Who is calling, verified by the gateway: the identity triage's rules and overrides \
                 trust.",
                &[request_authentication(stack)],
            ),
        },
        ManifestFile {
            name: "triage-filter.yaml",
            yaml: documents(
                "triage in the ingress gateway: the module, fetched by the Istio agent and checked \
                 against its\nSHA-256, with the plugin config; and the gateway settings triage \
                 needs (see README.md).",
                &[envoy_filter(
                    NAME,
                    GATEWAY_NAMESPACE,
                    GATEWAY_LABEL,
                    "GATEWAY",
                    &[None],
                    &extension,
                    buffer_limit,
                )],
            ),
        },
        ManifestFile {
            name: "routes.yaml",
            yaml: documents(
                "One route per tier on the routing header the filter sets, then the default tier's; \
                 and each\nupstream host: a ServiceEntry for one outside the mesh, a \
                 DestinationRule with a subset (so an\nEnvoy cluster) per tier and, for https, \
                 the TLS origination.",
                &routes_documents(&routes, &hosts, tiers, &labels),
            ),
        },
    ];
    if !external.is_empty() {
        let mut ports: Vec<Option<u16>> =
            external.iter().map(|host| Some(host.mesh_port)).collect();
        ports.sort_unstable();
        ports.dedup();
        let mesh_routes = Document {
            comment: "The same routes for apps in the mesh that call the providers' hosts in \
                      plain HTTP (the sidecar\noriginates the TLS): with triage in their \
                      sidecar, \"model\": \"auto\" picks the tier."
                .into(),
            value: json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": metadata("triage-mesh", NAMESPACE),
                "spec": {
                    "hosts": external.iter().map(|host| host.upstream.host.as_str()).collect::<Vec<_>>(),
                    "gateways": ["mesh"],
                    "http": routes,
                },
            }),
        };
        files.push(ManifestFile {
            name: "sidecar.yaml",
            yaml: documents(
                "The sidecar case: triage in the outbound sidecar of the workloads labelled \
                 triage-routing=enabled\nin namespace llm-clients, for their calls to the \
                 providers' hosts.",
                &[
                    envoy_filter(
                        "triage-sidecar",
                        CLIENT_NAMESPACE,
                        CLIENT_LABEL,
                        "SIDECAR_OUTBOUND",
                        &ports,
                        &extension,
                        buffer_limit,
                    ),
                    mesh_routes,
                ],
            ),
        });
    }
    Ok(files)
}

/// The upstream hosts, in tier order; a host's tiers must reach it the same way (one scheme and
/// one port), since the routes know it by one port.
fn hosts<'t>(tiers: &'t [GatewayTier]) -> Result<Vec<Host<'t>>, String> {
    let mut hosts: Vec<Host> = Vec::new();
    for (index, tier) in tiers.iter().enumerate() {
        let upstream = &tier.upstream;
        if let Some(host) = hosts
            .iter_mut()
            .find(|host| host.upstream.host == upstream.host)
        {
            if host.upstream != upstream {
                return Err(format!(
                    "tiers {:?} and {:?} reach {} as {} and {}: the mesh knows a host by one \
                     scheme and port",
                    tiers[host.tiers[0]].name, tier.name, upstream.host, host.upstream, upstream
                ));
            }
            host.tiers.push(index);
            continue;
        }
        let mesh_port = if upstream.tls && !in_cluster(upstream) {
            ORIGINATION_PORT
        } else {
            upstream.port
        };
        hosts.push(Host {
            upstream,
            mesh_port,
            tiers: vec![index],
        });
    }
    Ok(hosts)
}

/// A tier's route, without its match: to the tier's subset, the upstream's own host as authority,
/// no caller token.
fn route(label: &str, host: &Host, upstream: &UpstreamAddress) -> Value {
    json!({
        "name": label,
        "route": [{
            "destination": {
                "host": upstream.host,
                "port": { "number": host.mesh_port },
                "subset": label,
            },
        }],
        // A provider serves its own host name, not the gateway's.
        "rewrite": { "authority": upstream.host },
        "headers": { "request": { "remove": TOKEN_HEADERS } },
        "timeout": ROUTE_TIMEOUT,
    })
}

fn routes_documents(
    routes: &[Value],
    hosts: &[Host],
    tiers: &[GatewayTier],
    labels: &[String],
) -> Vec<Document> {
    let mut out = vec![Document {
        comment: "The filter names the tier in the routing header and clears the route cache; \
                  these routes send\neach tier to its upstream. The caller's token never \
                  reaches a tier."
            .into(),
        value: json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": metadata(NAME, NAMESPACE),
            "spec": {
                "hosts": ["*"],
                "gateways": [format!("{GATEWAY_NAMESPACE}/{NAME}")],
                "http": routes,
            },
        }),
    }];
    for host in hosts {
        let upstream = host.upstream;
        let names: Vec<&str> = host.tiers.iter().map(|&tier| tiers[tier].name).collect();
        if !in_cluster(upstream) {
            let mut port = json!({ "number": host.mesh_port, "name": "http", "protocol": "HTTP" });
            if host.mesh_port != upstream.port {
                port["targetPort"] = Value::from(upstream.port);
            }
            let mut spec = json!({
                "hosts": [upstream.host],
                "location": "MESH_EXTERNAL",
                "ports": [port],
                "resolution": "DNS",
            });
            if upstream.is_ip() {
                spec["resolution"] = Value::from("STATIC");
                spec["endpoints"] = json!([{ "address": upstream.host }]);
            }
            out.push(Document {
                comment: format!(
                    "{}: outside the mesh, known to it by this entry (tiers: {}).",
                    upstream.host,
                    names.join(", ")
                ),
                value: json!({
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "ServiceEntry",
                    "metadata": metadata(&object_name(upstream), NAMESPACE),
                    "spec": spec,
                }),
            });
        }
        let subsets: Vec<Value> = host
            .tiers
            .iter()
            .map(|&tier| json!({ "name": labels[tier] }))
            .collect();
        let mut spec = json!({ "host": upstream.host, "subsets": subsets });
        let mut comment = String::from(
            "A subset per tier, so each tier has its own Envoy cluster, the one the plugin \
             config names for it\n(escalations go there; a served answer is billed by it)",
        );
        if upstream.tls {
            spec["trafficPolicy"] = json!({
                "portLevelSettings": [{
                    "port": { "number": host.mesh_port },
                    "tls": {
                        "mode": "SIMPLE",
                        "sni": upstream.host,
                        "subjectAltNames": [upstream.host],
                    },
                }],
            });
            comment.push_str(
                ";\nTLS to the upstream, its certificate checked for its name against the \
                 proxy's CA bundle",
            );
        }
        comment.push('.');
        out.push(Document {
            comment,
            value: json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": metadata(&object_name(upstream), NAMESPACE),
                "spec": spec,
            }),
        });
    }
    out
}

fn gateway() -> Document {
    Document {
        comment: String::new(),
        value: json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": metadata(NAME, GATEWAY_NAMESPACE),
            "spec": {
                "selector": { GATEWAY_LABEL.0: GATEWAY_LABEL.1 },
                "servers": [{
                    "port": { "number": 80, "name": "http", "protocol": "HTTP" },
                    "hosts": ["*"],
                }],
            },
        }),
    }
}

/// The gateway's `jwt_authn` (Istio puts it ahead of every filter an EnvoyFilter inserts before the
/// router): a token in either header is checked against the provider's keys, issuer and audience,
/// and removed before any tier; its payload goes to dynamic metadata, where the plugin config's
/// `identity` reads it. No token: the request passes anonymously; an invalid one: 401.
fn request_authentication(stack: &K8sStack) -> Document {
    Document {
        comment: String::new(),
        value: json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": metadata(NAME, GATEWAY_NAMESPACE),
            "spec": {
                "selector": { "matchLabels": { GATEWAY_LABEL.0: GATEWAY_LABEL.1 } },
                "jwtRules": [{
                    "issuer": stack.jwt.issuer,
                    "audiences": [stack.jwt.audience],
                    "jwksUri": stack.jwt.jwks_uri,
                    "fromHeaders": [
                        { "name": "authorization", "prefix": "Bearer " },
                        { "name": "x-api-key" },
                    ],
                    "forwardOriginalToken": false,
                }],
            },
        }),
    }
}

/// The triage Wasm filter's extension config, as ECDS delivers it.
fn wasm_extension(stack: &K8sStack, plugin_config: &str) -> Value {
    json!({
        "name": NAME,
        "typed_config": {
            "@type": WASM_FILTER_TYPE,
            "config": {
                "name": NAME,
                "root_id": NAME,
                // A panicking VM answers 503 briefly, then reloads (FAIL_OPEN would skip triage).
                "failure_policy": "FAIL_RELOAD",
                // Without it Envoy turns the filter's pause on the request headers into a hang.
                "allow_on_headers_stop_iteration": true,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config,
                },
                "vm_config": {
                    "vm_id": NAME,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {
                        "remote": {
                            // The Istio agent downloads the module, checks the digest and hands
                            // Envoy a local file, so the cluster is never used (a WasmPlugin's
                            // is "_" too).
                            "http_uri": { "uri": stack.module_url, "cluster": "_", "timeout": "30s" },
                            "sha256": stack.module_sha256,
                        },
                    },
                },
            },
        },
    })
}

/// The EnvoyFilter putting triage into the proxies `label` selects in `namespace`: the extension
/// config; the filter, before the router, waiting for that config (a proxy never serves without
/// triage); the client's `x-triage-*` headers removed before any filter; and Envoy's body limit on
/// the listener. `ports` limits the patches to those listener ports (None: every listener).
fn envoy_filter(
    name: &str,
    namespace: &str,
    label: (&str, &str),
    context: &str,
    ports: &[Option<u16>],
    extension: &Value,
    buffer_limit: usize,
) -> Document {
    let mut patches = vec![json!({
        "applyTo": "EXTENSION_CONFIG",
        "patch": { "operation": "ADD", "value": extension },
    })];
    for port in ports {
        let mut listener = json!({});
        if let Some(port) = port {
            listener["portNumber"] = Value::from(*port);
        }
        let mut hcm_listener = listener.clone();
        hcm_listener["filterChain"] =
            json!({ "filter": { "name": "envoy.filters.network.http_connection_manager" } });
        let mut router_listener = hcm_listener.clone();
        router_listener["filterChain"]["filter"]["subFilter"] =
            json!({ "name": "envoy.filters.http.router" });
        patches.push(json!({
            "applyTo": "HTTP_FILTER",
            "match": { "context": context, "listener": router_listener },
            "patch": {
                "operation": "INSERT_BEFORE",
                "value": {
                    "name": NAME,
                    "config_discovery": {
                        "config_source": { "ads": {}, "initial_fetch_timeout": "0s" },
                        "type_urls": [WASM_FILTER_TYPE],
                    },
                },
            },
        }));
        patches.push(json!({
            "applyTo": "NETWORK_FILTER",
            "match": { "context": context, "listener": hcm_listener },
            "patch": {
                "operation": "MERGE",
                "value": {
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "early_header_mutation_extensions": [{
                            "name": "envoy.http.early_header_mutation.header_mutation",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
                                "mutations": [{
                                    "remove_on_match": {
                                        "key_matcher": { "safe_regex": { "regex": CLIENT_HEADERS_REMOVED } },
                                    },
                                }],
                            },
                        }],
                        "merge_slashes": true,
                        "path_with_escaped_slashes_action": "REJECT_REQUEST",
                        "always_set_request_id_in_response": true,
                        "access_log": [{
                            "name": "envoy.access_loggers.stdout",
                            "filter": {
                                "extension_filter": {
                                    "name": "envoy.access_loggers.extension_filters.cel",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                                        "expression": "'wasm.triage_record' in filter_state",
                                    },
                                },
                            },
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                                "log_format": {
                                    "text_format_source": {
                                        "inline_string": "%FILTER_STATE(wasm.triage_record:PLAIN)%\n",
                                    },
                                },
                            },
                        }],
                    },
                },
            },
        }));
        patches.push(json!({
            "applyTo": "LISTENER",
            "match": { "context": context, "listener": listener },
            "patch": {
                "operation": "MERGE",
                "value": { "per_connection_buffer_limit_bytes": buffer_limit },
            },
        }));
    }
    Document {
        comment: String::new(),
        value: json!({
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "EnvoyFilter",
            "metadata": metadata(name, namespace),
            "spec": {
                "workloadSelector": { "labels": { label.0: label.1 } },
                "configPatches": patches,
            },
        }),
    }
}
