//! Mock LLM upstream for triage's real-Envoy tests.
//!
//! Each [`MockServer`] plays one tier: it answers the OpenAI Chat Completions, OpenAI Responses and
//! Anthropic Messages APIs (JSON or SSE), says in its answer which tier and model served it, and
//! records every request it receives byte for byte so tests can check what Envoy forwarded.
//! Request headers `x-mock-fail` and `x-mock-fail-tier` make a tier misbehave (README.md).

mod answer;
mod anthropic_messages;
mod fail;
mod openai_chat;
mod openai_responses;
mod provider_error;
mod reply;
mod server;
mod sse;

pub use server::{MockServer, Received};
