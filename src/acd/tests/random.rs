//! Randomized interleavings on a virtual clock: 500 seeds × 300 steps of logins, logouts,
//! pauses, reachability changes, enqueues, dispatches, confirms (current, stale, wrong epoch,
//! repeated), claims (winning, losing, repeated), failed legs, caller and agent hang-ups,
//! queue reconfiguration, timer firings and Durable Object evictions (reload from storage).
//!
//! After every step:
//! - [`Acd::audit`] holds (offers ⇔ reserved agents ⇔ ringing callers, one call per agent,
//!   one agent per call, indexes, per-queue conservation of callers);
//! - a shadow model fed only by what the operations returned (offers, effects, hook answers)
//!   agrees with the ACD on who rings for which offer and who talks to which call: so no
//!   agent is ever offered two calls, no caller is connected twice, and every release was
//!   reported to the adapter (nobody stays reserved silently);
//! - each dispatch equals a naive reference implementation of the strategies (so every
//!   strategy picks as specified under arbitrary histories), and leaves no caller that an
//!   eligible free agent could take;
//! - the dashboard tiles add up.
//!
//! Each seed ends with a drain (every call ends, every timer fires) after which nobody is
//! reserved, talking, skipped or waiting.

use super::*;
use std::cmp::Reverse;

struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pct(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        if v.is_empty() {
            None
        } else {
            Some(&v[self.below(v.len())])
        }
    }
}

const AGENTS: [&str; 8] = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"];
const QUEUES: [&str; 3] = ["q0", "q1", "q2"];

/// What the adapter knows from the answers it got.
#[derive(Default)]
struct Shadow {
    /// lease → (call, agents still ringing for it)
    offers: BTreeMap<String, (String, BTreeSet<String>)>,
    /// agent → call it talks to
    talking: BTreeMap<String, String>,
}

impl Shadow {
    fn ringing(&self, agent: &str) -> Option<&str> {
        self.offers.iter().find(|(_, (_, ags))| ags.contains(agent)).map(|(l, _)| l.as_str())
    }

    fn offered(&mut self, o: &Offer) {
        assert!(!o.agents.is_empty());
        for ag in &o.agents {
            assert!(self.ringing(ag).is_none(), "{ag} offered {} while ringing for {:?}", o.call_id, self.ringing(ag));
            assert!(!self.talking.contains_key(ag), "{ag} offered {} while talking", o.call_id);
        }
        assert!(!self.offers.values().any(|(c, _)| *c == o.call_id), "caller {} offered twice at once", o.call_id);
        assert!(!self.talking.values().any(|c| *c == o.call_id), "connected caller {} offered", o.call_id);
        let prev = self.offers.insert(o.lease_id.clone(), (o.call_id.clone(), o.agents.iter().cloned().collect()));
        assert!(prev.is_none(), "lease {} reused", o.lease_id);
    }

    fn effects(&mut self, fx: &[Effect]) {
        for e in fx {
            if let Effect::OfferEnded { lease_id, call_id, agents, .. } = e {
                let (c, ringing) = self.offers.get_mut(lease_id).unwrap_or_else(|| panic!("ended unknown offer {lease_id}"));
                assert_eq!(c, call_id);
                for ag in agents {
                    assert!(ringing.remove(ag), "{ag} released from {lease_id} it was not ringing for");
                }
                if ringing.is_empty() {
                    self.offers.remove(lease_id);
                }
            }
        }
    }

    fn connected(&mut self, c: &Connected, released: &[Effect]) {
        if c.repeated {
            assert_eq!(self.talking.get(&c.agent), Some(&c.call_id), "repeated answer of a call the agent is not on");
            assert!(released.is_empty());
            return;
        }
        let (call, ringing) = self.offers.get_mut(&c.lease_id).unwrap_or_else(|| panic!("answer of unknown offer {}", c.lease_id));
        assert_eq!(*call, c.call_id);
        assert!(ringing.remove(&c.agent), "{} answered {} it was not ringing for", c.agent, c.lease_id);
        if ringing.is_empty() {
            self.offers.remove(&c.lease_id);
        }
        self.effects(released);
        assert!(!self.offers.contains_key(&c.lease_id), "agents still ringing after {} was answered", c.lease_id);
        assert!(!self.talking.values().any(|x| *x == c.call_id), "caller {} connected to two agents", c.call_id);
        assert!(self.talking.insert(c.agent.clone(), c.call_id.clone()).is_none(), "{} answered while talking", c.agent);
    }

