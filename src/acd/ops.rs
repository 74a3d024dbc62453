//! The ACD's operations: queue configuration, agent events, callers entering and leaving,
//! the answer hooks (`confirm`, `claim`), failed offers, call ends and timers.

use super::*;

/// `POST /agent` events (`{"event":"login","queues":[...]}` …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentEvent {
    /// Log in to these queues (the adapter resolves tiers/positions from D1). Logged in
    /// already: replaces the memberships, status unchanged.
    Login {
        #[serde(default)]
        queues: Vec<Membership>,
    },
    /// Log out. During a call it takes effect when the call ends (no wrap-up); a ringing
    /// offer is withdrawn; a wrap-up is cut short.
    Logout,
    /// Ready now: ends a pause and also cuts a wrap-up short.
    Available,
    /// Stop taking calls. A ringing offer is withdrawn (no penalty); during a call or
    /// wrap-up the pause applies after it.
    Pause {
        #[serde(default)]
        reason: Option<String>,
    },
    /// End a pause (a wrap-up in progress still runs to its end).
    Unpause,
}

/// `enqueue` input (from the flow's `enqueue` command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueueRequest {
    pub call_id: String,
    pub queue: String,
    /// Higher is served first (default 0).
    #[serde(default)]
    pub priority: u32,
    /// The flow's own max wait; the shorter of it and the queue's applies.
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
}

impl EnqueueRequest {
    pub fn new(call_id: &str, queue: &str, priority: u32) -> Self {
        EnqueueRequest { call_id: call_id.to_string(), queue: queue.to_string(), priority, max_wait_secs: None }
    }
}

/// What `enqueue` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum EnqueueResult {
    /// Waiting in `queue` (the requested one, or where it overflowed to) at `position` (1-based).
    /// `repeated`: the call was already waiting (a retried request); nothing changed.
    Queued {
        queue: String,
        position: usize,
        waiting: usize,
        deadline_ms: Option<u64>,
        overflowed_from: Option<String>,
        hold_music: Option<String>,
        announce_position_every_secs: Option<u32>,
        repeated: bool,
    },
    /// Refused: the queue and its overflow chain (`tried`, in order) are full: `queue:full`.
    Full { queue: String, tried: Vec<String> },
}

/// An answered offer: the caller and the one agent it is now connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    pub call_id: String,
    pub queue: String,
    pub agent: String,
    pub lease_id: String,
    pub epoch: u64,
    pub wait_ms: u64,
    /// A retried hook of the answer already recorded: nothing changed.
    pub repeated: bool,
}

/// `claim` result: the connection, and the other ringing agents released (an
/// [`Effect::OfferEnded`] with reason `answered_elsewhere`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claimed {
    pub connected: Connected,
    pub effects: Vec<Effect>,
}

/// What ended for a `call_ended` / `caller_hangup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "was", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum CallEnd {
    /// It was waiting (maybe ringing agents): removed, counted abandoned.
    Abandoned { queue: String, wait_ms: u64 },
    /// It was connected: the agent goes to wrap-up (or straight on when there is none).
    Completed { queue: String, agent: String, talk_ms: u64, wrap_up_until_ms: Option<u64> },
    /// It already left (a duplicate event): nothing changed.
    AlreadyEnded { outcome: ExitOutcome },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ended {
    pub call_id: String,
    pub end: CallEnd,
    pub effects: Vec<Effect>,
}

/// What to do to the agents of an offer that ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Penalty {
    None,
    /// Skip for the queue's `no_answer_penalty_secs`.
    Skip,
    /// Skip, and count toward `max_no_answer`.
    SkipAndCount,
}

fn check_call_id(call_id: &str) -> Result<(), AcdError> {
    if is_printable(call_id, MAX_CALL_ID_LEN) {
        Ok(())
    } else {
        Err(AcdError::Invalid(format!("callId must be 1-{MAX_CALL_ID_LEN} printable chars")))
    }
}

fn check_user_id(user_id: &str) -> Result<(), AcdError> {
    if is_ident(user_id, MAX_USER_ID_LEN) {
        Ok(())
    } else {
        Err(AcdError::Invalid(format!("userId must be 1-{MAX_USER_ID_LEN} chars of A-Z a-z 0-9 _ -")))
    }
}

