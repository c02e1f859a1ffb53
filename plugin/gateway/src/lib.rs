//! The gateway's config, made from the plugin config so that a tier is declared once: the Envoy
//! config of a triage stack with one route and one cluster per tier ([`envoy`]), and the
//! Kubernetes manifests that deliver triage through Istio or Envoy Gateway with one route and one
//! backend per tier ([`k8s`]). The CLI's `triage envoy` and `triage k8s` and the real-Envoy test
//! harness all render through it.

pub mod envoy;
pub mod k8s;
mod template;
mod tiers;
