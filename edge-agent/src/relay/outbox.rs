//! The relay's delivery queue (pure: time is an argument, in monotonic ms).
//!
//! * **Bounded.** At capacity, pushing drops the oldest queued (not in-flight) item
//!   and counts it (`dropped_overflow`): reading the event socket never waits for
//!   callplane. A dropped `terminated` costs a lease until the next reconcile (or
//!   the lease TTL); that is the price of never blocking.
//! * **Ordered per key.** Items with the same key (one dialog, one account's
//!   reconcile, the ban report) are delivered one at a time, in order; different
//!   keys go in parallel (several delivery workers).
//! * **Barrier.** A reconcile for an account waits until every earlier item of the
//!   same account (its dialog events) is delivered or dropped, so a reconcile never
//!   overtakes the `terminated` it was built after.
//! * **Superseded, expiring snapshots.** A newer reconcile of an account replaces a
//!   queued older one, likewise ban reports; and both expire (a stale live-call list
//!   delivered late would release leases of calls that started since).
//! * **Retries** wait `not_before` (exponential backoff with jitter, computed by the
//!   caller with [`retry_delay`]) and keep their place at the head of their key.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Dialog,
    Reconcile,
    SecurityReport,
}

impl Kind {
    fn coalesces(self) -> bool {
        matches!(self, Kind::Reconcile | Kind::SecurityReport)
    }
    fn barrier(self) -> bool {
        matches!(self, Kind::Reconcile)
    }
    pub fn path(self) -> &'static str {
        match self {
            Kind::Dialog => "/presence/event",
            Kind::Reconcile => "/cac/reconcile",
            Kind::SecurityReport => "/security/report",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    /// Ordering key (one in flight at a time).
    pub key: String,
    /// Barrier group (the account).
    pub group: String,
    /// JSON body.
    pub body: String,
}

impl Item {
    pub fn dialog(account: &str, call_id: &str, body: String) -> Item {
        Item { kind: Kind::Dialog, key: format!("d:{account}:{call_id}"), group: account.to_string(), body }
    }
    pub fn reconcile(account: &str, body: String) -> Item {
        Item { kind: Kind::Reconcile, key: format!("r:{account}"), group: account.to_string(), body }
    }
    pub fn security_report(body: String) -> Item {
        Item { kind: Kind::SecurityReport, key: "b".into(), group: String::new(), body }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: u64,
    pub item: Item,
    /// Failed attempts so far.
    pub attempts: u32,
    pub not_before_ms: u64,
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub enqueued: u64,
    pub delivered: u64,
    pub retries: u64,
    /// Dropped because the queue was full (oldest first).
    pub dropped_overflow: u64,
    /// Refused by callplane with a 4xx that a retry cannot fix.
    pub rejected: u64,
    /// Reconcile / ban snapshots replaced by a newer one before delivery.
    pub superseded: u64,
    /// Reconcile / ban snapshots too old to deliver.
    pub expired: u64,
    pub queued: usize,
    pub in_flight: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Replaced a queued older snapshot with the same key.
    Superseded,
    /// The queue was full: this (oldest) item was dropped to make room.
    DroppedOldest(Box<Pending>),
    /// Full and everything queued is in flight: the new item itself was dropped.
    DroppedNew,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Ready(Box<Pending>),
    /// Nothing ready before this time.
    At(u64),
    /// Nothing that could become ready without a push or a finish.
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retry { delay_ms: u64 },
    Rejected,
}

#[derive(Debug)]
pub struct Outbox {
    cap: usize,
    queue: VecDeque<Pending>,
    in_flight_keys: HashMap<String, u64>,
    in_flight_groups: HashMap<String, usize>,
    next_id: u64,
    stats: Stats,
}

impl Outbox {
    pub fn new(cap: usize) -> Outbox {
        Outbox { cap: cap.max(1), queue: VecDeque::new(), in_flight_keys: HashMap::new(), in_flight_groups: HashMap::new(), next_id: 0, stats: Stats::default() }
    }

    pub fn stats(&self) -> Stats {
        Stats { queued: self.queue.len(), in_flight: self.in_flight_keys.len(), ..self.stats.clone() }
    }

