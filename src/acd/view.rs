//! Read-only views: `GET /agent`, `GET /presence/users` (roster + tiles), a caller's place
//! in line (position announcements, polled by the media engine), and queue summaries.

use super::*;

/// What the agent is doing, under its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum AgentStateView {
    /// Not reserved, not talking (may be skipped for a while after a missed offer: `skippedUntilMs`).
    Idle {
        skipped_until_ms: Option<u64>,
    },
    /// Its phone rings for a queue caller.
    Ringing {
        call_id: String,
        queue: String,
        lease_id: String,
        since_ms: u64,
        until_ms: u64,
    },
    InCall {
        call_id: String,
        queue: String,
        since_ms: u64,
    },
    WrapUp {
        call_id: String,
        queue: String,
        until_ms: u64,
    },
}

/// `GET /agent?accountId=&userId=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    pub user_id: String,
    /// logged_out | available | paused | on_call | wrap_up
    pub status: Status,
    /// Pause reason (status paused, or a pause pending after the call).
    pub reason: Option<String>,
    pub status_since_ms: u64,
    pub state: AgentStateView,
    /// The status the agent chose for after the current call / wrap-up (paused,
    /// logged_out), when it differs from available.
    pub after_call: Option<Status>,
    /// A live registration exists for one of the user's devices.
    pub reachable: bool,
    pub queues: Vec<Membership>,
    pub logged_in_at_ms: Option<u64>,
    pub idle_since_ms: Option<u64>,
    pub last_call_end_ms: Option<u64>,
    pub calls_taken: u64,
    pub talk_time_ms: u64,
    pub no_answers: u64,
    pub consecutive_no_answers: u32,
}

/// A user of the account's roster (from D1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterUser {
    pub user_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub extension: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPresence {
    pub user_id: String,
    pub name: String,
    pub extension: String,
    pub agent: AgentView,
}

/// Status-count tiles: `loggedOut + available + paused + onCall + wrapUp == total`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tiles {
    pub total: u64,
    pub logged_out: u64,
    pub available: u64,
    pub paused: u64,
    pub on_call: u64,
    pub wrap_up: u64,
    /// Available agents whose phone rings for a queue caller (included in `available`).
    pub ringing: u64,
    /// Logged-in agents without a live registration.
    pub unreachable: u64,
    /// Callers waiting in all queues.
    pub waiting: u64,
    pub longest_wait_ms: u64,
}

/// One queue on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub queue: String,
    pub strategy: Strategy,
    pub waiting: u64,
    /// Waiting callers with an offer ringing.
    pub ringing: u64,
    pub longest_wait_ms: u64,
    /// Logged-in members / members free to take a call now.
    pub agents_logged_in: u64,
    pub agents_free: u64,
    pub agents_on_call: u64,
    pub counters: QueueCounters,
}

/// `GET /presence/users?accountId=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceUsers {
    pub users: Vec<UserPresence>,
    pub tiles: Tiles,
    pub queues: Vec<QueueView>,
}

/// Where a call stands in the ACD (position announcements, and the media engine's poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum CallerStatus {
    /// In line at `position` (1-based) of `waiting`; `ringing` while an offer is out.
    Waiting { queue: String, position: usize, waiting: usize, waited_ms: u64, priority: u32, ringing: bool, deadline_ms: Option<u64> },
    /// Talking to `agent`.
    Connected { queue: String, agent: String, since_ms: u64 },
    /// Left the queue (remembered for a while): the flow's `queue:<outcome>`.
    Left { queue: String, outcome: ExitOutcome, agent: Option<String>, wait_ms: u64 },
}

impl Acd {
    /// `GET /agent`: a user never seen is logged out and unreachable.
    pub fn agent_view(&self, user_id: &str, now_ms: u64) -> AgentView {
        match self.agents.get(user_id) {
            Some(a) => self.view_of(a, now_ms),
            None => self.view_of(&Agent::new(user_id), now_ms),
        }
    }

    fn view_of(&self, a: &Agent, now_ms: u64) -> AgentView {
        let status = a.derived_status();
        let state = match &a.activity {
            Activity::Idle => AgentStateView::Idle { skipped_until_ms: a.penalty_until_ms.filter(|&t| t > now_ms && a.is_logged_in()) },
            Activity::Offered { lease_id, call_id, queue, since_ms } => AgentStateView::Ringing {
                call_id: call_id.clone(),
                queue: queue.clone(),
                lease_id: lease_id.clone(),
                since_ms: *since_ms,
                until_ms: self.offers.get(lease_id).map_or(*since_ms, |o| o.expires_at_ms),
            },
            Activity::OnCall { call_id, queue, since_ms, .. } => AgentStateView::InCall { call_id: call_id.clone(), queue: queue.clone(), since_ms: *since_ms },
            Activity::WrapUp { call_id, queue, until_ms } => AgentStateView::WrapUp { call_id: call_id.clone(), queue: queue.clone(), until_ms: *until_ms },
        };
        let busy = matches!(status, Status::OnCall | Status::WrapUp);
        let after_call = match (&a.presence, busy) {
            (Presence::Paused { .. }, true) => Some(Status::Paused),
            (Presence::LoggedOut, true) => Some(Status::LoggedOut),
            _ => None,
        };
        AgentView {
            user_id: a.user_id.clone(),
            status,
            reason: a.pause_reason().map(str::to_string),
            status_since_ms: a.status_since_ms,
            state,
            after_call,
            reachable: a.reachable,
            queues: a.memberships.clone(),
            logged_in_at_ms: a.logged_in_at_ms.filter(|_| a.is_logged_in()),
            idle_since_ms: (status == Status::Available).then_some(a.idle_since_ms),
            last_call_end_ms: a.last_call_end_ms,
            calls_taken: a.calls_taken,
            talk_time_ms: a.talk_time_ms,
            no_answers: a.no_answers,
            consecutive_no_answers: a.consecutive_no_answers,
        }
    }

