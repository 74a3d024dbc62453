//! A call's trace: the ordered timeline a support engineer reads to learn what happened to a
//! call — the /auth and /route decisions (with the rule that matched), each flow command and
//! outcome with step latency, media uploads, errors, and the final disposition.
//! Pure: the call Durable Object appends entries and renders them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Entries kept per call; beyond this the oldest non-decision entries are dropped and counted.
pub const MAX_ENTRIES: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub at_ms: u64,
    /// auth | route | dialog | disposition | media | flow.start | flow.command | flow.outcome |
    /// flow.node | flow.replay | error
    pub kind: String,
    /// One line a human reads.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
}

impl Trace {
    pub fn new(call_id: &str) -> Trace {
        Trace { call_id: call_id.to_string(), ..Default::default() }
    }

    /// Append keeping time order (entries from different writers may arrive slightly out of order)
    /// and the size bound.
    pub fn push(&mut self, e: Entry) {
        if self.account_id.is_none() {
            if let Some(a) = e.detail.get("accountId").and_then(Value::as_str) {
                self.account_id = Some(a.to_string());
            }
        }
        if e.kind == "disposition" {
            self.disposition = Some(e.summary.clone());
        }
        let pos = self.entries.partition_point(|x| x.at_ms <= e.at_ms);
        self.entries.insert(pos, e);
        while self.entries.len() > MAX_ENTRIES {
            // Keep the decisions and the end; drop the oldest flow chatter first.
            let victim = self.entries.iter().position(|x| !matches!(x.kind.as_str(), "auth" | "route" | "disposition")).unwrap_or(0);
            self.entries.remove(victim);
            self.dropped += 1;
        }
    }

    /// The timeline as plain text, one line per entry, times relative to the first entry.
    pub fn render_text(&self) -> String {
        let t0 = self.entries.first().map_or(0, |e| e.at_ms);
        let mut out = format!("call {}", self.call_id);
        if let Some(a) = &self.account_id {
            out.push_str(&format!(" (account {a})"));
        }
        out.push('\n');
        for e in &self.entries {
            let lat = e.latency_ms.map(|l| format!(" [{l} ms]")).unwrap_or_default();
            out.push_str(&format!("+{:>8.3}s  {:<13} {}{}\n", (e.at_ms - t0) as f64 / 1000.0, e.kind, e.summary, lat));
        }
        if self.dropped > 0 {
            out.push_str(&format!("({} older entries dropped)\n", self.dropped));
        }
        out.push_str(&format!("disposition: {}\n", self.disposition.as_deref().unwrap_or("in progress")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(at: u64, kind: &str, summary: &str) -> Entry {
        Entry { at_ms: at, kind: kind.into(), summary: summary.into(), detail: Value::Null, latency_ms: None }
    }

    #[test]
    fn entries_stay_in_time_order_and_account_is_learned() {
        let mut t = Trace::new("c1");
        t.push(e(20, "route", "flow"));
        let mut a = e(10, "auth", "carrier trusted");
        a.detail = serde_json::json!({"accountId": "acc_1"});
        t.push(a);
        t.push(e(30, "disposition", "completed: hangup by caller"));
        assert_eq!(t.entries.iter().map(|x| x.at_ms).collect::<Vec<_>>(), vec![10, 20, 30]);
        assert_eq!(t.account_id.as_deref(), Some("acc_1"));
        assert_eq!(t.disposition.as_deref(), Some("completed: hangup by caller"));
        let text = t.render_text();
        assert!(text.starts_with("call c1 (account acc_1)\n"));
        assert!(text.contains("+   0.010s  route"));
        assert!(text.ends_with("disposition: completed: hangup by caller\n"));
    }

    #[test]
    fn bounded_keeping_decisions() {
        let mut t = Trace::new("c1");
        t.push(e(0, "auth", "ok"));
        t.push(e(1, "route", "flow"));
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            t.push(e(2 + i, "flow.command", "play"));
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        assert_eq!(t.dropped, 12);
        assert_eq!(t.entries[0].kind, "auth");
        assert_eq!(t.entries[1].kind, "route");
    }
}
