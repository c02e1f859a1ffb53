//! Mock LLM upstream for triage's real-Envoy tests.
//!
//! Each [`MockServer`] plays one tier: it answers the OpenAI Chat Completions, OpenAI Responses and
//! Anthropic Messages APIs (JSON or SSE), says in its answer which tier and model served it, and
//! records every request it receives byte for byte so tests can check what Envoy forwarded.

mod answer;
mod anthropic_messages;
mod openai_chat;
mod openai_responses;
mod reply;
mod server;
mod sse;

pub use server::{MockServer, Received};