impl Acd {
    // --- queues ---------------------------------------------------------------------------

    /// Add or replace a queue's configuration (counters and the round-robin cursor are kept).
    /// Waiting callers keep their max-wait deadline; their tier escalation follows the new tiers.
    pub fn upsert_queue(&mut self, config: QueueConfig, now_ms: u64) -> Result<(), AcdError> {
        config.validate().map_err(AcdError::Invalid)?;
        let id = config.id.clone();
        match self.queues.get_mut(&id) {
            Some(q) => q.config = config,
            None => {
                self.queues.insert(id.clone(), Queue { config, counters: QueueCounters::default(), rr_last: None });
                self.idx.by_queue.entry(id.clone()).or_default();
            }
        }
        self.dirty.insert(Key::Queue(id.clone()));
        let cfg = self.queues[&id].config.clone();
        let calls: Vec<String> = self.waiting_in(&id).map(|c| c.call_id.clone()).collect();
        for call in calls {
            let enqueued_at_ms = self.callers[&call].enqueued_at_ms;
            self.set_escalation(&call, cfg.next_escalation_ms(enqueued_at_ms, now_ms));
        }
        Ok(())
    }

    /// Remove a queue: its waiting callers leave with `queue:full` (counted `closed`), their
    /// offers end, and agents lose the membership. Calls in progress are not touched.
    pub fn remove_queue(&mut self, id: &str, now_ms: u64) -> Result<Vec<Effect>, AcdError> {
        if !self.queues.contains_key(id) {
            return Err(AcdError::UnknownQueue(id.to_string()));
        }
        let mut effects = Vec::new();
        let calls: Vec<String> = self.waiting_in(id).map(|c| c.call_id.clone()).collect();
        for call in calls {
            effects.extend(self.leave(&call, ExitOutcome::Full, OfferEndReason::QueueRemoved, now_ms));
        }
        let members: Vec<String> = self.agents.values().filter(|a| a.membership(id).is_some()).map(|a| a.user_id.clone()).collect();
        for m in members {
            self.agent_mut(&m).expect("agent").memberships.retain(|x| x.queue != id);
        }
        self.queues.remove(id);
        self.idx.by_queue.remove(id);
        self.dirty.insert(Key::Queue(id.to_string()));
        self.settle(now_ms);
        Ok(effects)
    }

    // --- agents ---------------------------------------------------------------------------

