//! One deterministic test per strategy, tiers and caller priority.

use super::*;

/// Enqueue `call`, offer it, answer at once and end the call `talk` ms later (wrap-up 0).
/// Returns the agent who took it.
fn serve(a: &mut Acd, call: &str, queue: &str, now: u64, talk: u64) -> String {
    enqueue(a, call, queue, 0, now);
    let o = one_offer(a, now);
    assert_eq!(o.call_id, call);
    a.confirm(&o.lease_id, o.epoch, now).unwrap();
    a.call_ended(call, now + talk).unwrap();
    o.agents[0].clone()
}

fn offered(a: &mut Acd, now: u64) -> Vec<(String, String)> {
    a.dispatch(now).into_iter().map(|o| (o.call_id, o.agents.join(","))).collect()
}

fn pair(c: &str, u: &str) -> (String, String) {
    (c.to_string(), u.to_string())
}

#[test]
fn longest_idle_picks_the_agent_idle_longest() {
    let mut a = acd(&[queue("q", Strategy::LongestIdle)]);
    login(&mut a, "cat", &[("q", 1, 0)], 0);
    login(&mut a, "ann", &[("q", 1, 0)], S);
    login(&mut a, "bob", &[("q", 1, 0)], 2 * S);
    assert_eq!(serve(&mut a, "c1", "q", 10 * S, S), "cat"); // idle since 0; now since 11 s
    assert_eq!(serve(&mut a, "c2", "q", 12 * S, S), "ann"); // since 1 s; now since 13 s
    assert_eq!(serve(&mut a, "c3", "q", 14 * S, S), "bob"); // since 2 s; now since 15 s
    assert_eq!(serve(&mut a, "c4", "q", 16 * S, S), "cat"); // 11 s < 13 s < 15 s
                                                            // An unpause restarts the idle clock: ann (since 13 s) pauses and comes back at 20 s.
    a.agent_event("ann", AgentEvent::Pause { reason: None }, 18 * S).unwrap();
    a.agent_event("ann", AgentEvent::Unpause, 20 * S).unwrap();
    assert_eq!(serve(&mut a, "c5", "q", 21 * S, S), "bob"); // 15 s < 17 s (cat) < 20 s (ann)
    assert_eq!(serve(&mut a, "c6", "q", 23 * S, S), "cat");
    assert_eq!(serve(&mut a, "c7", "q", 25 * S, S), "ann");
    // A missed offer does not make an agent "fresh": bob (since 22 s) lets one ring out and
    // is offered again first once his (zero) penalty is over.
    a.upsert_queue(QueueConfig { no_answer_penalty_secs: 0, ..queue("q", Strategy::LongestIdle) }, 30 * S).unwrap();
    enqueue(&mut a, "c8", "q", 0, 30 * S);
    assert_eq!(one_offer(&mut a, 30 * S).agents, vec!["bob"]);
    a.on_timer(60 * S);
    assert_eq!(one_offer(&mut a, 60 * S).agents, vec!["bob"]);
}

#[test]
fn longest_idle_counts_wrap_up_as_work() {
    let mut a = acd(&[QueueConfig { wrap_up_secs: 10, ..queue("q", Strategy::LongestIdle) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 0)], 5 * S);
    assert_eq!(serve(&mut a, "c1", "q", 6 * S, S), "ann"); // ends 7 s, wrap-up to 17 s
    a.on_timer(40 * S); // the alarm fires late: ann is idle since 17 s, not 40 s
    assert_eq!(a.agent("ann").unwrap().idle_since_ms, 17 * S);
    enqueue(&mut a, "c2", "q", 0, 40 * S);
    assert_eq!(one_offer(&mut a, 40 * S).agents, vec!["bob"]);
}

