//! The proxy-wasm ABI 0.2.1 and WASI preview1 functions the host provides, with Envoy's status codes.
//!
//! Every import the module declares is linked: the ones below behave like Envoy 1.40, any other traps
//! with its name the moment the module calls it, so a filter that starts using an unimplemented host
//! function fails its tests loudly instead of getting a made-up answer.

use crate::state::{HeaderMap, HttpCall, LogLine, MetricKind, State, StreamSide};
use wasmtime::{Caller, ExternType, Linker, Memory, Module};

/// `proxy_wasm::types::Status` as Envoy returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    InvalidMemoryAccess = 6,
    CasMismatch = 8,
    InternalFailure = 10,
}

/// What a host function ends in: a status for the module, or a trap.
enum Fault {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for Fault {
    fn from(status: Status) -> Self {
        Fault::Status(status)
    }
}

impl From<wasmtime::Error> for Fault {
    fn from(error: wasmtime::Error) -> Self {
        Fault::Trap(error)
    }
}

type Abi<T> = Result<T, Fault>;

fn status(result: Abi<()>) -> wasmtime::Result<i32> {
    match result {
        Ok(()) => Ok(Status::Ok as i32),
        Err(Fault::Status(status)) => Ok(status as i32),
        Err(Fault::Trap(error)) => Err(error),
    }
}

const WASI_SUCCESS: i32 = 0;
const WASI_BADF: i32 = 8;

/// The module's memory and allocator, seen from inside a host call.
struct Guest<'a, 'c> {
    caller: &'a mut Caller<'c, State>,
}

impl Guest<'_, '_> {
    fn memory(&self) -> Abi<Memory> {
        self.caller
            .data()
            .memory
            .ok_or_else(|| Fault::Trap(wasmtime::format_err!("the module exports no memory")))
    }

