//! The relay's channel table (pure state machine; time is an argument, in Unix µs).
//!
//! It holds every live FreeSWITCH channel that belongs to a callplane dialog
//! (see [`super::dialog`]), grouped into dialogs by (account, Call-ID): several
//! channels may share one Call-ID (both ends of a SIP call looped through the same
//! switch, transcript 19). A dialog is `confirmed` once, on the first answer of any
//! of its channels, and `terminated` once, when its last channel hangs up.
//!
//! It is built from events and, after every (re)connection or missed events, rebuilt
//! from a snapshot (`api show channels as json` + `uuid_getvar`):
//!
//! 1. [`ChannelTable::begin_resync`] marks the table unsynced and remembers the event
//!    sequence number at that moment; the adapter then fetches the snapshot while
//!    events keep flowing through [`ChannelTable::on_event`].
//! 2. [`ChannelTable::apply_snapshot`] then removes channels that are not in the
//!    snapshot (they ended during the gap: their dialog is terminated with reason
//!    `local`) unless an event touched them after step 1, and adds channels the
//!    snapshot has and the table does not, unless they hung up meanwhile (a hangup
//!    seen in the last [`RECENT_HANGUP_US`]). FreeSWITCH's channel list is
//!    updated asynchronously, so both races are real.
//!
//! Only a synced table answers [`ChannelTable::reconcile_batches`]: a list built
//! while events may be missing would release leases of live calls.

use super::dialog::{self, DialogEvent, Identity, Ignore, Reason};
use crate::esl::Event;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// How long a hung-up channel UUID is remembered (against stale snapshot rows).
pub const RECENT_HANGUP_US: u64 = 300 * 1_000_000;
/// Bound on remembered ignored / hung-up UUIDs.
const MAX_REMEMBERED: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// POST this to `/presence/event`.
    Dialog(DialogEvent),
    /// A channel seen for the first time that is not relayed (log at debug).
    Ignored { uuid: String, why: Ignore },
}

type Key = (String, String); // (account, call id)

#[derive(Debug, Clone)]
struct Chan {
    key: Key,
    last_seq: u64,
}

#[derive(Debug, Clone, Default)]
struct Dialog {
    channels: BTreeSet<String>,
    confirmed: bool,
    answered_at: Option<u64>,
    from: String,
    to: String,
}

/// One live channel as the resync snapshot found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapChannel {
    pub uuid: String,
    /// `None` for channels the table already knows (nothing was fetched) and for
    /// channels that are not callplane dialogs.
    pub identity: Option<Identity>,
    /// `callstate` ACTIVE / HELD / UNHELD.
    pub answered: bool,
}

/// Handed out by [`ChannelTable::begin_resync`]; only the latest one applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncTicket {
    pub generation: u64,
    /// UUIDs already in the table: the snapshot needs no `uuid_getvar` for them.
    pub known: HashSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleSnapshot;

#[derive(Debug, Default)]
pub struct ChannelTable {
    channels: HashMap<String, Chan>,
    dialogs: BTreeMap<Key, Dialog>,
    ignored: HashSet<String>,
    recent_hangups: VecDeque<(u64, String)>,
    recent_set: HashSet<String>,
    seq: u64,
    generation: u64,
    resync_start: Option<u64>,
    synced: bool,
    /// Accounts whose last dialog ended since the last reconcile batch.
    idle_accounts: BTreeSet<String>,
}

impl ChannelTable {
    pub fn new() -> ChannelTable {
        ChannelTable::default()
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }
    /// Live Call-IDs of one account, sorted.
    pub fn live_call_ids(&self, account: &str) -> Vec<String> {
        self.dialogs.keys().filter(|(a, _)| a == account).map(|(_, c)| c.clone()).collect()
    }

    /// The link dropped: events may be missed from now on until the next snapshot.
    pub fn mark_unsynced(&mut self) {
        self.synced = false;
        self.generation += 1;
        self.resync_start = None;
    }

