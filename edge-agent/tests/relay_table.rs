//! The relay's pure core against real FreeSWITCH 1.10.12 events: channel events →
//! dialog events, the channel table across a resync, the snapshot parser.
//!
//! The transcripts' calls did not come through callplane, so no channel carries
//! `X-Account-Id`. Where a test needs one, it edits a copy of the recorded event
//! (adds `variable_sip_h_X-Account-Id`, and for the loopback calls of 04/12, which
//! have no SIP Call-ID either, `variable_sip_call_id`), says so, and leaves
//! everything else as recorded.

mod support;

use edge_agent::esl::{parse_event, Event, Parser};
use edge_agent::relay::dialog::{DialogEvent, DialogState, Ignore, Reason, ACCOUNT_HEADER, CALL_ID_HEADER};
use edge_agent::relay::snapshot::parse_channels;
use edge_agent::relay::table::{ChannelTable, Effect, SnapChannel};
use edge_agent::transcript::Dir;
use support::*;

const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";
const ACC2: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbv";
/// The SIP call of transcript 19: both legs share this Call-ID.
const CALL_19: &str = "821daf0a-60ca-1240-019a-eecc78ccd840";
const IN_19: &str = "70e9b59e-7d5d-4a0a-8b16-ea38b9d3b0f7"; // sofia/external, inbound (as from Kamailio)
const OUT_19: &str = "11355a6a-d8f0-4054-b491-79cbcf97deab"; // sofia/internal, originated

/// Every event of a transcript (first connection), in order.
fn events(name: &str) -> Vec<Event> {
    let t = transcript(name);
    let label = t.labels()[0].clone();
    let mut p = Parser::new(Default::default());
    p.feed(&t.stream(label.as_deref(), Dir::S2C));
    let mut v = Vec::new();
    while let Some(m) = p.next().expect("transcript frames") {
        if m.kind().is_event() {
            v.push(parse_event(&m).expect("transcript event decodes"));
        }
    }
    v
}

/// Edited copy: `headers` added (or replaced) on the events of channel `uuid`.
fn tag(evs: &[Event], uuid: &str, headers: &[(&str, &str)]) -> Vec<Event> {
    evs.iter()
        .cloned()
        .map(|mut e| {
            if e.unique_id() == Some(uuid) {
                for (k, v) in headers {
                    e.headers.set(k, *v);
                }
            }
            e
        })
        .collect()
}