#[test]
fn round_robin_rotates_after_the_last_agent_offered() {
    let mut a = acd(&[queue("q", Strategy::RoundRobin)]);
    // Rotation order is (position, user id), whatever the login order.
    login(&mut a, "cat", &[("q", 1, 3)], 0);
    login(&mut a, "bob", &[("q", 1, 2)], 0);
    login(&mut a, "ann", &[("q", 1, 1)], 0);
    let order: Vec<String> = (0..5).map(|i| serve(&mut a, &format!("c{i}"), "q", (10 + 2 * i) * S, S)).collect();
    assert_eq!(order, ["ann", "bob", "cat", "ann", "bob"]);
    assert_eq!(a.queue("q").unwrap().rr_last, Some((2, "bob".into())));
    // Two callers in one round keep rotating: cat, then ann.
    enqueue(&mut a, "d1", "q", 0, 30 * S);
    enqueue(&mut a, "d2", "q", 0, 30 * S);
    assert_eq!(offered(&mut a, 30 * S), vec![pair("d1", "cat"), pair("d2", "ann")]);
    // bob is the only one free: he gets d3; the cursor moves to him.
    enqueue(&mut a, "d3", "q", 0, 31 * S);
    assert_eq!(offered(&mut a, 31 * S), vec![pair("d3", "bob")]);
    for (c, u) in [("d1", "cat"), ("d2", "ann"), ("d3", "bob")] {
        assert!(a.claim(u, c, 32 * S).is_ok());
        a.call_ended(c, 33 * S).unwrap();
    }
    assert_eq!(serve(&mut a, "d4", "q", 40 * S, S), "cat");
    // An agent who leaves the rotation is skipped; one who joins takes their place in it.
    a.agent_event("ann", AgentEvent::Logout, 50 * S).unwrap();
    login(&mut a, "abe", &[("q", 1, 1)], 50 * S);
    assert_eq!(serve(&mut a, "d5", "q", 51 * S, S), "abe");
    assert_eq!(serve(&mut a, "d6", "q", 53 * S, S), "bob");
}

#[test]
fn top_down_always_takes_the_first_free_agent_in_tier_then_position_order() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 2)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    login(&mut a, "abe", &[("q", 2, 0)], 0); // tier 2: last, whatever its position
    for i in 0..3 {
        assert_eq!(serve(&mut a, &format!("c{i}"), "q", (10 + 2 * i) * S, S), "bob");
    }
    for (i, want) in ["bob", "ann", "abe"].iter().enumerate() {
        enqueue(&mut a, &format!("d{i}"), "q", 0, 20 * S);
        let o = one_offer(&mut a, 20 * S);
        assert_eq!(o.agents, vec![want.to_string()]);
        a.confirm(&o.lease_id, o.epoch, 20 * S).unwrap();
    }
    a.call_ended("d1", 25 * S).unwrap(); // ann is free again: before abe (tier 2), after bob (busy)
    assert_eq!(serve(&mut a, "e1", "q", 26 * S, S), "ann");
}