    fn ended(&mut self, e: &Ended) {
        self.effects(&e.effects);
        if let CallEnd::Completed { agent, .. } = &e.end {
            assert_eq!(self.talking.remove(agent).as_deref(), Some(e.call_id.as_str()));
        }
    }

    /// The ACD agrees with what the adapter was told.
    fn check(&self, a: &Acd) {
        for ag in a.agents() {
            assert_eq!(ag.offered_lease(), self.ringing(&ag.user_id), "reservation of {} differs from what was reported", ag.user_id);
            assert_eq!(ag.on_call_id(), self.talking.get(&ag.user_id).map(String::as_str), "call of {} differs", ag.user_id);
        }
        let acd_offers: BTreeMap<&str, BTreeSet<&str>> = a.offers().map(|o| (o.lease_id.as_str(), o.agents.iter().map(String::as_str).collect())).collect();
        let shadow: BTreeMap<&str, BTreeSet<&str>> = self.offers.iter().map(|(l, (_, s))| (l.as_str(), s.iter().map(String::as_str).collect())).collect();
        assert_eq!(acd_offers, shadow);
    }
}

/// The strategies written the obvious way: for each caller in (priority, arrival) order, the
/// free members whose tier the wait reached; lowest tier; strategy order.
fn reference_dispatch(a: &Acd, now: u64) -> Vec<(String, Vec<String>)> {
    let free = |x: &Agent| x.presence == Presence::Available && x.activity == Activity::Idle && x.reachable && x.penalty_until_ms.is_none_or(|t| t <= now);
    let mut rng = a.meta.rng;
    let mut rr: BTreeMap<&str, Option<(u32, String)>> = a.queues.iter().map(|(k, q)| (k.as_str(), q.rr_last.clone())).collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut callers: Vec<&Caller> = a.callers.values().collect();
    callers.sort_by_key(|c| (Reverse(c.priority), c.seq));
    let mut plan = Vec::new();
    for c in callers {
        if c.offer.is_some() {
            continue;
        }
        let q = &a.queues[&c.queue].config;
        let wait = now.saturating_sub(c.enqueued_at_ms);
        let mut elig: Vec<(&Agent, &Membership)> = a
            .agents
            .values()
            .filter(|x| free(x) && !taken.contains(&x.user_id))
            .filter_map(|x| x.memberships.iter().find(|m| m.queue == c.queue).map(|m| (x, m)))
            .filter(|(_, m)| q.tiers.iter().filter(|t| t.level <= m.tier).map(|t| u64::from(t.after_secs) * 1000).max().unwrap_or(0) <= wait)
            .collect();
        if elig.is_empty() {
            continue;
        }
        elig.sort_by(|x, y| (x.1.tier, x.1.position, &x.0.user_id).cmp(&(y.1.tier, y.1.position, &y.0.user_id)));
        let picked: Vec<String> = if q.strategy == Strategy::RingAll {
            elig.iter().map(|(x, _)| x.user_id.clone()).collect()
        } else {
            let low = elig[0].1.tier;
            elig.retain(|(_, m)| m.tier == low);
            let key = |x: &(&Agent, &Membership)| (x.1.position, x.0.user_id.clone());
            let chosen = match q.strategy {
                Strategy::TopDown => elig[0],
                Strategy::LongestIdle => *elig.iter().min_by_key(|x| (x.0.idle_since_ms, key(x))).unwrap(),
                Strategy::FewestCalls => *elig.iter().min_by_key(|x| (x.0.calls_taken, x.0.idle_since_ms, key(x))).unwrap(),
                Strategy::LeastTalkTime => *elig.iter().min_by_key(|x| (x.0.talk_time_ms, x.0.idle_since_ms, key(x))).unwrap(),
                Strategy::RoundRobin => {
                    let cur = rr.get_mut(c.queue.as_str()).unwrap();
                    let next = match cur.clone() {
                        Some(last) => *elig.iter().find(|x| key(x) > last).unwrap_or(&elig[0]),
                        None => elig[0],
                    };
                    *cur = Some(key(&next));
                    next
                }
                Strategy::Random => elig[(splitmix64(&mut rng) % elig.len() as u64) as usize],
                Strategy::RingAll => unreachable!(),
            };
            vec![chosen.0.user_id.clone()]
        };
        taken.extend(picked.iter().cloned());
        plan.push((c.call_id.clone(), picked));
    }
    plan
}