    fn read(&mut self, ptr: i32, len: i32) -> Abi<Vec<u8>> {
        let memory = self.memory()?;
        let (start, len) = (ptr as u32 as usize, len as u32 as usize);
        memory
            .data(&*self.caller)
            .get(start..start.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or(Fault::Status(Status::InvalidMemoryAccess))
    }

    fn read_string(&mut self, ptr: i32, len: i32) -> Abi<String> {
        Ok(String::from_utf8_lossy(&self.read(ptr, len)?).into_owned())
    }

    fn write(&mut self, ptr: i32, bytes: &[u8]) -> Abi<()> {
        let memory = self.memory()?;
        memory
            .write(&mut *self.caller, ptr as u32 as usize, bytes)
            .map_err(|_| Fault::Status(Status::InvalidMemoryAccess))
    }

    fn write_u32(&mut self, ptr: i32, value: u32) -> Abi<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    fn write_u64(&mut self, ptr: i32, value: u64) -> Abi<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Calls the module's `proxy_on_memory_allocate`, as Envoy does for every returned buffer.
    fn allocate(&mut self, size: usize) -> Abi<i32> {
        let allocate = self.caller.data().allocate.clone().ok_or_else(|| {
            Fault::Trap(wasmtime::format_err!(
                "the module exports no proxy_on_memory_allocate"
            ))
        })?;
        let size = i32::try_from(size).map_err(|_| Fault::Status(Status::BadArgument))?;
        let ptr = allocate.call(&mut *self.caller, size)?;
        if ptr == 0 && size > 0 {
            return Err(Fault::Status(Status::InvalidMemoryAccess));
        }
        Ok(ptr)
    }

    /// Hands the module a copy of `bytes` the way Envoy does: allocated in the module, pointer and
    /// size written to the out-parameters; nothing allocated for an empty value.
    fn return_bytes(&mut self, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> Abi<()> {
        let ptr = if bytes.is_empty() {
            0
        } else {
            let ptr = self.allocate(bytes.len())?;
            self.write(ptr, bytes)?;
            ptr
        };
        self.write_u32(ptr_ptr, ptr as u32)?;
        self.write_u32(size_ptr, bytes.len() as u32)
    }

    fn state(&mut self) -> &mut State {
        self.caller.data_mut()
    }
}

/// Header pairs in the proxy-wasm wire form: count, (key size, value size)*, then NUL-terminated
/// keys and values.
pub fn encode_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (key, value) in pairs {
        out.extend((key.len() as u32).to_le_bytes());
        out.extend((value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        for part in [key, value] {
            out.extend(part.as_bytes());
            out.push(0);
        }
    }
    out
}

pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let word = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let count = word(0)?;
    let mut cursor = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let (key_len, value_len) = (word(4 + n * 8)?, word(8 + n * 8)?);
        let key = bytes.get(cursor..cursor.checked_add(key_len)?)?;
        cursor = cursor.checked_add(key_len + 1)?;
        let value = bytes.get(cursor..cursor.checked_add(value_len)?)?;
        cursor = cursor.checked_add(value_len + 1)?;
        pairs.push((
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Some(pairs)
}

/// Which header map of which context a map type names, as Envoy resolves it.
enum MapRef {
    Stream(u32, StreamSide, bool),
    HttpCallResponse(bool),
    /// A map the current context does not have (Envoy: a null map).
    Missing,
}

fn map_ref(state: &State, map_type: i32) -> Abi<MapRef> {
    let context = state.active_context();
    let stream = |side, trailers| {
        if state.streams.contains_key(&context) {
            MapRef::Stream(context, side, trailers)
        } else {
            MapRef::Missing
        }
    };
    Ok(match map_type {
        0 => stream(StreamSide::Request, false),
        1 => stream(StreamSide::Request, true),
        2 => stream(StreamSide::Response, false),
        3 => stream(StreamSide::Response, true),
        4 | 5 => MapRef::Missing,
        6 => MapRef::HttpCallResponse(false),
        7 => MapRef::HttpCallResponse(true),
        _ => return Err(Status::BadArgument.into()),
    })
}

/// The map if the filter may see it now: Envoy drops its pointer once the filter continued it.
fn map_mut(state: &mut State, map_type: i32) -> Abi<Option<&mut HeaderMap>> {
    Ok(match map_ref(state, map_type)? {
        MapRef::Stream(context, side, trailers) => state
            .streams
            .get_mut(&context)
            .and_then(|stream| stream.side_mut(side).open_map(trailers)),
        MapRef::HttpCallResponse(trailers) => {
            state
                .http_call_response
                .as_mut()
                .map(|response| match trailers {
                    true => &mut response.trailers,
                    false => &mut response.headers,
                })
        }
        MapRef::Missing => None,
    })
}

fn writable_map(state: &mut State, map_type: i32) -> Abi<&mut HeaderMap> {
    let is_http_call = matches!(map_type, 6 | 7);
    match map_mut(state, map_type)? {
        // Envoy hands out the async client's response maps read-only.
        Some(_) if is_http_call => Err(Status::BadArgument.into()),
        Some(map) => Ok(map),
        None => Err(Status::BadArgument.into()),
    }
}

/// Notes a request-header write: the router's view only changes with a later clear_route_cache.
fn note_header_write(state: &mut State, map_type: i32) {
    if map_type == 0 {
        let context = state.active_context();
        if let Some(stream) = state.streams.get_mut(&context) {
            stream.request_header_writes += 1;
        }
    }
}

enum BufferRef {
    Stream(u32, StreamSide),
    HttpCallResponse,
    VmConfiguration,
    PluginConfiguration,
    Missing,
}

fn buffer_ref(state: &State, buffer_type: i32) -> Abi<BufferRef> {
    let context = state.active_context();
    let stream = |side| {
        if state.streams.contains_key(&context) {
            BufferRef::Stream(context, side)
        } else {
            BufferRef::Missing
        }
    };
    Ok(match buffer_type {
        0 => stream(StreamSide::Request),
        1 => stream(StreamSide::Response),
        2 | 3 | 5 | 8 => BufferRef::Missing,
        4 => BufferRef::HttpCallResponse,
        6 => BufferRef::VmConfiguration,
        7 => BufferRef::PluginConfiguration,
        _ => return Err(Status::BadArgument.into()),
    })
}

fn get_buffer(guest: &mut Guest, buffer_type: i32, start: i32, max: i32) -> Abi<Option<Vec<u8>>> {
    let state = guest.state();
    let (start, max) = (start as u32 as usize, max as u32 as usize);
    let whole: Option<&[u8]> = match buffer_ref(state, buffer_type)? {
        BufferRef::Stream(context, side) => state
            .streams
            .get(&context)
            .map(|stream| stream.side(side).visible_body()),
        BufferRef::HttpCallResponse => state.http_call_response.as_ref().map(|r| &r.body[..]),
        BufferRef::VmConfiguration => state.vm_configuration_visible().map(|c| &c[..]),
        BufferRef::PluginConfiguration => state.plugin_configuration_visible().map(|c| &c[..]),
        BufferRef::Missing => None,
    };
    let Some(whole) = whole else {
        return Err(Status::NotFound.into());
    };
    let end = start.saturating_add(max).min(whole.len());
    Ok(whole.get(start..end).map(<[u8]>::to_vec))
}

/// Envoy's edit rules for a body buffer: prepend, replace all, or append; anything else is refused.
pub fn edit_buffer(buffer: &mut Vec<u8>, start: usize, len: usize, data: &[u8]) -> Status {
    if start == 0 && len == 0 {
        buffer.splice(0..0, data.iter().copied());
    } else if start == 0 && len >= buffer.len() {
        buffer.clear();
        buffer.extend_from_slice(data);
    } else if start >= buffer.len() {
        buffer.extend_from_slice(data);
    } else {
        return Status::BadArgument;
    }
    Status::Ok
}

pub fn link(linker: &mut Linker<State>, module: &Module) -> wasmtime::Result<()> {
    link_logging_and_time(linker)?;
    link_header_maps(linker)?;
    link_buffers(linker)?;
    link_stream_control(linker)?;
    link_properties_and_shared_data(linker)?;
    link_metrics(linker)?;
    link_http_calls(linker)?;
    link_wasi(linker)?;
    trap_on_anything_else(linker, module)
}

fn link_logging_and_time(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut caller: Caller<'_, State>, level: i32, ptr: i32, len: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let message = guest.read_string(ptr, len)?;
                let context = guest.state().active_context();
                guest.state().logs.push(LogLine {
                    level: crate::LogLevel::from_abi(level),
                    context,
                    message,
                });
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut caller: Caller<'_, State>, level_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status(guest.write_u32(level_ptr, 0))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Caller<'_, State>, time_ptr: i32| {
            let now = caller.data_mut().read_clock();
            let mut guest = Guest {
                caller: &mut caller,
            };
            status(guest.write_u64(time_ptr, now))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut caller: Caller<'_, State>, period: i32| {
            caller.data_mut().tick_period_ms = period as u32;
            Ok(Status::Ok as i32)
        },
    )?;
    Ok(())
}

fn link_header_maps(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut caller: Caller<'_, State>,
         map_type: i32,
         key_ptr: i32,
         key_len: i32,
         value_ptr_ptr: i32,
         value_size_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let key = guest.read_string(key_ptr, key_len)?;
                let value = match map_mut(guest.state(), map_type)? {
                    None => return Err(Status::BadArgument.into()),
                    Some(map) => map.get(&key).map(str::to_owned),
                };
                let value = value.ok_or(Fault::Status(Status::NotFound))?;
                guest.return_bytes(value.as_bytes(), value_ptr_ptr, value_size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, State>, map_type: i32, ptr_ptr: i32, size_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                // Envoy answers a dropped map with no pairs, not an error.
                let pairs = map_mut(guest.state(), map_type)?
                    .map(|map| map.pairs().to_vec())
                    .unwrap_or_default();
                let bytes = if pairs.is_empty() {
                    Vec::new()
                } else {
                    encode_pairs(&pairs)
                };
                guest.return_bytes(&bytes, ptr_ptr, size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, State>, map_type: i32, ptr: i32, len: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let bytes = guest.read(ptr, len)?;
                let pairs = decode_pairs(&bytes).ok_or(Fault::Status(Status::BadArgument))?;
                let state = guest.state();
                writable_map(state, map_type)?.set_all(&pairs);
                note_header_write(state, map_type);
                Ok(())
            })())
        },
    )?;
    for (name, add) in [
        ("proxy_add_header_map_value", true),
        ("proxy_replace_header_map_value", false),
    ] {
        linker.func_wrap(
            "env",
            name,
            move |mut caller: Caller<'_, State>,
                  map_type: i32,
                  key_ptr: i32,
                  key_len: i32,
                  value_ptr: i32,
                  value_len: i32| {
                let mut guest = Guest {
                    caller: &mut caller,
                };
                status((|| {
                    let key = guest.read_string(key_ptr, key_len)?;
                    let value = guest.read_string(value_ptr, value_len)?;
                    let state = guest.state();
                    let map = writable_map(state, map_type)?;
                    if add {
                        map.add(&key, &value);
                    } else {
                        map.replace(&key, &value);
                    }
                    note_header_write(state, map_type);
                    Ok(())
                })())
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, State>, map_type: i32, key_ptr: i32, key_len: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let key = guest.read_string(key_ptr, key_len)?;
                let state = guest.state();
                writable_map(state, map_type)?.remove(&key);
                note_header_write(state, map_type);
                Ok(())
            })())
        },
    )?;
    Ok(())
}

