//! Agents, presence and queues (ACD): the pure core held by the per-account Durable Object.
//!
//! [`Acd`] is one account's live contact-center state: agents, queues (configuration from D1
//! plus live counters), waiting callers, outstanding offers and recently departed callers.
//! Like [`AccountState`](crate::presence::AccountState) it never reads a clock: every
//! operation takes `now_ms` and returns what happened (typed results, [`Effect`]s, errors).
//!
//! The Durable Object's loop:
//! 1. load: [`Acd::from_records`] with every stored `acd/…` key (then [`Acd::reseed`] once);
//! 2. apply the request: [`Acd::agent_event`], [`Acd::enqueue`], [`Acd::confirm`], [`Acd::claim`],
//!    [`Acd::offer_failed`], [`Acd::call_ended`], [`Acd::set_reachable`], [`Acd::upsert_queue`], or
//!    from the alarm [`Acd::on_timer`];
//! 3. [`Acd::dispatch`] (after every mutation: it is cheap when nobody is free) and hand the
//!    [`Offer`]s to the callers' flows as `dial` commands with the answer hooks;
//! 4. persist [`Acd::take_changes`], set the alarm to [`Acd::next_deadline`], answer.
//!
//! Race freedom is by construction rather than by care: an agent's [`Activity`] holds at most
//! one offer; an offer is a lease (`leaseId` + `epoch`) that exists exactly as long as the
//! caller and every agent in it point back at it ([`Acd::audit`] checks this); answering
//! removes the offer and the caller in the same step, so a second answer finds nothing and
//! gets a conflict (HTTP 409). See `docs/acd.md`.

mod dispatch;
mod model;
mod ops;
mod persist;
mod sync;
mod view;

#[cfg(test)]
mod tests;

pub use model::*;
pub use ops::*;
pub use persist::{Change, Record, KEY_PREFIX};
pub use sync::QueueSyncResult;
pub use view::*;

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A lease stays confirmable this long after the offer's ring timeout, so an answer at the
/// last second is not refused because of hook latency.
pub const CONFIRM_GRACE_MS: u64 = 2_000;
/// How long a departed caller's outcome is remembered (for position polls and duplicate hang-ups).
pub const EXIT_RETENTION_MS: u64 = 120_000;
/// Most departed callers remembered (the oldest are forgotten first).
pub const MAX_EXITS: usize = 5_000;
/// Most callers waiting in one account (all queues); beyond it `enqueue` answers `full`.
pub const MAX_WAITING: usize = 10_000;
/// Most overflow hops followed from a full queue.
pub const MAX_OVERFLOW_HOPS: usize = 4;
/// Pause reason of an agent paused for too many unanswered offers.
pub const AUTO_PAUSE_REASON: &str = "no_answer";

/// Why an operation was refused. [`AcdError::status`] is the HTTP status for the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdError {
    /// Malformed input (400).
    Invalid(String),
    /// No such queue (404).
    UnknownQueue(String),
    /// Nothing known about this call (404).
    UnknownCall(String),
    /// The agent must log in first (409).
    NotLoggedIn(String),
    /// The call is connected to an agent: it cannot be queued again until it ends (409).
    CallConnected(String),
    /// `confirm`: the lease/epoch is not the current offer (it ended, was answered or never
    /// existed): the media engine drops the agent leg (409).
    LeaseNotCurrent,
    /// `confirm` on a ring_all offer (those are answered through `claim`) (409).
    UseClaim,
    /// `claim`: another agent already answered this caller (409).
    AlreadyAnswered,
    /// `claim` / `offer_failed`: this agent is not being offered this call (409).
    NotOffered,
}

impl AcdError {
    pub fn status(&self) -> u16 {
        match self {
            AcdError::Invalid(_) => 400,
            AcdError::UnknownQueue(_) | AcdError::UnknownCall(_) => 404,
            _ => 409,
        }
    }

    pub fn message(&self) -> String {
        match self {
            AcdError::Invalid(m) => m.clone(),
            AcdError::UnknownQueue(q) => format!("unknown queue {q:?}"),
            AcdError::UnknownCall(c) => format!("no queued or connected call {c:?}"),
            AcdError::NotLoggedIn(u) => format!("agent {u:?} is logged out: log in first"),
            AcdError::CallConnected(c) => format!("call {c:?} is connected to an agent"),
            AcdError::LeaseNotCurrent => "offer is no longer current (ended, answered or unknown)".into(),
            AcdError::UseClaim => "ring_all offers are answered through /agent/claim".into(),
            AcdError::AlreadyAnswered => "another agent already answered this caller".into(),
            AcdError::NotOffered => "this agent is not being offered this call".into(),
        }
    }
}

