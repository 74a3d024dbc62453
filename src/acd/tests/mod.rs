//! ACD tests: agent rules, callers, hooks, timers, views and storage here; one test per
//! strategy in `strategies`; randomized interleavings with a shadow model in `random`.

use super::*;

mod random;
mod strategies;

pub(super) const S: u64 = 1000;

pub(super) fn queue(id: &str, strategy: Strategy) -> QueueConfig {
    QueueConfig { offer_timeout_secs: 20, wrap_up_secs: 0, no_answer_penalty_secs: 30, max_no_answer: 0, max_wait_secs: None, ..QueueConfig::new(id, strategy) }
}

pub(super) fn acd(queues: &[QueueConfig]) -> Acd {
    let mut a = Acd::new(42);
    for q in queues {
        a.upsert_queue(q.clone(), 0).unwrap();
    }
    a
}

/// Reachable agent logged in to `queues` as (queue, tier, position).
pub(super) fn login(a: &mut Acd, user: &str, queues: &[(&str, u32, u32)], now: u64) {
    a.set_reachable(user, true, now);
    let queues = queues.iter().map(|(q, t, p)| Membership::new(q, *t, *p)).collect();
    a.agent_event(user, AgentEvent::Login { queues }, now).unwrap();
}

pub(super) fn enqueue(a: &mut Acd, call: &str, queue: &str, priority: u32, now: u64) -> EnqueueResult {
    a.enqueue(&EnqueueRequest::new(call, queue, priority), now).unwrap()
}

/// Dispatch and expect exactly one offer.
pub(super) fn one_offer(a: &mut Acd, now: u64) -> Offer {
    let mut offers = a.dispatch(now);
    assert_eq!(offers.len(), 1, "expected one offer, got {offers:?}");
    offers.pop().unwrap()
}

pub(super) fn status(a: &Acd, user: &str) -> Status {
    a.agent_view(user, 0).status
}

fn ok(a: &Acd) {
    let bad = a.audit();
    assert!(bad.is_empty(), "invariants broken: {bad:#?}");
}

// --- agents ----------------------------------------------------------------------------

#[test]
fn login_requires_known_queues_and_pause_requires_login() {
    let mut a = acd(&[queue("sales", Strategy::LongestIdle)]);
    let e = a.agent_event("usr_1", AgentEvent::Login { queues: vec![Membership::new("nope", 1, 0)] }, 0).unwrap_err();
    assert_eq!(e, AcdError::UnknownQueue("nope".into()));
    assert_eq!(e.status(), 404);
    let dup = vec![Membership::new("sales", 1, 0), Membership::new("sales", 2, 0)];
    assert_eq!(a.agent_event("usr_1", AgentEvent::Login { queues: dup }, 0).unwrap_err().status(), 400);
    let e = a.agent_event("usr_1", AgentEvent::Pause { reason: None }, 0).unwrap_err();
    assert_eq!(e, AcdError::NotLoggedIn("usr_1".into()));
    assert_eq!(e.status(), 409);
    assert!(matches!(a.agent_event("usr_1", AgentEvent::Available, 0), Err(AcdError::NotLoggedIn(_))));
    assert!(matches!(a.agent_event("bad id", AgentEvent::Logout, 0), Err(AcdError::Invalid(_))));
    // Logging out when logged out is a no-op that creates nothing.
    assert_eq!(a.agent_event("usr_1", AgentEvent::Logout, 0).unwrap(), vec![]);
    assert!(a.agent("usr_1").is_none());
    login(&mut a, "usr_1", &[("sales", 1, 0)], 5);
    let v = a.agent_view("usr_1", 5);
    assert_eq!((v.status, v.reachable, v.status_since_ms), (Status::Available, true, 5));
    assert_eq!(v.queues, vec![Membership::new("sales", 1, 0)]);
    a.agent_event("usr_1", AgentEvent::Pause { reason: Some("lunch".into()) }, 9).unwrap();
    let v = a.agent_view("usr_1", 9);
    assert_eq!((v.status, v.reason.as_deref(), v.status_since_ms), (Status::Paused, Some("lunch"), 9));
    let long = "x".repeat(MAX_REASON_LEN + 1);
    assert!(matches!(a.agent_event("usr_1", AgentEvent::Pause { reason: Some(long) }, 9), Err(AcdError::Invalid(_))));
    a.agent_event("usr_1", AgentEvent::Unpause, 10).unwrap();
    assert_eq!(status(&a, "usr_1"), Status::Available);
    a.agent_event("usr_1", AgentEvent::Logout, 11).unwrap();
    let v = a.agent_view("usr_1", 11);
    assert_eq!((v.status, v.queues.len()), (Status::LoggedOut, 0));
    ok(&a);
}

