//! Interleavings no host suite drives and the exchange host does not produce, as event scripts
//! straight on the machine: a call answered while the held answer's body still arrives, a call the
//! host could not send from each place one is asked for, reports about calls the machine did not
//! ask for (or no longer waits for), a rewrite the host refused, and events after the record
//! settled. Each table row is an event, what comes next, and the effects but header writes.

use super::super::exchange::Answer;
use super::script::{
    call_of, routed, said, sent_to_mid, settled, small_fails, Effects, Event, Row, Script,
};
use super::*;
use crate::Escalation;

fn mid_answers() -> Option<Answer> {
    Some(good_response(CHAT, MID))
}

/// The client's answer is the failing one, its body still arriving when the call answers: a good
/// answer replaces it at once (what still arrives is dropped); a failed call lets it go on, the
/// body held so far and then the rest, and the record settles at its end.
#[test]
fn a_call_answered_while_the_held_answers_body_is_still_arriving() {
    let config = default_config();
    let cases: [(&str, Option<Answer>, Effects, Effects, &str); 2] = [
        (
            "the call answers",
            mid_answers(),
            &["reply 200 triage_escalated", "settle"],
            &[],
            "mid",
        ),
        (
            "the call fails",
            None,
            &[
                "Info: not escalating (reset): no escalations left",
                "continue response",
            ],
            &["settle"],
            "small",
        ),
    ];
    for (what, answer, answered, rest, tier) in cases {
        let mut script = Script::new(&config, &Client::simple(CHAT));
        let rows: Vec<Row> = vec![
            routed(),
            small_fails(false),
            sent_to_mid(),
            (
                Event::ResponseBody(b"upstream ".to_vec(), false),
                "pause",
                &[],
            ),
            (Event::Answered(1, answer), "continue", answered),
            (
                Event::ResponseBody(b"unavailable".to_vec(), true),
                "continue",
                rest,
            ),
        ];
        let steps = script.play_rows(&rows, what);
        assert_eq!(settled(&steps).tier, tier, "{what}");
    }
}

/// A place a call is asked for: the config and the request, the script from the routed request
/// on, and the steps the record keeps.
struct Place {
    what: &'static str,
    config: Rc<Config>,
    client: Client,
    rows: Vec<Row>,
    escalations: Vec<Escalation>,
}

/// Where a call can be asked for, and the host saying it could not send it: the answer held for it
/// goes on after all, by the callback that asked (its `continue`) or, outside a callback, by an
/// explicit one; no step is recorded for a call never sent.
#[test]
fn a_call_the_host_could_not_send_lets_the_held_answer_go_from_each_place() {
    let weak = answer(CHAT, SMALL, "", "stop");
    let error = b"data: {\"error\": {\"message\": \"overloaded\"}}\n\n".to_vec();
    let rest = b"data: [DONE]\n\n".to_vec();
    let failed_mid = Some(Answer::new(503, "text/plain", ""));
    let places = [
        Place {
            what: "at a failing status, before its body",
            config: default_config(),
            client: Client::simple(CHAT),
            rows: vec![
                small_fails(false),
                (Event::Dispatched(None), "continue", &[]),
                (
                    Event::ResponseBody(b"down".to_vec(), true),
                    "continue",
                    &["settle"],
                ),
            ],
            escalations: vec![],
        },
        Place {
            what: "at a failing status ending the answer",
            config: default_config(),
            client: Client::simple(CHAT),
            rows: vec![
                small_fails(true),
                (Event::Dispatched(None), "continue", &["settle"]),
            ],
            escalations: vec![],
        },
        Place {
            what: "at the end of a weak answer",
            config: default_config(),
            client: Client::simple(CHAT),
            rows: vec![
                (Event::ResponseHeaders(200, JSON, false), "pause", &[]),
                (Event::ResponseBody(weak, true), "dispatch tier_mid", &[]),
                (Event::Dispatched(None), "continue", &["settle"]),
            ],
            escalations: vec![],
        },
        Place {
            what: "at an error event in a held stream",
            config: default_config(),
            client: Client::streaming(CHAT),
            rows: vec![
                (
                    Event::ResponseHeaders(200, EVENT_STREAM, false),
                    "pause",
                    &[],
                ),
                (Event::ResponseBody(error, false), "dispatch tier_mid", &[]),
                (Event::Dispatched(None), "continue", &[]),
                (Event::ResponseBody(rest, true), "continue", &["settle"]),
            ],
            escalations: vec![],
        },
        Place {
            what: "at a further call, asked by the first call's answer",
            config: config(json!({"max_escalations": 2}), json!({})),
            client: Client::simple(CHAT),
            rows: vec![
                small_fails(true),
                sent_to_mid(),
                (
                    Event::Answered(1, failed_mid),
                    "dispatch tier_frontier",
                    &[],
                ),
                (
                    Event::Dispatched(None),
                    "continue",
                    &["continue response", "settle"],
                ),
            ],
            escalations: vec![step(SMALL, MID, "status_5xx", Some(503), None)],
        },
    ];
    for place in places {
        let what = place.what;
        let mut script = Script::new(&place.config, &place.client);
        let mut steps = script.play_rows(&[routed()], what);
        steps.extend(script.play_rows(&place.rows, what));
        let record = settled(&steps);
        assert_eq!(record.tier, "small", "{what}");
        assert_eq!(record.escalations, place.escalations, "{what}");
    }
}

