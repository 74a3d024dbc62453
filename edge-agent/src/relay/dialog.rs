//! Channel events → `/presence/event` dialog events (pure: no I/O, no clock).
//!
//! A FreeSWITCH channel belongs to a callplane dialog when it carries the
//! `X-Account-Id` SIP header that `/route` put on the INVITE (FreeSWITCH exposes
//! incoming `X-` headers as `sip_h_X-...` channel variables, so events carry
//! `variable_sip_h_X-Account-Id`); the dialog's key is that account plus the SIP
//! Call-ID (`variable_sip_call_id`). Channels without the header (loopback legs, B
//! legs FreeSWITCH originates itself, calls that did not come through `/route`) are
//! not callplane dialogs and are ignored.
//!
//! ## Hangup-Cause → reason
//!
//! | the call | Hangup-Cause | reason |
//! |---|---|---|
//! | any | `SYSTEM_SHUTDOWN`, `CRASH`, `MANAGER_REQUEST`, `MEDIA_TIMEOUT`, `ALLOTTED_TIMEOUT` (the node ended it, not a party) | `local` |
//! | answered | anything else (`NORMAL_CLEARING`, `USER_BUSY` after answer, ...) | `ended` |
//! | never answered | anything else (`ORIGINATOR_CANCEL`, `NO_ANSWER`, `USER_BUSY`, `CALL_REJECTED`, `NORMAL_CLEARING` before answer, ...) | `failed` |
//!
//! This matches what Kamailio reports for the same dialog (`deploy/kamailio`): BYE →
//! `ended`, CANCEL / busy / no answer → `failed`, ended by the proxy itself → `local`.
//! A dialog whose channels vanished while the event socket was down (found missing
//! by the resync snapshot) is reported `local` too: nobody saw how it ended.
//!
//! "Answered" is `Caller-Channel-Answered-Time` > 0 on the event (or a CHANNEL_ANSWER
//! seen earlier). `duration` is whole seconds from `Caller-Channel-Answered-Time` to
//! `Caller-Channel-Hangup-Time` (both µs; `Event-Date-Timestamp` when the hangup time
//! is 0), rounded down like FreeSWITCH's `billsec`; 0 when never answered.

use crate::esl::Event;
use serde::Serialize;

/// Channel variable (as an event header) carrying the account: the `X-Account-Id`
/// SIP header `/route` adds.
pub const ACCOUNT_HEADER: &str = "variable_sip_h_X-Account-Id";
/// The SIP Call-ID of the channel's dialog.
pub const CALL_ID_HEADER: &str = "variable_sip_call_id";
/// The same two as channel variable names (`uuid_getvar`, resync).
pub const ACCOUNT_VAR: &str = "sip_h_X-Account-Id";
pub const CALL_ID_VAR: &str = "sip_call_id";
/// Longest Call-ID the Worker accepts.
pub const MAX_CALL_ID: usize = 256;

/// Causes meaning the node itself ended the call.
pub const LOCAL_CAUSES: &[&str] = &["SYSTEM_SHUTDOWN", "CRASH", "MANAGER_REQUEST", "MEDIA_TIMEOUT", "ALLOTTED_TIMEOUT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DialogState {
    Confirmed,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Ended,
    Failed,
    Local,
}

/// The body of `POST /presence/event` for a dialog (the Worker's `DialogEvent`).
/// Empty `from`/`to`/`direction` are left out: the Worker then keeps what `/route`
/// recorded for the call (the direction in particular is callplane's, not
/// FreeSWITCH's: a carrier call into a flow is `inbound` although FreeSWITCH's leg
/// towards Kamailio may be either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub call_id: String,
    pub account_id: String,
    pub state: DialogState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

impl DialogEvent {
    pub fn confirmed(account_id: &str, call_id: &str, from: &str, to: &str) -> DialogEvent {
        DialogEvent {
            kind: "dialog",
            call_id: call_id.into(),
            account_id: account_id.into(),
            state: DialogState::Confirmed,
            reason: None,
            from: from.into(),
            to: to.into(),
            direction: String::new(),
            duration: None,
        }
    }
    pub fn terminated(account_id: &str, call_id: &str, from: &str, to: &str, reason: Reason, duration: u64) -> DialogEvent {
        DialogEvent {
            kind: "dialog",
            call_id: call_id.into(),
            account_id: account_id.into(),
            state: DialogState::Terminated,
            reason: Some(reason),
            from: from.into(),
            to: to.into(),
            direction: String::new(),
            duration: Some(duration),
        }
    }
    /// The request body as sent by media node `node` (this node's name as provisioned).
    /// callplane pins the call's lease to the node named in a `confirmed` event, so that
    /// node's `/cac/reconcile` judges it; every dialog event carries it.
    pub fn body(&self, node: &str) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(flatten)]
            event: &'a DialogEvent,
            node: &'a str,
        }
        serde_json::to_string(&Wire { event: self, node }).expect("dialog event serializes")
    }
}