#[test]
fn fewest_calls_picks_the_agent_with_the_fewest_answered_calls_then_the_longest_idle() {
    let mut a = acd(&[queue("q", Strategy::FewestCalls)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    login(&mut a, "cat", &[("q", 1, 2)], 0);
    // All 0: ties go to the longest idle, then (position, user): ann, then bob, then cat.
    assert_eq!(serve(&mut a, "c1", "q", 10 * S, S), "ann");
    assert_eq!(serve(&mut a, "c2", "q", 12 * S, S), "bob");
    assert_eq!(serve(&mut a, "c3", "q", 14 * S, S), "cat");
    // 1 each; ann idle longest (since 11 s).
    assert_eq!(serve(&mut a, "c4", "q", 16 * S, S), "ann");
    // ann 2, bob 1 (since 13 s), cat 1 (since 15 s).
    assert_eq!(serve(&mut a, "c5", "q", 18 * S, S), "bob");
    assert_eq!(serve(&mut a, "c6", "q", 20 * S, S), "cat");
    let calls: Vec<u64> = ["ann", "bob", "cat"].iter().map(|u| a.agent(u).unwrap().calls_taken).collect();
    assert_eq!(calls, [2, 2, 2]);
    // A new session starts from zero: cat logs out and in, and is picked next.
    a.agent_event("cat", AgentEvent::Logout, 30 * S).unwrap();
    login(&mut a, "cat", &[("q", 1, 2)], 31 * S);
    assert_eq!(a.agent("cat").unwrap().calls_taken, 0);
    assert_eq!(serve(&mut a, "c7", "q", 32 * S, S), "cat");
}

#[test]
fn least_talk_time_picks_the_agent_who_talked_least() {
    let mut a = acd(&[queue("q", Strategy::LeastTalkTime)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 1, 1)], 0);
    login(&mut a, "cat", &[("q", 1, 2)], 0);
    assert_eq!(serve(&mut a, "c1", "q", 10 * S, 100 * S), "ann"); // ann 100 s
    assert_eq!(serve(&mut a, "c2", "q", 200 * S, 10 * S), "bob"); // bob 10 s
    assert_eq!(serve(&mut a, "c3", "q", 300 * S, 50 * S), "cat"); // cat 50 s
    assert_eq!(serve(&mut a, "c4", "q", 400 * S, 200 * S), "bob"); // bob 210 s
    assert_eq!(serve(&mut a, "c5", "q", 700 * S, S), "cat"); // cat 51 s
    let talk: Vec<u64> = ["ann", "bob", "cat"].iter().map(|u| a.agent(u).unwrap().talk_time_ms).collect();
    assert_eq!(talk, [100 * S, 210 * S, 51 * S]);
    assert_eq!(serve(&mut a, "c6", "q", 800 * S, S), "cat"); // 51 < 100 < 210
    assert_eq!(serve(&mut a, "c7", "q", 900 * S, 60 * S), "cat"); // 52 < 100: cat again → 112
    assert_eq!(serve(&mut a, "c8", "q", 1000 * S, S), "ann");
}

#[test]
fn random_is_uniform_over_the_lowest_tier_and_reproducible_from_the_seed() {
    let picks = |seed: u64| -> Vec<String> {
        let mut a = acd(&[queue("q", Strategy::Random)]);
        a.meta.rng = seed;
        for (i, u) in ["ann", "bob", "cat"].iter().enumerate() {
            login(&mut a, u, &[("q", 1, i as u32)], 0);
        }
        login(&mut a, "dan", &[("q", 2, 0)], 0); // tier 2 is never picked while tier 1 is free
        (0..300).map(|i| serve(&mut a, &format!("c{i}"), "q", (i + 1) * 10 * S, S)).collect()
    };
    let p1 = picks(7);
    assert_eq!(p1, picks(7), "same seed, same picks");
    assert_ne!(p1, picks(8), "another seed, other picks");
    for u in ["ann", "bob", "cat"] {
        let n = p1.iter().filter(|p| *p == u).count();
        assert!((70..=130).contains(&n), "{u} picked {n} times out of 300");
    }
    assert!(!p1.contains(&"dan".to_string()));
}

#[test]
fn tiers_escalate_by_wait_time_and_lower_tiers_stay_preferred() {
    let tiers = vec![TierRule { level: 2, after_secs: 30 }, TierRule { level: 3, after_secs: 60 }];
    let mut a = acd(&[QueueConfig { tiers, no_answer_penalty_secs: 0, ..queue("q", Strategy::LongestIdle) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 2, 0)], 0);
    login(&mut a, "cat", &[("q", 3, 0)], 0);
    login(&mut a, "dan", &[("q", 4, 0)], 0); // no rule of its own: like tier 3 (60 s)
                                             // ann takes a call; c1 waits: bob (tier 2) only after 30 s.
    enqueue(&mut a, "c0", "q", 0, 0);
    let o0 = one_offer(&mut a, 0);
    assert_eq!(o0.agents, vec!["ann"]);
    a.confirm(&o0.lease_id, o0.epoch, 0).unwrap();
    enqueue(&mut a, "c1", "q", 0, 0);
    assert!(a.dispatch(0).is_empty());
    assert!(a.dispatch(29 * S).is_empty());
    assert_eq!(a.next_deadline(), Some(30 * S), "an alarm at the escalation");
    a.on_timer(30 * S);
    assert_eq!(a.caller("c1").unwrap().next_escalation_ms, Some(60 * S));
    let o = one_offer(&mut a, 30 * S);
    assert_eq!(o.agents, vec!["bob"]);
    // bob declines and pauses; c2, arriving at 31 s, reaches tier 3 only at 91 s.
    a.offer_failed(&o.lease_id, o.epoch, None, 31 * S).unwrap();
    a.agent_event("bob", AgentEvent::Pause { reason: None }, 31 * S).unwrap();
    enqueue(&mut a, "c2", "q", 0, 31 * S);
    assert!(a.dispatch(59 * S).is_empty());
    a.on_timer(60 * S);
    // cat and dan (tiers 3 and 4 at 60 s) are eligible for c1 only; the lowest tier wins.
    assert_eq!(offered(&mut a, 60 * S), vec![pair("c1", "cat")]);
    assert!(a.dispatch(90 * S).is_empty());
    assert_eq!(offered(&mut a, 91 * S), vec![pair("c2", "dan")]);
    // With everyone free, a caller who waited long enough for every tier goes to tier 1 first.
    a.call_ended("c0", 100 * S).unwrap();
    a.agent_event("bob", AgentEvent::Unpause, 100 * S).unwrap();
    a.call_ended("c1", 100 * S).unwrap();
    a.call_ended("c2", 100 * S).unwrap();
    enqueue(&mut a, "c3", "q", 0, 100 * S);
    assert_eq!(offered(&mut a, 500 * S), vec![pair("c3", "ann")]);
}

#[test]
fn ring_all_rings_every_eligible_tier() {
    let tiers = vec![TierRule { level: 2, after_secs: 30 }];
    let mut a = acd(&[QueueConfig { tiers, ..queue("q", Strategy::RingAll) }]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    login(&mut a, "bob", &[("q", 2, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    let o = one_offer(&mut a, 0);
    assert_eq!(o.agents, vec!["ann"]);
    a.agent_event("ann", AgentEvent::Pause { reason: None }, S).unwrap();
    a.agent_event("ann", AgentEvent::Unpause, 30 * S).unwrap();
    assert_eq!(offered(&mut a, 30 * S), vec![pair("c1", "ann,bob")]);
}

#[test]
fn callers_are_served_by_priority_then_arrival_across_queues() {
    let mut a = acd(&[queue("q", Strategy::TopDown), queue("r", Strategy::TopDown)]);
    enqueue(&mut a, "c1", "q", 0, 0);
    enqueue(&mut a, "c2", "r", 0, S);
    enqueue(&mut a, "c3", "q", 5, 2 * S);
    enqueue(&mut a, "c4", "r", 5, 3 * S);
    enqueue(&mut a, "c5", "q", 0, 4 * S);
    let pos: Vec<usize> = ["c1", "c3", "c5"]
        .iter()
        .map(|c| match a.position(c, 5 * S) {
            Some(CallerStatus::Waiting { position, .. }) => position,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(pos, [2, 1, 3]);
    login(&mut a, "ann", &[("q", 1, 0), ("r", 1, 0)], 10 * S);
    let mut order = Vec::new();
    for i in 0..5 {
        let o = one_offer(&mut a, (20 + i) * S);
        a.confirm(&o.lease_id, o.epoch, (20 + i) * S).unwrap();
        a.call_ended(&o.call_id, (20 + i) * S).unwrap();
        order.push(o.call_id);
    }
    assert_eq!(order, ["c3", "c4", "c1", "c2", "c5"]);
}

#[test]
fn a_ringing_caller_keeps_its_place_and_the_next_one_gets_the_next_agent() {
    let mut a = acd(&[queue("q", Strategy::TopDown)]);
    login(&mut a, "ann", &[("q", 1, 0)], 0);
    enqueue(&mut a, "c1", "q", 0, 0);
    enqueue(&mut a, "c2", "q", 0, 0);
    assert_eq!(offered(&mut a, 0), vec![pair("c1", "ann")]);
    login(&mut a, "bob", &[("q", 1, 1)], S);
    assert_eq!(offered(&mut a, S), vec![pair("c2", "bob")]);
    // ann's offer rings out: c1 (still first in line) gets the next free agent.
    a.on_timer(30 * S);
    login(&mut a, "cat", &[("q", 1, 2)], 31 * S);
    assert_eq!(offered(&mut a, 31 * S), vec![pair("c1", "cat")]);
}