/// The machine acts only on the report about the call it asked for, and on the answer with that
/// call's token, once: any other changes nothing, and the awaited answer still counts.
#[test]
fn reports_about_calls_the_machine_does_not_wait_for_change_nothing() {
    let config = default_config();
    let answered: Row = (
        Event::Answered(1, mid_answers()),
        "continue",
        &["reply 200 triage_escalated", "settle"],
    );
    let ignored = |event: Event| -> Row { (event, "continue", &[]) };
    let cases: [(&str, Vec<Row>); 4] = [
        (
            "a report before any call was asked for",
            vec![
                ignored(Event::Dispatched(Some(3))),
                ignored(Event::Answered(3, mid_answers())),
                small_fails(true),
                sent_to_mid(),
                answered.clone(),
            ],
        ),
        (
            "a second report on the call sent",
            vec![
                small_fails(true),
                sent_to_mid(),
                ignored(Event::Dispatched(Some(2))),
                ignored(Event::Answered(2, mid_answers())),
                answered.clone(),
            ],
        ),
        (
            "a stale token",
            vec![
                small_fails(true),
                sent_to_mid(),
                ignored(Event::Answered(7, None)),
                answered.clone(),
            ],
        ),
        (
            "the same answer twice",
            vec![
                small_fails(true),
                sent_to_mid(),
                answered,
                ignored(Event::Answered(1, mid_answers())),
            ],
        ),
    ];
    for (what, rows) in cases {
        let mut script = Script::new(&config, &Client::simple(CHAT));
        let mut steps = script.play_rows(&[routed()], what);
        steps.extend(script.play_rows(&rows, what));
        assert_eq!(settled(&steps).tier, "mid", "{what}");
    }
}

/// The host refused the rewritten body: the tier gets the client's body, and the record says no
/// model was written, unless an escalation later wrote the next tier's into its call.
#[test]
fn a_refused_rewrite_records_no_model_until_an_escalation_writes_one() {
    let config = default_config();
    let cases: [(&str, Vec<Row>, Option<&str>); 2] = [
        (
            "small answers",
            vec![
                (Event::ResponseHeaders(200, JSON, false), "pause", &[]),
                (
                    Event::ResponseBody(good_answer(CHAT, SMALL), true),
                    "continue",
                    &["settle"],
                ),
            ],
            None,
        ),
        (
            "mid answers the escalation",
            vec![
                small_fails(true),
                sent_to_mid(),
                (
                    Event::Answered(1, mid_answers()),
                    "continue",
                    &["reply 200 triage_escalated", "settle"],
                ),
            ],
            Some(TIERS[MID].model),
        ),
    ];
    for (what, rows, model) in cases {
        let client = Client::simple(CHAT);
        let mut script = Script::new(&config, &client);
        let mut steps =
            script.play_rows(&[routed(), (Event::RewriteFailed, "continue", &[])], what);
        steps.extend(script.play_rows(&rows, what));
        if let Some(step) = steps
            .iter()
            .find(|step| said(step).0.starts_with("dispatch"))
        {
            assert_eq!(call_of(step).body, client.body_for(MID), "{what}");
        }
        let record = settled(&steps);
        assert_eq!(record.model.as_deref(), model, "{what}");
    }
}

/// The record settles once; whatever comes after (a late chunk, trailers, reports about calls, the
/// end of the stream, even request events) changes nothing.
#[test]
fn after_the_record_settles_every_event_is_a_no_op() {
    let config = default_config();
    let mut script = Script::new(&config, &Client::simple(CHAT));
    let ignored = |event: Event| -> Row { (event, "continue", &[]) };
    let rows: Vec<Row> = vec![
        routed(),
        (Event::ResponseHeaders(200, JSON, false), "pause", &[]),
        (
            Event::ResponseBody(good_answer(CHAT, SMALL), true),
            "continue",
            &["settle"],
        ),
        ignored(Event::ResponseBody(b"late".to_vec(), true)),
        ignored(Event::ResponseTrailers),
        ignored(Event::Dispatched(Some(1))),
        ignored(Event::Answered(1, mid_answers())),
        ignored(Event::RequestBody(b"more".to_vec(), true)),
        ignored(Event::RequestTrailers),
        ignored(Event::ResponseHeaders(503, "text/plain", true)),
        ignored(Event::Log),
        ignored(Event::Log),
    ];
    let steps = script.play_rows(&rows, "after the settle");
    assert_eq!(settled(&steps).status, Some(200));
}
