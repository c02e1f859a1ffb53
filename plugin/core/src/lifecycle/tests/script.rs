//! Event scripts straight on the machine, for the interleavings the exchange host does not produce
//! (a call answered while the held answer's body still arrives, trailers while a call is in flight,
//! a stale token, a call the host could not send, the client gone midway). The test names each
//! event; [`Held`] holds what the host holds when it comes, as Envoy would: the request's headers
//! and body, the response buffer (growing while held, handed on when the stream goes on), the
//! call's answer. A step is read back as text: what comes next, and the effects other than header
//! writes, which tables compare row by row.

use std::rc::Rc;

use super::super::exchange::{call_answer, held_bytes, property, Answer, HostSettings};
use super::super::{Call, Effect, HeaderMap, Next, Reads, Step, Stream};
use super::{header, Client, MemoryBreakers, DECISION_ID};
use crate::{Config, DecisionRecord};

/// One thing that happens to the stream.
#[derive(Clone, Debug)]
pub(super) enum Event {
    /// The client's request: headers, then the body in one piece ending it (one step of both).
    Request,
    RequestHeaders {
        end: bool,
    },
    RequestBody(Vec<u8>, bool),
    RequestTrailers,
    /// The upstream's response headers: status, content type, whether they end the stream.
    ResponseHeaders(u16, &'static str, bool),
    ResponseBody(Vec<u8>, bool),
    ResponseTrailers,
    /// The host's report on the call the last step asked for.
    Dispatched(Option<u32>),
    /// The answer to the call of this token; None: it failed without a response.
    Answered(u32, Option<Answer>),
    /// The stream is over.
    Log,
    /// The host refused the rewritten request body.
    RewriteFailed,
}

/// One row of a script: the event, what comes next (`continue`, `pause`, `dispatch <cluster>`),
/// and the effects other than header writes, in order ([`said`]).
pub(super) type Row = (Event, &'static str, Effects);

/// Effects as [`said`] writes them.
pub(super) type Effects = &'static [&'static str];

/// The client's request, decided and routed: its body rewritten, the route picked again.
pub(super) fn routed() -> Row {
    (
        Event::Request,
        "continue",
        &["replace body", "clear route cache"],
    )
}

/// small's failing status (503), ending its answer or not: the call to mid is asked for.
pub(super) fn small_fails(end: bool) -> Row {
    (
        Event::ResponseHeaders(503, "text/plain", end),
        "dispatch tier_mid",
        &[],
    )
}

/// The host sent the call that moves a failing small tier to mid, as token 1.
pub(super) fn sent_to_mid() -> Row {
    (
        Event::Dispatched(Some(1)),
        "pause",
        &["Info: escalating small->mid (status_5xx)"],
    )
}

/// What the host holds for the stream, as the machine reads it.
pub(super) struct Held {
    pub now_nanos: u64,
    pub request_headers: Vec<(String, String)>,
    /// None: the host can not hand the body over.
    pub request_body: Option<Vec<u8>>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Vec<u8>,
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    pub call_answer: Option<Answer>,
    pub decision_id: Option<String>,
}

impl Reads for Held {
    fn now_nanos(&self) -> u64 {
        self.now_nanos
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        self.request_headers.clone()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        header(&self.response_headers, name).map(str::to_string)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        property(&self.properties, path)
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        let body = self.request_body.as_ref()?;
        Some(held_bytes(body, 0, size))
    }

    fn response_body(&self, start: usize, size: usize) -> Vec<u8> {
        held_bytes(&self.response_body, start, size)
    }

    fn call_answer(
        &self,
        num_headers: usize,
        body_size: usize,
    ) -> (Vec<(String, String)>, Vec<u8>) {
        call_answer(self.call_answer.as_ref(), num_headers, body_size)
    }

    fn new_decision_id(&self) -> Option<String> {
        self.decision_id.clone()
    }
}

/// One stream of `client`'s request, driven event by event.
pub(super) struct Script {
    pub machine: Stream,
    pub held: Held,
    /// What [`Event::Request`] sends.
    client_body: Vec<u8>,
}

impl Script {
    pub fn new(config: &Rc<Config>, client: &Client) -> Script {
        Script::on(config, &Rc::new(MemoryBreakers::new(config)), client)
    }

    /// A stream on `breakers`, shared with other streams.
    pub fn on(config: &Rc<Config>, breakers: &Rc<MemoryBreakers>, client: &Client) -> Script {
        let request = client.request();
        Script {
            machine: Stream::new(Rc::clone(config), Rc::clone(breakers) as _),
            held: Held {
                now_nanos: HostSettings::default().start_nanos,
                request_headers: request.headers,
                request_body: Some(Vec::new()),
                response_headers: Vec::new(),
                response_body: Vec::new(),
                properties: Vec::new(),
                call_answer: None,
                decision_id: Some(DECISION_ID.to_string()),
            },
            client_body: request.body,
        }
    }