impl fmt::Display for AcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.message())
    }
}

impl std::error::Error for AcdError {}

impl From<AcdError> for ApiError {
    fn from(e: AcdError) -> Self {
        ApiError::new(e.status(), e.message())
    }
}

/// Why an offer (or one agent's part of a ring_all offer) ended without that agent answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferEndReason {
    /// Rang out (offer timeout).
    NoAnswer,
    /// The agent leg failed or was declined (`offer_failed`).
    Rejected,
    /// Another agent of the ring_all group answered.
    AnsweredElsewhere,
    /// The caller hung up.
    CallerLeft,
    /// The agent paused or logged out.
    AgentLeft,
    /// The caller's max wait was reached.
    MaxWait,
    /// The queue was removed.
    QueueRemoved,
}

/// Something the adapter must act on or relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Effect {
    /// Stop ringing `agents` for this caller: the offer (or their part of it) ended. A late
    /// answer on their legs gets 409 from the hooks anyway.
    OfferEnded { lease_id: String, epoch: u64, call_id: String, queue: String, agents: Vec<String>, reason: OfferEndReason },
    /// The caller left the queue: relay `queue:<outcome>` to its flow.
    CallerLeft { call_id: String, queue: String, outcome: ExitOutcome, wait_ms: u64, agent: Option<String> },
    /// The agent was paused (reason `no_answer`) after `max_no_answer` unanswered offers in a row.
    AgentAutoPaused { user_id: String, no_answers: u32 },
}

/// A storage record of the ACD (see `persist`): what changed since the last `take_changes`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Meta,
    Agent(String),
    Queue(String),
    Caller(String),
    Offer(String),
    Exit(String),
}

/// Order of service: higher priority first, then arrival.
pub(crate) type OrderKey = (Reverse<u32>, u64, String);

/// Derived lookups, rebuilt on load (never stored).
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// Every waiting caller, in order of service.
    pub all: BTreeSet<OrderKey>,
    /// Waiting callers per queue, in order of service.
    pub by_queue: BTreeMap<String, BTreeSet<OrderKey>>,
    /// Departed callers by (forget time, call id).
    pub exits: BTreeSet<(u64, String)>,
    /// Waiting callers' timers: (time, kind, call id).
    pub caller_timers: BTreeSet<CallerTimer>,
}

/// Kinds of a waiting caller's timers (in firing order at equal times).
pub(crate) const MAX_WAIT: u8 = 0;
pub(crate) const ESCALATION: u8 = 1;
pub(crate) type CallerTimer = (u64, u8, String);

pub(crate) fn caller_timers(c: &Caller) -> impl Iterator<Item = CallerTimer> + '_ {
    [(c.deadline_ms, MAX_WAIT), (c.next_escalation_ms, ESCALATION)].into_iter().filter_map(|(t, k)| t.map(|t| (t, k, c.call_id.clone())))
}

/// One account's ACD state. Serializes as a whole (debug dumps, tests); the Durable Object
/// stores it record by record through [`Acd::take_changes`] / [`Acd::from_records`].
#[derive(Debug, Clone, Default)]
pub struct Acd {
    pub(crate) agents: BTreeMap<String, Agent>,
    pub(crate) queues: BTreeMap<String, Queue>,
    pub(crate) callers: BTreeMap<String, Caller>,
    pub(crate) offers: BTreeMap<String, Offer>,
    pub(crate) exits: BTreeMap<String, Exit>,
    pub(crate) meta: Meta,
    pub(crate) idx: Index,
    pub(crate) dirty: BTreeSet<Key>,
    /// What `from_records` had to repair.
    pub(crate) repairs: Vec<String>,
}

impl PartialEq for Acd {
    /// Equal state (indexes and pending changes are not state).
    fn eq(&self, o: &Self) -> bool {
        self.agents == o.agents
            && self.queues == o.queues
            && self.callers == o.callers
            && self.offers == o.offers
            && self.exits == o.exits
            && self.meta == o.meta
    }
}