    pub fn begin_resync(&mut self) -> ResyncTicket {
        self.synced = false;
        self.generation += 1;
        self.resync_start = Some(self.seq);
        ResyncTicket { generation: self.generation, known: self.channels.keys().cloned().collect() }
    }

    /// Apply one channel event. `now_us` prunes the recent-hangup memory.
    pub fn on_event(&mut self, ev: &Event, now_us: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(name) = ev.name() else { return out };
        if !name.starts_with("CHANNEL_") || name == "CHANNEL_UUID" {
            // CHANNEL_UUID renames a channel before CHANNEL_CREATE; nothing to track yet.
            return out;
        }
        let Some(uuid) = ev.unique_id().map(str::to_string) else { return out };
        self.seq += 1;
        self.prune(now_us);
        let ending = matches!(name, "CHANNEL_HANGUP_COMPLETE" | "CHANNEL_DESTROY");
        if !self.channels.contains_key(&uuid) && self.recent_set.contains(&uuid) {
            // After its hangup a channel still sends CHANNEL_DESTROY / CHANNEL_STATE:
            // it must not come back.
            return out;
        }
        if ending {
            self.remember_hangup(&uuid, now_us);
        }
        if !self.channels.contains_key(&uuid) {
            match dialog::event_identity(ev) {
                Ok(id) => {
                    self.ignored.remove(&uuid);
                    let (from, to) = dialog::from_to(ev);
                    self.insert(&uuid, id, from, to);
                }
                Err(why) => {
                    if ending {
                        self.ignored.remove(&uuid);
                    } else if self.ignored.len() < MAX_REMEMBERED && self.ignored.insert(uuid.clone()) {
                        out.push(Effect::Ignored { uuid, why });
                    }
                    return out;
                }
            }
        }
        let seq = self.seq;
        let chan = self.channels.get_mut(&uuid).expect("inserted above");
        chan.last_seq = seq;
        let key = chan.key.clone();
        let answered = dialog::answered_at(ev).or_else(|| (name == "CHANNEL_ANSWER").then(|| dialog::micros(ev, "Event-Date-Timestamp")).flatten());
        if let Some(at) = answered {
            let d = self.dialogs.get_mut(&key).expect("dialog of a live channel");
            d.answered_at = Some(d.answered_at.map_or(at, |x| x.min(at)));
            // A hangup of a call never seen answered (events missed) terminates it
            // with its duration; a `confirmed` right before would say nothing more.
            if !d.confirmed && !ending {
                d.confirmed = true;
                out.push(Effect::Dialog(DialogEvent::confirmed(&key.0, &key.1, &d.from, &d.to)));
            }
        }
        if ending {
            self.channels.remove(&uuid);
            let d = self.dialogs.get_mut(&key).expect("dialog of a live channel");
            d.channels.remove(&uuid);
            if d.channels.is_empty() {
                let d = self.dialogs.remove(&key).expect("present");
                let answered = d.confirmed || d.answered_at.is_some();
                let reason = dialog::hangup_reason(ev.get("Hangup-Cause"), answered);
                let duration = if answered { dialog::duration_secs(d.answered_at, dialog::hangup_at(ev)) } else { 0 };
                out.push(Effect::Dialog(DialogEvent::terminated(&key.0, &key.1, &d.from, &d.to, reason, duration)));
                self.account_maybe_idle(&key.0);
            }
        }
        out
    }

