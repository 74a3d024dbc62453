//! Matching waiting callers with free agents.
//!
//! Callers are served in one ACD-wide order (priority, then arrival), whatever their queue,
//! so an agent in several queues takes the most urgent caller among them. For each caller
//! the eligible agents are the free members of its queue whose tier the caller's wait has
//! reached; the queue's strategy picks among them (every strategy but `ring_all` only looks
//! at the lowest eligible tier).
//!
//! Cost per call: O(agents × memberships) to list the free agents, then one pass over the
//! waiting callers that stops as soon as every free agent is taken, skips callers already
//! ringing, and skips in O(log n) every caller of a queue once a caller of that queue who
//! waited at least as long found nobody (a shorter wait can only make fewer tiers eligible,
//! and agents only get taken during the pass). With nobody free it returns at once,
//! whatever the number of callers.

use super::*;

/// A free member of one queue, with what the strategies look at.
#[derive(Debug, Clone)]
struct Cand {
    user: String,
    tier: u32,
    position: u32,
    /// Wait a caller needs before this tier is eligible.
    tier_wait_ms: u64,
    idle_since_ms: u64,
    calls_taken: u64,
    talk_time_ms: u64,
}

impl Acd {
    /// Make the offers that can be made now: each goes to one agent (or, for `ring_all`, to
    /// every eligible agent). The agents are reserved and the caller marked ringing until
    /// `confirm`/`claim`, `offer_failed`, the caller leaving, or the offer timeout.
    pub fn dispatch(&mut self, now_ms: u64) -> Vec<Offer> {
        if self.callers.is_empty() {
            return Vec::new();
        }
        let mut free = 0usize;
        let mut by_queue: BTreeMap<&str, Vec<Cand>> = BTreeMap::new();
        for a in self.agents.values().filter(|a| a.is_free(now_ms)) {
            free += 1;
            for m in &a.memberships {
                let Some(q) = self.queues.get(&m.queue) else { continue };
                by_queue.entry(q.config.id.as_str()).or_default().push(Cand {
                    user: a.user_id.clone(),
                    tier: m.tier,
                    position: m.position,
                    tier_wait_ms: q.config.tier_wait_ms(m.tier),
                    idle_since_ms: a.idle_since_ms,
                    calls_taken: a.calls_taken,
                    talk_time_ms: a.talk_time_ms,
                });
            }
        }
        if free == 0 || by_queue.is_empty() {
            return Vec::new();
        }
        for list in by_queue.values_mut() {
            list.sort_by(|a, b| (a.tier, a.position, &a.user).cmp(&(b.tier, b.position, &b.user)));
        }

        let mut rng = self.meta.rng;
        let mut rr: BTreeMap<String, Option<(u32, String)>> = BTreeMap::new();
        let mut taken: BTreeSet<String> = BTreeSet::new();
        // queue → earliest arrival of a caller of that queue who found nobody eligible.
        let mut blocked: BTreeMap<&str, u64> = BTreeMap::new();
        let mut plans: Vec<(String, Vec<String>)> = Vec::new();
        for key in &self.idx.all {
            if taken.len() >= free {
                break;
            }
            let c = &self.callers[&key.2];
            if c.offer.is_some() {
                continue;
            }
            let Some(cands) = by_queue.get(c.queue.as_str()) else { continue };
            if blocked.get(c.queue.as_str()).is_some_and(|&t| c.enqueued_at_ms >= t) {
                continue;
            }
            let wait = now_ms.saturating_sub(c.enqueued_at_ms);
            let eligible: Vec<&Cand> = cands.iter().filter(|x| x.tier_wait_ms <= wait && !taken.contains(&x.user)).collect();
            if eligible.is_empty() {
                let t = blocked.entry(c.queue.as_str()).or_insert(c.enqueued_at_ms);
                *t = (*t).min(c.enqueued_at_ms);
                continue;
            }
            let q = &self.queues[&c.queue];
            let picked: Vec<String> = if q.config.strategy == Strategy::RingAll {
                eligible.iter().map(|x| x.user.clone()).collect()
            } else {
                let lowest = eligible[0].tier;
                let tier: Vec<&Cand> = eligible.into_iter().take_while(|x| x.tier == lowest).collect();
                let p = if q.config.strategy == Strategy::RoundRobin {
                    let cursor = rr.entry(c.queue.clone()).or_insert_with(|| q.rr_last.clone());
                    let p = pick(Strategy::RoundRobin, &tier, cursor, &mut rng);
                    *cursor = Some((p.position, p.user.clone()));
                    p
                } else {
                    pick(q.config.strategy, &tier, &None, &mut rng)
                };
                vec![p.user.clone()]
            };
            taken.extend(picked.iter().cloned());
            plans.push((c.call_id.clone(), picked));
        }
        if self.meta.rng != rng {
            self.meta.rng = rng;
            self.dirty.insert(Key::Meta);
        }
        for (queue, cursor) in rr {
            if self.queues[&queue].rr_last != cursor {
                self.queue_mut(&queue).expect("queue").rr_last = cursor;
            }
        }
        let offers: Vec<Offer> = plans.into_iter().map(|(call, agents)| self.make_offer(&call, agents, now_ms)).collect();
        if !offers.is_empty() {
            self.settle(now_ms);
        }
        offers
    }