impl Eq for Acd {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotRef<'a> {
    agents: &'a BTreeMap<String, Agent>,
    queues: &'a BTreeMap<String, Queue>,
    callers: &'a BTreeMap<String, Caller>,
    offers: &'a BTreeMap<String, Offer>,
    exits: &'a BTreeMap<String, Exit>,
    meta: &'a Meta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[derive(Default)]
struct Snapshot {
    agents: BTreeMap<String, Agent>,
    queues: BTreeMap<String, Queue>,
    callers: BTreeMap<String, Caller>,
    offers: BTreeMap<String, Offer>,
    exits: BTreeMap<String, Exit>,
    meta: Meta,
}

impl Serialize for Acd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SnapshotRef { agents: &self.agents, queues: &self.queues, callers: &self.callers, offers: &self.offers, exits: &self.exits, meta: &self.meta }
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Acd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Snapshot::deserialize(d)?;
        let mut acd = Acd { agents: s.agents, queues: s.queues, callers: s.callers, offers: s.offers, exits: s.exits, meta: s.meta, ..Default::default() };
        acd.repair();
        acd.rebuild_index();
        Ok(acd)
    }
}

pub(crate) fn order_key(c: &Caller) -> OrderKey {
    (Reverse(c.priority), c.seq, c.call_id.clone())
}

impl Acd {
    /// An empty ACD whose generator starts from `seed` (give it real entropy in production).
    pub fn new(seed: u64) -> Self {
        let mut a = Acd::default();
        a.meta.rng = seed;
        a.dirty.insert(Key::Meta);
        a
    }

    /// Mix fresh entropy into the generator (once after loading is enough).
    pub fn reseed(&mut self, entropy: u64) {
        let mut s = entropy;
        self.meta.rng ^= splitmix64(&mut s);
        self.dirty.insert(Key::Meta);
    }

    pub(crate) fn rebuild_index(&mut self) {
        let mut idx = Index::default();
        for q in self.queues.keys() {
            idx.by_queue.insert(q.clone(), BTreeSet::new());
        }
        for c in self.callers.values() {
            idx.all.insert(order_key(c));
            idx.by_queue.entry(c.queue.clone()).or_default().insert(order_key(c));
            idx.caller_timers.extend(caller_timers(c));
        }
        idx.exits = self.exits.values().map(|e| (e.forget_at_ms, e.call_id.clone())).collect();
        self.idx = idx;
    }

    // --- read access --------------------------------------------------------------------

