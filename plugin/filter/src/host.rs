//! The only module that talks to the proxy-wasm host.
//!
//! The SDK's `hostcalls` panic on any status they don't expect (a header write after the headers were
//! continued returns BadArgument, and the SDK panics on it), and a panic takes the whole VM down. These
//! wrappers declare the same ABI imports and turn every status into a `Result`, so filter code can log
//! and fail open instead.

use proxy_wasm::types::{BufferType, MapType, MetricType, Status, StreamType};
use std::ptr::{null, null_mut};
use std::time::Duration;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> Status;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_remove_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
    ) -> Status;
    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> Status;
    fn proxy_set_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> Status;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> Status;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> Status;
    fn proxy_set_tick_period_milliseconds(period: u32) -> Status;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_define_metric(
        metric_type: MetricType,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> Status;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> Status;
    fn proxy_record_metric(metric_id: u32, value: u64) -> Status;
    fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> Status;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> Status;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> Status;
    fn proxy_continue_stream(stream_type: StreamType) -> Status;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> Status;
}

pub type HostResult<T> = Result<T, Status>;

fn check(status: Status) -> HostResult<()> {
    match status {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}

/// Takes ownership of a buffer the host allocated through the SDK's exported allocator.
///
/// # Safety
/// `data` and `size` must come from a host call that returned Ok.
unsafe fn take_host_bytes(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

/// Every (name, value) of a header map, values as lossy UTF-8.
pub fn header_pairs(map: MapType) -> HostResult<Vec<(String, String)>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: out-pointers are valid; the returned buffer is ours on Ok.
    let serialized = unsafe {
        check(proxy_get_header_map_pairs(map, &mut data, &mut size))?;
        take_host_bytes(data, size)
    };
    Ok(decode_map(&serialized))
}

/// A serialized header map (count, then key/value sizes, then NUL-terminated keys and values).
/// Malformed input yields the pairs read so far instead of panicking.
fn decode_map(bytes: &[u8]) -> Vec<(String, String)> {
    let read_u32 = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(raw) as usize)
    };
    let Some(count) = read_u32(0) else {
        return Vec::new();
    };
    let mut pairs = Vec::with_capacity(count.min(256));
    let mut cursor = 4usize.saturating_add(count.saturating_mul(8));
    for n in 0..count {
        let (Some(key_len), Some(value_len)) = (read_u32(4 + n * 8), read_u32(8 + n * 8)) else {
            break;
        };
        let value_start = cursor.saturating_add(key_len + 1);
        let (Some(key), Some(value)) = (
            bytes.get(cursor..cursor.saturating_add(key_len)),
            bytes.get(value_start..value_start.saturating_add(value_len)),
        ) else {
            break;
        };
        pairs.push((
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        cursor = value_start.saturating_add(value_len + 1);
    }
    pairs
}

/// The inverse of [`decode_map`].
fn encode_map(pairs: &[(String, String)]) -> Vec<u8> {
    let size: usize = pairs.iter().map(|(k, v)| 8 + k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

pub fn header(map: MapType, name: &str) -> HostResult<Option<Vec<u8>>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: key slice and out-pointers are valid for the call; the buffer is ours on Ok.
    unsafe {
        match proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size) {
            Status::Ok => Ok(Some(take_host_bytes(data, size))),
            Status::NotFound => Ok(None),
            other => Err(other),
        }
    }
}

pub fn set_header(map: MapType, name: &str, value: &str) -> HostResult<()> {
    // SAFETY: both slices are valid for the duration of the call.
    check(unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn remove_header(map: MapType, name: &str) -> HostResult<()> {
    // SAFETY: the key slice is valid for the duration of the call.
    check(unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) })
}

pub fn buffer(buffer: BufferType, start: usize, max_size: usize) -> HostResult<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: out-pointers are valid; the buffer is ours on Ok.
    unsafe {
        match proxy_get_buffer_bytes(buffer, start, max_size, &mut data, &mut size) {
            Status::Ok => Ok(take_host_bytes(data, size)),
            Status::NotFound => Ok(Vec::new()),
            other => Err(other),
        }
    }
}

/// Replaces `size` bytes from `start` (Envoy accepts only prepend, append, or replace-all).
pub fn set_buffer(buffer: BufferType, start: usize, size: usize, value: &[u8]) -> HostResult<()> {
    // SAFETY: the value slice is valid for the duration of the call.
    check(unsafe { proxy_set_buffer_bytes(buffer, start, size, value.as_ptr(), value.len()) })
}

/// Calls a host foreign function without arguments, discarding its result.
pub fn call_foreign(name: &str) -> HostResult<()> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the name slice and out-pointers are valid; any result buffer is ours on Ok.
    unsafe {
        check(proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            null(),
            0,
            &mut data,
            &mut size,
        ))?;
        drop(take_host_bytes(data, size));
    }
    Ok(())
}

/// The host's wall clock, in nanoseconds since the Unix epoch.
pub fn now_nanos() -> HostResult<u64> {
    let mut nanos = 0;
    // SAFETY: the out-pointer is valid for the call.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Asks the host to call the root context's `on_tick` every `period` (0 stops it).
pub fn set_tick_period(period: Duration) -> HostResult<()> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: a plain value.
    check(unsafe { proxy_set_tick_period_milliseconds(millis) })
}