    fn make_offer(&mut self, call_id: &str, agents: Vec<String>, now_ms: u64) -> Offer {
        let epoch = self.next_seq();
        let r = self.next_random();
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&r.to_le_bytes());
        random[8..].copy_from_slice(&(epoch as u16).to_le_bytes());
        let lease_id = crate::typeid::new("lease", now_ms, random);
        let queue = self.callers[call_id].queue.clone();
        let cfg = &self.queues[&queue].config;
        let offer = Offer {
            lease_id: lease_id.clone(),
            epoch,
            call_id: call_id.to_string(),
            queue: queue.clone(),
            ring_all: cfg.strategy == Strategy::RingAll,
            offered_at_ms: now_ms,
            timeout_secs: cfg.offer_timeout_secs,
            expires_at_ms: now_ms.saturating_add(u64::from(cfg.offer_timeout_secs) * 1000 + CONFIRM_GRACE_MS),
            agents,
        };
        for ag in &offer.agents {
            let a = self.agent_mut(ag).expect("free agent");
            a.activity = Activity::Offered { lease_id: lease_id.clone(), call_id: call_id.to_string(), queue: queue.clone(), since_ms: now_ms };
            a.last_offer_ms = Some(now_ms);
        }
        let c = self.caller_mut(call_id).expect("caller");
        c.offer = Some(lease_id);
        c.offers += 1;
        self.queue_mut(&queue).expect("queue").counters.offers += 1;
        self.insert_offer(offer.clone());
        offer
    }
}

/// One agent among `tier` (non-empty, sorted by (tier, position, user)) by `strategy`.
fn pick<'a>(strategy: Strategy, tier: &[&'a Cand], rr_last: &Option<(u32, String)>, rng: &mut u64) -> &'a Cand {
    // Ties of the numeric strategies go to the longest idle, then (position, user) order.
    let by = |f: &dyn Fn(&Cand) -> (u64, u64)| -> &'a Cand {
        let mut best = tier[0];
        for &x in &tier[1..] {
            if f(x) < f(best) {
                best = x;
            }
        }
        best
    };
    match strategy {
        Strategy::TopDown | Strategy::RingAll => tier[0],
        Strategy::LongestIdle => by(&|x| (x.idle_since_ms, 0)),
        Strategy::FewestCalls => by(&|x| (x.calls_taken, x.idle_since_ms)),
        Strategy::LeastTalkTime => by(&|x| (x.talk_time_ms, x.idle_since_ms)),
        Strategy::RoundRobin => match rr_last {
            Some((pos, user)) => tier.iter().copied().find(|x| (x.position, &x.user) > (*pos, user)).unwrap_or(tier[0]),
            None => tier[0],
        },
        Strategy::Random => tier[(splitmix64(rng) % tier.len() as u64) as usize],
    }
}