    pub fn agent(&self, user_id: &str) -> Option<&Agent> {
        self.agents.get(user_id)
    }
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }
    pub fn queue(&self, id: &str) -> Option<&Queue> {
        self.queues.get(id)
    }
    pub fn queues(&self) -> impl Iterator<Item = &Queue> {
        self.queues.values()
    }
    pub fn caller(&self, call_id: &str) -> Option<&Caller> {
        self.callers.get(call_id)
    }
    /// Waiting callers of every queue, in order of service.
    pub fn waiting(&self) -> impl Iterator<Item = &Caller> {
        self.idx.all.iter().map(|k| &self.callers[&k.2])
    }
    /// Waiting callers of one queue, in order of service.
    pub fn waiting_in(&self, queue: &str) -> impl Iterator<Item = &Caller> {
        self.idx.by_queue.get(queue).into_iter().flatten().map(|k| &self.callers[&k.2])
    }
    pub fn waiting_count(&self, queue: &str) -> usize {
        self.idx.by_queue.get(queue).map_or(0, |s| s.len())
    }
    pub fn offer(&self, lease_id: &str) -> Option<&Offer> {
        self.offers.get(lease_id)
    }
    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.values()
    }
    pub fn exit(&self, call_id: &str) -> Option<&Exit> {
        self.exits.get(call_id)
    }
    /// The agent talking to this call, if any.
    pub fn agent_on_call(&self, call_id: &str) -> Option<&Agent> {
        self.agents.values().find(|a| a.on_call_id() == Some(call_id))
    }

    // --- mutation helpers (every change marks its record for storage) -------------------

    pub(crate) fn agent_mut(&mut self, user_id: &str) -> Option<&mut Agent> {
        let a = self.agents.get_mut(user_id)?;
        self.dirty.insert(Key::Agent(user_id.to_string()));
        Some(a)
    }

    pub(crate) fn agent_entry(&mut self, user_id: &str) -> &mut Agent {
        self.dirty.insert(Key::Agent(user_id.to_string()));
        self.agents.entry(user_id.to_string()).or_insert_with(|| Agent::new(user_id))
    }

    pub(crate) fn queue_mut(&mut self, id: &str) -> Option<&mut Queue> {
        let q = self.queues.get_mut(id)?;
        self.dirty.insert(Key::Queue(id.to_string()));
        Some(q)
    }

    pub(crate) fn caller_mut(&mut self, call_id: &str) -> Option<&mut Caller> {
        let c = self.callers.get_mut(call_id)?;
        self.dirty.insert(Key::Caller(call_id.to_string()));
        Some(c)
    }

    pub(crate) fn insert_caller(&mut self, c: Caller) {
        self.idx.caller_timers.extend(caller_timers(&c));
        self.idx.all.insert(order_key(&c));
        self.idx.by_queue.entry(c.queue.clone()).or_default().insert(order_key(&c));
        self.dirty.insert(Key::Caller(c.call_id.clone()));
        self.callers.insert(c.call_id.clone(), c);
    }

    pub(crate) fn remove_caller(&mut self, call_id: &str) -> Option<Caller> {
        let c = self.callers.remove(call_id)?;
        for t in caller_timers(&c) {
            self.idx.caller_timers.remove(&t);
        }
        let k = order_key(&c);
        self.idx.all.remove(&k);
        if let Some(s) = self.idx.by_queue.get_mut(&c.queue) {
            s.remove(&k);
        }
        self.dirty.insert(Key::Caller(call_id.to_string()));
        Some(c)
    }

    /// Set a waiting caller's next tier escalation.
    pub(crate) fn set_escalation(&mut self, call_id: &str, at_ms: Option<u64>) {
        let Some(c) = self.callers.get_mut(call_id) else { return };
        if c.next_escalation_ms == at_ms {
            return;
        }
        if let Some(t) = c.next_escalation_ms {
            self.idx.caller_timers.remove(&(t, ESCALATION, call_id.to_string()));
        }
        if let Some(t) = at_ms {
            self.idx.caller_timers.insert((t, ESCALATION, call_id.to_string()));
        }
        c.next_escalation_ms = at_ms;
        self.dirty.insert(Key::Caller(call_id.to_string()));
    }

    pub(crate) fn insert_offer(&mut self, o: Offer) {
        self.dirty.insert(Key::Offer(o.lease_id.clone()));
        self.offers.insert(o.lease_id.clone(), o);
    }

    pub(crate) fn remove_offer(&mut self, lease_id: &str) -> Option<Offer> {
        let o = self.offers.remove(lease_id)?;
        self.dirty.insert(Key::Offer(lease_id.to_string()));
        Some(o)
    }

    pub(crate) fn offer_mut(&mut self, lease_id: &str) -> Option<&mut Offer> {
        let o = self.offers.get_mut(lease_id)?;
        self.dirty.insert(Key::Offer(lease_id.to_string()));
        Some(o)
    }

    /// Remember a departed caller (forgetting the oldest beyond [`MAX_EXITS`]).
    pub(crate) fn insert_exit(&mut self, e: Exit) {
        self.remove_exit(&e.call_id);
        self.idx.exits.insert((e.forget_at_ms, e.call_id.clone()));
        self.dirty.insert(Key::Exit(e.call_id.clone()));
        self.exits.insert(e.call_id.clone(), e);
        while self.exits.len() > MAX_EXITS {
            let Some((_, oldest)) = self.idx.exits.first().cloned() else { break };
            self.remove_exit(&oldest);
        }
    }

    pub(crate) fn remove_exit(&mut self, call_id: &str) -> Option<Exit> {
        let e = self.exits.remove(call_id)?;
        self.idx.exits.remove(&(e.forget_at_ms, e.call_id.clone()));
        self.dirty.insert(Key::Exit(call_id.to_string()));
        Some(e)
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.meta.seq += 1;
        self.dirty.insert(Key::Meta);
        self.meta.seq
    }

    pub(crate) fn next_random(&mut self) -> u64 {
        self.dirty.insert(Key::Meta);
        splitmix64(&mut self.meta.rng)
    }

    /// Bring every agent's cached status (and its `status_since_ms`) up to date.
    pub(crate) fn settle(&mut self, now_ms: u64) {
        let changed: Vec<String> = self.agents.values().filter(|a| a.status != Some(a.derived_status())).map(|a| a.user_id.clone()).collect();
        for id in changed {
            if let Some(a) = self.agent_mut(&id) {
                a.status = Some(a.derived_status());
                a.status_since_ms = now_ms;
            }
        }
    }
}