    /// Queued plus in flight.
    pub fn len(&self) -> usize {
        self.queue.len() + self.in_flight_keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queue `item`; `ttl` makes it expire (snapshots).
    pub fn push(&mut self, item: Item, now_ms: u64, ttl: Option<Duration>) -> Pushed {
        self.next_id += 1;
        let p = Pending { id: self.next_id, item, attempts: 0, not_before_ms: now_ms, expires_at_ms: ttl.map(|t| now_ms.saturating_add(t.as_millis() as u64)) };
        self.stats.enqueued += 1;
        if p.item.kind.coalesces() {
            if let Some(old) = self.queue.iter_mut().find(|q| q.item.key == p.item.key) {
                *old = Pending { id: old.id, ..p };
                self.stats.superseded += 1;
                return Pushed::Superseded;
            }
        }
        if self.len() >= self.cap {
            match self.queue.pop_front() {
                Some(oldest) => {
                    self.stats.dropped_overflow += 1;
                    self.queue.push_back(p);
                    return Pushed::DroppedOldest(Box::new(oldest));
                }
                None => {
                    self.stats.dropped_overflow += 1;
                    return Pushed::DroppedNew;
                }
            }
        }
        self.queue.push_back(p);
        Pushed::Queued
    }

    /// Take the first item that may go now (its key idle, its barrier clear, its
    /// retry time reached); expired snapshots are dropped on the way.
    pub fn next(&mut self, now_ms: u64) -> Next {
        let before = self.queue.len();
        self.queue.retain(|p| p.expires_at_ms.is_none_or(|e| now_ms < e));
        self.stats.expired += (before - self.queue.len()) as u64;
        let mut earliest: Option<u64> = None;
        let mut blocked_keys: Vec<&str> = Vec::new();
        let mut groups_ahead: HashMap<&str, usize> = HashMap::new();
        let mut pick = None;
        for (i, p) in self.queue.iter().enumerate() {
            let key = p.item.key.as_str();
            let group = p.item.group.as_str();
            let key_busy = self.in_flight_keys.contains_key(key) || blocked_keys.contains(&key);
            let barrier_busy = p.item.kind.barrier()
                && (self.in_flight_groups.get(group).copied().unwrap_or(0) > 0 || groups_ahead.get(group).copied().unwrap_or(0) > 0);
            if !key_busy && !barrier_busy {
                if p.not_before_ms <= now_ms {
                    pick = Some(i);
                    break;
                }
                earliest = Some(earliest.map_or(p.not_before_ms, |e| e.min(p.not_before_ms)));
            }
            // Later items of this key wait for this one.
            blocked_keys.push(key);
            *groups_ahead.entry(group).or_default() += 1;
        }
        match pick {
            Some(i) => {
                let p = self.queue.remove(i).expect("index from iteration");
                self.in_flight_keys.insert(p.item.key.clone(), p.id);
                *self.in_flight_groups.entry(p.item.group.clone()).or_default() += 1;
                Next::Ready(Box::new(p))
            }
            None => match earliest {
                Some(t) => Next::At(t),
                None => Next::Idle,
            },
        }
    }

    /// Report what happened to an item taken with [`Outbox::next`].
    pub fn finish(&mut self, mut p: Pending, outcome: Outcome, now_ms: u64) {
        self.in_flight_keys.remove(&p.item.key);
        if let Some(n) = self.in_flight_groups.get_mut(&p.item.group) {
            *n -= 1;
            if *n == 0 {
                self.in_flight_groups.remove(&p.item.group);
            }
        }
        match outcome {
            Outcome::Delivered => self.stats.delivered += 1,
            Outcome::Rejected => self.stats.rejected += 1,
            Outcome::Retry { delay_ms } => {
                if p.item.kind.coalesces() && self.queue.iter().any(|q| q.item.key == p.item.key) {
                    // A newer snapshot is already waiting.
                    self.stats.superseded += 1;
                    return;
                }
                if p.expires_at_ms.is_some_and(|e| now_ms.saturating_add(delay_ms) >= e) {
                    self.stats.expired += 1;
                    return;
                }
                self.stats.retries += 1;
                p.attempts += 1;
                p.not_before_ms = now_ms.saturating_add(delay_ms);
                // Back at the head: it stays first among its key and group.
                self.queue.push_front(p);
            }
        }
    }
}

/// Retry delay after `attempts` failures: `initial·2^(attempts-1)` capped at `max`,
/// equal jitter (`jitter` in [0, 1)), like the ESL reconnect schedule.
pub fn retry_delay(attempts: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let step = initial.saturating_mul(1u32 << attempts.saturating_sub(1).min(20)).min(max);
    let j = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
    step / 2 + (step / 2).mul_f64(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(acc: &str, call: &str, n: u32) -> Item {
        Item::dialog(acc, call, format!("{call}#{n}"))
    }
    fn ready(o: &mut Outbox, now: u64) -> Pending {
        match o.next(now) {
            Next::Ready(p) => *p,
            other => panic!("expected a ready item, got {other:?}"),
        }
    }

    #[test]
    fn fifo_per_key_and_parallel_across_keys() {
        let mut o = Outbox::new(10);
        o.push(d("a", "c1", 1), 0, None);
        o.push(d("a", "c1", 2), 0, None);
        o.push(d("a", "c2", 1), 0, None);
        let first = ready(&mut o, 0);
        assert_eq!(first.item.body, "c1#1");
        // c1#2 must wait for c1#1; c2 may go.
        let second = ready(&mut o, 0);
        assert_eq!(second.item.body, "c2#1");
        assert_eq!(o.next(0), Next::Idle);
        o.finish(first, Outcome::Delivered, 1);
        assert_eq!(ready(&mut o, 1).item.body, "c1#2");
        assert_eq!(o.stats().delivered, 1);
    }

    #[test]
    fn retry_keeps_its_place_and_waits() {
        let mut o = Outbox::new(10);
        o.push(d("a", "c1", 1), 0, None);
        o.push(d("a", "c1", 2), 0, None);
        let p = ready(&mut o, 0);
        o.finish(p, Outcome::Retry { delay_ms: 500 }, 10);
        assert_eq!(o.next(100), Next::At(510));
        let p = ready(&mut o, 510);
        assert_eq!((p.item.body.as_str(), p.attempts), ("c1#1", 1));
        o.finish(p, Outcome::Delivered, 520);
        assert_eq!(ready(&mut o, 520).item.body, "c1#2");
        assert_eq!(o.stats().retries, 1);
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts() {
        let mut o = Outbox::new(3);
        for i in 0..3 {
            assert_eq!(o.push(d("a", &format!("c{i}"), 0), 0, None), Pushed::Queued);
        }
        match o.push(d("a", "c3", 0), 0, None) {
            Pushed::DroppedOldest(p) => assert_eq!(p.item.body, "c0#0"),
            other => panic!("{other:?}"),
        }
        assert_eq!(o.stats().dropped_overflow, 1);
        assert_eq!(o.len(), 3);
        // In-flight items count against capacity and are never dropped.
        let mut o = Outbox::new(1);
        o.push(d("a", "x", 0), 0, None);
        let p = ready(&mut o, 0);
        assert_eq!(o.push(d("a", "y", 0), 0, None), Pushed::DroppedNew);
        o.finish(p, Outcome::Delivered, 0);
        assert_eq!(o.stats().dropped_overflow, 1);
    }

    #[test]
    fn reconcile_waits_for_earlier_dialog_events_of_its_account() {
        let mut o = Outbox::new(10);
        o.push(d("a", "c1", 1), 0, None);
        o.push(Item::reconcile("a", "r1".into()), 0, Some(Duration::from_secs(30)));
        o.push(Item::reconcile("b", "rb".into()), 0, Some(Duration::from_secs(30)));
        let dialog = ready(&mut o, 0);
        assert_eq!(dialog.item.body, "c1#1");
        // a's reconcile is behind the in-flight dialog event; b's is free.
        assert_eq!(ready(&mut o, 0).item.body, "rb");
        assert_eq!(o.next(0), Next::Idle);
        o.finish(dialog, Outcome::Retry { delay_ms: 100 }, 0);
        // Still behind it (now queued ahead, waiting for its retry time).
        assert_eq!(o.next(50), Next::At(100));
        let dialog = ready(&mut o, 100);
        o.finish(dialog, Outcome::Delivered, 100);
        assert_eq!(ready(&mut o, 100).item.body, "r1");
    }

    #[test]
    fn snapshots_supersede_and_expire() {
        let mut o = Outbox::new(10);
        let ttl = Some(Duration::from_millis(1000));
        o.push(Item::reconcile("a", "old".into()), 0, ttl);
        assert_eq!(o.push(Item::reconcile("a", "new".into()), 10, ttl), Pushed::Superseded);
        assert_eq!(o.len(), 1);
        let p = ready(&mut o, 20);
        assert_eq!(p.item.body, "new");
        // A newer one arrives while the first is in flight, then the first fails:
        // the failed one is not retried.
        o.push(Item::reconcile("a", "newer".into()), 30, ttl);
        o.finish(p, Outcome::Retry { delay_ms: 100 }, 40);
        assert_eq!(o.len(), 1);
        assert_eq!(o.stats().superseded, 2);
        // Expiry.
        assert_eq!(o.next(2000), Next::Idle);
        assert_eq!(o.stats().expired, 1);
        // A retry that would land after the expiry is dropped.
        o.push(Item::security_report("b1".into()), 3000, ttl);
        let p = ready(&mut o, 3000);
        o.finish(p, Outcome::Retry { delay_ms: 5000 }, 3001);
        assert!(o.is_empty());
        assert_eq!(o.stats().expired, 2);
    }

    #[test]
    fn rejected_items_are_counted_and_gone() {
        let mut o = Outbox::new(10);
        o.push(d("a", "c1", 1), 0, None);
        o.push(d("a", "c1", 2), 0, None);
        let p = ready(&mut o, 0);
        o.finish(p, Outcome::Rejected, 0);
        assert_eq!(ready(&mut o, 0).item.body, "c1#2");
        assert_eq!(o.stats().rejected, 1);
    }

    #[test]
    fn retry_delays() {
        let (i, m) = (Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(retry_delay(1, i, m, 0.0), Duration::from_millis(250));
        let top = retry_delay(1, i, m, 0.999_999);
        assert!(top >= Duration::from_millis(499) && top < Duration::from_millis(500), "{top:?}");
        assert_eq!(retry_delay(3, i, m, 0.0), Duration::from_millis(1000));
        assert_eq!(retry_delay(30, i, m, 0.0), Duration::from_secs(15));
    }
}