    /// Apply the snapshot fetched for `generation`. `gap_started_us`: when the link
    /// dropped (vanished calls get a duration up to then: a lower bound).
    pub fn apply_snapshot(&mut self, generation: u64, snapshot: &[SnapChannel], now_us: u64, gap_started_us: Option<u64>) -> Result<Vec<Effect>, StaleSnapshot> {
        if generation != self.generation {
            return Err(StaleSnapshot);
        }
        let Some(start) = self.resync_start else { return Err(StaleSnapshot) };
        self.prune(now_us);
        let mut out = Vec::new();
        let live: HashSet<&str> = snapshot.iter().map(|s| s.uuid.as_str()).collect();
        let vanished: Vec<String> =
            self.channels.iter().filter(|(u, c)| !live.contains(u.as_str()) && c.last_seq <= start).map(|(u, _)| u.clone()).collect();
        let ended_at = gap_started_us.unwrap_or(now_us).min(now_us);
        for uuid in vanished {
            let chan = self.channels.remove(&uuid).expect("listed");
            let d = self.dialogs.get_mut(&chan.key).expect("dialog of a live channel");
            d.channels.remove(&uuid);
            if d.channels.is_empty() {
                let d = self.dialogs.remove(&chan.key).expect("present");
                let duration = dialog::duration_secs(d.answered_at, Some(ended_at));
                out.push(Effect::Dialog(DialogEvent::terminated(&chan.key.0, &chan.key.1, &d.from, &d.to, Reason::Local, duration)));
                self.account_maybe_idle(&chan.key.0);
            }
        }
        for s in snapshot {
            let Some(id) = &s.identity else { continue };
            if self.channels.contains_key(&s.uuid) || self.recent_set.contains(&s.uuid) {
                continue;
            }
            self.insert(&s.uuid, id.clone(), String::new(), String::new());
            if s.answered {
                let key = (id.account_id.clone(), id.call_id.clone());
                let d = self.dialogs.get_mut(&key).expect("inserted");
                if !d.confirmed {
                    d.confirmed = true;
                    // Answer time unknown: the duration of a later vanish counts from now.
                    d.answered_at.get_or_insert(now_us);
                    out.push(Effect::Dialog(DialogEvent::confirmed(&key.0, &key.1, "", "")));
                }
            }
        }
        self.synced = true;
        self.resync_start = None;
        Ok(out)
    }

    /// Per account, the Call-IDs to send to `/cac/reconcile`: every account with a
    /// live dialog, plus (once, with an empty list) every account whose last dialog
    /// ended since the previous batch. `None` while the table is not synced.
    pub fn reconcile_batches(&mut self) -> Option<Vec<(String, Vec<String>)>> {
        if !self.synced {
            return None;
        }
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (a, c) in self.dialogs.keys() {
            by.entry(a.clone()).or_default().push(c.clone());
        }
        for a in std::mem::take(&mut self.idle_accounts) {
            by.entry(a).or_default();
        }
        Some(by.into_iter().collect())
    }

    fn insert(&mut self, uuid: &str, id: Identity, from: String, to: String) {
        let key = (id.account_id, id.call_id);
        self.idle_accounts.remove(&key.0);
        let d = self.dialogs.entry(key.clone()).or_default();
        d.channels.insert(uuid.to_string());
        if d.from.is_empty() {
            d.from = from;
        }
        if d.to.is_empty() {
            d.to = to;
        }
        self.channels.insert(uuid.to_string(), Chan { key, last_seq: self.seq });
    }

    fn account_maybe_idle(&mut self, account: &str) {
        if !self.dialogs.keys().any(|(a, _)| a == account) {
            self.idle_accounts.insert(account.to_string());
        }
    }

    fn remember_hangup(&mut self, uuid: &str, now_us: u64) {
        if self.recent_set.insert(uuid.to_string()) {
            self.recent_hangups.push_back((now_us, uuid.to_string()));
        }
        while self.recent_hangups.len() > MAX_REMEMBERED {
            if let Some((_, u)) = self.recent_hangups.pop_front() {
                self.recent_set.remove(&u);
            }
        }
    }

    fn prune(&mut self, now_us: u64) {
        while let Some((t, _)) = self.recent_hangups.front() {
            if now_us.saturating_sub(*t) <= RECENT_HANGUP_US {
                break;
            }
            let (_, u) = self.recent_hangups.pop_front().expect("front");
            self.recent_set.remove(&u);
        }
    }
}
