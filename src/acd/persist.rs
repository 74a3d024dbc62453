//! Storage as records, one per key, so a write touches only what changed (and no value
//! comes near the Durable Object's 128 KiB limit, whatever the number of callers):
//!
//! | key                   | value        |
//! |-----------------------|--------------|
//! | `acd/meta`            | [`Meta`]     |
//! | `acd/a/<userId>`      | [`Agent`]    |
//! | `acd/q/<queueId>`     | [`Queue`]    |
//! | `acd/c/<callId>`      | [`Caller`]   |
//! | `acd/o/<leaseId>`     | [`Offer`]    |
//! | `acd/x/<callId>`      | [`Exit`]     |

use super::*;
use serde_json::Value;

/// Every ACD storage key starts with this (list the Durable Object's storage with it).
pub const KEY_PREFIX: &str = "acd/";

/// A stored record (serializes as the bare record, e.g. an [`Agent`] object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Record {
    Meta(Meta),
    Agent(Agent),
    Queue(Queue),
    Caller(Caller),
    Offer(Offer),
    Exit(Exit),
}

/// A storage write to make after an operation.
#[allow(clippy::large_enum_variant)] // short-lived; boxing would only add an allocation per write
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Put { key: String, value: Record },
    Delete { key: String },
}

impl Change {
    pub fn key(&self) -> &str {
        match self {
            Change::Put { key, .. } | Change::Delete { key } => key,
        }
    }
}

impl Key {
    fn storage_key(&self) -> String {
        match self {
            Key::Meta => format!("{KEY_PREFIX}meta"),
            Key::Agent(id) => format!("{KEY_PREFIX}a/{id}"),
            Key::Queue(id) => format!("{KEY_PREFIX}q/{id}"),
            Key::Caller(id) => format!("{KEY_PREFIX}c/{id}"),
            Key::Offer(id) => format!("{KEY_PREFIX}o/{id}"),
            Key::Exit(id) => format!("{KEY_PREFIX}x/{id}"),
        }
    }
}

fn from_value<T: serde::de::DeserializeOwned>(key: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{key}: {e}"))
}

