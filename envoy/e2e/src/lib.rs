//! Real-Envoy test harness for triage: renders the shipped Envoy template, runs Envoy as a subprocess
//! in front of in-process mock LLM tiers, and talks to it over a small HTTP/1.1 client that controls
//! framing (content-length, chunked, keep-alive) byte for byte.
//!
//! This crate only serves tests: a failed step panics with what went wrong and what Envoy logged.
#![allow(clippy::panic, clippy::expect_used)]

pub mod auth;
pub mod bodies;
pub mod check;
pub mod ecds;
pub mod http;
pub mod paths;
pub mod plugin_config;
pub mod prometheus;
pub mod render;
pub mod soak;
pub mod stack;

pub use http::{Body, Connection, Request, Response};
pub use prometheus::Scrape;
pub use render::{Flavour, Ports};
pub use stack::{validate, FilterBuild, Stack, StackOptions, StartError, TIERS};