/// Why a channel is not relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignore {
    /// No `X-Account-Id` (not a callplane dialog).
    NoAccount,
    /// `X-Account-Id` is not an `acc_` TypeID.
    BadAccount(String),
    /// Account present but no usable SIP Call-ID.
    NoCallId,
}

/// Who a channel belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: String,
    pub call_id: String,
}

/// Decide from the two variable values (event headers or `uuid_getvar` answers).
pub fn identity(account: Option<&str>, call_id: Option<&str>) -> Result<Identity, Ignore> {
    let account = account.map(str::trim).filter(|a| !a.is_empty() && *a != "_undef_").ok_or(Ignore::NoAccount)?;
    if !is_account_id(account) {
        return Err(Ignore::BadAccount(account.chars().take(40).collect()));
    }
    let call_id = call_id.map(str::trim).filter(|c| !c.is_empty() && *c != "_undef_").ok_or(Ignore::NoCallId)?;
    if call_id.len() > MAX_CALL_ID || call_id.chars().any(char::is_control) {
        return Err(Ignore::NoCallId);
    }
    Ok(Identity { account_id: account.to_string(), call_id: call_id.to_string() })
}

pub fn event_identity(ev: &Event) -> Result<Identity, Ignore> {
    identity(ev.get(ACCOUNT_HEADER), ev.get(CALL_ID_HEADER))
}

/// `acc_` + 26 lowercase Crockford base32 characters, the first 0-7 (a TypeID).
pub fn is_account_id(s: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let Some(suffix) = s.strip_prefix("acc_") else { return false };
    let b = suffix.as_bytes();
    b.len() == 26 && (b'0'..=b'7').contains(&b[0]) && b.iter().all(|c| ALPHABET.contains(c))
}

/// `sip:` URI for the dialog's from/to, from `variable_sip_from_uri` /
/// `variable_sip_to_uri` (FreeSWITCH gives `user@host`), falling back to the caller
/// profile numbers.
pub fn from_to(ev: &Event) -> (String, String) {
    let uri = |v: Option<&str>| -> Option<String> {
        let v = v?.trim();
        if v.is_empty() || v.len() > 512 || v.chars().any(char::is_control) {
            return None;
        }
        Some(if v.starts_with("sip:") || v.starts_with("sips:") || v.starts_with("tel:") { v.to_string() } else { format!("sip:{v}") })
    };
    let num = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty() && s.len() <= 128).map(str::to_string);
    let from = uri(ev.get("variable_sip_from_uri")).or_else(|| num(ev.get("Caller-Caller-ID-Number"))).unwrap_or_default();
    let to = uri(ev.get("variable_sip_to_uri")).or_else(|| num(ev.get("Caller-Destination-Number"))).unwrap_or_default();
    (from, to)
}

/// A µs timestamp header; 0 and garbage are None.
pub fn micros(ev: &Event, header: &str) -> Option<u64> {
    ev.get(header).and_then(|v| v.trim().parse::<u64>().ok()).filter(|v| *v > 0)
}

/// When the channel was answered (µs), if it was.
pub fn answered_at(ev: &Event) -> Option<u64> {
    micros(ev, "Caller-Channel-Answered-Time")
}

/// When the channel hung up (µs): `Caller-Channel-Hangup-Time`, else the event's own time.
pub fn hangup_at(ev: &Event) -> Option<u64> {
    micros(ev, "Caller-Channel-Hangup-Time").or_else(|| micros(ev, "Event-Date-Timestamp"))
}

/// The reason table above.
pub fn hangup_reason(cause: Option<&str>, answered: bool) -> Reason {
    match cause.map(str::trim) {
        Some(c) if LOCAL_CAUSES.contains(&c) => Reason::Local,
        _ if answered => Reason::Ended,
        _ => Reason::Failed,
    }
}