fn link_buffers(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut caller: Caller<'_, State>,
         buffer_type: i32,
         start: i32,
         max: i32,
         ptr_ptr: i32,
         size_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| match get_buffer(&mut guest, buffer_type, start, max)? {
                // Envoy writes nothing back for an empty range.
                None => Ok(()),
                Some(bytes) if bytes.is_empty() => Ok(()),
                Some(bytes) => guest.return_bytes(&bytes, ptr_ptr, size_ptr),
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut caller: Caller<'_, State>,
         buffer_type: i32,
         start: i32,
         len: i32,
         data_ptr: i32,
         data_len: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let data = guest.read(data_ptr, data_len)?;
                let state = guest.state();
                let BufferRef::Stream(context, side) = buffer_ref(state, buffer_type)? else {
                    // Configuration and call-response buffers are read-only in Envoy.
                    return Err(Status::BadArgument.into());
                };
                let side = state
                    .streams
                    .get_mut(&context)
                    .map(|stream| stream.side_mut(side))
                    .ok_or(Fault::Status(Status::BadArgument))?;
                let body = side.open_body().ok_or(Fault::Status(Status::BadArgument))?;
                match edit_buffer(body, start as u32 as usize, len as u32 as usize, &data) {
                    Status::Ok => Ok(()),
                    other => Err(other.into()),
                }
            })())
        },
    )?;
    Ok(())
}