impl Acd {
    /// The writes that persist every change since the last call (puts of changed records,
    /// deletes of removed ones), in key order.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|k| {
                let key = k.storage_key();
                let value = match &k {
                    Key::Meta => Some(Record::Meta(self.meta.clone())),
                    Key::Agent(id) => self.agents.get(id).cloned().map(Record::Agent),
                    Key::Queue(id) => self.queues.get(id).cloned().map(Record::Queue),
                    Key::Caller(id) => self.callers.get(id).cloned().map(Record::Caller),
                    Key::Offer(id) => self.offers.get(id).cloned().map(Record::Offer),
                    Key::Exit(id) => self.exits.get(id).cloned().map(Record::Exit),
                };
                match value {
                    Some(value) => Change::Put { key, value },
                    None => Change::Delete { key },
                }
            })
            .collect()
    }

    /// Every record, as a full write (a fresh copy of the state).
    pub fn records(&self) -> Vec<(String, Record)> {
        let mut out = vec![(Key::Meta.storage_key(), Record::Meta(self.meta.clone()))];
        out.extend(self.agents.iter().map(|(k, v)| (Key::Agent(k.clone()).storage_key(), Record::Agent(v.clone()))));
        out.extend(self.queues.iter().map(|(k, v)| (Key::Queue(k.clone()).storage_key(), Record::Queue(v.clone()))));
        out.extend(self.callers.iter().map(|(k, v)| (Key::Caller(k.clone()).storage_key(), Record::Caller(v.clone()))));
        out.extend(self.offers.iter().map(|(k, v)| (Key::Offer(k.clone()).storage_key(), Record::Offer(v.clone()))));
        out.extend(self.exits.iter().map(|(k, v)| (Key::Exit(k.clone()).storage_key(), Record::Exit(v.clone()))));
        out
    }

    /// Rebuild the state from stored records (keys without [`KEY_PREFIX`] are ignored, so the
    /// whole storage listing can be passed). A record that does not parse is an error: the
    /// adapter must not run on a partial state. Records that contradict each other (a write
    /// batch lost halfway) are repaired so that nobody stays reserved by an offer that no
    /// longer exists; [`Acd::repairs`] says what was fixed (log it).
    pub fn from_records<I: IntoIterator<Item = (String, Value)>>(records: I) -> Result<Acd, String> {
        let mut acd = Acd::default();
        for (key, v) in records {
            let Some(rest) = key.strip_prefix(KEY_PREFIX) else { continue };
            if rest == "meta" {
                acd.meta = from_value(&key, v)?;
                continue;
            }
            let Some((kind, id)) = rest.split_once('/') else { return Err(format!("{key}: unknown ACD key")) };
            match kind {
                "a" => {
                    let r: Agent = from_value(&key, v)?;
                    acd.agents.insert(id.to_string(), r);
                }
                "q" => {
                    let r: Queue = from_value(&key, v)?;
                    acd.queues.insert(id.to_string(), r);
                }
                "c" => {
                    let r: Caller = from_value(&key, v)?;
                    acd.callers.insert(id.to_string(), r);
                }
                "o" => {
                    let r: Offer = from_value(&key, v)?;
                    acd.offers.insert(id.to_string(), r);
                }
                "x" => {
                    let r: Exit = from_value(&key, v)?;
                    acd.exits.insert(id.to_string(), r);
                }
                _ => return Err(format!("{key}: unknown ACD key")),
            }
        }
        acd.repair();
        acd.rebuild_index();
        Ok(acd)
    }

    /// What loading had to repair (empty when the stored records were consistent).
    pub fn repairs(&self) -> &[String] {
        &self.repairs
    }

    /// Make dangling references consistent again (the fixes are marked for storage).
    pub(crate) fn repair(&mut self) {
        let mut fixes = Vec::new();
        let orphans: Vec<String> = self.callers.values().filter(|c| !self.queues.contains_key(&c.queue)).map(|c| c.call_id.clone()).collect();
        for call in orphans {
            self.callers.remove(&call);
            self.dirty.insert(Key::Caller(call.clone()));
            fixes.push(format!("caller {call} waited in a missing queue: dropped"));
        }
        let connected: BTreeSet<String> = self.agents.values().filter_map(|a| a.on_call_id().map(str::to_string)).collect();
        for call in connected.iter().filter(|c| self.callers.contains_key(*c)).cloned().collect::<Vec<_>>() {
            self.callers.remove(&call);
            self.dirty.insert(Key::Caller(call.clone()));
            fixes.push(format!("caller {call} was both waiting and connected: kept connected"));
        }
        // An offer stands only if its caller points at it; it keeps the agents that point back.
        let leases: Vec<String> = self.offers.keys().cloned().collect();
        for lease in leases {
            let o = &self.offers[&lease];
            let caller_ok = o.lease_id == lease && self.callers.get(&o.call_id).is_some_and(|c| c.offer.as_deref() == Some(lease.as_str()));
            let agents: Vec<String> =
                o.agents.iter().filter(|ag| self.agents.get(*ag).is_some_and(|a| a.offered_lease() == Some(lease.as_str()))).cloned().collect();
            if !caller_ok || agents.is_empty() || (!o.ring_all && agents.len() != 1) {
                self.offers.remove(&lease);
                self.dirty.insert(Key::Offer(lease.clone()));
                fixes.push(format!("offer {lease} was inconsistent: ended"));
            } else if agents.len() != o.agents.len() {
                self.offers.get_mut(&lease).expect("offer").agents = agents;
                self.dirty.insert(Key::Offer(lease.clone()));
                fixes.push(format!("offer {lease} listed agents not ringing for it: dropped them"));
            }
        }
        let stale_callers: Vec<String> =
            self.callers.values().filter(|c| c.offer.as_ref().is_some_and(|l| !self.offers.contains_key(l))).map(|c| c.call_id.clone()).collect();
        for call in stale_callers {
            self.caller_mut(&call).expect("caller").offer = None;
            fixes.push(format!("caller {call} rang for a missing offer: back to waiting"));
        }
        let stale_agents: Vec<String> = self
            .agents
            .values()
            .filter(|a| a.offered_lease().is_some_and(|l| !self.offers.get(l).is_some_and(|o| o.agents.contains(&a.user_id))))
            .map(|a| a.user_id.clone())
            .collect();
        for user in stale_agents {
            self.agent_mut(&user).expect("agent").activity = Activity::Idle;
            fixes.push(format!("agent {user} was reserved by a missing offer: released"));
        }
        self.repairs = fixes;
    }

    /// Broken invariants (empty when sound). Run by the randomized tests after every step;
    /// cheap enough for a `/debug` endpoint.
    pub fn audit(&self) -> Vec<String> {
        let mut bad = Vec::new();
        // Records are keyed by their own ids.
        for (k, a) in &self.agents {
            if *k != a.user_id {
                bad.push(format!("agent key {k} holds {}", a.user_id));
            }
        }
        for (k, c) in &self.callers {
            if *k != c.call_id {
                bad.push(format!("caller key {k} holds {}", c.call_id));
            }
            if !self.queues.contains_key(&c.queue) {
                bad.push(format!("caller {k} waits in unknown queue {}", c.queue));
            }
        }
        // Offers ⇔ reserved agents ⇔ ringing callers.
        let mut reserved: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, o) in &self.offers {
            if *k != o.lease_id {
                bad.push(format!("offer key {k} holds {}", o.lease_id));
            }
            if o.agents.is_empty() {
                bad.push(format!("offer {k} has no agent"));
            }
            if !o.ring_all && o.agents.len() != 1 {
                bad.push(format!("single offer {k} has {} agents", o.agents.len()));
            }
            match self.callers.get(&o.call_id) {
                Some(c) if c.offer.as_deref() == Some(k.as_str()) => {}
                _ => bad.push(format!("offer {k}: caller {} is not ringing with it", o.call_id)),
            }
            for ag in &o.agents {
                if let Some(prev) = reserved.insert(ag.as_str(), k.as_str()) {
                    bad.push(format!("agent {ag} is in offers {prev} and {k}"));
                }
                match self.agents.get(ag) {
                    Some(a) if a.offered_lease() == Some(k.as_str()) => {}
                    _ => bad.push(format!("offer {k}: agent {ag} is not reserved by it")),
                }
            }
        }
        for a in self.agents.values() {
            match &a.activity {
                Activity::Offered { lease_id, call_id, .. } => {
                    match self.offers.get(lease_id) {
                        Some(o) if o.call_id == *call_id && o.agents.contains(&a.user_id) => {}
                        _ => bad.push(format!("agent {} reserved by dead offer {lease_id}", a.user_id)),
                    }
                    if a.presence != Presence::Available {
                        bad.push(format!("agent {} ringing while {:?}", a.user_id, a.presence));
                    }
                }
                Activity::OnCall { call_id, .. } if self.callers.contains_key(call_id) => {
                    bad.push(format!("call {call_id} is both waiting and connected to {}", a.user_id));
                }
                _ => {}
            }
            if a.presence == Presence::LoggedOut && !a.memberships.is_empty() {
                bad.push(format!("logged-out agent {} has memberships", a.user_id));
            }
            if a.status != Some(a.derived_status()) {
                bad.push(format!("agent {} status cache {:?} is stale", a.user_id, a.status));
            }
        }
        let mut connected: BTreeMap<&str, &str> = BTreeMap::new();
        for a in self.agents.values() {
            if let Some(call) = a.on_call_id() {
                if let Some(other) = connected.insert(call, a.user_id.as_str()) {
                    bad.push(format!("call {call} connected to {other} and {}", a.user_id));
                }
            }
        }
        for c in self.callers.values() {
            if let Some(l) = &c.offer {
                match self.offers.get(l) {
                    Some(o) if o.call_id == c.call_id => {}
                    _ => bad.push(format!("caller {} ringing with dead offer {l}", c.call_id)),
                }
            }
        }
        // Indexes match the records.
        let mut fresh = Index::default();
        for c in self.callers.values() {
            fresh.caller_timers.extend(caller_timers(c));
            fresh.all.insert(order_key(c));
            fresh.by_queue.entry(c.queue.clone()).or_default().insert(order_key(c));
        }
        fresh.exits = self.exits.values().map(|e| (e.forget_at_ms, e.call_id.clone())).collect();
        if fresh.exits != self.idx.exits {
            bad.push("exit index out of date".into());
        }
        if fresh.caller_timers != self.idx.caller_timers {
            bad.push("caller timer index out of date".into());
        }
        if fresh.all != self.idx.all {
            bad.push("order index out of date".into());
        }
        for (q, set) in &self.idx.by_queue {
            if fresh.by_queue.get(q).map_or(!set.is_empty(), |f| f != set) {
                bad.push(format!("queue index of {q} out of date"));
            }
        }
        // Conservation of callers per queue.
        for q in self.queues.values() {
            let k = &q.counters;
            let waiting = self.waiting_count(&q.config.id) as u64;
            if k.entered != k.answered + k.abandoned + k.timed_out + k.closed + waiting {
                bad.push(format!(
                    "queue {}: entered {} != answered {} + abandoned {} + timed out {} + closed {} + waiting {}",
                    q.config.id, k.entered, k.answered, k.abandoned, k.timed_out, k.closed, waiting
                ));
            }
        }
        bad
    }
}
