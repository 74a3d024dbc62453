//! Failed-digest tracking per source IP → automatic ban decisions.
//! OWNER: helper "sip-core". Interface below is fixed; fill in the bodies.
//!
//! Each IP keeps the times of its recent failures (a sliding window of
//! `window_ms`). When `threshold` failures fall inside the window the IP is
//! banned for `base_ban_secs × multiplier^offenses` (capped at `max_ban_secs`),
//! its offense count goes up and the window is cleared. An IP that has not
//! failed for `remember_ms` (and is not banned) starts again from a clean slate,
//! whether or not [`FailureTracker::prune`] ran in between.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanPolicy {
    /// Failures within `window_ms` that trigger a ban (default 5).
    pub threshold: u32,
    pub window_ms: u64,
    /// First ban length (default 600 s); each repeat offense multiplies by `multiplier` up to `max_ban_secs`.
    pub base_ban_secs: u64,
    pub multiplier: u32,
    pub max_ban_secs: u64,
    /// How long an IP's offense history is remembered after its last failure (default 24 h).
    pub remember_ms: u64,
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy { threshold: 5, window_ms: 60_000, base_ban_secs: 600, multiplier: 2, max_ban_secs: 86_400, remember_ms: 86_400_000 }
    }
}

impl BanPolicy {
    /// Ban length for an IP that already has `offenses` previous bans.
    /// A `multiplier` of 0 is treated as 1 (bans never shrink); never exceeds `max_ban_secs`.
    pub fn ban_secs(&self, offenses: u32) -> u64 {
        let factor = u64::from(self.multiplier.max(1)).checked_pow(offenses).unwrap_or(u64::MAX);
        self.base_ban_secs.saturating_mul(factor).min(self.max_ban_secs)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRecord {
    pub failures: Vec<u64>,
    pub offenses: u32,
    pub banned_until_ms: u64,
    pub last_failure_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureTracker {
    pub ips: BTreeMap<String, IpRecord>,
}

fn remaining_secs(banned_until_ms: u64, now_ms: u64) -> Option<u64> {
    (banned_until_ms > now_ms).then(|| (banned_until_ms - now_ms).div_ceil(1000))
}

impl FailureTracker {
    /// Count a failed digest from `ip`. Returns `Some(ban_secs)` when this failure crosses the
    /// threshold (or the IP is already banned: the remaining seconds), `None` otherwise.
    pub fn record_failure(&mut self, ip: &str, now_ms: u64, policy: &BanPolicy) -> Option<u64> {
        let rec = self.ips.entry(ip.to_string()).or_default();
        if let Some(left) = remaining_secs(rec.banned_until_ms, now_ms) {
            // Failures while banned keep the history alive but do not extend the ban.
            rec.last_failure_ms = rec.last_failure_ms.max(now_ms);
            return Some(left);
        }
        if (rec.offenses > 0 || !rec.failures.is_empty()) && now_ms.saturating_sub(rec.last_failure_ms) > policy.remember_ms {
            *rec = IpRecord::default();
        }
        rec.failures.retain(|&t| now_ms.saturating_sub(t) < policy.window_ms);
        rec.failures.push(now_ms);
        rec.last_failure_ms = rec.last_failure_ms.max(now_ms);
        if rec.failures.len() as u64 >= u64::from(policy.threshold.max(1)) {
            let secs = policy.ban_secs(rec.offenses);
            rec.banned_until_ms = now_ms.saturating_add(secs.saturating_mul(1000));
            rec.offenses = rec.offenses.saturating_add(1);
            rec.failures.clear();
            return Some(secs);
        }
        None
    }
    /// Remaining ban seconds for `ip`, if banned.
    pub fn banned_for(&self, ip: &str, now_ms: u64) -> Option<u64> {
        self.ips.get(ip).and_then(|r| remaining_secs(r.banned_until_ms, now_ms))
    }
    /// Lift a ban / forget an IP (operator action).
    pub fn forget(&mut self, ip: &str) -> bool {
        self.ips.remove(ip).is_some()
    }
    /// Drop records older than the policy remembers.
    ///
    /// Removes IPs that are not banned and whose last failure is more than
    /// `remember_ms` ago, and trims failure times that left the window.
    pub fn prune(&mut self, now_ms: u64, policy: &BanPolicy) {
        self.ips.retain(|_, r| {
            let banned = r.banned_until_ms > now_ms;
            let keep = banned || now_ms.saturating_sub(r.last_failure_ms) <= policy.remember_ms;
            if keep {
                r.failures.retain(|&t| now_ms.saturating_sub(t) < policy.window_ms);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &str = "203.0.113.7";
    const T0: u64 = 1_700_000_000_000;
    const S: u64 = 1000;

    /// Virtual clock in ms.
    struct Clock(u64);
    impl Clock {
        fn advance(&mut self, ms: u64) -> u64 {
            self.0 += ms;
            self.0
        }
        fn clone_at(&self) -> Clock {
            Clock(self.0)
        }
    }

    fn fail_n(t: &mut FailureTracker, ip: &str, clock: &mut Clock, n: u32, step_ms: u64, p: &BanPolicy) -> Vec<Option<u64>> {
        (0..n).map(|_| t.record_failure(ip, clock.advance(step_ms), p)).collect()
    }

    #[test]
    fn four_failures_no_ban_fifth_bans_600s() {
        let p = BanPolicy::default();
        let mut t = FailureTracker::default();
        let mut c = Clock(T0);
        assert_eq!(fail_n(&mut t, IP, &mut c, 4, S, &p), vec![None; 4]);
        assert_eq!(t.banned_for(IP, c.0), None);
        assert_eq!(t.record_failure(IP, c.advance(S), &p), Some(600));
        assert_eq!(t.banned_for(IP, c.0), Some(600));
        let r = &t.ips[IP];
        assert_eq!((r.offenses, r.failures.len(), r.banned_until_ms), (1, 0, c.0 + 600 * S));
        // Another IP is unaffected.
        assert_eq!(t.banned_for("198.51.100.1", c.0), None);
        assert_eq!(t.record_failure("198.51.100.1", c.0, &p), None);
    }

    #[test]
    fn while_banned_returns_remaining_ceil() {
        let p = BanPolicy::default();
        let mut t = FailureTracker::default();
        let mut c = Clock(T0);
        fail_n(&mut t, IP, &mut c, 5, 10, &p);
        let start = c.0;
        assert_eq!(t.record_failure(IP, start + 1, &p), Some(600), "599.999 s rounds up");
        assert_eq!(t.record_failure(IP, start + 1000, &p), Some(599));
        assert_eq!(t.banned_for(IP, start + 599_001), Some(1));
        assert_eq!(t.banned_for(IP, start + 599_999), Some(1));
        assert_eq!(t.banned_for(IP, start + 600_000), None, "ban over exactly at its end");
        // Failures during the ban neither extend it nor count toward the next one.
        assert_eq!(t.ips[IP].offenses, 1);
        assert!(t.ips[IP].failures.is_empty());
        assert_eq!(t.ips[IP].banned_until_ms, start + 600_000);
        assert_eq!(t.ips[IP].last_failure_ms, start + 1000);
        // After the ban, a single failure does not re-ban.
        assert_eq!(t.record_failure(IP, start + 600_000, &p), None);
    }

    #[test]
    fn window_slides() {
        let p = BanPolicy::default();
        let mut t = FailureTracker::default();
        let mut c = Clock(T0);
        // One failure every 15 s: at most 4 fall inside any 60 s window.
        assert_eq!(fail_n(&mut t, IP, &mut c, 20, 15 * S, &p), vec![None; 20]);
        assert!(t.ips[IP].failures.len() <= 4);
        // One every 14.9 s: the 5th failure is 59.6 s after the 1st → ban.
        let mut t = FailureTracker::default();
        let got = fail_n(&mut t, IP, &mut c, 5, 14_900, &p);
        assert_eq!(got, vec![None, None, None, None, Some(600)]);
    }

    #[test]
    fn window_edge_is_exclusive() {
        let p = BanPolicy::default();
        let mut t = FailureTracker::default();
        for i in 0..4 {
            assert_eq!(t.record_failure(IP, T0 + i, &p), None);
        }
        // The failure at T0 is exactly window_ms old: it has left the window.
        assert_eq!(t.record_failure(IP, T0 + 60_000, &p), None);
        assert_eq!(t.ips[IP].failures.len(), 4);
        // T0+1 is 59.999 s old at T0+60_000: still in → this makes 5.
        assert_eq!(t.record_failure(IP, T0 + 60_000, &p), Some(600));
    }

    #[test]
    fn repeat_offender_escalates_and_caps() {
        // Remember for a week so that sitting out a 24 h ban in silence does not
        // wipe the history (with the default, remember_ms == max ban: see the next test).
        let p = BanPolicy { remember_ms: 7 * 86_400_000, ..BanPolicy::default() };
        let mut t = FailureTracker::default();
        let mut c = Clock(T0);
        let mut bans = Vec::new();
        for _ in 0..10 {
            let got = fail_n(&mut t, IP, &mut c, 5, S, &p);
            assert_eq!(&got[..4], &[None; 4]);
            let secs = got[4].expect("5th failure bans");
            bans.push(secs);
            c.advance(secs * S); // sit out the ban
            assert_eq!(t.banned_for(IP, c.0), None);
        }
        assert_eq!(bans, vec![600, 1200, 2400, 4800, 9600, 19_200, 38_400, 76_800, 86_400, 86_400]);
        assert_eq!(t.ips[IP].offenses, 10);
    }

    #[test]
    fn ban_secs_saturates() {
        let p = BanPolicy { multiplier: 10, max_ban_secs: u64::MAX, ..BanPolicy::default() };
        assert_eq!(p.ban_secs(0), 600);
        assert_eq!(p.ban_secs(2), 60_000);
        assert_eq!(p.ban_secs(100), u64::MAX, "no overflow panic");
        let p0 = BanPolicy { multiplier: 0, ..BanPolicy::default() };
        assert_eq!((p0.ban_secs(0), p0.ban_secs(3)), (600, 600));
        let mut t = FailureTracker::default();
        let huge = BanPolicy { threshold: 1, base_ban_secs: u64::MAX, max_ban_secs: u64::MAX, ..BanPolicy::default() };
        assert_eq!(t.record_failure(IP, T0, &huge), Some(u64::MAX));
        assert!(t.banned_for(IP, u64::MAX - 1).is_some());
        // threshold 0 behaves like 1.
        let mut t = FailureTracker::default();
        let p = BanPolicy { threshold: 0, ..BanPolicy::default() };
        assert_eq!(t.record_failure(IP, T0, &p), Some(600));
    }

    #[test]
    fn offenses_forgotten_after_remember_ms_even_without_prune() {
        let p = BanPolicy::default();
        let mut t = FailureTracker::default();
        let mut c = Clock(T0);
        assert_eq!(fail_n(&mut t, IP, &mut c, 5, S, &p)[4], Some(600));
        c.advance(600 * S);
        assert_eq!(fail_n(&mut t, IP, &mut c, 5, S, &p)[4], Some(1200));
        // Next failure 1 s short of remember_ms after the last one: still a repeat offender.
        c.advance(p.remember_ms - 2 * S);
        assert_eq!(fail_n(&mut t, IP, &mut c, 5, S, &p)[4], Some(2400));
        // Quiet for longer than remember_ms: clean slate.
        c.advance(2400 * S + p.remember_ms + 1);
        assert_eq!(fail_n(&mut t, IP, &mut c, 5, S, &p)[4], Some(600));
        assert_eq!(t.ips[IP].offenses, 1);
    }

    #[test]
    fn history_clock_runs_from_last_failure_not_ban_end() {
        // Documented policy: remember_ms counts from the last failure. A source that stays
        // silent through a ban at least as long as remember_ms comes back as a first offender;
        // one that keeps failing during the ban stays remembered.
        let p = BanPolicy { base_ban_secs: 86_400, ..BanPolicy::default() };
        let mut silent = FailureTracker::default();
        let mut noisy = FailureTracker::default();
        let mut c = Clock(T0);
        assert_eq!(fail_n(&mut silent, IP, &mut c.clone_at(), 5, S, &p)[4], Some(86_400));
        assert_eq!(fail_n(&mut noisy, IP, &mut c, 5, S, &p)[4], Some(86_400));
        let ban_end = c.0 + 86_400 * S;
        assert_eq!(noisy.record_failure(IP, ban_end - S, &p), Some(1));
        silent.prune(ban_end + 1, &p);
        noisy.prune(ban_end + 1, &p);
        assert!(!silent.ips.contains_key(IP));
        assert_eq!(noisy.ips[IP].offenses, 1);
    }

    #[test]
    fn forget_lifts_ban_and_history() {
        let p = BanPolicy::default();
        let mut t = FailureTracker::default();
        let mut c = Clock(T0);
        fail_n(&mut t, IP, &mut c, 5, S, &p);
        assert!(t.banned_for(IP, c.0).is_some());
        assert!(t.forget(IP));
        assert_eq!(t.banned_for(IP, c.0), None);
        assert!(!t.forget(IP), "second forget finds nothing");
        assert!(!t.forget("192.0.2.1"));
        // History is gone: the next ban is a first offense again.
        assert_eq!(fail_n(&mut t, IP, &mut c, 5, S, &p)[4], Some(600));
    }

    #[test]
    fn prune_drops_only_old_unbanned_records() {
        let p = BanPolicy { remember_ms: 3_600_000, ..BanPolicy::default() };
        let mut t = FailureTracker::default();
        t.record_failure("10.0.0.1", T0, &p); // old, never banned
        let long = BanPolicy { base_ban_secs: 7200, max_ban_secs: 7200, ..p.clone() };
        for i in 0..5 {
            t.record_failure("10.0.0.2", T0 + i, &long); // banned 2 h
        }
        t.record_failure("10.0.0.3", T0 + 3_000_000, &p); // recent
        let now = T0 + 3_600_001;
        t.prune(now, &p);
        assert!(!t.ips.contains_key("10.0.0.1"), "last failure older than remember_ms");
        assert!(t.ips.contains_key("10.0.0.2"), "still banned");
        assert!(t.ips.contains_key("10.0.0.3"), "recent");
        assert!(t.ips["10.0.0.3"].failures.is_empty(), "failure outside window trimmed");
        // Banned at T0+4 for 7200 s: 3_600_003 ms left at `now`, rounded up.
        assert_eq!(t.banned_for("10.0.0.2", now), Some(3601));
        // Exactly remember_ms old is kept; one ms more is dropped.
        t.prune(T0 + 3_000_000 + 3_600_000, &p);
        assert!(t.ips.contains_key("10.0.0.3"));
        t.prune(T0 + 3_000_000 + 3_600_001, &p);
        assert!(!t.ips.contains_key("10.0.0.3"));
        // Once the ban is over and remember_ms has passed, the banned IP goes too.
        t.prune(T0 + 7_200_005, &p);
        assert!(t.ips.is_empty());
    }

    #[test]
    fn serde_round_trip() {
        let p = BanPolicy::default();
        let mut t = FailureTracker::default();
        let mut c = Clock(T0);
        fail_n(&mut t, IP, &mut c, 7, S, &p);
        let json = serde_json::to_string(&t).unwrap();
        let back: FailureTracker = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        let pj: BanPolicy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(pj, p);
    }
}