fn link_stream_control(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut caller: Caller<'_, State>, stream_type: i32| {
            let state = caller.data_mut();
            let context = state.active_context();
            let side = match stream_type {
                0 => StreamSide::Request,
                1 => StreamSide::Response,
                _ => return Ok(Status::BadArgument as i32),
            };
            if let Some(stream) = state.streams.get_mut(&context) {
                // Envoy defers the resume until the current callback returns.
                stream.side_mut(side).continue_requested = true;
            }
            Ok(Status::Ok as i32)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut caller: Caller<'_, State>, stream_type: i32| {
            let state = caller.data_mut();
            let context = state.active_context();
            if !(0..=3).contains(&stream_type) {
                return Ok(Status::BadArgument as i32);
            }
            if let Some(stream) = state.streams.get_mut(&context) {
                stream.reset = true;
            }
            Ok(Status::Ok as i32)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut caller: Caller<'_, State>,
         status_code: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         grpc_status: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let details = guest.read_string(details_ptr, details_len)?;
                let body = guest.read(body_ptr, body_len)?;
                let headers = decode_pairs(&guest.read(headers_ptr, headers_len)?)
                    .ok_or(Fault::Status(Status::BadArgument))?;
                let state = guest.state();
                let context = state.active_context();
                let stream = state
                    .streams
                    .get_mut(&context)
                    .ok_or(Fault::Status(Status::BadArgument))?;
                if stream.local_reply.is_some() {
                    return Err(Status::BadArgument.into());
                }
                stream.local_reply = Some(crate::LocalReply {
                    status: status_code as u32,
                    details,
                    body,
                    headers,
                    grpc_status: (grpc_status >= 0).then_some(grpc_status as u32),
                });
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut caller: Caller<'_, State>, context: i32| {
            let state = caller.data_mut();
            let context = context as u32;
            if context != state.root_context && !state.streams.contains_key(&context) {
                return Ok(Status::BadArgument as i32);
            }
            state.effective_context = Some(context);
            Ok(Status::Ok as i32)
        },
    )?;
    linker.func_wrap("env", "proxy_done", |mut caller: Caller<'_, State>| {
        caller.data_mut().done_called = true;
        Ok(Status::Ok as i32)
    })?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut caller: Caller<'_, State>,
         name_ptr: i32,
         name_len: i32,
         _args_ptr: i32,
         _args_len: i32,
         _results_ptr_ptr: i32,
         _results_size_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let name = guest.read_string(name_ptr, name_len)?;
                let state = guest.state();
                let context = state.active_context();
                state.foreign_calls.push((context, name.clone()));
                match name.as_str() {
                    "clear_route_cache" => {
                        if let Some(stream) = state.streams.get_mut(&context) {
                            stream.clear_route_cache();
                        }
                        Ok(())
                    }
                    _ => Err(Status::NotFound.into()),
                }
            })())
        },
    )?;
    Ok(())
}

