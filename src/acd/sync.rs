//! Bringing the queue configuration in line with D1 (the adapter passes every queue of the
//! account as read from D1; see docs/acd.md "Configuration in D1").

use super::*;

/// What [`Acd::sync_queues`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSyncResult {
    /// Queues added or whose configuration changed.
    pub upserted: Vec<String>,
    /// Queues no longer configured (their waiting callers left with `queue:full`).
    pub removed: Vec<String>,
    /// Configurations refused by validation (queue id, reason): the queue keeps its previous
    /// configuration, or stays absent.
    pub refused: Vec<(String, String)>,
    pub effects: Vec<Effect>,
}

impl Acd {
    /// Make the queues exactly `configs`: unchanged queues are left alone (no write), new and
    /// changed ones upserted (counters kept), the others removed. A config that fails
    /// validation is refused without touching that queue — a bad row never closes a queue.
    pub fn sync_queues(&mut self, configs: &[QueueConfig], now_ms: u64) -> QueueSyncResult {
        let mut r = QueueSyncResult::default();
        let wanted: BTreeSet<&str> = configs.iter().map(|q| q.id.as_str()).collect();
        let gone: Vec<String> = self.queues.keys().filter(|id| !wanted.contains(id.as_str())).cloned().collect();
        for id in gone {
            if let Ok(e) = self.remove_queue(&id, now_ms) {
                r.effects.extend(e);
                r.removed.push(id);
            }
        }
        for q in configs {
            if self.queues.get(&q.id).is_some_and(|have| have.config == *q) {
                continue;
            }
            match self.upsert_queue(q.clone(), now_ms) {
                Ok(()) => r.upserted.push(q.id.clone()),
                Err(e) => r.refused.push((q.id.clone(), e.message())),
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{acd, enqueue, login, queue, S};
    use super::*;

    #[test]
    fn sync_upserts_changes_removes_the_rest_and_refuses_bad_configs() {
        let mut a = acd(&[queue("q1", Strategy::LongestIdle), queue("q2", Strategy::RingAll)]);
        a.take_changes();
        login(&mut a, "u1", &[("q1", 1, 0), ("q2", 1, 0)], 0);
        a.agent_event("u1", AgentEvent::Pause { reason: None }, 0).unwrap();
        enqueue(&mut a, "c1", "q1", 0, S);
        enqueue(&mut a, "c2", "q2", 0, S);
        a.take_changes();

        // Same configuration: nothing happens, nothing is written.
        let same = [queue("q1", Strategy::LongestIdle), queue("q2", Strategy::RingAll)];
        let r = a.sync_queues(&same, 2 * S);
        assert_eq!(r, QueueSyncResult::default());
        assert!(a.take_changes().is_empty());

        // q1 changes, q2 is gone, q3 is new, q4 is invalid.
        let mut q1 = queue("q1", Strategy::TopDown);
        q1.offer_timeout_secs = 5;
        let mut bad = queue("q4", Strategy::Random);
        bad.offer_timeout_secs = 0;
        let r = a.sync_queues(&[q1.clone(), queue("q3", Strategy::Random), bad], 3 * S);
        assert_eq!(r.upserted, ["q1", "q3"]);
        assert_eq!(r.removed, ["q2"]);
        assert_eq!(r.refused.len(), 1);
        assert_eq!(r.refused[0].0, "q4");
        assert!(r.effects.iter().any(|e| matches!(e, Effect::CallerLeft { call_id, outcome: ExitOutcome::Full, .. } if call_id == "c2")));
        assert_eq!(a.queue("q1").unwrap().config, q1);
        assert_eq!(a.queue("q1").unwrap().counters.entered, 1, "counters survive a config change");
        assert!(a.queue("q2").is_none() && a.queue("q4").is_none());
        assert_eq!(a.agent("u1").unwrap().memberships, [Membership::new("q1", 1, 0)]);
        assert!(a.caller("c1").is_some());
        assert!(a.audit().is_empty(), "{:?}", a.audit());
    }
}
