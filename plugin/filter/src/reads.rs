//! The lifecycle machine's reads of one stream, from the host. A read the host fails is logged here
//! with the stream's id and comes back empty; the machine then goes on as if the value were absent.

use proxy_wasm::types::{BufferType, MapType, Status};
use triage_core::lifecycle::Reads;

use crate::host;

pub struct HostReads {
    pub context_id: u32,
}

impl HostReads {
    fn warn(&self, what: &str, status: Status) {
        log::warn!("#{} {what} failed: {status:?}", self.context_id);
    }
}

impl Reads for HostReads {
    fn now_nanos(&self) -> u64 {
        host::now_nanos().unwrap_or_else(|status| {
            self.warn("reading the clock", status);
            0
        })
    }

    /// One host call for the whole map (Envoy answers it with names in lowercase, pseudo-headers
    /// included) instead of one per header the machine looks at.
    fn request_headers(&self) -> Vec<(String, String)> {
        host::header_pairs(MapType::HttpRequestHeaders).unwrap_or_else(|status| {
            self.warn("listing request headers", status);
            Vec::new()
        })
    }

    fn response_header(&self, name: &str) -> Option<String> {
        match host::header(MapType::HttpResponseHeaders, name) {
            Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            Err(status) => {
                self.warn(&format!("reading response header {name}"), status);
                None
            }
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        host::property(path).unwrap_or_else(|status| {
            self.warn(&format!("reading the property {}", path.join(".")), status);
            None
        })
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        host::buffer(BufferType::HttpRequestBody, 0, size)
            .map_err(|status| self.warn("reading the request body", status))
            .ok()
    }

    fn response_body(&self, start: usize, size: usize) -> Vec<u8> {
        host::buffer(BufferType::HttpResponseBody, start, size).unwrap_or_else(|status| {
            self.warn("reading the response body", status);
            Vec::new()
        })
    }

    fn call_answer(
        &self,
        num_headers: usize,
        body_size: usize,
    ) -> (Vec<(String, String)>, Vec<u8>) {
        let headers = if num_headers > 0 {
            host::header_pairs(MapType::HttpCallResponseHeaders).unwrap_or_default()
        } else {
            Vec::new()
        };
        let body = host::buffer(BufferType::HttpCallResponseBody, 0, body_size).unwrap_or_default();
        (headers, body)
    }

    fn new_decision_id(&self) -> Option<String> {
        triage_core::new_decision_id()
            .map_err(|error| {
                log::warn!(
                    "#{} {error}; the request goes on without one",
                    self.context_id
                );
            })
            .ok()
    }
}