fn link_properties_and_shared_data(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, State>,
         path_ptr: i32,
         path_len: i32,
         value_ptr_ptr: i32,
         value_size_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let path = guest.read(path_ptr, path_len)?;
                let state = guest.state();
                // The current stream's own stream info first, then what every stream sees.
                let value = state
                    .streams
                    .get(&state.active_context())
                    .and_then(|stream| stream.properties.get(&path))
                    .or_else(|| state.properties.get(&path))
                    .cloned();
                let value = value.ok_or(Fault::Status(Status::NotFound))?;
                guest.return_bytes(&value, value_ptr_ptr, value_size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut caller: Caller<'_, State>,
         path_ptr: i32,
         path_len: i32,
         value_ptr: i32,
         value_len: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let path = guest.read(path_ptr, path_len)?;
                let value = guest.read(value_ptr, value_len)?;
                guest.state().properties.insert(path, value);
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut caller: Caller<'_, State>,
         key_ptr: i32,
         key_len: i32,
         value_ptr_ptr: i32,
         value_size_ptr: i32,
         cas_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let key = guest.read(key_ptr, key_len)?;
                let entry = guest.state().shared_data.borrow().get(&key).cloned();
                let (value, cas) = entry.ok_or(Fault::Status(Status::NotFound))?;
                guest.return_bytes(&value, value_ptr_ptr, value_size_ptr)?;
                guest.write_u32(cas_ptr, cas)
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut caller: Caller<'_, State>,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32,
         cas: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let key = guest.read(key_ptr, key_len)?;
                let value = guest.read(value_ptr, value_len)?;
                let mut shared = guest.state().shared_data.borrow_mut();
                let current = shared.get(&key).map_or(0, |(_, cas)| *cas);
                if cas != 0 && cas as u32 != current {
                    return Err(Status::CasMismatch.into());
                }
                shared.insert(key, (value, current.wrapping_add(1).max(1)));
                Ok(())
            })())
        },
    )?;
    Ok(())
}