/// Whole seconds between two µs timestamps (0 if either is missing or out of order).
pub fn duration_secs(answered_us: Option<u64>, ended_us: Option<u64>) -> u64 {
    match (answered_us, ended_us) {
        (Some(a), Some(e)) if e > a => (e - a) / 1_000_000,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esl::{EventFormat, Headers};

    fn ev(pairs: &[(&str, &str)]) -> Event {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.push(*k, *v);
        }
        Event { format: EventFormat::Json, headers: h, body: None }
    }

    const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";

    #[test]
    fn account_ids_are_typeids() {
        assert!(is_account_id(ACC));
        for bad in ["", "acc_", "acc_01jf18ah3jeb5w6dfp27sgjsb", "acc_91jf18ah3jeb5w6dfp27sgjsbt", "usr_01jf18ah3jeb5w6dfp27sgjsbt", "acc_01jf18ah3jeb5w6dfp27sgjsbu", "ACC_01jf18ah3jeb5w6dfp27sgjsbt", "acc_01JF18ah3jeb5w6dfp27sgjsbt"] {
            assert!(!is_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn identity_needs_a_valid_account_and_a_call_id() {
        assert_eq!(identity(Some(ACC), Some("abc@host")), Ok(Identity { account_id: ACC.into(), call_id: "abc@host".into() }));
        assert_eq!(identity(None, Some("abc")), Err(Ignore::NoAccount));
        assert_eq!(identity(Some("_undef_"), Some("abc")), Err(Ignore::NoAccount));
        assert_eq!(identity(Some(""), Some("abc")), Err(Ignore::NoAccount));
        assert_eq!(identity(Some("acme"), Some("abc")), Err(Ignore::BadAccount("acme".into())));
        assert_eq!(identity(Some(ACC), None), Err(Ignore::NoCallId));
        assert_eq!(identity(Some(ACC), Some("_undef_")), Err(Ignore::NoCallId));
        assert_eq!(identity(Some(ACC), Some(&"x".repeat(257))), Err(Ignore::NoCallId));
        assert_eq!(identity(Some(ACC), Some("a\nb")), Err(Ignore::NoCallId));
    }

    #[test]
    fn reason_table() {
        assert_eq!(hangup_reason(Some("NORMAL_CLEARING"), true), Reason::Ended);
        assert_eq!(hangup_reason(Some("USER_BUSY"), true), Reason::Ended);
        assert_eq!(hangup_reason(Some("USER_BUSY"), false), Reason::Failed);
        assert_eq!(hangup_reason(Some("ORIGINATOR_CANCEL"), false), Reason::Failed);
        assert_eq!(hangup_reason(Some("NORMAL_CLEARING"), false), Reason::Failed);
        assert_eq!(hangup_reason(None, true), Reason::Ended);
        assert_eq!(hangup_reason(None, false), Reason::Failed);
        for c in LOCAL_CAUSES {
            assert_eq!(hangup_reason(Some(c), true), Reason::Local, "{c}");
            assert_eq!(hangup_reason(Some(c), false), Reason::Local, "{c}");
        }
    }

    #[test]
    fn durations_round_down_and_never_go_negative() {
        assert_eq!(duration_secs(Some(1_795_319_346_797_111), Some(1_795_319_355_857_150)), 9);
        assert_eq!(duration_secs(Some(10), Some(5)), 0);
        assert_eq!(duration_secs(None, Some(5_000_000)), 0);
        assert_eq!(duration_secs(Some(1), None), 0);
        let e = ev(&[("Caller-Channel-Hangup-Time", "0"), ("Event-Date-Timestamp", "42"), ("Caller-Channel-Answered-Time", "0")]);
        assert_eq!(hangup_at(&e), Some(42));
        assert_eq!(answered_at(&e), None);
    }

    #[test]
    fn wire_shape_matches_the_worker() {
        let c = DialogEvent::confirmed(ACC, "c1", "sip:a@x", "");
        assert_eq!(c.body("fs-1"), format!(r#"{{"type":"dialog","callId":"c1","accountId":"{ACC}","state":"confirmed","from":"sip:a@x","node":"fs-1"}}"#));
        let t = DialogEvent::terminated(ACC, "c1", "", "", Reason::Failed, 0);
        assert_eq!(t.body("fs-2"), format!(r#"{{"type":"dialog","callId":"c1","accountId":"{ACC}","state":"terminated","reason":"failed","duration":0,"node":"fs-2"}}"#));
    }

    #[test]
    fn from_to_prefers_sip_uris() {
        let e = ev(&[("variable_sip_from_uri", "0000000000@127.0.0.1"), ("variable_sip_to_uri", "sip:7000@127.0.0.1:15080"), ("Caller-Caller-ID-Number", "1")]);
        assert_eq!(from_to(&e), ("sip:0000000000@127.0.0.1".into(), "sip:7000@127.0.0.1:15080".into()));
        let e = ev(&[("Caller-Caller-ID-Number", "1001"), ("Caller-Destination-Number", "7000")]);
        assert_eq!(from_to(&e), ("1001".into(), "7000".into()));
    }
}