/// Stores `value` under the one-segment property `name`; Envoy keeps it as filter state
/// `wasm.<name>`, which access logs read with `%FILTER_STATE(wasm.<name>:PLAIN)%`.
pub fn set_property(name: &str, value: &[u8]) -> HostResult<()> {
    // A property path is its segments joined by NUL; one segment is just the name.
    // SAFETY: both slices are valid for the duration of the call.
    check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

pub fn define_metric(kind: MetricType, name: &str) -> HostResult<u32> {
    let mut id = 0;
    // SAFETY: the name slice and out-pointer are valid for the call.
    check(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `by` to a counter (Envoy refuses an increment of 0 with BadArgument, so none is sent).
pub fn increment_metric(id: u32, by: u64) -> HostResult<()> {
    if by == 0 {
        return Ok(());
    }
    let offset = i64::try_from(by).unwrap_or(i64::MAX);
    // SAFETY: plain values.
    check(unsafe { proxy_increment_metric(id, offset) })
}

pub fn record_metric(id: u32, value: u64) -> HostResult<()> {
    // SAFETY: plain values.
    check(unsafe { proxy_record_metric(id, value) })
}

/// A counter's or gauge's current value (every worker's VM sees the same one).
pub fn metric(id: u32) -> HostResult<u64> {
    let mut value = 0;
    // SAFETY: the out-pointer is valid for the call.
    check(unsafe { proxy_get_metric(id, &mut value) })?;
    Ok(value)
}

/// A host property, e.g. `["response", "code_details"]`; None when the host has no value.
pub fn property(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    let path = path.join("\0");
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the path slice and out-pointers are valid; the buffer is ours on Ok.
    unsafe {
        match proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) {
            Status::Ok => Ok(Some(take_host_bytes(data, size))),
            Status::NotFound => Ok(None),
            other => Err(other),
        }
    }
}

/// The value stored under `key` in the data all VMs of this plugin share, and its compare-and-swap
/// token; (None, 0) when nothing is stored yet (a write with token 0 is unconditional).
pub fn shared_data(key: &str) -> HostResult<(Option<Vec<u8>>, u32)> {
    let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
    // SAFETY: the key slice and out-pointers are valid; the buffer is ours on Ok.
    unsafe {
        match proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) {
            Status::Ok => Ok((Some(take_host_bytes(data, size)), cas)),
            Status::NotFound => Ok((None, 0)),
            other => Err(other),
        }
    }
}

/// Stores `value` under `key` if its token is still `cas` (Err(CasMismatch) when another VM wrote
/// first).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> HostResult<()> {
    // SAFETY: both slices are valid for the duration of the call.
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Sends an HTTP request to `cluster`; the answer arrives in `on_http_call_response` of the calling
/// context. Goes through the SDK, whose dispatcher must know the token; it returns the documented
/// failures (unknown cluster, missing pseudo-headers) as errors.
pub fn dispatch(
    cluster: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> HostResult<u32> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    proxy_wasm::hostcalls::dispatch_http_call(cluster, headers, Some(body), Vec::new(), timeout)
}

/// Answers the client with this response instead of the upstream's. Envoy sends it as soon as the
/// current callback returns, bypassing the other encoder filters.
pub fn send_local_response(
    status: u32,
    details: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> HostResult<()> {
    let headers = encode_map(headers);
    // SAFETY: every slice is valid for the duration of the call.
    check(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Lets a paused response go on to the client.
pub fn continue_response() -> HostResult<()> {
    // SAFETY: plain value.
    check(unsafe { proxy_continue_stream(StreamType::HttpResponse) })
}

#[cfg(test)]
mod tests {
    use super::{decode_map, encode_map};

    fn decode_map_keys(bytes: &[u8]) -> Vec<String> {
        decode_map(bytes).into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn encoding_and_decoding_are_inverse() {
        let pairs = vec![
            (":status".to_string(), "200".to_string()),
            ("x-empty".to_string(), String::new()),
        ];
        assert_eq!(decode_map(&encode_map(&pairs)), pairs);
    }

    fn serialize(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend(k.as_bytes());
            out.push(0);
            out.extend(v.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn decodes_keys_of_a_serialized_map() {
        let bytes = serialize(&[
            (":path", "/v1/messages"),
            ("x-triage-route", "small"),
            ("a", ""),
        ]);
        assert_eq!(decode_map_keys(&bytes), [":path", "x-triage-route", "a"]);
    }

    #[test]
    fn truncated_maps_yield_a_prefix_without_panicking() {
        let bytes = serialize(&[("first", "1"), ("second", "2")]);
        for cut in 0..bytes.len() {
            let keys = decode_map_keys(&bytes[..cut]);
            assert!(keys.len() <= 2, "cut at {cut}: {keys:?}");
        }
        assert!(decode_map_keys(&[]).is_empty());
        assert!(decode_map_keys(&u32::MAX.to_le_bytes()).is_empty());
    }
}