fn link_metrics(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_, State>, kind: i32, name_ptr: i32, name_len: i32, id_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let kind = MetricKind::from_abi(kind).ok_or(Fault::Status(Status::BadArgument))?;
                let name = guest.read_string(name_ptr, name_len)?;
                let id = guest.state().metrics.define(kind, &name);
                guest.write_u32(id_ptr, id)
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut caller: Caller<'_, State>, id: i32, offset: i64| {
            Ok(caller.data_mut().metrics.increment(id as u32, offset) as i32)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut caller: Caller<'_, State>, id: i32, value: i64| {
            Ok(caller.data_mut().metrics.record(id as u32, value as u64) as i32)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut caller: Caller<'_, State>, id: i32, value_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let value = guest
                    .state()
                    .metrics
                    .get(id as u32)
                    .map_err(Fault::Status)?;
                guest.write_u64(value_ptr, value)
            })())
        },
    )?;
    Ok(())
}

fn link_http_calls(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut caller: Caller<'_, State>,
         cluster_ptr: i32,
         cluster_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         body_ptr: i32,
         body_len: i32,
         trailers_ptr: i32,
         trailers_len: i32,
         timeout_ms: i32,
         token_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let cluster = guest.read_string(cluster_ptr, cluster_len)?;
                let headers = decode_pairs(&guest.read(headers_ptr, headers_len)?)
                    .ok_or(Fault::Status(Status::BadArgument))?;
                let body = guest.read(body_ptr, body_len)?;
                let trailers = if trailers_len == 0 {
                    Vec::new()
                } else {
                    decode_pairs(&guest.read(trailers_ptr, trailers_len)?)
                        .ok_or(Fault::Status(Status::BadArgument))?
                };
                let has = |name: &str| headers.iter().any(|(key, _)| key == name);
                let state = guest.state();
                // Envoy: a negative timeout, an unknown cluster or a request without :path,
                // :method and :authority is BadArgument.
                let known = state.http_responses.contains_key(&cluster)
                    || state.clusters.contains(&cluster)
                    || state.unavailable_clusters.contains(&cluster);
                if timeout_ms < 0
                    || !known
                    || !(has(":path") && has(":method") && has(":authority"))
                {
                    return Err(Status::BadArgument.into());
                }
                // Envoy: the async client failed the request inline (no healthy host, an
                // overflowing circuit breaker), so `send` gave no request back.
                if state.unavailable_clusters.contains(&cluster) {
                    return Err(Status::InternalFailure.into());
                }
                state.next_http_token += 1;
                let token = state.next_http_token;
                let context = state.active_context();
                state.http_calls.push(HttpCall {
                    context,
                    token,
                    cluster,
                    headers,
                    body,
                    trailers,
                    timeout_ms: timeout_ms as u32,
                    answered: false,
                });
                guest.write_u32(token_ptr, token)
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut caller: Caller<'_, State>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            status((|| {
                let code = guest
                    .state()
                    .http_call_response
                    .as_ref()
                    .map_or(0, |response| response.grpc_status);
                guest.write_u32(code_ptr, code)?;
                guest.return_bytes(&[], ptr_ptr, size_ptr)
            })())
        },
    )?;
    Ok(())
}