fn run(table: &mut ChannelTable, evs: &[Event]) -> Vec<Effect> {
    let mut out = Vec::new();
    for e in evs {
        let now = e.get("Event-Date-Timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
        out.extend(table.on_event(e, now));
    }
    out
}

fn dialogs(effects: &[Effect]) -> Vec<DialogEvent> {
    effects.iter().filter_map(|e| if let Effect::Dialog(d) = e { Some(d.clone()) } else { None }).collect()
}

fn synced() -> ChannelTable {
    let mut t = ChannelTable::new();
    let ticket = t.begin_resync();
    t.apply_snapshot(ticket.generation, &[], 0, None).unwrap();
    t
}

#[test]
fn sip_call_19_answer_and_hangup_become_confirmed_and_terminated() {
    let evs = tag(&events("19-sofia-sip-call-hold-unhold.txt"), IN_19, &[(ACCOUNT_HEADER, ACC)]);
    let mut t = synced();
    let fx = run(&mut t, &evs);
    let d = dialogs(&fx);
    assert_eq!(
        d,
        vec![
            DialogEvent::confirmed(ACC, CALL_19, "sip:0000000000@127.0.0.1", "sip:7000@127.0.0.1:15080"),
            // Answered 1795319346.797111, hung up 1795319355.877140: 9 s (billsec 9).
            DialogEvent::terminated(ACC, CALL_19, "sip:0000000000@127.0.0.1", "sip:7000@127.0.0.1:15080", Reason::Ended, 9),
        ]
    );
    // The originated leg has the same Call-ID but no X-Account-Id: ignored, once.
    let ignored: Vec<_> = fx.iter().filter_map(|e| if let Effect::Ignored { uuid, why } = e { Some((uuid.clone(), why.clone())) } else { None }).collect();
    assert_eq!(ignored, vec![(OUT_19.to_string(), Ignore::NoAccount)]);
    assert_eq!((t.channel_count(), t.dialog_count()), (0, 0));
    assert_eq!(d[1].body("fs-1"), format!(r#"{{"type":"dialog","callId":"{CALL_19}","accountId":"{ACC}","state":"terminated","reason":"ended","from":"sip:0000000000@127.0.0.1","to":"sip:7000@127.0.0.1:15080","duration":9,"node":"fs-1"}}"#));
}

#[test]
fn two_legs_of_one_call_id_make_one_dialog() {
    let evs = events("19-sofia-sip-call-hold-unhold.txt");
    let evs = tag(&tag(&evs, IN_19, &[(ACCOUNT_HEADER, ACC)]), OUT_19, &[(ACCOUNT_HEADER, ACC)]);
    let mut t = synced();
    let mut states = Vec::new();
    for e in &evs {
        for d in dialogs(&t.on_event(e, 0)) {
            states.push((e.name().unwrap().to_string(), e.unique_id().unwrap()[..8].to_string(), d.state));
        }
        // While the call is up, it is one live Call-ID of the account.
        if e.name() == Some("CHANNEL_HOLD") {
            assert_eq!(t.live_call_ids(ACC), vec![CALL_19.to_string()]);
            assert_eq!(t.channel_count(), 2);
        }
    }
    // confirmed on the first answer (the external leg answers first), terminated
    // when the second leg hangs up, never twice.
    assert_eq!(
        states,
        vec![
            ("CHANNEL_ANSWER".into(), "70e9b59e".into(), DialogState::Confirmed),
            ("CHANNEL_HANGUP_COMPLETE".into(), "70e9b59e".into(), DialogState::Terminated),
        ]
    );
}

#[test]
fn loopback_calls_without_account_or_call_id_are_ignored() {
    let evs = events("04-originate-event-json-ALL.txt");
    let mut t = synced();
    let fx = run(&mut t, &evs);
    assert!(dialogs(&fx).is_empty());
    assert!(fx.iter().all(|e| matches!(e, Effect::Ignored { why: Ignore::NoAccount, .. })));
    // With an account but no SIP Call-ID (a loopback leg): still not a dialog.
    let a = "ba910242-9276-4c0b-b6d2-3a32edec8e71";
    let mut t = synced();
    let fx = run(&mut t, &tag(&evs, a, &[(ACCOUNT_HEADER, ACC)]));
    assert!(dialogs(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(e, Effect::Ignored { uuid, why: Ignore::NoCallId } if uuid == a)));
    // A malformed account is refused, not relayed.
    let mut t = synced();
    let fx = run(&mut t, &tag(&evs, a, &[(ACCOUNT_HEADER, "acme"), (CALL_ID_HEADER, "c")]));
    assert!(dialogs(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(e, Effect::Ignored { why: Ignore::BadAccount(_), .. })));
}

#[test]
fn transcript_12_user_busy_after_answer_is_ended_and_calls_stay_apart() {
    // Two loopback calls (A1 bridged to A2, then parked, then A1 killed with
    // USER_BUSY). Each A leg gets an account and its own Call-ID (edited copies).
    let evs = events("12-uuid-bridge-park-kill.txt");
    // A legs as the transcript's note names them (call1, call2).
    let legs = ["620088de-9c28-4d27-a2bf-c9aa633eb939", "fb465f66-5a46-4c3f-92c1-f1133c61796e"];
    for l in legs {
        assert!(evs.iter().any(|e| e.name() == Some("CHANNEL_CREATE") && e.unique_id() == Some(l)), "{l} in transcript 12");
    }
    let evs = tag(&evs, legs[0], &[(ACCOUNT_HEADER, ACC), (CALL_ID_HEADER, "call-a1")]);
    let evs = tag(&evs, legs[1], &[(ACCOUNT_HEADER, ACC2), (CALL_ID_HEADER, "call-a2")]);
    let mut t = synced();
    let d = dialogs(&run(&mut t, &evs));
    let summary: Vec<(String, DialogState, Option<Reason>)> = d.iter().map(|d| (d.call_id.clone(), d.state, d.reason)).collect();
    assert_eq!(summary.iter().filter(|s| s.1 == DialogState::Confirmed).count(), 2, "{summary:?}");
    let terminated: Vec<_> = summary.iter().filter(|s| s.1 == DialogState::Terminated).collect();
    assert_eq!(terminated.len(), 2);
    // Whatever the cause (NORMAL_CLEARING from the park, USER_BUSY from uuid_kill),
    // an answered call that ends is `ended`.
    assert!(terminated.iter().all(|s| s.2 == Some(Reason::Ended)), "{summary:?}");
    let busy = evs.iter().find(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE") && e.get("Hangup-Cause") == Some("USER_BUSY")).unwrap();
    assert!(busy.get(ACCOUNT_HEADER).is_some(), "the USER_BUSY hangup is one of our legs");
    assert_eq!(d.iter().map(|d| d.account_id.as_str()).collect::<std::collections::BTreeSet<_>>().len(), 2);
}

#[test]
fn hangup_before_answer_is_failed_with_no_duration() {
    // Edited copy of 19's inbound leg: CREATE, then its HANGUP_COMPLETE rewritten as
    // a caller CANCEL before answer (answer time 0). The ANSWER event is left out.
    let evs = tag(&events("19-sofia-sip-call-hold-unhold.txt"), IN_19, &[(ACCOUNT_HEADER, ACC)]);
    let create = evs.iter().find(|e| e.unique_id() == Some(IN_19) && e.name() == Some("CHANNEL_CREATE")).unwrap().clone();
    let mut hangup = evs.iter().find(|e| e.unique_id() == Some(IN_19) && e.name() == Some("CHANNEL_HANGUP_COMPLETE")).unwrap().clone();
    hangup.headers.set("Caller-Channel-Answered-Time", "0");
    hangup.headers.set("Hangup-Cause", "ORIGINATOR_CANCEL");
    let mut t = synced();
    let d = dialogs(&run(&mut t, &[create, hangup]));
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].state, d[0].reason, d[0].duration), (DialogState::Terminated, Some(Reason::Failed), Some(0)));
}

#[test]
fn a_hangup_of_a_channel_never_seen_still_terminates_its_dialog() {
    // Events missed (agent started mid-call, no snapshot row): the HANGUP_COMPLETE
    // alone carries account, Call-ID and times.
    let evs = tag(&events("19-sofia-sip-call-hold-unhold.txt"), IN_19, &[(ACCOUNT_HEADER, ACC)]);
    let hangup = evs.iter().find(|e| e.unique_id() == Some(IN_19) && e.name() == Some("CHANNEL_HANGUP_COMPLETE")).unwrap().clone();
    let mut t = synced();
    let d = dialogs(&t.on_event(&hangup, 0));
    assert_eq!(d, vec![DialogEvent::terminated(ACC, CALL_19, "sip:0000000000@127.0.0.1", "sip:7000@127.0.0.1:15080", Reason::Ended, 9)]);
}

fn answered_part_of_19() -> (Vec<Event>, Vec<Event>) {
    let evs = tag(&events("19-sofia-sip-call-hold-unhold.txt"), IN_19, &[(ACCOUNT_HEADER, ACC)]);
    // Up to the originated leg's CHANNEL_PARK: where 19 ran `show channels as json`.
    let cut = evs.iter().position(|e| e.name() == Some("CHANNEL_PARK") && e.unique_id() == Some(OUT_19)).unwrap() + 1;
    (evs[..cut].to_vec(), evs[cut..].to_vec())
}

/// 19's recorded `show channels as json` answer (two rows, both answered).
fn snapshot_19() -> Vec<edge_agent::relay::snapshot::Row> {
    let body = s2c_containing(&transcript("19-sofia-sip-call-hold-unhold.txt"), "\"row_count\":2");
    let text = String::from_utf8(body).unwrap();
    parse_channels(text.split_once("\n\n").unwrap().1).unwrap()
}

#[test]
fn recorded_snapshots_parse() {
    let rows = snapshot_19();
    assert_eq!(rows.iter().map(|r| r.uuid.as_str()).collect::<Vec<_>>(), vec![OUT_19, IN_19]);
    assert!(rows.iter().all(|r| r.answered()));
    let t3 = s2c_containing(&transcript("03-api-commands.txt"), "row_count");
    assert!(parse_channels(String::from_utf8(t3).unwrap().split_once("\n\n").unwrap().1).unwrap().is_empty());
    for (name, n) in [("04-originate-event-json-ALL.txt", 2), ("12-uuid-bridge-park-kill.txt", 4)] {
        let b = s2c_containing(&transcript(name), "\"row_count\":");
        let rows = parse_channels(String::from_utf8(b).unwrap().split_once("\n\n").unwrap().1).unwrap();
        assert_eq!(rows.len(), n, "{name}");
    }
}

#[test]
fn reconnect_with_the_call_still_up_keeps_it_and_reconcile_waits_for_the_snapshot() {
    let (before, after) = answered_part_of_19();
    let mut t = synced();
    let d = dialogs(&run(&mut t, &before));
    assert_eq!(d.len(), 1);
    assert_eq!(t.reconcile_batches(), Some(vec![(ACC.to_string(), vec![CALL_19.to_string()])]));
    // The link drops: nothing is reconciled from a table that may miss events.
    t.mark_unsynced();
    assert_eq!(t.reconcile_batches(), None);
    // Reconnected: the snapshot (19's, recorded at this very point) still lists both
    // legs; the known one needs no uuid_getvar, the other has no account.
    let ticket = t.begin_resync();
    assert_eq!(ticket.known.iter().cloned().collect::<Vec<_>>(), vec![IN_19.to_string()]);
    let snap: Vec<SnapChannel> = snapshot_19().into_iter().map(|r| SnapChannel { answered: r.answered(), uuid: r.uuid, identity: None }).collect();
    assert_eq!(t.reconcile_batches(), None, "still resyncing");
    let fx = t.apply_snapshot(ticket.generation, &snap, 1_795_319_350_000_000, Some(1_795_319_348_000_000)).unwrap();
    assert!(fx.is_empty(), "no dialog changed: {fx:?}");
    assert_eq!(t.reconcile_batches(), Some(vec![(ACC.to_string(), vec![CALL_19.to_string()])]));
    // The rest of the call arrives on the new connection.
    let d = dialogs(&run(&mut t, &after));
    assert_eq!(d, vec![DialogEvent::terminated(ACC, CALL_19, "sip:0000000000@127.0.0.1", "sip:7000@127.0.0.1:15080", Reason::Ended, 9)]);
    // The account went idle: one reconcile with an empty list, then none.
    assert_eq!(t.reconcile_batches(), Some(vec![(ACC.to_string(), vec![])]));
    assert_eq!(t.reconcile_batches(), Some(vec![]));
}

#[test]
fn a_call_that_ended_during_the_gap_is_terminated_local_on_resync() {
    let (before, _) = answered_part_of_19();
    let mut t = synced();
    run(&mut t, &before);
    t.mark_unsynced();
    let ticket = t.begin_resync();
    // Answered at 1795319346.797111; the link dropped at ...352.0; FreeSWITCH now
    // lists no channels (03's recorded empty answer).
    let gap = 1_795_319_352_000_000;
    let fx = t.apply_snapshot(ticket.generation, &[], gap + 30_000_000, Some(gap)).unwrap();
    assert_eq!(dialogs(&fx), vec![DialogEvent::terminated(ACC, CALL_19, "sip:0000000000@127.0.0.1", "sip:7000@127.0.0.1:15080", Reason::Local, 5)]);
    assert_eq!(t.reconcile_batches(), Some(vec![(ACC.to_string(), vec![])]));
}

#[test]
fn a_call_found_by_the_snapshot_is_tracked_and_confirmed() {
    // Agent restart mid-call: the table is empty, the snapshot lists the inbound leg
    // with account and Call-ID fetched by uuid_getvar.
    let mut t = ChannelTable::new();
    let ticket = t.begin_resync();
    assert!(ticket.known.is_empty());
    let id = edge_agent::relay::dialog::identity(Some(ACC), Some(CALL_19)).unwrap();
    let snap: Vec<SnapChannel> = snapshot_19()
        .into_iter()
        .map(|r| SnapChannel { answered: r.answered(), identity: (r.uuid == IN_19).then(|| id.clone()), uuid: r.uuid })
        .collect();
    let fx = t.apply_snapshot(ticket.generation, &snap, 1_795_319_350_000_000, None).unwrap();
    assert_eq!(dialogs(&fx), vec![DialogEvent::confirmed(ACC, CALL_19, "", "")]);
    // Its later hangup event terminates it with the event's own times.
    let (_, after) = answered_part_of_19();
    let d = dialogs(&run(&mut t, &after));
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].reason, d[0].duration), (Some(Reason::Ended), Some(9)));
}

