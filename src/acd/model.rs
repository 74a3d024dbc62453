//! The ACD's records: queue configuration (from D1), agents, waiting callers, offers and
//! recent exits. Plain serde structs; every time is Unix epoch milliseconds.

use serde::{Deserialize, Serialize};

/// Longest queue id (same alphabet as flow ids: `A-Z a-z 0-9 _ -`).
pub const MAX_QUEUE_ID_LEN: usize = 64;
/// Longest `callId` (a SIP Call-ID).
pub const MAX_CALL_ID_LEN: usize = 256;
/// Longest user id.
pub const MAX_USER_ID_LEN: usize = 64;
/// Longest pause reason.
pub const MAX_REASON_LEN: usize = 64;
/// Longest hold-music media key.
pub const MAX_MEDIA_KEY_LEN: usize = 256;
/// Most queue memberships one agent may have.
pub const MAX_MEMBERSHIPS: usize = 64;
/// Most tier rules of a queue.
pub const MAX_TIER_RULES: usize = 16;
/// Highest tier level.
pub const MAX_TIER_LEVEL: u32 = 99;

/// `[A-Za-z0-9_-]{1,max}`.
pub fn is_ident(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Non-empty, at most `max` bytes, no control characters.
pub fn is_printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// How a queue chooses among the agents eligible for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Ring every eligible agent (all eligible tiers); the first to answer (`claim`) wins.
    RingAll,
    /// The agent idle the longest (since their last call's wrap-up ended, login or unpause).
    #[default]
    LongestIdle,
    /// Rotate through the members in (position, user id) order, starting after the last one offered.
    RoundRobin,
    /// Always the first member in (tier, position, user id) order.
    TopDown,
    /// The agent who answered the fewest calls this session (since login); ties → longest idle.
    FewestCalls,
    /// The agent with the least talk time this session (since login); ties → longest idle.
    LeastTalkTime,
    /// Uniformly at random, from the ACD's seeded generator (deterministic given its state).
    Random,
}

impl Strategy {
    pub const ALL: [Strategy; 7] =
        [Strategy::RingAll, Strategy::LongestIdle, Strategy::RoundRobin, Strategy::TopDown, Strategy::FewestCalls, Strategy::LeastTalkTime, Strategy::Random];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RingAll => "ring_all",
            Strategy::LongestIdle => "longest_idle",
            Strategy::RoundRobin => "round_robin",
            Strategy::TopDown => "top_down",
            Strategy::FewestCalls => "fewest_calls",
            Strategy::LeastTalkTime => "least_talk_time",
            Strategy::Random => "random",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Tier escalation: agents of tier `level` (and higher levels without a rule of their own)
/// may be offered a caller once the caller has waited `afterSecs`. The wait required for
/// level L is the largest `afterSecs` among rules with `level <= L` (0 without any), so it
/// never decreases with the level. Among the eligible agents, lower levels are preferred
/// by every strategy but `ring_all`, which rings all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierRule {
    pub level: u32,
    pub after_secs: u32,
}

/// A queue as configured in D1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueConfig {
    pub id: String,
    pub strategy: Strategy,
    pub tiers: Vec<TierRule>,
    /// How long one offer rings (1-600 s). The lease stays confirmable for
    /// [`CONFIRM_GRACE_MS`](super::CONFIRM_GRACE_MS) more, to absorb hook latency.
    pub offer_timeout_secs: u32,
    /// Wrap-up after a queue call (0-3600 s; 0 = straight back to available).
    pub wrap_up_secs: u32,
    /// An agent who lets an offer ring out (or rejects it) is skipped by every queue for
    /// this long (0-3600 s). See `docs/acd.md` for the ring_all rule.
    pub no_answer_penalty_secs: u32,
    /// After this many consecutive unanswered single-agent offers the agent is paused with
    /// reason `no_answer` (0 = never).
    pub max_no_answer: u32,
    /// Longest a caller waits before leaving with `queue:timeout` (None = no queue limit;
    /// the flow's own limit, if given at enqueue, still applies). 1-86400 s.
    pub max_wait_secs: Option<u32>,
    /// Most callers waiting (None = only the account-wide cap; 0 = closed).
    pub max_size: Option<u32>,
    /// Media key of the hold music (passed through to the flow).
    pub hold_music: Option<String>,
    /// Announce the caller's position every N seconds (15-3600; passed through).
    pub announce_position_every_secs: Option<u32>,
    /// Queue that takes the caller when this one is full (followed up to
    /// [`MAX_OVERFLOW_HOPS`](super::MAX_OVERFLOW_HOPS), never in a cycle).
    pub overflow_queue: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            id: String::new(),
            strategy: Strategy::LongestIdle,
            tiers: Vec::new(),
            offer_timeout_secs: 20,
            wrap_up_secs: 10,
            no_answer_penalty_secs: 30,
            max_no_answer: 3,
            max_wait_secs: Some(3600),
            max_size: None,
            hold_music: None,
            announce_position_every_secs: None,
            overflow_queue: None,
        }
    }
}