fn link_wasi(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, State>, fd: i32, iovs: i32, iovs_len: i32, written_ptr: i32| {
            let mut guest = Guest {
                caller: &mut caller,
            };
            let result: Abi<i32> = (|| {
                let vectors = guest.read(iovs, iovs_len.saturating_mul(8))?;
                let mut bytes = Vec::new();
                for vector in vectors.chunks_exact(8) {
                    let word = |at: usize| {
                        i32::from_le_bytes([
                            vector[at],
                            vector[at + 1],
                            vector[at + 2],
                            vector[at + 3],
                        ])
                    };
                    bytes.extend(guest.read(word(0), word(4))?);
                }
                let sink = match fd {
                    1 => &mut guest.state().stdout,
                    2 => &mut guest.state().stderr,
                    _ => return Ok(WASI_BADF),
                };
                sink.extend_from_slice(&bytes);
                guest.write_u32(written_ptr, bytes.len() as u32)?;
                Ok(WASI_SUCCESS)
            })();
            match result {
                Ok(errno) => Ok(errno),
                Err(Fault::Status(_)) => Ok(21), // EFAULT
                Err(Fault::Trap(error)) => Err(error),
            }
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Caller<'_, State>, buf: i32, len: i32| {
            if let Some(errno) = caller.data().random_failure {
                return Ok(errno);
            }
            let bytes = caller.data_mut().random_bytes(len as u32 as usize);
            let mut guest = Guest {
                caller: &mut caller,
            };
            Ok(match guest.write(buf, &bytes) {
                Ok(()) => WASI_SUCCESS,
                Err(_) => 21,
            })
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(
            WASI,
            name,
            |mut caller: Caller<'_, State>, count_ptr: i32, size_ptr: i32| {
                let mut guest = Guest {
                    caller: &mut caller,
                };
                let written = guest
                    .write_u32(count_ptr, 0)
                    .and_then(|()| guest.write_u32(size_ptr, 0));
                Ok(if written.is_ok() { WASI_SUCCESS } else { 21 })
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(WASI, name, |_: Caller<'_, State>, _: i32, _: i32| {
            Ok(WASI_SUCCESS)
        })?;
    }
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, State>, _clock: i32, _precision: i64, time_ptr: i32| {
            let now = caller.data_mut().read_clock();
            let mut guest = Guest {
                caller: &mut caller,
            };
            Ok(match guest.write_u64(time_ptr, now) {
                Ok(()) => WASI_SUCCESS,
                Err(_) => 21,
            })
        },
    )?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_: Caller<'_, State>, code: i32| -> wasmtime::Result<()> {
            wasmtime::bail!("the module called wasi proc_exit({code})")
        },
    )?;
    Ok(())
}

/// Every other import gets a body that traps with its name, so instantiation succeeds and a call
/// fails loudly.
fn trap_on_anything_else(linker: &mut Linker<State>, module: &Module) -> wasmtime::Result<()> {
    let engine = module.engine().clone();
    let mut probe = wasmtime::Store::new(&engine, State::default());
    for import in module.imports() {
        if linker.get_by_import(&mut probe, &import).is_some() {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else {
            wasmtime::bail!(
                "the module imports {}.{}, which is not a function: not supported",
                import.module(),
                import.name()
            );
        };
        let name = format!("{}.{}", import.module(), import.name());
        linker.func_new(import.module(), import.name(), ty, move |_, _, _| {
            wasmtime::bail!(
                "the module called host function {name}, which this host does not implement"
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_edits_follow_envoy() {
        let cases: [(usize, usize, &str, Status, &str); 7] = [
            (0, 0, "<", Status::Ok, "<body"),
            (0, 4, "new", Status::Ok, "new"),
            (0, 99, "new", Status::Ok, "new"),
            (4, 0, ">", Status::Ok, "body>"),
            (9, 3, ">", Status::Ok, "body>"),
            (0, 2, "x", Status::BadArgument, "body"),
            (1, 0, "x", Status::BadArgument, "body"),
        ];
        for (start, len, data, status, after) in cases {
            let mut buffer = b"body".to_vec();
            let result = edit_buffer(&mut buffer, start, len, data.as_bytes());
            assert_eq!(
                (result, &buffer[..]),
                (status, after.as_bytes()),
                "{start} {len}"
            );
        }
    }

    #[test]
    fn pairs_round_trip_and_reject_truncation() {
        let pairs = vec![
            (":path".to_string(), "/v1/messages".to_string()),
            ("empty".to_string(), String::new()),
        ];
        let bytes = encode_pairs(&pairs);
        assert_eq!(decode_pairs(&bytes), Some(pairs));
        for cut in 0..bytes.len() - 1 {
            assert_eq!(decode_pairs(&bytes[..cut]), None, "cut at {cut}");
        }
    }
}