fn random_queue(r: &mut Prng, id: &str) -> QueueConfig {
    let tiers = match r.below(3) {
        0 => vec![],
        1 => vec![TierRule { level: 2, after_secs: 5 + r.below(20) as u32 }],
        _ => vec![TierRule { level: 2, after_secs: r.below(10) as u32 }, TierRule { level: 3, after_secs: 10 + r.below(30) as u32 }],
    };
    QueueConfig {
        id: id.to_string(),
        strategy: Strategy::ALL[r.below(Strategy::ALL.len())],
        tiers,
        offer_timeout_secs: 3 + r.below(20) as u32,
        wrap_up_secs: [0, 0, 3, 10][r.below(4)],
        no_answer_penalty_secs: [0, 5, 30][r.below(3)],
        max_no_answer: [0, 1, 3][r.below(3)],
        max_wait_secs: [None, Some(30), Some(120), Some(600)][r.below(4)],
        max_size: [None, None, Some(2), Some(6)][r.below(4)],
        hold_music: None,
        announce_position_every_secs: None,
        overflow_queue: r.pct(40).then(|| QUEUES[r.below(3)].to_string()).filter(|q| q != id),
    }
}

struct World {
    r: Prng,
    a: Acd,
    now: u64,
    shadow: Shadow,
    store: BTreeMap<String, serde_json::Value>,
    calls: Vec<String>,
    next_call: usize,
    leases: Vec<(String, u64)>,
    last_confirm: Option<(String, u64)>,
    last_claim: Option<(String, String)>,
    seen: BTreeMap<&'static str, u64>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut r = Prng(seed);
        let mut a = Acd::new(seed ^ 0x5eed);
        for q in QUEUES {
            let cfg = random_queue(&mut r, q);
            a.upsert_queue(cfg, 0).unwrap();
        }
        World {
            r,
            a,
            now: 1_000_000,
            shadow: Shadow::default(),
            store: BTreeMap::new(),
            calls: Vec::new(),
            next_call: 0,
            leases: Vec::new(),
            last_confirm: None,
            last_claim: None,
            seen: BTreeMap::new(),
        }
    }

    fn saw(&mut self, what: &'static str) {
        *self.seen.entry(what).or_default() += 1;
    }

    fn effects(&mut self, fx: &[Effect]) {
        self.tally(fx);
        self.shadow.effects(fx);
    }

    fn ended(&mut self, e: &Ended) {
        self.tally(&e.effects);
        self.shadow.ended(e);
    }

    fn tally(&mut self, fx: &[Effect]) {
        for e in fx {
            match e {
                Effect::OfferEnded { reason, .. } => self.saw(match reason {
                    OfferEndReason::NoAnswer => "offer rang out",
                    OfferEndReason::Rejected => "offer rejected",
                    OfferEndReason::AnsweredElsewhere => "answered elsewhere",
                    OfferEndReason::CallerLeft => "caller left while ringing",
                    OfferEndReason::AgentLeft => "agent left while ringing",
                    OfferEndReason::MaxWait => "max wait while ringing",
                    OfferEndReason::QueueRemoved => "queue removed",
                }),
                Effect::AgentAutoPaused { .. } => self.saw("auto paused"),
                Effect::CallerLeft { .. } => {}
            }
        }
    }

    fn agent(&mut self) -> &'static str {
        AGENTS[self.r.below(AGENTS.len())]
    }

    fn dispatch(&mut self) {
        let expected = reference_dispatch(&self.a, self.now);
        let offers = self.a.dispatch(self.now);
        let got: Vec<(String, Vec<String>)> = offers.iter().map(|o| (o.call_id.clone(), o.agents.clone())).collect();
        assert_eq!(got, expected, "dispatch differs from the reference at {}", self.now);
        for o in &offers {
            let q = &self.a.queue(&o.queue).unwrap().config;
            assert_eq!(o.ring_all, q.strategy == Strategy::RingAll);
            assert_eq!(o.expires_at_ms, self.now + u64::from(q.offer_timeout_secs) * 1000 + CONFIRM_GRACE_MS);
            self.shadow.offered(o);
            self.saw(if o.ring_all { "ring_all offer" } else { "single offer" });
            self.leases.push((o.lease_id.clone(), o.epoch));
        }
        // Maximal: no waiting, non-ringing caller has an eligible free agent left.
        for c in self.a.waiting().filter(|c| c.offer.is_none()) {
            let q = &self.a.queue(&c.queue).unwrap().config;
            let wait = self.now.saturating_sub(c.enqueued_at_ms);
            for ag in self.a.agents().filter(|x| x.is_free(self.now)) {
                if let Some(m) = ag.membership(&c.queue) {
                    assert!(q.tier_wait_ms(m.tier) > wait, "{} left waiting while {} is free", c.call_id, ag.user_id);
                }
            }
        }
    }

    fn step(&mut self) {
        if self.r.pct(70) {
            self.now += self.r.below(4000) as u64;
        }
        let now = self.now;
        match self.r.below(100) {
            0..=7 => {
                let u = self.agent();
                let mut qs = Vec::new();
                for (i, q) in QUEUES.iter().enumerate() {
                    if self.r.pct(60) {
                        qs.push(Membership::new(q, 1 + self.r.below(3) as u32, self.r.below(4) as u32 + i as u32));
                    }
                }
                if self.r.pct(80) {
                    self.a.set_reachable(u, true, now);
                }
                self.a.agent_event(u, AgentEvent::Login { queues: qs }, now).unwrap();
            }
            8..=10 => {
                let u = self.agent();
                let fx = self.a.agent_event(u, AgentEvent::Logout, now).unwrap();
                self.effects(&fx);
            }
            11..=14 => {
                let u = self.agent();
                match self.a.agent_event(u, AgentEvent::Pause { reason: Some("break".into()) }, now) {
                    Ok(fx) => self.effects(&fx),
                    Err(e) => assert_eq!(e, AcdError::NotLoggedIn(u.to_string())),
                }
            }
            15..=18 => {
                let u = self.agent();
                let ev = if self.r.pct(50) { AgentEvent::Unpause } else { AgentEvent::Available };
                match self.a.agent_event(u, ev, now) {
                    Ok(fx) => assert!(fx.is_empty()),
                    Err(e) => assert_eq!(e, AcdError::NotLoggedIn(u.to_string())),
                }
            }
            19..=20 => {
                let u = self.agent();
                let reach = self.r.pct(70);
                self.a.set_reachable(u, reach, now);
            }
            21..=32 => {
                let call = if self.r.pct(10) && !self.calls.is_empty() {
                    self.r.pick(&self.calls).unwrap().clone()
                } else {
                    self.next_call += 1;
                    format!("call-{}", self.next_call)
                };
                let q = QUEUES[self.r.below(3)];
                let req = EnqueueRequest {
                    max_wait_secs: self.r.pct(20).then(|| 10 + self.r.below(100) as u32),
                    ..EnqueueRequest::new(&call, q, self.r.below(3) as u32)
                };
                let waiting_before = self.a.caller(&call).cloned();
                match self.a.enqueue(&req, now) {
                    Ok(EnqueueResult::Queued { repeated, queue, position, .. }) => {
                        assert_eq!(repeated, waiting_before.is_some());
                        assert_eq!(self.a.caller(&call).unwrap().queue, queue);
                        assert!(matches!(self.a.position(&call, now), Some(CallerStatus::Waiting { position: p, .. }) if p == position));
                    }
                    Ok(EnqueueResult::Full { .. }) => assert!(self.a.caller(&call).is_none()),
                    Err(e) => assert_eq!(e, AcdError::CallConnected(call.clone())),
                }
                if !self.calls.contains(&call) {
                    self.calls.push(call);
                }
            }
            33..=44 => self.dispatch(),
            45..=54 => {
                let (lease, mut epoch) = if self.r.pct(70) && self.a.offers().next().is_some() {
                    let offers: Vec<(String, u64)> = self.a.offers().map(|o| (o.lease_id.clone(), o.epoch)).collect();
                    self.r.pick(&offers).unwrap().clone()
                } else if let Some(l) = self.r.pick(&self.leases) {
                    l.clone()
                } else {
                    return;
                };
                if self.r.pct(10) {
                    epoch += 1;
                }
                self.confirm(lease, epoch);
            }
            55..=57 => {
                if let Some((l, e)) = self.last_confirm.clone() {
                    self.confirm(l, e);
                }
            }
            58..=65 => {
                let pair = if self.r.pct(70) && self.a.offers().next().is_some() {
                    let offers: Vec<Offer> = self.a.offers().cloned().collect();
                    let o = self.r.pick(&offers).unwrap().clone();
                    (self.r.pick(&o.agents).unwrap().clone(), o.call_id)
                } else if let Some(c) = self.r.pick(&self.calls) {
                    let c = c.clone();
                    (self.agent().to_string(), c)
                } else {
                    return;
                };
                self.claim(pair.0, pair.1);
            }
            66..=67 => {
                if let Some((u, c)) = self.last_claim.clone() {
                    self.claim(u, c);
                }
            }
            68..=70 => {
                let offers: Vec<Offer> = self.a.offers().cloned().collect();
                let Some(o) = self.r.pick(&offers).cloned() else { return };
                let agent = self.r.pick(&o.agents).cloned();
                let agent = if self.r.pct(20) { Some(self.agent().to_string()) } else { agent };
                match self.a.offer_failed(&o.lease_id, o.epoch, agent.as_deref(), now) {
                    Ok(fx) => self.effects(&fx),
                    Err(AcdError::NotOffered) => assert!(agent.is_some_and(|g| !o.agents.contains(&g))),
                    Err(e) => panic!("offer_failed: {e:?}"),
                }
            }
            71..=77 => {
                let Some(call) = self.r.pick(&self.calls).cloned() else { return };
                match self.a.caller_hangup(&call, now) {
                    Ok(e) => self.ended(&e),
                    Err(e) => assert_eq!(e, AcdError::UnknownCall(call)),
                }
            }
            78..=85 => {
                let talking: Vec<String> = self.shadow.talking.values().cloned().collect();
                let Some(call) = self.r.pick(&talking).cloned() else { return };
                let e = self.a.call_ended(&call, now).unwrap();
                assert!(matches!(e.end, CallEnd::Completed { .. }));
                self.ended(&e);
            }
            86..=94 => {
                if self.r.pct(50) {
                    if let Some(t) = self.a.next_deadline() {
                        self.now = self.now.max(t);
                    }
                }
                let fx = self.a.on_timer(self.now);
                self.effects(&fx);
                if let Some(t) = self.a.next_deadline() {
                    assert!(t > self.now, "a timer due at {t} survived on_timer({})", self.now);
                }
            }
            95..=97 => self.evict(),
            _ => {
                let q = QUEUES[self.r.below(3)];
                let cfg = random_queue(&mut self.r, q);
                self.a.upsert_queue(cfg, now).unwrap();
            }
        }
    }

    fn confirm(&mut self, lease: String, epoch: u64) {
        self.last_confirm = Some((lease.clone(), epoch));
        let offer = self.a.offer(&lease).cloned();
        match self.a.confirm(&lease, epoch, self.now) {
            Ok(c) => {
                assert!(c.repeated || offer.as_ref().is_some_and(|o| !o.ring_all && o.epoch == epoch));
                self.shadow.connected(&c, &[]);
                self.saw(if c.repeated { "confirm repeated" } else { "confirm won" });
            }
            Err(AcdError::UseClaim) => assert!(offer.is_some_and(|o| o.ring_all)),
            Err(AcdError::LeaseNotCurrent) => {
                assert!(offer.is_none_or(|o| o.epoch != epoch));
                self.saw("confirm refused");
            }
            Err(e) => panic!("confirm: {e:?}"),
        }
    }

    fn claim(&mut self, agent: String, call: String) {
        self.last_claim = Some((agent.clone(), call.clone()));
        match self.a.claim(&agent, &call, self.now) {
            Ok(c) => {
                self.saw(if c.connected.repeated { "claim repeated" } else { "claim won" });
                self.shadow.connected(&c.connected, &c.effects);
                if !c.effects.is_empty() {
                    self.saw("answered elsewhere");
                }
            }
            Err(AcdError::AlreadyAnswered) => {
                assert!(self.shadow.talking.values().any(|c| *c == call) && self.shadow.talking.get(&agent) != Some(&call));
                self.saw("claim lost");
            }
            Err(AcdError::NotOffered) => assert!(self.shadow.offers.values().all(|(c, ags)| *c != call || !ags.contains(&agent))),
            Err(e) => panic!("claim: {e:?}"),
        }
    }

    /// The Durable Object is evicted: persist the pending changes, rebuild from storage.
    fn evict(&mut self) {
        for ch in self.a.take_changes() {
            match ch {
                Change::Put { key, value } => {
                    self.store.insert(key, serde_json::to_value(value).unwrap());
                }
                Change::Delete { key } => {
                    self.store.remove(&key);
                }
            }
        }
        let b = Acd::from_records(self.store.clone()).unwrap();
        assert_eq!(b, self.a, "storage lost a change");
        assert!(b.repairs().is_empty(), "consistent records needed repairs: {:?}", b.repairs());
        if self.r.pct(20) {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(serde_json::from_str::<Acd>(&json).unwrap(), b);
        }
        self.a = b;
    }

    fn check(&self) {
        let bad = self.a.audit();
        assert!(bad.is_empty(), "invariants broken at {}: {bad:#?}", self.now);
        self.shadow.check(&self.a);
        let p = self.a.presence_users(&[], self.now);
        let t = &p.tiles;
        assert_eq!(t.logged_out + t.available + t.paused + t.on_call + t.wrap_up, t.total);
        assert_eq!(t.total, self.a.agents().count() as u64);
        assert_eq!(t.on_call, self.shadow.talking.len() as u64);
        assert!(t.ringing <= t.available);
        assert_eq!(p.queues.iter().map(|q| q.waiting).sum::<u64>(), t.waiting);
        for ag in self.a.agents() {
            if ag.offered_lease().is_some() {
                assert!(ag.is_logged_in() && ag.presence == Presence::Available);
            }
        }
    }

    /// Every call ends and every timer fires: nothing may stay reserved, talking or waiting.
    fn drain(&mut self) {
        let calls: Vec<String> = self.a.waiting().map(|c| c.call_id.clone()).chain(self.shadow.talking.values().cloned()).collect();
        for c in calls {
            let e = self.a.call_ended(&c, self.now).unwrap();
            self.ended(&e);
        }
        for _ in 0..10_000 {
            let Some(t) = self.a.next_deadline() else { break };
            self.now = self.now.max(t);
            let fx = self.a.on_timer(self.now);
            self.effects(&fx);
            assert!(self.a.dispatch(self.now).is_empty());
        }
        self.check();
        assert_eq!(self.a.next_deadline(), None);
        assert!(self.a.offers().next().is_none() && self.a.waiting().next().is_none());
        assert!(self.shadow.offers.is_empty() && self.shadow.talking.is_empty());
        for ag in self.a.agents() {
            assert_eq!(ag.activity, Activity::Idle, "{} stuck in {:?}", ag.user_id, ag.activity);
            assert_eq!(ag.penalty_until_ms, None);
        }
        for q in self.a.queues() {
            let k = &q.counters;
            assert_eq!(k.entered, k.answered + k.abandoned + k.timed_out + k.closed);
        }
    }
}