impl QueueConfig {
    /// A queue with the defaults and this id and strategy.
    pub fn new(id: &str, strategy: Strategy) -> Self {
        QueueConfig { id: id.to_string(), strategy, ..Default::default() }
    }

    /// Reasons this configuration is refused (empty = valid).
    pub fn validate(&self) -> Result<(), String> {
        if !is_ident(&self.id, MAX_QUEUE_ID_LEN) {
            return Err(format!("queue id must be 1-{MAX_QUEUE_ID_LEN} chars of A-Z a-z 0-9 _ -"));
        }
        if !(1..=600).contains(&self.offer_timeout_secs) {
            return Err("offerTimeoutSecs must be 1-600".into());
        }
        if self.wrap_up_secs > 3600 {
            return Err("wrapUpSecs must be 0-3600".into());
        }
        if self.no_answer_penalty_secs > 3600 {
            return Err("noAnswerPenaltySecs must be 0-3600".into());
        }
        if self.max_no_answer > 1000 {
            return Err("maxNoAnswer must be 0-1000".into());
        }
        if let Some(w) = self.max_wait_secs {
            if !(1..=86_400).contains(&w) {
                return Err("maxWaitSecs must be 1-86400".into());
            }
        }
        if let Some(a) = self.announce_position_every_secs {
            if !(15..=3600).contains(&a) {
                return Err("announcePositionEverySecs must be 15-3600".into());
            }
        }
        if let Some(h) = &self.hold_music {
            if !is_printable(h, MAX_MEDIA_KEY_LEN) {
                return Err(format!("holdMusic must be 1-{MAX_MEDIA_KEY_LEN} printable chars"));
            }
        }
        if let Some(o) = &self.overflow_queue {
            if !is_ident(o, MAX_QUEUE_ID_LEN) || *o == self.id {
                return Err("overflowQueue must be another queue's id".into());
            }
        }
        if self.tiers.len() > MAX_TIER_RULES {
            return Err(format!("at most {MAX_TIER_RULES} tier rules"));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            if !(1..=MAX_TIER_LEVEL).contains(&t.level) {
                return Err(format!("tier level must be 1-{MAX_TIER_LEVEL}"));
            }
            if t.after_secs > 86_400 {
                return Err("tier afterSecs must be 0-86400".into());
            }
            if self.tiers[..i].iter().any(|u| u.level == t.level) {
                return Err(format!("tier level {} is listed twice", t.level));
            }
        }
        Ok(())
    }

    /// How long a caller must have waited before agents of tier `level` are eligible.
    pub fn tier_wait_ms(&self, level: u32) -> u64 {
        self.tiers.iter().filter(|t| t.level <= level).map(|t| u64::from(t.after_secs) * 1000).max().unwrap_or(0)
    }

    /// The first escalation time after `now_ms` for a caller enqueued at `enqueued_at_ms`.
    pub fn next_escalation_ms(&self, enqueued_at_ms: u64, now_ms: u64) -> Option<u64> {
        self.tiers.iter().map(|t| enqueued_at_ms.saturating_add(u64::from(t.after_secs) * 1000)).filter(|&t| t > now_ms).min()
    }
}

