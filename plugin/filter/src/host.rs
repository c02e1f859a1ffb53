//! The only module that talks to the proxy-wasm host.
//!
//! The SDK's `hostcalls` panic on any status they don't expect (a header write after the headers were
//! continued returns BadArgument, and the SDK panics on it), and a panic takes the whole VM down. These
//! wrappers declare the same ABI imports and turn every status into a `Result`, so filter code can log
//! and fail open instead.

use proxy_wasm::types::{BufferType, MapType, Status};
use std::ptr::{null, null_mut};

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

pub fn header_names(map: MapType) -> HostResult<Vec<String>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: out-pointers are valid; the returned buffer is ours on Ok.
    let serialized = unsafe {
        check(proxy_get_header_map_pairs(map, &mut data, &mut size))?;
        take_host_bytes(data, size)
    };
    Ok(decode_map_keys(&serialized))
}

/// Keys of a serialized header map (count, then key/value sizes, then NUL-terminated keys and
/// values). Malformed input yields the keys read so far instead of panicking.
fn decode_map_keys(bytes: &[u8]) -> Vec<String> {
    let read_u32 = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(raw) as usize)
    };
    let Some(count) = read_u32(0) else {
        return Vec::new();
    };
    let mut keys = Vec::with_capacity(count.min(256));
    let mut cursor = 4usize.saturating_add(count.saturating_mul(8));
    for n in 0..count {
        let (Some(key_len), Some(value_len)) = (read_u32(4 + n * 8), read_u32(8 + n * 8)) else {
            break;
        };
        let Some(key) = bytes.get(cursor..cursor.saturating_add(key_len)) else {
            break;
        };
        keys.push(String::from_utf8_lossy(key).into_owned());
        cursor = cursor
            .saturating_add(key_len + 1)
            .saturating_add(value_len + 1);
    }
    keys
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

#[cfg(test)]
mod tests {
    use super::decode_map_keys;

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