#[test]
fn events_racing_the_snapshot_win() {
    let evs = tag(&events("19-sofia-sip-call-hold-unhold.txt"), IN_19, &[(ACCOUNT_HEADER, ACC)]);
    let (before, after) = answered_part_of_19();
    let id = edge_agent::relay::dialog::identity(Some(ACC), Some(CALL_19)).unwrap();
    let stale_row = || vec![SnapChannel { uuid: IN_19.into(), identity: Some(id.clone()), answered: true }];

    // 1. Hangup arrives while the snapshot is being fetched; the (stale) snapshot
    //    still lists the channel: it must not come back to life.
    let mut t = synced();
    run(&mut t, &before);
    let ticket = t.begin_resync();
    let d = dialogs(&run(&mut t, &after));
    assert_eq!(d.len(), 1);
    let fx = t.apply_snapshot(ticket.generation, &stale_row(), 1_795_319_356_000_000, None).unwrap();
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(t.channel_count(), 0);

    // 2. A channel created after the snapshot was taken is not in it: it stays.
    let mut t = synced();
    let ticket = t.begin_resync();
    run(&mut t, &before);
    let fx = t.apply_snapshot(ticket.generation, &[], 1_795_319_350_000_000, None).unwrap();
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(t.live_call_ids(ACC), vec![CALL_19.to_string()]);

    // 3. Only the latest resync applies.
    let mut t = ChannelTable::new();
    let old = t.begin_resync();
    let new = t.begin_resync();
    assert!(t.apply_snapshot(old.generation, &[], 0, None).is_err());
    assert!(t.apply_snapshot(new.generation, &[], 0, None).is_ok());
    t.mark_unsynced();
    assert!(t.apply_snapshot(new.generation, &[], 0, None).is_err(), "a disconnect voids a running resync");
    let _ = evs;
}