#[test]
fn random_interleavings_keep_every_invariant() {
    let mut totals = QueueCounters::default();
    let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    for seed in 0..500u64 {
        let mut w = World::new(seed);
        for _ in 0..300 {
            w.step();
            w.check();
        }
        w.drain();
        for (k, v) in &w.seen {
            *seen.entry(k).or_default() += v;
        }
        for q in w.a.queues() {
            totals.answered += q.counters.answered;
            totals.abandoned += q.counters.abandoned;
            totals.timed_out += q.counters.timed_out;
            totals.no_answers += q.counters.no_answers;
            totals.rejected_full += q.counters.rejected_full;
            totals.overflowed_out += q.counters.overflowed_out;
        }
    }
    // The walk reaches every outcome often (a generator stuck in a corner proves nothing).
    let mut reached: Vec<(&str, u64)> = vec![
        ("answered", totals.answered),
        ("abandoned", totals.abandoned),
        ("timed out", totals.timed_out),
        ("no answers", totals.no_answers),
        ("full", totals.rejected_full),
        ("overflowed", totals.overflowed_out),
    ];
    for what in [
        "single offer",
        "ring_all offer",
        "confirm won",
        "confirm repeated",
        "confirm refused",
        "claim won",
        "claim repeated",
        "claim lost",
        "answered elsewhere",
        "offer rang out",
        "offer rejected",
        "caller left while ringing",
        "agent left while ringing",
        "max wait while ringing",
        "auto paused",
    ] {
        reached.push((what, seen.get(what).copied().unwrap_or(0)));
    }
    for (name, n) in reached {
        eprintln!("{name}: {n}");
        assert!(n >= 100, "only {n} × {name} in 500 runs");
    }
}