/// An agent's membership of a queue. Lower tiers are offered first; `position` orders
/// members for `top_down` and `round_robin` (then the user id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub queue: String,
    #[serde(default = "tier_one")]
    pub tier: u32,
    #[serde(default)]
    pub position: u32,
}

fn tier_one() -> u32 {
    1
}

impl Membership {
    pub fn new(queue: &str, tier: u32, position: u32) -> Self {
        Membership { queue: queue.to_string(), tier, position }
    }
}

/// What the agent asked to be (their own choice).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Presence {
    #[default]
    LoggedOut,
    Available,
    Paused {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// What is happening to the agent (driven by calls and timers).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Activity {
    #[default]
    Idle,
    /// Reserved for one offer (its phone rings).
    Offered { lease_id: String, call_id: String, queue: String, since_ms: u64 },
    /// Talking to a queue caller.
    /// `waited_ms`: the caller's wait until the answer; `wrap_up_secs`: the queue's, at answer time.
    OnCall { call_id: String, queue: String, lease_id: String, epoch: u64, since_ms: u64, waited_ms: u64, wrap_up_secs: u32 },
    /// After-call work until `until_ms`.
    WrapUp { call_id: String, queue: String, until_ms: u64 },
}

/// The status shown on `/agent` and the dashboards, derived from presence and activity:
/// a call (or its wrap-up) shows over the agent's own choice, which applies after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    LoggedOut,
    Available,
    Paused,
    OnCall,
    WrapUp,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::LoggedOut => "logged_out",
            Status::Available => "available",
            Status::Paused => "paused",
            Status::OnCall => "on_call",
            Status::WrapUp => "wrap_up",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Agent {
    pub user_id: String,
    pub presence: Presence,
    pub activity: Activity,
    pub memberships: Vec<Membership>,
    /// A live registration exists for one of the user's devices (set by the adapter).
    pub reachable: bool,
    /// Start of the current idle stretch (login, unpause, end of wrap-up): `longest_idle`.
    pub idle_since_ms: u64,
    pub last_call_end_ms: Option<u64>,
    /// Queue calls answered this session (reset at login).
    pub calls_taken: u64,
    /// Talk time of those calls, ms (reset at login).
    pub talk_time_ms: u64,
    /// Offers not answered this session (reset at login).
    pub no_answers: u64,
    /// Unanswered single-agent offers in a row (reset by an answer, `available`, `unpause`, login).
    pub consecutive_no_answers: u32,
    /// Skipped by dispatch until then (no-answer penalty).
    pub penalty_until_ms: Option<u64>,
    pub last_offer_ms: Option<u64>,
    pub logged_in_at_ms: Option<u64>,
    /// Derived status as of the last change, and since when.
    pub status: Option<Status>,
    pub status_since_ms: u64,
}

impl Agent {
    pub fn new(user_id: &str) -> Self {
        Agent { user_id: user_id.to_string(), ..Default::default() }
    }

    pub fn derived_status(&self) -> Status {
        match (&self.activity, &self.presence) {
            (Activity::OnCall { .. }, _) => Status::OnCall,
            (Activity::WrapUp { .. }, _) => Status::WrapUp,
            (_, Presence::LoggedOut) => Status::LoggedOut,
            (_, Presence::Paused { .. }) => Status::Paused,
            (_, Presence::Available) => Status::Available,
        }
    }

    pub fn pause_reason(&self) -> Option<&str> {
        match &self.presence {
            Presence::Paused { reason } => reason.as_deref(),
            _ => None,
        }
    }

    pub fn is_logged_in(&self) -> bool {
        self.presence != Presence::LoggedOut
    }

    /// May be offered a call now.
    pub fn is_free(&self, now_ms: u64) -> bool {
        self.presence == Presence::Available && matches!(self.activity, Activity::Idle) && self.reachable && self.penalty_until_ms.is_none_or(|t| t <= now_ms)
    }