    /// `GET /presence/users`: the roster in its order (users the ACD never saw are logged
    /// out), then agents the ACD knows but the roster does not list; tiles; queues.
    pub fn presence_users(&self, roster: &[RosterUser], now_ms: u64) -> PresenceUsers {
        let mut users: Vec<UserPresence> = Vec::with_capacity(roster.len());
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for u in roster {
            if !seen.insert(u.user_id.as_str()) {
                continue;
            }
            users.push(UserPresence {
                user_id: u.user_id.clone(),
                name: u.name.clone(),
                extension: u.extension.clone(),
                agent: self.agent_view(&u.user_id, now_ms),
            });
        }
        for a in self.agents.values().filter(|a| !seen.contains(a.user_id.as_str())) {
            users.push(UserPresence { user_id: a.user_id.clone(), name: String::new(), extension: String::new(), agent: self.view_of(a, now_ms) });
        }
        let mut tiles = Tiles { total: users.len() as u64, ..Default::default() };
        for u in &users {
            match u.agent.status {
                Status::LoggedOut => tiles.logged_out += 1,
                Status::Available => tiles.available += 1,
                Status::Paused => tiles.paused += 1,
                Status::OnCall => tiles.on_call += 1,
                Status::WrapUp => tiles.wrap_up += 1,
            }
            if matches!(u.agent.state, AgentStateView::Ringing { .. }) {
                tiles.ringing += 1;
            }
            if u.agent.status != Status::LoggedOut && !u.agent.reachable {
                tiles.unreachable += 1;
            }
        }
        tiles.waiting = self.callers.len() as u64;
        tiles.longest_wait_ms = self.callers.values().map(|c| now_ms.saturating_sub(c.enqueued_at_ms)).max().unwrap_or(0);
        PresenceUsers { users, tiles, queues: self.queue_views(now_ms) }
    }

    /// Every queue's live summary.
    pub fn queue_views(&self, now_ms: u64) -> Vec<QueueView> {
        self.queues
            .values()
            .map(|q| {
                let id = q.config.id.as_str();
                let waiting: Vec<&Caller> = self.waiting_in(id).collect();
                let members = self.agents.values().filter(|a| a.membership(id).is_some());
                let (mut logged_in, mut free, mut on_call) = (0, 0, 0);
                for a in members {
                    logged_in += u64::from(a.is_logged_in());
                    free += u64::from(a.is_free(now_ms));
                }
                for a in self.agents.values() {
                    if matches!(&a.activity, Activity::OnCall { queue, .. } if queue == id) {
                        on_call += 1;
                    }
                }
                QueueView {
                    queue: id.to_string(),
                    strategy: q.config.strategy,
                    waiting: waiting.len() as u64,
                    ringing: waiting.iter().filter(|c| c.offer.is_some()).count() as u64,
                    longest_wait_ms: waiting.iter().map(|c| now_ms.saturating_sub(c.enqueued_at_ms)).max().unwrap_or(0),
                    agents_logged_in: logged_in,
                    agents_free: free,
                    agents_on_call: on_call,
                    counters: q.counters.clone(),
                }
            })
            .collect()
    }

    /// Where a call stands: waiting (with its position), connected, or recently left.
    pub fn position(&self, call_id: &str, now_ms: u64) -> Option<CallerStatus> {
        if let Some(c) = self.callers.get(call_id) {
            return Some(CallerStatus::Waiting {
                queue: c.queue.clone(),
                position: self.position_of(c),
                waiting: self.waiting_count(&c.queue),
                waited_ms: now_ms.saturating_sub(c.enqueued_at_ms),
                priority: c.priority,
                ringing: c.offer.is_some(),
                deadline_ms: c.deadline_ms,
            });
        }
        if let Some(a) = self.agent_on_call(call_id) {
            if let Activity::OnCall { queue, since_ms, .. } = &a.activity {
                return Some(CallerStatus::Connected { queue: queue.clone(), agent: a.user_id.clone(), since_ms: *since_ms });
            }
        }
        self.exits.get(call_id).map(|e| CallerStatus::Left { queue: e.queue.clone(), outcome: e.outcome, agent: e.agent.clone(), wait_ms: e.wait_ms })
    }
}