    /// Apply an agent's event (`POST /agent`). See [`AgentEvent`] for the rules.
    pub fn agent_event(&mut self, user_id: &str, event: AgentEvent, now_ms: u64) -> Result<Vec<Effect>, AcdError> {
        check_user_id(user_id)?;
        let mut effects = Vec::new();
        match event {
            AgentEvent::Login { queues } => self.login(user_id, queues, now_ms)?,
            AgentEvent::Logout => {
                if !self.agents.get(user_id).is_some_and(Agent::is_logged_in) {
                    return Ok(effects);
                }
                effects.extend(self.withdraw(user_id, OfferEndReason::AgentLeft, Penalty::None, now_ms));
                let a = self.agent_mut(user_id).expect("agent");
                a.presence = Presence::LoggedOut;
                a.memberships.clear();
                a.penalty_until_ms = None;
                if matches!(a.activity, Activity::WrapUp { .. }) {
                    a.activity = Activity::Idle;
                }
            }
            AgentEvent::Pause { reason } => {
                let reason = match reason.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(r) if is_printable(r, MAX_REASON_LEN) => Some(r.to_string()),
                    Some(_) => return Err(AcdError::Invalid(format!("reason must be at most {MAX_REASON_LEN} printable chars"))),
                };
                self.require_logged_in(user_id)?;
                effects.extend(self.withdraw(user_id, OfferEndReason::AgentLeft, Penalty::None, now_ms));
                self.agent_mut(user_id).expect("agent").presence = Presence::Paused { reason };
            }
            AgentEvent::Unpause | AgentEvent::Available => {
                self.require_logged_in(user_id)?;
                let ready = event == AgentEvent::Available;
                let a = self.agent_mut(user_id).expect("agent");
                if ready && matches!(a.activity, Activity::WrapUp { .. }) {
                    a.activity = Activity::Idle;
                    a.idle_since_ms = now_ms;
                }
                if matches!(a.presence, Presence::Paused { .. }) {
                    a.presence = Presence::Available;
                    if a.activity == Activity::Idle {
                        a.idle_since_ms = now_ms;
                    }
                }
                a.consecutive_no_answers = 0;
                a.penalty_until_ms = None;
            }
        }
        self.settle(now_ms);
        Ok(effects)
    }

    fn require_logged_in(&self, user_id: &str) -> Result<(), AcdError> {
        match self.agents.get(user_id) {
            Some(a) if a.is_logged_in() => Ok(()),
            _ => Err(AcdError::NotLoggedIn(user_id.to_string())),
        }
    }

    fn login(&mut self, user_id: &str, queues: Vec<Membership>, now_ms: u64) -> Result<(), AcdError> {
        if queues.len() > MAX_MEMBERSHIPS {
            return Err(AcdError::Invalid(format!("at most {MAX_MEMBERSHIPS} queues")));
        }
        for (i, m) in queues.iter().enumerate() {
            if !self.queues.contains_key(&m.queue) {
                return Err(AcdError::UnknownQueue(m.queue.clone()));
            }
            if !(1..=MAX_TIER_LEVEL).contains(&m.tier) {
                return Err(AcdError::Invalid(format!("tier must be 1-{MAX_TIER_LEVEL}")));
            }
            if queues[..i].iter().any(|n| n.queue == m.queue) {
                return Err(AcdError::Invalid(format!("queue {:?} listed twice", m.queue)));
            }
        }
        let a = self.agent_entry(user_id);
        if a.presence == Presence::LoggedOut {
            if a.activity == Activity::Idle {
                // A new session.
                a.calls_taken = 0;
                a.talk_time_ms = 0;
                a.no_answers = 0;
                a.consecutive_no_answers = 0;
                a.penalty_until_ms = None;
                a.idle_since_ms = now_ms;
                a.logged_in_at_ms = Some(now_ms);
            }
            a.presence = Presence::Available;
        }
        a.memberships = queues;
        Ok(())
    }

    /// Whether one of the user's devices has a live registration (the adapter calls this
    /// whenever that changes, and before `login`). Unreachable agents are not offered calls;
    /// an offer already ringing is left to ring out.
    pub fn set_reachable(&mut self, user_id: &str, reachable: bool, now_ms: u64) {
        match self.agents.get(user_id) {
            Some(a) if a.reachable == reachable => return,
            None if !reachable => return,
            _ => {}
        }
        if check_user_id(user_id).is_err() {
            return;
        }
        self.agent_entry(user_id).reachable = reachable;
        self.settle(now_ms);
    }

    /// Take the agent out of its current offer (if any).
    fn withdraw(&mut self, user_id: &str, reason: OfferEndReason, penalty: Penalty, now_ms: u64) -> Vec<Effect> {
        let Some(lease) = self.agents.get(user_id).and_then(|a| a.offered_lease()).map(str::to_string) else { return vec![] };
        let Some(offer) = self.offers.get(&lease) else { return vec![] };
        if offer.agents.len() <= 1 {
            return self.end_offer(&lease, reason, penalty, now_ms);
        }
        let o = self.offer_mut(&lease).expect("offer");
        o.agents.retain(|a| a != user_id);
        let effect = Effect::OfferEnded {
            lease_id: o.lease_id.clone(),
            epoch: o.epoch,
            call_id: o.call_id.clone(),
            queue: o.queue.clone(),
            agents: vec![user_id.to_string()],
            reason,
        };
        let queue = o.queue.clone();
        self.agent_mut(user_id).expect("agent").activity = Activity::Idle;
        let mut effects = vec![effect];
        effects.extend(self.penalize(user_id, &queue, penalty, now_ms));
        effects
    }

    /// End an offer: every agent still reserved by it goes back to idle, the caller back to
    /// waiting (same place in line).
    fn end_offer(&mut self, lease: &str, reason: OfferEndReason, penalty: Penalty, now_ms: u64) -> Vec<Effect> {
        let Some(o) = self.remove_offer(lease) else { return vec![] };
        let mut penalties = Vec::new();
        for ag in &o.agents {
            if let Some(a) = self.agent_mut(ag) {
                if a.offered_lease() == Some(lease) {
                    a.activity = Activity::Idle;
                }
            }
            penalties.extend(self.penalize(ag, &o.queue, penalty, now_ms));
        }
        if let Some(c) = self.caller_mut(&o.call_id) {
            if c.offer.as_deref() == Some(lease) {
                c.offer = None;
            }
        }
        if matches!(reason, OfferEndReason::NoAnswer | OfferEndReason::Rejected) {
            if let Some(q) = self.queue_mut(&o.queue) {
                q.counters.no_answers += 1;
            }
        }
        let mut effects = vec![Effect::OfferEnded { lease_id: o.lease_id, epoch: o.epoch, call_id: o.call_id, queue: o.queue, agents: o.agents, reason }];
        effects.extend(penalties);
        effects
    }

    fn penalize(&mut self, user_id: &str, queue: &str, penalty: Penalty, now_ms: u64) -> Option<Effect> {
        if penalty == Penalty::None {
            return None;
        }
        let (secs, max) = self.queues.get(queue).map_or((0, 0), |q| (q.config.no_answer_penalty_secs, q.config.max_no_answer));
        let a = self.agent_mut(user_id)?;
        a.no_answers += 1;
        if secs > 0 {
            a.penalty_until_ms = Some(now_ms.saturating_add(u64::from(secs) * 1000));
        }
        if penalty == Penalty::SkipAndCount {
            a.consecutive_no_answers = a.consecutive_no_answers.saturating_add(1);
            if max > 0 && a.consecutive_no_answers >= max && a.presence == Presence::Available {
                a.presence = Presence::Paused { reason: Some(AUTO_PAUSE_REASON.to_string()) };
                return Some(Effect::AgentAutoPaused { user_id: user_id.to_string(), no_answers: a.consecutive_no_answers });
            }
        }
        None
    }

    // --- callers --------------------------------------------------------------------------

    /// A caller enters a queue (the flow's `enqueue`). A full queue passes the caller down its
    /// overflow chain; if no queue takes it the answer is [`EnqueueResult::Full`].
    /// Retried with a call already waiting: the current position, nothing changes.
    pub fn enqueue(&mut self, req: &EnqueueRequest, now_ms: u64) -> Result<EnqueueResult, AcdError> {
        check_call_id(&req.call_id)?;
        if let Some(w) = req.max_wait_secs {
            if !(1..=86_400).contains(&w) {
                return Err(AcdError::Invalid("maxWaitSecs must be 1-86400".into()));
            }
        }
        if !self.queues.contains_key(&req.queue) {
            return Err(AcdError::UnknownQueue(req.queue.clone()));
        }
        if let Some(c) = self.callers.get(&req.call_id) {
            let q = &self.queues[&c.queue].config;
            return Ok(EnqueueResult::Queued {
                queue: c.queue.clone(),
                position: self.position_of(c),
                waiting: self.waiting_count(&c.queue),
                deadline_ms: c.deadline_ms,
                overflowed_from: c.overflowed_from.clone(),
                hold_music: q.hold_music.clone(),
                announce_position_every_secs: q.announce_position_every_secs,
                repeated: true,
            });
        }
        if self.agent_on_call(&req.call_id).is_some() {
            return Err(AcdError::CallConnected(req.call_id.clone()));
        }
        // Find the queue that takes the caller.
        let mut tried: Vec<String> = Vec::new();
        let mut target = None;
        let mut q = req.queue.clone();
        if self.callers.len() < MAX_WAITING {
            loop {
                let cfg = &self.queues[&q].config;
                tried.push(q.clone());
                if cfg.max_size.is_none_or(|m| self.waiting_count(&q) < m as usize) {
                    target = Some(q);
                    break;
                }
                match &cfg.overflow_queue {
                    Some(next) if tried.len() <= MAX_OVERFLOW_HOPS && self.queues.contains_key(next) && !tried.contains(next) => q = next.clone(),
                    _ => break,
                }
            }
        } else {
            tried.push(q);
        }
        let Some(target) = target else {
            self.queue_mut(&req.queue).expect("queue").counters.rejected_full += 1;
            return Ok(EnqueueResult::Full { queue: req.queue.clone(), tried });
        };
        let overflowed_from = (target != req.queue).then(|| req.queue.clone());
        if overflowed_from.is_some() {
            self.queue_mut(&req.queue).expect("queue").counters.overflowed_out += 1;
        }
        let cfg = self.queues[&target].config.clone();
        let limit = match (cfg.max_wait_secs, req.max_wait_secs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let seq = self.next_seq();
        self.remove_exit(&req.call_id);
        let caller = Caller {
            call_id: req.call_id.clone(),
            queue: target.clone(),
            priority: req.priority,
            enqueued_at_ms: now_ms,
            seq,
            deadline_ms: limit.map(|s| now_ms.saturating_add(u64::from(s) * 1000)),
            next_escalation_ms: cfg.next_escalation_ms(now_ms, now_ms),
            offer: None,
            offers: 0,
            overflowed_from: overflowed_from.clone(),
        };
        let deadline_ms = caller.deadline_ms;
        self.insert_caller(caller);
        let qc = &mut self.queue_mut(&target).expect("queue").counters;
        qc.entered += 1;
        if overflowed_from.is_some() {
            qc.overflowed_in += 1;
        }
        let c = &self.callers[&req.call_id];
        Ok(EnqueueResult::Queued {
            queue: target.clone(),
            position: self.position_of(c),
            waiting: self.waiting_count(&target),
            deadline_ms,
            overflowed_from,
            hold_music: cfg.hold_music,
            announce_position_every_secs: cfg.announce_position_every_secs,
            repeated: false,
        })
    }

    /// 1-based place of a waiting caller in its queue.
    pub(crate) fn position_of(&self, c: &Caller) -> usize {
        self.idx.by_queue.get(&c.queue).map_or(0, |s| s.range(..order_key(c)).count()) + 1
    }

    /// Remove a waiting caller with this outcome (its offer, if any, ends for `reason`).
    fn leave(&mut self, call_id: &str, outcome: ExitOutcome, reason: OfferEndReason, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(c) = self.callers.get(call_id) else { return effects };
        if let Some(lease) = c.offer.clone() {
            effects.extend(self.end_offer(&lease, reason, Penalty::None, now_ms));
        }
        let c = self.remove_caller(call_id).expect("caller");
        let wait_ms = now_ms.saturating_sub(c.enqueued_at_ms);
        if let Some(q) = self.queue_mut(&c.queue) {
            match outcome {
                ExitOutcome::Abandoned => q.counters.abandoned += 1,
                ExitOutcome::Timeout => q.counters.timed_out += 1,
                ExitOutcome::Full => q.counters.closed += 1,
                ExitOutcome::Answered => q.counters.answered += 1,
            }
        }
        self.insert_exit(Exit {
            call_id: c.call_id.clone(),
            queue: c.queue.clone(),
            outcome,
            agent: None,
            at_ms: now_ms,
            wait_ms,
            forget_at_ms: now_ms.saturating_add(EXIT_RETENTION_MS),
        });
        effects.push(Effect::CallerLeft { call_id: c.call_id, queue: c.queue, outcome, wait_ms, agent: None });
        effects
    }

    /// The call ended or its caller hung up, whatever state it was in: waiting or ringing →
    /// removed and counted abandoned (its offer ends, agents released without penalty);
    /// connected → the agent goes to wrap-up (or idle / logged out). Duplicates are no-ops.
    pub fn call_ended(&mut self, call_id: &str, now_ms: u64) -> Result<Ended, AcdError> {
        if let Some(c) = self.callers.get(call_id) {
            let queue = c.queue.clone();
            let wait_ms = now_ms.saturating_sub(c.enqueued_at_ms);
            let effects = self.leave(call_id, ExitOutcome::Abandoned, OfferEndReason::CallerLeft, now_ms);
            self.settle(now_ms);
            return Ok(Ended { call_id: call_id.to_string(), end: CallEnd::Abandoned { queue, wait_ms }, effects });
        }
        if let Some(agent) = self.agent_on_call(call_id).map(|a| a.user_id.clone()) {
            let a = self.agent_mut(&agent).expect("agent");
            let Activity::OnCall { queue, since_ms, waited_ms, wrap_up_secs, .. } = a.activity.clone() else { unreachable!() };
            let talk_ms = now_ms.saturating_sub(since_ms);
            a.talk_time_ms = a.talk_time_ms.saturating_add(talk_ms);
            a.last_call_end_ms = Some(now_ms);
            let mut wrap_up_until_ms = None;
            if a.presence == Presence::LoggedOut || wrap_up_secs == 0 {
                a.activity = Activity::Idle;
                a.idle_since_ms = now_ms;
            } else {
                let until = now_ms.saturating_add(u64::from(wrap_up_secs) * 1000);
                a.activity = Activity::WrapUp { call_id: call_id.to_string(), queue: queue.clone(), until_ms: until };
                wrap_up_until_ms = Some(until);
            }
            self.insert_exit(Exit {
                call_id: call_id.to_string(),
                queue: queue.clone(),
                outcome: ExitOutcome::Answered,
                agent: Some(agent.clone()),
                at_ms: now_ms,
                wait_ms: waited_ms,
                forget_at_ms: now_ms.saturating_add(EXIT_RETENTION_MS),
            });
            self.settle(now_ms);
            let effects = vec![Effect::CallerLeft {
                call_id: call_id.to_string(),
                queue: queue.clone(),
                outcome: ExitOutcome::Answered,
                wait_ms: waited_ms,
                agent: Some(agent.clone()),
            }];
            return Ok(Ended { call_id: call_id.to_string(), end: CallEnd::Completed { queue, agent, talk_ms, wrap_up_until_ms }, effects });
        }
        if let Some(e) = self.exits.get(call_id) {
            return Ok(Ended { call_id: call_id.to_string(), end: CallEnd::AlreadyEnded { outcome: e.outcome }, effects: vec![] });
        }
        Err(AcdError::UnknownCall(call_id.to_string()))
    }

    /// The caller hung up: same as [`Acd::call_ended`] (it handles every state).
    pub fn caller_hangup(&mut self, call_id: &str, now_ms: u64) -> Result<Ended, AcdError> {
        self.call_ended(call_id, now_ms)
    }

    // --- the answer hooks -----------------------------------------------------------------

    /// `GET /agent/confirm/{accountId}/{leaseId}/{epoch}`: the agent of a single-agent offer
    /// answered. Succeeds only while that lease is the current offer (or, for a retried hook,
    /// while the call it connected is still going); anything else is a conflict and the media
    /// engine drops the agent leg.
    pub fn confirm(&mut self, lease_id: &str, epoch: u64, now_ms: u64) -> Result<Connected, AcdError> {
        match self.offers.get(lease_id) {
            Some(o) if o.epoch != epoch => Err(AcdError::LeaseNotCurrent),
            Some(o) if o.ring_all => Err(AcdError::UseClaim),
            Some(o) => {
                let agent = o.agents[0].clone();
                let (c, _) = self.connect(lease_id, &agent, now_ms);
                Ok(c)
            }
            None => self
                .repeated_answer(|a| matches!(&a.activity, Activity::OnCall { lease_id: l, epoch: e, .. } if l == lease_id && *e == epoch))
                .ok_or(AcdError::LeaseNotCurrent),
        }
    }

    /// `GET /agent/claim/{accountId}/{agentId}/{callId}`: an agent ringing for this caller
    /// answered; the first claim wins atomically, the other ringing agents are released
    /// (returned as an `offer_ended` effect). Later claims get [`AcdError::AlreadyAnswered`]
    /// (or [`AcdError::NotOffered`]); the winner's retried claim succeeds again (`repeated`).
    pub fn claim(&mut self, agent_id: &str, call_id: &str, now_ms: u64) -> Result<Claimed, AcdError> {
        if let Some(lease) = self.callers.get(call_id).and_then(|c| c.offer.clone()) {
            if self.offers.get(&lease).is_some_and(|o| o.agents.iter().any(|a| a == agent_id)) {
                let (connected, effects) = self.connect(&lease, agent_id, now_ms);
                return Ok(Claimed { connected, effects });
            }
            return Err(AcdError::NotOffered);
        }
        if let Some(c) = self.repeated_answer(|a| a.user_id == agent_id && a.on_call_id() == Some(call_id)) {
            return Ok(Claimed { connected: c, effects: vec![] });
        }
        if self.agent_on_call(call_id).is_some() {
            return Err(AcdError::AlreadyAnswered);
        }
        Err(AcdError::NotOffered)
    }

    fn repeated_answer(&self, pred: impl Fn(&Agent) -> bool) -> Option<Connected> {
        let a = self.agents.values().find(|a| pred(a))?;
        let Activity::OnCall { call_id, queue, lease_id, epoch, waited_ms, .. } = &a.activity else { return None };
        Some(Connected {
            call_id: call_id.clone(),
            queue: queue.clone(),
            agent: a.user_id.clone(),
            lease_id: lease_id.clone(),
            epoch: *epoch,
            wait_ms: *waited_ms,
            repeated: true,
        })
    }

    /// Connect the offer's caller to `winner` (a member of the offer): the offer and the
    /// caller's place in line go away in this one step.
    fn connect(&mut self, lease: &str, winner: &str, now_ms: u64) -> (Connected, Vec<Effect>) {
        let o = self.remove_offer(lease).expect("offer");
        let others: Vec<String> = o.agents.iter().filter(|a| *a != winner).cloned().collect();
        for ag in &others {
            if let Some(a) = self.agent_mut(ag) {
                if a.offered_lease() == Some(lease) {
                    a.activity = Activity::Idle;
                }
            }
        }
        let c = self.remove_caller(&o.call_id).expect("offered caller is waiting");
        let wait_ms = now_ms.saturating_sub(c.enqueued_at_ms);
        let wrap_up_secs = self.queues.get(&o.queue).map_or(0, |q| q.config.wrap_up_secs);
        if let Some(q) = self.queue_mut(&o.queue) {
            q.counters.answered += 1;
            q.counters.answered_wait_ms = q.counters.answered_wait_ms.saturating_add(wait_ms);
        }
        let a = self.agent_mut(winner).expect("agent");
        a.activity = Activity::OnCall {
            call_id: o.call_id.clone(),
            queue: o.queue.clone(),
            lease_id: o.lease_id.clone(),
            epoch: o.epoch,
            since_ms: now_ms,
            waited_ms: wait_ms,
            wrap_up_secs,
        };
        a.calls_taken += 1;
        a.consecutive_no_answers = 0;
        let mut effects = Vec::new();
        if !others.is_empty() {
            effects.push(Effect::OfferEnded {
                lease_id: o.lease_id.clone(),
                epoch: o.epoch,
                call_id: o.call_id.clone(),
                queue: o.queue.clone(),
                agents: others,
                reason: OfferEndReason::AnsweredElsewhere,
            });
        }
        self.settle(now_ms);
        (Connected { call_id: o.call_id, queue: o.queue, agent: winner.to_string(), lease_id: o.lease_id, epoch: o.epoch, wait_ms, repeated: false }, effects)
    }

    /// The media engine reports that an offer's agent leg failed or was declined (busy,
    /// rejected, unreachable) before the timeout: that agent gets the no-answer penalty and
    /// the caller goes back to waiting (a ring_all offer keeps ringing the others; `agent`
    /// is then required). Stale reports are conflicts and change nothing.
    pub fn offer_failed(&mut self, lease_id: &str, epoch: u64, agent: Option<&str>, now_ms: u64) -> Result<Vec<Effect>, AcdError> {
        let o = match self.offers.get(lease_id) {
            Some(o) if o.epoch == epoch => o,
            _ => return Err(AcdError::LeaseNotCurrent),
        };
        let mut effects = Vec::new();
        if o.ring_all {
            let Some(agent) = agent else { return Err(AcdError::Invalid("agent is required for a ring_all offer".into())) };
            if !o.agents.iter().any(|a| a == agent) {
                return Err(AcdError::NotOffered);
            }
            // Only this agent leaves the group (the offer ends with the last one).
            effects.extend(self.withdraw(agent, OfferEndReason::Rejected, Penalty::Skip, now_ms));
        } else {
            if agent.is_some_and(|a| a != o.agents[0]) {
                return Err(AcdError::NotOffered);
            }
            effects.extend(self.end_offer(lease_id, OfferEndReason::Rejected, Penalty::SkipAndCount, now_ms));
        }
        self.settle(now_ms);
        Ok(effects)
    }

    // --- timers ---------------------------------------------------------------------------

    /// When the alarm must next fire: offer timeouts, wrap-up ends, penalty ends, max waits,
    /// tier escalations and forgetting departed callers.
    pub fn next_deadline(&self) -> Option<u64> {
        let offers = self.offers.values().map(|o| o.expires_at_ms);
        let agents = self.agents.values().flat_map(|a| {
            let w = match &a.activity {
                Activity::WrapUp { until_ms, .. } => Some(*until_ms),
                _ => None,
            };
            [w, a.penalty_until_ms]
        });
        let callers = self.idx.caller_timers.first().map(|t| t.0);
        let exits = self.idx.exits.first().map(|e| e.0);
        offers.chain(agents.flatten()).chain(callers).chain(exits).min()
    }

    /// Fire every timer due at `now_ms`, in time order: offer timeout → the agent(s) idle (a
    /// single-agent offer also gets the no-answer penalty) and the caller waits for the next
    /// agent; wrap-up → available; max wait → the caller leaves with `queue:timeout`; penalty
    /// ends and escalations (new agents eligible at the next `dispatch`).
    pub fn on_timer(&mut self, now_ms: u64) -> Vec<Effect> {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        enum Due {
            MaxWait(String),
            Offer(String),
            WrapUp(String),
            Penalty(String),
            Escalate(String),
            Forget(String),
        }
        let mut due: Vec<(u64, Due)> = Vec::new();
        for o in self.offers.values().filter(|o| o.expires_at_ms <= now_ms) {
            due.push((o.expires_at_ms, Due::Offer(o.lease_id.clone())));
        }
        for a in self.agents.values() {
            if let Activity::WrapUp { until_ms, .. } = a.activity {
                if until_ms <= now_ms {
                    due.push((until_ms, Due::WrapUp(a.user_id.clone())));
                }
            }
            if let Some(t) = a.penalty_until_ms.filter(|&t| t <= now_ms) {
                due.push((t, Due::Penalty(a.user_id.clone())));
            }
        }
        for (t, kind, call) in self.idx.caller_timers.iter().take_while(|t| t.0 <= now_ms) {
            due.push((*t, if *kind == MAX_WAIT { Due::MaxWait(call.clone()) } else { Due::Escalate(call.clone()) }));
        }
        for (t, call) in self.idx.exits.iter().take_while(|e| e.0 <= now_ms) {
            due.push((*t, Due::Forget(call.clone())));
        }
        due.sort();
        let mut effects = Vec::new();
        for (_, d) in due {
            match d {
                Due::Offer(lease) => {
                    if let Some(o) = self.offers.get(&lease) {
                        // A ring_all group ringing out is nobody's fault in particular.
                        let penalty = if o.ring_all { Penalty::None } else { Penalty::SkipAndCount };
                        effects.extend(self.end_offer(&lease, OfferEndReason::NoAnswer, penalty, now_ms));
                    }
                }
                Due::WrapUp(user) => {
                    let a = self.agent_mut(&user).expect("agent");
                    if let Activity::WrapUp { until_ms, .. } = a.activity {
                        a.activity = Activity::Idle;
                        a.idle_since_ms = until_ms;
                    }
                }
                Due::Penalty(user) => {
                    let a = self.agent_mut(&user).expect("agent");
                    if a.penalty_until_ms.is_some_and(|t| t <= now_ms) {
                        a.penalty_until_ms = None;
                    }
                }
                Due::MaxWait(call) => {
                    if self.callers.get(&call).is_some_and(|c| c.deadline_ms.is_some_and(|t| t <= now_ms)) {
                        effects.extend(self.leave(&call, ExitOutcome::Timeout, OfferEndReason::MaxWait, now_ms));
                    }
                }
                Due::Escalate(call) => {
                    if let Some(c) = self.callers.get(&call) {
                        let next = self.queues.get(&c.queue).and_then(|q| q.config.next_escalation_ms(c.enqueued_at_ms, now_ms));
                        self.set_escalation(&call, next);
                    }
                }
                Due::Forget(call) => {
                    if self.exits.get(&call).is_some_and(|e| e.forget_at_ms <= now_ms) {
                        self.remove_exit(&call);
                    }
                }
            }
        }
        self.settle(now_ms);
        effects
    }
}