    pub fn membership(&self, queue: &str) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.queue == queue)
    }

    /// The call this agent is talking to, if any.
    pub fn on_call_id(&self) -> Option<&str> {
        match &self.activity {
            Activity::OnCall { call_id, .. } => Some(call_id),
            _ => None,
        }
    }

    pub fn offered_lease(&self) -> Option<&str> {
        match &self.activity {
            Activity::Offered { lease_id, .. } => Some(lease_id),
            _ => None,
        }
    }
}

/// A caller waiting in a queue (possibly being offered to agents right now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    pub call_id: String,
    pub queue: String,
    /// Higher is served first; equal priorities are served in arrival order.
    pub priority: u32,
    pub enqueued_at_ms: u64,
    /// Arrival order (ACD-wide sequence number).
    pub seq: u64,
    /// Max-wait deadline (`queue:timeout`).
    pub deadline_ms: Option<u64>,
    /// Next tier-escalation instant (an alarm, so newly eligible agents get offered).
    pub next_escalation_ms: Option<u64>,
    /// The offer ringing for this caller now.
    pub offer: Option<String>,
    /// Offers made so far.
    pub offers: u32,
    /// The full queue this caller overflowed from.
    pub overflowed_from: Option<String>,
}

/// One offer of a caller: to one agent, or to a ring_all group. Answered through
/// `confirm(lease_id, epoch)` (single) or `claim(agent, call_id)` (any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub lease_id: String,
    pub epoch: u64,
    pub call_id: String,
    pub queue: String,
    /// The agents ringing (one unless `ring_all`); never empty.
    pub agents: Vec<String>,
    pub ring_all: bool,
    pub offered_at_ms: u64,
    /// How long the media engine should ring.
    pub timeout_secs: u32,
    /// The lease ends here (timeout + grace).
    pub expires_at_ms: u64,
}

/// How a caller left a queue: the flow's `queue:<outcome>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitOutcome {
    /// Connected to an agent; the conversation is over.
    Answered,
    /// Max wait reached.
    Timeout,
    /// The caller hung up (or left) while waiting.
    Abandoned,
    /// Refused: full, or the queue was removed while the caller waited.
    Full,
}

impl ExitOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitOutcome::Answered => "answered",
            ExitOutcome::Timeout => "timeout",
            ExitOutcome::Abandoned => "abandoned",
            ExitOutcome::Full => "full",
        }
    }
}

/// A caller that left, remembered for [`EXIT_RETENTION_MS`](super::EXIT_RETENTION_MS) so the
/// media engine polling its position learns the outcome, and duplicate hang-ups are no-ops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exit {
    pub call_id: String,
    pub queue: String,
    pub outcome: ExitOutcome,
    pub agent: Option<String>,
    pub at_ms: u64,
    pub wait_ms: u64,
    pub forget_at_ms: u64,
}

/// Cumulative per-queue counters (monotonic). With `waiting` the callers in the queue now:
/// `entered == answered + abandoned + timedOut + closed + waiting`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueCounters {
    /// Callers placed in this queue (including overflow arrivals).
    pub entered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub timed_out: u64,
    /// Callers sent away because the queue was removed.
    pub closed: u64,
    /// Callers refused: this queue and its overflow chain were full.
    pub rejected_full: u64,
    /// Callers this full queue passed to its overflow chain.
    pub overflowed_out: u64,
    /// Callers that arrived here by overflow (also counted in `entered`).
    pub overflowed_in: u64,
    pub offers: u64,
    pub no_answers: u64,
    /// Sum of the waits of answered callers, ms.
    pub answered_wait_ms: u64,
}

/// A queue's live record: its configuration and counters, and the round-robin cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub config: QueueConfig,
    #[serde(default)]
    pub counters: QueueCounters,
    /// (position, user id) of the last member offered a call (round_robin).
    #[serde(default)]
    pub rr_last: Option<(u32, String)>,
}

/// ACD-wide sequence numbers and the random generator's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    /// Last sequence number handed out (caller arrival order and offer epochs).
    pub seq: u64,
    /// splitmix64 state: random strategy and lease ids.
    pub rng: u64,
}

/// splitmix64: advance `state` and return the next output.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