#[test]
fn logout_during_a_call_takes_effect_when_it_ends_without_wrap_up() {
    let mut a = acd(&[QueueConfig { wrap_up_secs: 30, ..queue("q", Strategy::TopDown) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    a.confirm(&o.lease_id, o.epoch, S).unwrap();
    a.agent_event("ann", AgentEvent::Logout, 2 * S).unwrap();
    let v = a.agent_view("ann", 2 * S);
    assert_eq!((v.status, v.after_call), (Status::OnCall, Some(Status::LoggedOut)));
    // Still logged out for dispatch: a new caller is not offered to her.
    enqueue(&mut a, "c2", "q", 0, 2 * S);
    assert!(a.dispatch(2 * S).is_empty());
    let end = a.call_ended("c1", 10 * S).unwrap();
    assert_eq!(end.end, CallEnd::Completed { queue: "q".into(), agent: "ann".into(), talk_ms: 9 * S, wrap_up_until_ms: None });
    let v = a.agent_view("ann", 10 * S);
    assert_eq!((v.status, v.after_call, v.talk_time_ms, v.calls_taken), (Status::LoggedOut, None, 9 * S, 1));
    ok(&a);
}

#[test]
fn pause_during_a_call_applies_after_wrap_up_and_available_cuts_wrap_up_short() {
    let mut a = acd(&[QueueConfig { wrap_up_secs: 30, ..queue("q", Strategy::TopDown) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    a.confirm(&o.lease_id, o.epoch, 0).unwrap();
    a.agent_event("ann", AgentEvent::Pause { reason: Some("break".into()) }, S).unwrap();
    assert_eq!(a.agent_view("ann", S).after_call, Some(Status::Paused));
    let end = a.call_ended("c1", 5 * S).unwrap();
    assert!(matches!(end.end, CallEnd::Completed { wrap_up_until_ms: Some(35_000), .. }));
    assert_eq!(status(&a, "ann"), Status::WrapUp);
    assert_eq!(a.next_deadline(), Some(35 * S));
    a.on_timer(35 * S);
    let v = a.agent_view("ann", 35 * S);
    assert_eq!((v.status, v.reason.as_deref()), (Status::Paused, Some("break")));

    // Second call: `unpause` during wrap-up keeps the wrap-up, `available` ends it.
    a.agent_event("ann", AgentEvent::Available, 36 * S).unwrap();
    enqueue(&mut a, "c2", "q", 0, 36 * S);
    let o = one_offer(&mut a, 36 * S);
    a.confirm(&o.lease_id, o.epoch, 37 * S).unwrap();
    a.call_ended("c2", 40 * S).unwrap();
    a.agent_event("ann", AgentEvent::Unpause, 41 * S).unwrap();
    assert_eq!(status(&a, "ann"), Status::WrapUp);
    a.agent_event("ann", AgentEvent::Available, 42 * S).unwrap();
    let v = a.agent_view("ann", 42 * S);
    assert_eq!((v.status, v.idle_since_ms), (Status::Available, Some(42 * S)));
    ok(&a);
}

#[test]
fn pausing_or_logging_out_while_ringing_withdraws_the_offer_without_penalty() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    assert_eq!(o.agents, vec!["ann"]);
    let fx = a.agent_event("ann", AgentEvent::Pause { reason: None }, S).unwrap();
    assert_eq!(fx.len(), 1);
    assert!(matches!(&fx[0], Effect::OfferEnded { reason: OfferEndReason::AgentLeft, agents, .. } if agents == &vec!["ann".to_string()]));
    assert_eq!(a.agent("ann").unwrap().penalty_until_ms, None);
    assert_eq!(a.confirm(&o.lease_id, o.epoch, S).unwrap_err(), AcdError::LeaseNotCurrent);
    let o2 = one_offer(&mut a, S);
    assert_eq!(o2.agents, vec!["bob"]);
    assert_ne!(o2.lease_id, o.lease_id);
    assert!(o2.epoch > o.epoch);
    let fx = a.agent_event("bob", AgentEvent::Logout, 2 * S).unwrap();
    assert!(matches!(&fx[0], Effect::OfferEnded { reason: OfferEndReason::AgentLeft, .. }));
    assert_eq!(a.caller("c1").unwrap().offer, None);
    assert!(a.dispatch(2 * S).is_empty());
    ok(&a);
}

#[test]
fn unreachable_agents_are_not_offered() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    a.set_reachable("ann", false, 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    assert!(a.dispatch(0).is_empty());
    assert!(!a.agent_view("ann", 0).reachable);
    a.set_reachable("ann", true, S);
    assert_eq!(one_offer(&mut a, S).agents, vec!["ann"]);
    // Unknown users going unreachable create no record.
    a.set_reachable("zed", false, S);
    assert!(a.agent("zed").is_none());
}

// --- callers -------------------------------------------------------------------------------

#[test]
fn enqueue_reports_positions_and_is_idempotent() {
    let mut a = acd(&[QueueConfig {
        hold_music: Some("moh/jazz.wav".into()),
        announce_position_every_secs: Some(30),
        max_wait_secs: Some(600),
        ..queue("q", Strategy::TopDown)
    }]);
    let r = a.enqueue(&EnqueueRequest { max_wait_secs: Some(60), ..EnqueueRequest::new("c1", "q", 0) }, 0).unwrap();
    assert_eq!(
        r,
        EnqueueResult::Queued {
            queue: "q".into(),
            position: 1,
            waiting: 1,
            deadline_ms: Some(60 * S),
            overflowed_from: None,
            hold_music: Some("moh/jazz.wav".into()),
            announce_position_every_secs: Some(30),
            repeated: false
        }
    );
    assert!(matches!(enqueue(&mut a, "c2", "q", 0, S), EnqueueResult::Queued { position: 2, deadline_ms: Some(601_000), .. }));
    assert!(matches!(enqueue(&mut a, "c3", "q", 1, 2 * S), EnqueueResult::Queued { position: 1, waiting: 3, .. }));
    assert!(matches!(enqueue(&mut a, "c1", "q", 0, 3 * S), EnqueueResult::Queued { position: 2, waiting: 3, repeated: true, .. }));
    assert_eq!(a.queue("q").unwrap().counters.entered, 3);
    assert!(matches!(a.position("c2", 5 * S), Some(CallerStatus::Waiting { position: 3, waiting: 3, waited_ms: 4000, ringing: false, .. })));
    assert_eq!(a.position("nobody", 0), None);
    assert!(matches!(a.enqueue(&EnqueueRequest::new("c9", "nope", 0), 0), Err(AcdError::UnknownQueue(_))));
    assert!(matches!(a.enqueue(&EnqueueRequest::new("", "q", 0), 0), Err(AcdError::Invalid(_))));
    ok(&a);
}

#[test]
fn full_queue_overflows_along_its_chain_and_refuses_when_all_are_full() {
    let mut a = acd(&[
        QueueConfig { max_size: Some(1), overflow_queue: Some("b".into()), ..queue("a", Strategy::TopDown) },
        QueueConfig { max_size: Some(1), overflow_queue: Some("a".into()), ..queue("b", Strategy::TopDown) },
    ]);
    assert!(matches!(enqueue(&mut a, "c1", "a", 0, 0), EnqueueResult::Queued { ref queue, overflowed_from: None, .. } if queue == "a"));
    let r = enqueue(&mut a, "c2", "a", 0, 0);
    assert!(matches!(r, EnqueueResult::Queued { ref queue, overflowed_from: Some(ref f), .. } if queue == "b" && f == "a"), "{r:?}");
    // Both full; the a→b→a cycle is not followed twice.
    assert_eq!(enqueue(&mut a, "c3", "a", 0, 0), EnqueueResult::Full { queue: "a".into(), tried: vec!["a".into(), "b".into()] });
    let (ka, kb) = (&a.queue("a").unwrap().counters, &a.queue("b").unwrap().counters);
    assert_eq!((ka.entered, ka.overflowed_out, ka.rejected_full), (1, 1, 1));
    assert_eq!((kb.entered, kb.overflowed_in), (1, 1));
    // A closed queue (max size 0) without overflow refuses.
    a.upsert_queue(QueueConfig { max_size: Some(0), ..queue("closed", Strategy::TopDown) }, 0).unwrap();
    assert!(matches!(enqueue(&mut a, "c4", "closed", 0, 0), EnqueueResult::Full { .. }));
    ok(&a);
}

#[test]
fn caller_hangup_while_ringing_releases_the_agent_and_counts_abandoned() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    assert!(matches!(a.position("c1", 0), Some(CallerStatus::Waiting { ringing: true, .. })));
    let end = a.caller_hangup("c1", 3 * S).unwrap();
    assert_eq!(end.end, CallEnd::Abandoned { queue: "q".into(), wait_ms: 3 * S });
    assert!(matches!(&end.effects[0], Effect::OfferEnded { reason: OfferEndReason::CallerLeft, .. }));
    assert!(matches!(&end.effects[1], Effect::CallerLeft { outcome: ExitOutcome::Abandoned, wait_ms: 3000, .. }));
    let ann = a.agent("ann").unwrap();
    assert_eq!((&ann.activity, ann.penalty_until_ms, ann.no_answers), (&Activity::Idle, None, 0));
    assert_eq!(a.confirm(&o.lease_id, o.epoch, 4 * S).unwrap_err(), AcdError::LeaseNotCurrent);
    assert_eq!(a.queue("q").unwrap().counters.abandoned, 1);
    assert!(matches!(a.position("c1", 5 * S), Some(CallerStatus::Left { outcome: ExitOutcome::Abandoned, .. })));
    // Duplicate hang-ups are no-ops; unknown calls are 404.
    assert_eq!(a.caller_hangup("c1", 6 * S).unwrap().end, CallEnd::AlreadyEnded { outcome: ExitOutcome::Abandoned });
    assert_eq!(a.queue("q").unwrap().counters.abandoned, 1);
    assert_eq!(a.call_ended("c404", 6 * S).unwrap_err().status(), 404);
    // The exit is forgotten after the retention time.
    a.on_timer(3 * S + EXIT_RETENTION_MS);
    assert_eq!(a.position("c1", 3 * S + EXIT_RETENTION_MS), None);
    assert_eq!(a.next_deadline(), None);
    ok(&a);
}

#[test]
fn max_wait_sends_the_caller_to_queue_timeout_and_cancels_its_offer() {
    let mut a = acd(&[QueueConfig { max_wait_secs: Some(60), ..queue("q", Strategy::TopDown) }]);
    enqueue(&mut a, "c1", "q", 0, 0);
    assert_eq!(a.next_deadline(), Some(60 * S));
    login(&mut a, "ann", &[("q", 1, 0)], 50 * S);
    let o = one_offer(&mut a, 50 * S);
    assert!(a.on_timer(59 * S).is_empty());
    let fx = a.on_timer(60 * S);
    assert!(matches!(&fx[0], Effect::OfferEnded { reason: OfferEndReason::MaxWait, .. }), "{fx:?}");
    assert_eq!(fx[1], Effect::CallerLeft { call_id: "c1".into(), queue: "q".into(), outcome: ExitOutcome::Timeout, wait_ms: 60 * S, agent: None });
    assert_eq!(a.agent("ann").unwrap().activity, Activity::Idle);
    assert_eq!(a.agent("ann").unwrap().penalty_until_ms, None);
    assert_eq!(a.confirm(&o.lease_id, o.epoch, 61 * S).unwrap_err(), AcdError::LeaseNotCurrent);
    assert_eq!(a.queue("q").unwrap().counters.timed_out, 1);
    assert!(matches!(a.position("c1", 61 * S), Some(CallerStatus::Left { outcome: ExitOutcome::Timeout, .. })));
    // A flow may send the caller back into the queue afterwards.
    assert!(matches!(enqueue(&mut a, "c1", "q", 0, 62 * S), EnqueueResult::Queued { repeated: false, .. }));
    ok(&a);
}

// --- hooks ---------------------------------------------------------------------------------

#[test]
fn confirm_succeeds_only_for_the_current_lease_and_is_retry_safe() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 2 * S);
    assert_eq!((o.timeout_secs, o.expires_at_ms), (20, 22 * S + CONFIRM_GRACE_MS));
    assert_eq!(a.confirm(&o.lease_id, o.epoch + 1, 3 * S).unwrap_err(), AcdError::LeaseNotCurrent);
    assert_eq!(a.confirm("lease_nope", o.epoch, 3 * S).unwrap_err(), AcdError::LeaseNotCurrent);
    let c = a.confirm(&o.lease_id, o.epoch, 4 * S).unwrap();
    assert_eq!(
        c,
        Connected {
            call_id: "c1".into(),
            queue: "q".into(),
            agent: "ann".into(),
            lease_id: o.lease_id.clone(),
            epoch: o.epoch,
            wait_ms: 4 * S,
            repeated: false
        }
    );
    let again = a.confirm(&o.lease_id, o.epoch, 5 * S).unwrap();
    assert_eq!(again, Connected { repeated: true, ..c });
    assert_eq!(a.queue("q").unwrap().counters.answered, 1);
    assert_eq!(status(&a, "ann"), Status::OnCall);
    assert!(matches!(a.position("c1", 5 * S), Some(CallerStatus::Connected { .. })));
    // The call cannot be queued again while connected.
    assert_eq!(a.enqueue(&EnqueueRequest::new("c1", "q", 0), 5 * S).unwrap_err(), AcdError::CallConnected("c1".into()));
    a.call_ended("c1", 9 * S).unwrap();
    assert_eq!(a.confirm(&o.lease_id, o.epoch, 10 * S).unwrap_err(), AcdError::LeaseNotCurrent);
    assert!(matches!(a.position("c1", 10 * S), Some(CallerStatus::Left { outcome: ExitOutcome::Answered, agent: Some(_), wait_ms: 4000, .. })));
    let ann = a.agent("ann").unwrap();
    assert_eq!((ann.calls_taken, ann.talk_time_ms, ann.last_call_end_ms), (1, 5 * S, Some(9 * S)));
    ok(&a);
}

#[test]
fn late_confirm_after_the_offer_timed_out_is_a_conflict_and_the_next_agent_is_offered() {
    let mut a = acd(&[QueueConfig { offer_timeout_secs: 10, no_answer_penalty_secs: 60, ..queue("q", Strategy::TopDown) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    assert_eq!(o.agents, vec!["ann"]);
    assert_eq!(a.next_deadline(), Some(10 * S + CONFIRM_GRACE_MS));
    assert!(a.on_timer(10 * S).is_empty(), "the grace period still runs");
    let fx = a.on_timer(12 * S);
    assert!(matches!(&fx[0], Effect::OfferEnded { reason: OfferEndReason::NoAnswer, agents, .. } if agents == &vec!["ann".to_string()]));
    assert_eq!(a.confirm(&o.lease_id, o.epoch, 12 * S).unwrap_err(), AcdError::LeaseNotCurrent);
    let ann = a.agent("ann").unwrap();
    assert_eq!((ann.penalty_until_ms, ann.no_answers, ann.consecutive_no_answers), (Some(72 * S), 1, 1));
    assert!(matches!(a.agent_view("ann", 12 * S).state, AgentStateView::Idle { skipped_until_ms: Some(72_000) }));
    // Bob is next, in the same dispatch round the caller keeps its place.
    let o2 = one_offer(&mut a, 12 * S);
    assert_eq!(o2.agents, vec!["bob"]);
    a.offer_failed(&o2.lease_id, o2.epoch, Some("bob"), 13 * S).unwrap();
    // Both skipped: nobody is offered until ann's penalty is over.
    assert!(a.dispatch(14 * S).is_empty());
    assert_eq!(a.next_deadline(), Some(72 * S));
    a.on_timer(72 * S);
    assert_eq!(one_offer(&mut a, 72 * S).agents, vec!["ann"]);
    assert_eq!(a.queue("q").unwrap().counters.no_answers, 2);
    ok(&a);
}

#[test]
fn too_many_missed_offers_pause_the_agent() {
    let mut a = acd(&[QueueConfig { offer_timeout_secs: 5, no_answer_penalty_secs: 0, max_no_answer: 2, ..queue("q", Strategy::TopDown) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    one_offer(&mut a, 0);
    assert!(a.on_timer(10 * S).iter().all(|e| !matches!(e, Effect::AgentAutoPaused { .. })));
    one_offer(&mut a, 10 * S);
    let fx = a.on_timer(20 * S);
    assert!(fx.contains(&Effect::AgentAutoPaused { user_id: "ann".into(), no_answers: 2 }), "{fx:?}");
    let v = a.agent_view("ann", 20 * S);
    assert_eq!((v.status, v.reason.as_deref()), (Status::Paused, Some(AUTO_PAUSE_REASON)));
    assert!(a.dispatch(20 * S).is_empty());
    a.agent_event("ann", AgentEvent::Unpause, 21 * S).unwrap();
    assert_eq!(a.agent("ann").unwrap().consecutive_no_answers, 0);
    assert_eq!(one_offer(&mut a, 21 * S).agents, vec!["ann"]);
    ok(&a);
}

#[test]
fn ring_all_claim_first_answer_wins_and_releases_everyone_else() {
    let mut a = acd(&[queue("q", Strategy::RingAll)]);
    for (i, u) in ["ann", "bob", "cat"].iter().enumerate() {
        login(&mut a, u, &[("q", 1, i as u32)], 0);
    }
    enqueue(&mut a, "c1", "q", 0, 0);
    enqueue(&mut a, "c2", "q", 0, 0);
    let o = one_offer(&mut a, S);
    assert!(o.ring_all);
    assert_eq!((o.call_id.as_str(), o.agents.clone()), ("c1", vec!["ann".to_string(), "bob".into(), "cat".into()]));
    assert_eq!(a.confirm(&o.lease_id, o.epoch, S).unwrap_err(), AcdError::UseClaim);
    assert_eq!(a.claim("dan", "c1", S).unwrap_err(), AcdError::NotOffered);
    let won = a.claim("bob", "c1", 2 * S).unwrap();
    assert_eq!((won.connected.agent.as_str(), won.connected.call_id.as_str(), won.connected.repeated), ("bob", "c1", false));
    assert_eq!(
        won.effects,
        vec![Effect::OfferEnded {
            lease_id: o.lease_id.clone(),
            epoch: o.epoch,
            call_id: "c1".into(),
            queue: "q".into(),
            agents: vec!["ann".into(), "cat".into()],
            reason: OfferEndReason::AnsweredElsewhere
        }]
    );
    assert_eq!(a.claim("ann", "c1", 2 * S).unwrap_err(), AcdError::AlreadyAnswered);
    assert_eq!(a.claim("cat", "c1", 2 * S).unwrap_err(), AcdError::AlreadyAnswered);
    assert!(a.claim("bob", "c1", 3 * S).unwrap().connected.repeated);
    for u in ["ann", "cat"] {
        let x = a.agent(u).unwrap();
        assert_eq!((&x.activity, x.penalty_until_ms, x.derived_status()), (&Activity::Idle, None, Status::Available));
    }
    // Released agents are free for the next caller at once.
    let o2 = one_offer(&mut a, 3 * S);
    assert_eq!((o2.call_id.as_str(), o2.agents.clone()), ("c2", vec!["ann".to_string(), "cat".into()]));
    ok(&a);
}

#[test]
fn ring_all_without_answer_releases_the_group_without_penalty_and_rings_again() {
    let mut a = acd(&[QueueConfig { offer_timeout_secs: 10, max_no_answer: 1, ..queue("q", Strategy::RingAll) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    one_offer(&mut a, 0);
    // One leg fails: only that agent leaves the group (with the penalty).
    let o = a.offers().next().unwrap().clone();
    let fx = a.offer_failed(&o.lease_id, o.epoch, Some("ann"), S).unwrap();
    assert!(matches!(&fx[0], Effect::OfferEnded { reason: OfferEndReason::Rejected, agents, .. } if agents == &vec!["ann".to_string()]));
    assert!(a.agent("ann").unwrap().penalty_until_ms.is_some());
    assert_eq!(a.offer(&o.lease_id).unwrap().agents, vec!["bob"]);
    assert_eq!(a.offer_failed(&o.lease_id, o.epoch, None, S).unwrap_err().status(), 400);
    let fx = a.on_timer(12 * S);
    assert!(matches!(&fx[..], [Effect::OfferEnded { reason: OfferEndReason::NoAnswer, .. }]), "{fx:?}");
    let bob = a.agent("bob").unwrap();
    assert_eq!((bob.penalty_until_ms, bob.consecutive_no_answers, bob.derived_status()), (None, 0, Status::Available));
    assert_eq!(one_offer(&mut a, 12 * S).agents, vec!["bob"]);
    ok(&a);
}

#[test]
fn single_offer_claim_works_too_and_stale_failure_reports_change_nothing() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    assert_eq!(a.offer_failed(&o.lease_id, o.epoch, Some("bob"), 0).unwrap_err(), AcdError::NotOffered);
    assert_eq!(a.offer_failed(&o.lease_id, o.epoch + 7, None, 0).unwrap_err(), AcdError::LeaseNotCurrent);
    let c = a.claim("ann", "c1", S).unwrap();
    assert!(c.effects.is_empty());
    assert_eq!(a.offer_failed(&o.lease_id, o.epoch, None, 2 * S).unwrap_err(), AcdError::LeaseNotCurrent);
    assert_eq!(status(&a, "ann"), Status::OnCall);
    // confirm of the lease a claim answered is a retry of the same answer.
    assert!(a.confirm(&o.lease_id, o.epoch, 2 * S).unwrap().repeated);
    ok(&a);
}

#[test]
fn removing_a_queue_sends_its_callers_away_and_drops_memberships() {
    let mut a = acd(&[queue("q", Strategy::TopDown), queue("r", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 0), ("r", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    enqueue(&mut a, "c2", "q", 0, 0);
    one_offer(&mut a, 0);
    let fx = a.remove_queue("q", S).unwrap();
    assert_eq!(fx.iter().filter(|e| matches!(e, Effect::CallerLeft { outcome: ExitOutcome::Full, .. })).count(), 2);
    assert!(fx.iter().any(|e| matches!(e, Effect::OfferEnded { reason: OfferEndReason::QueueRemoved, .. })));
    assert_eq!(a.agent_view("ann", S).queues, vec![Membership::new("r", 1, 0)]);
    assert_eq!(a.agent("ann").unwrap().activity, Activity::Idle);
    assert!(a.remove_queue("q", S).is_err());
    assert!(a.offers().next().is_none());
    ok(&a);
}

#[test]
fn queue_config_is_validated() {
    let mut a = Acd::new(1);
    let bad = [
        QueueConfig { offer_timeout_secs: 0, ..queue("q", Strategy::TopDown) },
        QueueConfig { wrap_up_secs: 3601, ..queue("q", Strategy::TopDown) },
        QueueConfig { max_wait_secs: Some(0), ..queue("q", Strategy::TopDown) },
        QueueConfig { overflow_queue: Some("q".into()), ..queue("q", Strategy::TopDown) },
        QueueConfig { tiers: vec![TierRule { level: 2, after_secs: 5 }, TierRule { level: 2, after_secs: 9 }], ..queue("q", Strategy::TopDown) },
        QueueConfig { announce_position_every_secs: Some(5), ..queue("q", Strategy::TopDown) },
        queue("bad id", Strategy::TopDown),
    ];
    for q in bad {
        assert_eq!(a.upsert_queue(q.clone(), 0).unwrap_err().status(), 400, "{q:?}");
    }
    assert!(a.queues().next().is_none());
    let q: QueueConfig = serde_json::from_str(r#"{"id":"sales","strategy":"least_talk_time","tiers":[{"level":2,"afterSecs":30}],"maxSize":5}"#).unwrap();
    assert_eq!((q.strategy, q.offer_timeout_secs, q.max_size, q.tier_wait_ms(1), q.tier_wait_ms(3)), (Strategy::LeastTalkTime, 20, Some(5), 0, 30 * S));
    a.upsert_queue(q, 0).unwrap();
    for s in Strategy::ALL {
        assert_eq!(Strategy::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
    }
}

// --- views -----------------------------------------------------------------------------------

#[test]
fn roster_and_tiles_count_every_user_once() {
    let mut a = acd(&[QueueConfig { wrap_up_secs: 60, ..queue("q", Strategy::TopDown) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    login(&mut a, "cat", &[("q", 1, 2)], 0);
    login(&mut a, "dan", &[("q", 1, 3)], 0);
    a.set_reachable("dan", false, 0);
    a.agent_event("cat", AgentEvent::Pause { reason: Some("lunch".into()) }, 0).unwrap();
    enqueue(&mut a, "c1", "q", 0, 0);
    enqueue(&mut a, "c2", "q", 0, 0);
    enqueue(&mut a, "c3", "q", 0, 0);
    let o = a.dispatch(0);
    assert_eq!(o.len(), 2);
    a.confirm(&o[0].lease_id, o[0].epoch, S).unwrap();
    let roster = vec![
        RosterUser { user_id: "ann".into(), name: "Ann".into(), extension: "1001".into() },
        RosterUser { user_id: "eve".into(), name: "Eve".into(), extension: "1005".into() },
        RosterUser { user_id: "bob".into(), name: "Bob".into(), extension: "1002".into() },
    ];
    let p = a.presence_users(&roster, 5 * S);
    let ids: Vec<&str> = p.users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(ids, ["ann", "eve", "bob", "cat", "dan"]);
    assert_eq!(p.users[1].agent.status, Status::LoggedOut);
    assert!(matches!(p.users[2].agent.state, AgentStateView::Ringing { .. }));
    assert_eq!(
        p.tiles,
        Tiles { total: 5, logged_out: 1, available: 2, paused: 1, on_call: 1, wrap_up: 0, ringing: 1, unreachable: 1, waiting: 2, longest_wait_ms: 5 * S }
    );
    let q = &p.queues[0];
    assert_eq!((q.waiting, q.ringing, q.agents_logged_in, q.agents_free, q.agents_on_call), (2, 1, 4, 0, 1));
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["users"][0]["agent"]["status"], "on_call");
    assert_eq!(json["users"][0]["agent"]["state"]["kind"], "in_call");
    assert_eq!(json["users"][3]["agent"]["reason"], "lunch");
    assert_eq!(json["tiles"]["onCall"], 1);
}

// --- storage -------------------------------------------------------------------------------

#[test]
fn changes_replayed_into_storage_rebuild_the_same_state() {
    let mut a = acd(&[queue("q", Strategy::RoundRobin), QueueConfig { wrap_up_secs: 5, ..queue("r", Strategy::RingAll) }]);
    let mut store: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut apply = |a: &mut Acd| {
        for ch in a.take_changes() {
            match ch {
                Change::Put { key, value } => {
                    store.insert(key, serde_json::to_value(value).unwrap());
                }
                Change::Delete { key } => {
                    store.remove(&key);
                }
            }
        }
        let b = Acd::from_records(store.clone()).unwrap();
        assert_eq!(&b, a);
        assert!(b.audit().is_empty());
        assert_eq!(b.waiting().map(|c| &c.call_id).collect::<Vec<_>>(), a.waiting().map(|c| &c.call_id).collect::<Vec<_>>());
    };
    apply(&mut a);
    login(&mut a, "ann", &[("q", 1, 0), ("r", 1, 0)], 0);
    login(&mut a, "bob", &[("r", 1, 0)], 0);
    apply(&mut a);
    enqueue(&mut a, "c1", "q", 0, 0);
    enqueue(&mut a, "c2", "r", 3, 0);
    apply(&mut a);
    let offers = a.dispatch(S);
    apply(&mut a);
    let ring = offers.iter().find(|o| o.ring_all).unwrap();
    a.claim("bob", &ring.call_id, 2 * S).unwrap();
    apply(&mut a);
    a.call_ended(&ring.call_id, 3 * S).unwrap();
    a.caller_hangup("c1", 3 * S).unwrap();
    apply(&mut a);
    a.on_timer(3 * S + EXIT_RETENTION_MS);
    apply(&mut a);
    assert!(store.keys().all(|k| k.starts_with(KEY_PREFIX)));
    assert!(!store.keys().any(|k| k.starts_with("acd/c/") || k.starts_with("acd/o/") || k.starts_with("acd/x/")), "{:?}", store.keys());
    // A full dump (records) rebuilds the same state.
    let dump: Vec<(String, serde_json::Value)> = a.records().into_iter().map(|(k, r)| (k, serde_json::to_value(r).unwrap())).collect();
    assert_eq!(Acd::from_records(dump).unwrap(), a);
    // A whole-state snapshot round-trips too.
    let json = serde_json::to_string(&a).unwrap();
    let b: Acd = serde_json::from_str(&json).unwrap();
    assert_eq!(a, b);
    // Unparseable records are refused, foreign keys ignored.
    assert!(Acd::from_records(vec![("acd/a/x".to_string(), serde_json::json!(5))]).is_err());
    assert!(Acd::from_records(vec![("acd/zz/x".to_string(), serde_json::json!({}))]).is_err());
    assert!(Acd::from_records(vec![("l:call".to_string(), serde_json::json!(5))]).unwrap().agents().next().is_none());
}

#[test]
fn errors_map_to_http_statuses() {
    let e: crate::error::ApiError = AcdError::LeaseNotCurrent.into();
    assert_eq!(e.status, 409);
    assert_eq!(crate::error::ApiError::from(AcdError::UnknownQueue("x".into())).status, 404);
    assert_eq!(crate::error::ApiError::from(AcdError::Invalid("x".into())).status, 400);
    let ev: AgentEvent = serde_json::from_str(r#"{"event":"pause","reason":"lunch"}"#).unwrap();
    assert_eq!(ev, AgentEvent::Pause { reason: Some("lunch".into()) });
    let ev: AgentEvent = serde_json::from_str(r#"{"event":"login","queues":[{"queue":"sales"}]}"#).unwrap();
    assert_eq!(ev, AgentEvent::Login { queues: vec![Membership::new("sales", 1, 0)] });
    let fx =
        serde_json::to_value(Effect::CallerLeft { call_id: "c".into(), queue: "q".into(), outcome: ExitOutcome::Timeout, wait_ms: 5, agent: None }).unwrap();
    assert_eq!(fx, serde_json::json!({"type":"caller_left","callId":"c","queue":"q","outcome":"timeout","waitMs":5,"agent":null}));
}

#[test]
fn departed_callers_are_capped_oldest_first() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    for i in 0..MAX_EXITS as u64 + 3 {
        let call = format!("c{i}");
        enqueue(&mut a, &call, "q", 0, i);
        a.caller_hangup(&call, i).unwrap();
    }
    assert_eq!(a.exits.len(), MAX_EXITS);
    assert!(a.exit("c0").is_none() && a.exit("c2").is_none());
    assert!(a.exit("c3").is_some());
    assert_eq!(a.next_deadline(), Some(3 + EXIT_RETENTION_MS));
    let changes = a.take_changes();
    assert!(changes.contains(&Change::Delete { key: "acd/x/c0".into() }));
    ok(&a);
}

/// 200 agents, 1,000 waiting callers: the load the Durable Object is benchmarked with.
#[test]
fn a_full_contact_center_dispatches_everyone_and_idle_rounds_write_nothing() {
    let qs: Vec<QueueConfig> = (0..4).map(|i| QueueConfig { wrap_up_secs: 5, ..queue(&format!("q{i}"), Strategy::ALL[i + 1]) }).collect();
    let mut a = acd(&qs);
    for u in 0..200u32 {
        let queues: Vec<(&str, u32, u32)> =
            qs.iter().enumerate().filter(|(i, _)| (u as usize + i).is_multiple_of(2)).map(|(_, q)| (q.id.as_str(), 1 + u % 2, u)).collect();
        login(&mut a, &format!("u{u}"), &queues, 0);
    }
    for c in 0..1000u32 {
        enqueue(&mut a, &format!("c{c}"), &format!("q{}", c % 4), c % 3, S + u64::from(c));
    }
    a.take_changes();
    let offers = a.dispatch(2 * S);
    assert_eq!(offers.len(), 200);
    let callers: BTreeSet<&str> = offers.iter().map(|o| o.call_id.as_str()).collect();
    assert_eq!(callers.len(), 200);
    for o in &offers {
        a.confirm(&o.lease_id, o.epoch, 3 * S).unwrap();
    }
    ok(&a);
    // Everyone busy: dispatching and timers change nothing and write nothing.
    a.take_changes();
    assert!(a.dispatch(4 * S).is_empty());
    assert!(a.on_timer(4 * S).is_empty());
    assert_eq!(a.take_changes(), vec![]);
    // One call ends: after wrap-up exactly one new offer, to that agent.
    let first = offers[0].clone();
    a.call_ended(&first.call_id, 10 * S).unwrap();
    assert!(a.dispatch(10 * S).is_empty());
    a.on_timer(15 * S);
    let next = one_offer(&mut a, 15 * S);
    assert_eq!(next.agents, first.agents);
    assert!(a.take_changes().len() <= 12);
    assert_eq!(a.waiting().count(), 800);
    ok(&a);
}

#[test]
fn loading_inconsistent_records_releases_agents_held_by_lost_offers() {
    let mut a = acd(&[queue("q", Strategy::RingAll)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    let mut records: BTreeMap<String, serde_json::Value> = a.records().into_iter().map(|(k, r)| (k, serde_json::to_value(r).unwrap())).collect();
    assert!(Acd::from_records(records.clone()).unwrap().repairs().is_empty());
    // The offer record was lost: both agents and the caller come back free.
    records.remove(&format!("acd/o/{}", o.lease_id));
    let mut b = Acd::from_records(records.clone()).unwrap();
    assert_eq!(b.repairs().len(), 3, "{:?}", b.repairs());
    assert!(b.audit().is_empty(), "{:?}", b.audit());
    assert_eq!(b.agent("ann").unwrap().activity, Activity::Idle);
    assert_eq!(b.caller("c1").unwrap().offer, None);
    assert_eq!(b.take_changes().len(), 3, "the repairs are written back");
    assert_eq!(one_offer(&mut b, S).agents, vec!["ann", "bob"]);
    // An agent record lost its reservation: the offer keeps ringing the other one only.
    let fresh: BTreeMap<String, serde_json::Value> = a.records().into_iter().map(|(k, r)| (k, serde_json::to_value(r).unwrap())).collect();
    records.extend(fresh);
    records.insert("acd/a/bob".into(), serde_json::to_value(Agent { activity: Activity::Idle, ..a.agent("bob").unwrap().clone() }).unwrap());
    let c = Acd::from_records(records).unwrap();
    assert_eq!(c.offer(&o.lease_id).unwrap().agents, vec!["ann"]);
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}