    /// Feeds `event` as the host would, and returns the machine's step.
    pub fn play(&mut self, event: &Event) -> Step {
        let (machine, held) = (&mut self.machine, &mut self.held);
        let step = match event {
            Event::Request => {
                let mut step = self.play(&Event::RequestHeaders { end: false });
                let body = Event::RequestBody(self.client_body.clone(), true);
                let rest = self.play(&body);
                step.effects.extend(rest.effects);
                step.next = rest.next;
                return step;
            }
            Event::RequestHeaders { end } => machine.request_headers(held, *end),
            Event::RequestBody(chunk, end) => {
                let size = match held.request_body.as_mut() {
                    Some(body) => {
                        body.extend_from_slice(chunk);
                        body.len()
                    }
                    None => chunk.len(),
                };
                machine.request_body(held, size, *end)
            }
            Event::RequestTrailers => machine.request_trailers(held),
            Event::ResponseHeaders(status, content_type, end) => {
                held.response_headers = vec![
                    (":status".into(), status.to_string()),
                    ("content-type".into(), content_type.to_string()),
                ];
                machine.response_headers(held, *end)
            }
            Event::ResponseBody(chunk, end) => {
                held.response_body.extend_from_slice(chunk);
                machine.response_body(held, held.response_body.len(), *end)
            }
            Event::ResponseTrailers => machine.response_trailers(held),
            Event::Dispatched(token) => machine.dispatched(held, *token),
            Event::Answered(token, answer) => {
                held.call_answer = answer.clone();
                let (headers, body) = answer.as_ref().map_or((0, 0), |answer| {
                    (answer.headers.len() + 1, answer.body.len())
                });
                machine.call_answered(held, *token, headers, body)
            }
            Event::Log => machine.log(held),
            Event::RewriteFailed => {
                machine.rewrite_failed();
                Step {
                    effects: Vec::new(),
                    next: Next::Continue,
                }
            }
        };
        self.hand_on(event, &step);
        step
    }

    /// Plays every row, checking each step against it; the steps, for what the rows do not say.
    pub fn play_rows(&mut self, rows: &[Row], what: &str) -> Vec<Step> {
        rows.iter()
            .enumerate()
            .map(|(index, (event, next, effects))| {
                let step = self.play(event);
                let (said_next, said_effects) = said(&step);
                let at = format!("{what}, row {index} ({event:?})");
                assert_eq!(said_next, *next, "{at}: next");
                assert_eq!(said_effects, *effects, "{at}: effects");
                step
            })
            .collect()
    }

    /// What Envoy does with its buffers once the callback is over: a body the stream lets go on
    /// leaves the buffer (what stays held is handed back whole the next time).
    fn hand_on(&mut self, event: &Event, step: &Step) {
        let released = step
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::ContinueResponse));
        let continued = step.next == Next::Continue;
        if released || continued && matches!(event, Event::ResponseBody(..) | Event::Dispatched(_))
        {
            self.held.response_body.clear();
        }
    }
}

/// What comes next, as text: `continue`, `pause`, `dispatch <cluster>`.
pub(super) fn next_said(next: &Next) -> String {
    match next {
        Next::Continue => "continue".to_string(),
        Next::Pause => "pause".to_string(),
        Next::Dispatch(call) => format!("dispatch {}", call.cluster),
    }
}

/// The step as text: what comes next, and each effect but header writes.
pub(super) fn said(step: &Step) -> (String, Vec<String>) {
    let next = next_said(&step.next);
    let effects = step
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::SetHeader { .. } | Effect::RemoveHeader { .. } => None,
            Effect::ReplaceRequestBody { .. } => Some("replace body".to_string()),
            Effect::ClearRouteCache => Some("clear route cache".to_string()),
            Effect::LocalReply {
                status, details, ..
            } => Some(format!("reply {status} {details}")),
            Effect::ContinueResponse => Some("continue response".to_string()),
            Effect::Settle(_) => Some("settle".to_string()),
            Effect::Log { level, message } => Some(format!("{level:?}: {message}")),
        })
        .collect();
    (next, effects)
}

/// The step wrote each of `writes` on `map`: a value set, or (None) the header removed.
pub(super) fn assert_writes(
    step: &Step,
    map: HeaderMap,
    writes: &[(&str, Option<&str>)],
    what: &str,
) {
    let wrote: Vec<(&str, Option<&str>)> = step
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::SetHeader {
                map: on,
                name,
                value,
            } if *on == map => Some((name.as_str(), Some(value.as_str()))),
            Effect::RemoveHeader { map: on, name } if *on == map => Some((name.as_str(), None)),
            _ => None,
        })
        .collect();
    for write in writes {
        assert!(wrote.contains(write), "{what}: {write:?} in {wrote:?}");
    }
}

/// The record the steps settled, exactly once.
pub(super) fn settled(steps: &[Step]) -> DecisionRecord {
    let records: Vec<&DecisionRecord> = steps
        .iter()
        .flat_map(|step| &step.effects)
        .filter_map(|effect| match effect {
            Effect::Settle(record) => Some(record.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 1, "settled exactly once");
    records[0].clone()
}

/// The call a step asked for.
pub(super) fn call_of(step: &Step) -> &Call {
    match &step.next {
        Next::Dispatch(call) => call,
        other => panic!("no call asked for: {other:?}"),
    }
}
