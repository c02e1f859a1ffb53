//! The gateway's config, made from the plugin config so that a tier is declared once: the Envoy
//! config of a triage stack with one route and one cluster per tier ([`envoy`]). The CLI's
//! `triage envoy` and the real-Envoy test harness both render through it.

pub mod envoy;
mod template;
