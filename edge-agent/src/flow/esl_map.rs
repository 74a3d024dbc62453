//! Pure translations between the flow's wire types and FreeSWITCH: what to play for a
//! [`Media`], the arguments of `play_and_get_digits`, `bridge`, `record` and `conference`,
//! and the channel variables / responses FreeSWITCH reports turned back into
//! [`Outcome`]s. No I/O, no clock.
//!
//! Assumptions about FreeSWITCH 1.10 (from its source; the transcripts show the event
//! shapes, not these applications' every argument):
//!
//! * `playback` of `file_string://a!b` plays a then b; `say:<engine>:<voice>:<text>` is
//!   text to speech through the named engine (switch_ivr_play_file), so TTS needs no
//!   channel variables and works inside a `file_string`.
//! * `play_and_get_digits` splits its argument on blanks but keeps `'quoted text'`
//!   whole (switch_separate_string), so a prompt list with spoken text is quoted.
//! * `bridge` dial strings: `,` rings legs at once, `|` one after another; `[...]`
//!   per-leg and `{...}` global variables; `;fs_path=<uri>` sends the INVITE through a
//!   proxy (the SIP edge) with the Request-URI unchanged.
//! * The bridge app leaves `originate_disposition` (`SUCCESS` or a Q.850 cause name),
//!   `DIALSTATUS` and `last_bridge_proto_specific_hangup_cause` (`sip:486`) on the
//!   caller's channel; `record` leaves `record_ms` / `record_seconds`.

use callplane::flow::wire::{ConferenceRole, Dial, DialStrategy, Gather, Media, Outcome, StepData, MAX_DIGITS};

/// How media is played on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// FreeSWITCH TTS engine module name (`flite`, `unimrcp:profile`, …).
    pub tts_engine: String,
    /// Voice used when a TTS prompt names none (or one that is not a plain name).
    pub tts_voice: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig { tts_engine: "flite".into(), tts_voice: "kal".into() }
    }
}

/// A value safe as a FreeSWITCH name: 1-64 of `A-Z a-z 0-9 _ . - :`.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

/// Spoken text made safe for a FreeSWITCH argument: control characters become spaces,
/// `!` (the `file_string` separator) a full stop, `'` (the quote of blank-split
/// arguments) a typographic apostrophe, `\` a space, and `${` / `$${` lose their
/// meaning as variable expansions (FreeSWITCH expands them in application arguments).
pub fn speakable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '!' => '.',
            '\'' => '\u{2019}',
            '\\' => ' ',
            c => c,
        })
        .collect();
    while out.contains("${") {
        out = out.replace("${", "$ {");
    }
    out.trim().to_string()
}

/// A URL FreeSWITCH may fetch itself (`http_cache://`): http(s), no blanks, quotes,
/// `!` (the `file_string` separator) or braces (variable syntax).
fn check_url(url: &str) -> Result<(), String> {
    let ok_scheme = url.starts_with("http://") || url.starts_with("https://");
    if !ok_scheme || url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '!' | '\'' | '"' | '{' | '}' | '$' | '\\')) {
        return Err(format!("media url not playable: {}", short(url)));
    }
    Ok(())
}

fn short(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    format!("{cut:?}")
}

/// What FreeSWITCH plays for one media item. `local` is the path a `file` item was
/// fetched to (the runner fetches files itself: their URLs need the media-node
/// credential, which FreeSWITCH does not hold).
pub fn playable(m: &Media, local: Option<&str>, cfg: &MediaConfig) -> Result<String, String> {
    match m {
        Media::File { key, .. } => match local {
            Some(p) if is_local_path(p) => Ok(p.to_string()),
            Some(p) => Err(format!("media {key}: unusable local path {}", short(p))),
            None => Err(format!("media {key}: not fetched")),
        },
        Media::Url { url } => {
            check_url(url)?;
            Ok(format!("http_cache://{url}"))
        }
        Media::Tts { text, voice, .. } => {
            let text = speakable(text);
            if text.is_empty() {
                return Err("tts: nothing to say".into());
            }
            let voice = voice.as_deref().filter(|v| is_plain_name(v) && !v.contains(':')).unwrap_or(&cfg.tts_voice);
            Ok(format!("say:{}:{}:{}", cfg.tts_engine, voice, text))
        }
    }
}

/// An absolute path of `A-Z a-z 0-9 _ . / -` without `..`: what the runner writes.
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.contains("..") && p.len() <= 1024 && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
}

/// One playable string for a list: the item itself, or `file_string://a!b!c`.
pub fn playlist(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("file_string://{}", many.join("!")),
    }
}

/// Quote a blank-split argument if it contains blanks.
fn quoted(arg: &str) -> String {
    if arg.contains(' ') {
        format!("'{arg}'")
    } else {
        arg.to_string()
    }
}

/// The channel variable a gather's keys land in (one per command: never a stale value).
pub fn gather_var(seq: u64) -> String {
    format!("cp_digits_{seq}")
}

/// `play_and_get_digits` argument: `min max tries timeout terminators file invalid_file var regexp digit_timeout`.
/// One try (retries are the flow's), minimum 1 key (fewer than `minDigits` is judged by
/// [`gather_outcome`] as `invalid`, which FreeSWITCH would report as nothing at all).
pub fn pagd_arg(g: &Gather, prompt: &str, seq: u64) -> String {
    let term = match g.finish_key.as_deref() {
        Some(k) if k.len() == 1 && "0123456789*#".contains(k) => k.to_string(),
        _ => "none".to_string(),
    };
    format!(
        "1 {} 1 {} {} {} silence_stream://250 {} [0-9*#]+ {}",
        g.max_digits.clamp(1, MAX_DIGITS as u32),
        g.first_digit_timeout_ms.max(1),
        term,
        quoted(prompt),
        gather_var(seq),
        g.inter_digit_timeout_ms.max(1)
    )
}

/// A gather's outcome from the keys FreeSWITCH stored (`None`/empty: nothing pressed).
pub fn gather_outcome(digits: Option<&str>, g: &Gather) -> Outcome {
    let d = digits.unwrap_or("").trim();
    if d.is_empty() || d == "_undef_" {
        return Outcome::NoInput;
    }
    if !callplane::flow::wire::is_dtmf(d) || d.len() > MAX_DIGITS || (d.len() as u32) < g.min_digits {
        return Outcome::Invalid;
    }
    if d.len() == 1 && g.max_digits == 1 {
        Outcome::Digit(d.chars().next().expect("one key"))
    } else {
        Outcome::Digits(d.to_string())
    }
}

/// How this node reaches dial targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialConfig {
    /// Sofia profile the legs go out on.
    pub sip_profile: String,
    /// The SIP edge (Kamailio) every leg is sent through (`;fs_path=<…>`); None: the
    /// URI's own host.
    pub sip_edge: Option<String>,
}

impl Default for DialConfig {
    fn default() -> Self {
        DialConfig { sip_profile: "callplane".into(), sip_edge: None }
    }
}

fn check_uri(uri: &str) -> Result<(), String> {
    let ok = (uri.starts_with("sip:") || uri.starts_with("sips:"))
        && uri.len() <= 512
        && !uri.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, ',' | '|' | '[' | ']' | '{' | '}' | '\'' | '"' | '<' | '>' | '^' | '$' | '\\' | '!'));
    if ok {
        Ok(())
    } else {
        Err(format!("dial target not usable: {}", short(uri)))
    }
}

/// Caller-id number: `+`, digits, letters, `*`, `#` (at most 32).
fn cid_number(n: &str) -> Option<String> {
    let ok = !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'*' | b'#'));
    ok.then(|| n.to_string())
}

/// Caller-id name: letters, digits, spaces and `. _ -` kept (others dropped), quoted.
fn cid_name(n: &str) -> Option<String> {
    let kept: String = n.chars().filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-')).take(48).collect();
    let kept = kept.trim().to_string();
    (!kept.is_empty()).then(|| format!("'{kept}'"))
}

/// The `bridge` argument for a dial, or `Ok(None)` when no target has a URI (the flow
/// then gets `failed` without anything ringing). Simultaneous: every URI `,`-joined;
/// sequential: targets `|`-joined, a target's URIs `,`-joined. Each leg rings at most
/// `timeoutSecs` (`leg_timeout`); caller id from `callerId`.
pub fn dial_string(d: &Dial, cfg: &DialConfig, extra_vars: &[(String, String)]) -> Result<Option<String>, String> {
    if !is_plain_name(&cfg.sip_profile) {
        return Err("bad sip profile".into());
    }
    let leg = |uri: &str| -> Result<String, String> {
        check_uri(uri)?;
        let mut s = format!("[leg_timeout={}]sofia/{}/{uri}", d.timeout_secs.max(1), cfg.sip_profile);
        if let Some(edge) = &cfg.sip_edge {
            s.push_str(&format!(";fs_path=<{edge}>"));
        }
        Ok(s)
    };
    let mut groups = Vec::new();
    for t in &d.targets {
        let legs: Vec<String> = t.uris.iter().map(|u| leg(u)).collect::<Result<_, _>>()?;
        if !legs.is_empty() {
            groups.push(legs.join(","));
        }
    }
    if groups.is_empty() {
        return Ok(None);
    }
    let sep = match d.strategy {
        DialStrategy::Simultaneous => ",",
        DialStrategy::Sequential => "|",
    };
    let mut vars: Vec<String> = Vec::new();
    if let Some(c) = &d.caller_id {
        if let Some(n) = c.number.as_deref().and_then(cid_number) {
            vars.push(format!("origination_caller_id_number={n}"));
        }
        if let Some(n) = c.name.as_deref().and_then(cid_name) {
            vars.push(format!("origination_caller_id_name={n}"));
        }
    }
    for (k, v) in extra_vars {
        vars.push(format!("{k}={v}"));
    }
    let globals = if vars.is_empty() { String::new() } else { format!("{{{}}}", vars.join(",")) };
    Ok(Some(format!("{globals}{}", groups.join(sep))))
}

/// Q.850 cause → dial outcome.
pub fn dial_cause_outcome(cause: &str) -> Outcome {
    match cause {
        "SUCCESS" => Outcome::Answered,
        "USER_BUSY" | "BUSY" => Outcome::Busy,
        "NO_ANSWER" | "NOANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" | "RECOVERY_ON_TIMER_EXPIRE" | "PROGRESS_TIMEOUT" => Outcome::NoAnswer,
        _ => Outcome::Failed,
    }
}

/// A dial's outcome from the bridge's CHANNEL_EXECUTE_COMPLETE (a variable lookup on it),
/// with the trace details: cause, SIP status, talk time (`bridged_ms`, when the bridge
/// was seen to start and end).
pub fn dial_outcome(var: impl Fn(&str) -> Option<String>, bridged_ms: Option<u64>) -> (Outcome, StepData) {
    let disposition = var("variable_originate_disposition").filter(|v| !v.is_empty());
    let dialstatus = var("variable_DIALSTATUS").filter(|v| !v.is_empty());
    let cause = disposition.clone().or_else(|| dialstatus.clone()).or_else(|| var("variable_last_bridge_hangup_cause")).unwrap_or_else(|| "UNKNOWN".into());
    let mut outcome = dial_cause_outcome(&cause);
    // A bridge that happened is an answer, whatever ended it.
    if bridged_ms.is_some() || dialstatus.as_deref() == Some("SUCCESS") {
        outcome = Outcome::Answered;
    }
    let mut data = StepData::default();
    if outcome == Outcome::Answered {
        data.duration_ms = bridged_ms;
        data.hangup_cause = var("variable_last_bridge_hangup_cause").or_else(|| var("variable_bridge_hangup_cause"));
    } else {
        data.hangup_cause = Some(cause);
    }
    data.sip_status = var("variable_last_bridge_proto_specific_hangup_cause")
        .and_then(|v| v.strip_prefix("sip:").and_then(|s| s.parse::<u16>().ok()))
        .or_else(|| var("variable_sip_term_status").and_then(|s| s.parse().ok()));
    (outcome, data)
}

/// `record` argument: `path [max_secs [silence_threshold silence_hits]]` (silence
/// detection off when `silence_secs` is 0).
pub fn record_arg(path: &str, max_secs: u32, silence_secs: u32) -> String {
    if silence_secs == 0 {
        format!("{path} {}", max_secs.max(1))
    } else {
        format!("{path} {} 200 {silence_secs}", max_secs.max(1))
    }
}

/// Where a recording is written: `<dir>/<call id, made file-safe>-<seq>.wav`.
pub fn recording_path(dir: &str, call_id: &str, seq: u64) -> String {
    let safe: String = call_id.chars().take(96).map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    format!("{}/{safe}-{seq}.wav", dir.trim_end_matches('/'))
}

/// Milliseconds recorded, from `record_ms` (or `record_seconds`).
pub fn recorded_ms(var: impl Fn(&str) -> Option<String>) -> Option<u64> {
    var("variable_record_ms")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| var("variable_record_seconds").and_then(|v| v.parse::<u64>().ok()).map(|s| s * 1000))
}

/// `conference` argument: `<room>@<profile>[+flags{moderator|mute}]`.
pub fn conference_arg(room: &str, role: ConferenceRole, profile: &str) -> Result<String, String> {
    let ok = |s: &str| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if !ok(room) || !ok(profile) {
        return Err(format!("conference room not usable: {}", short(room)));
    }
    let flags = match role {
        ConferenceRole::Participant => "",
        ConferenceRole::Moderator => "+flags{moderator}",
        ConferenceRole::Muted => "+flags{mute}",
    };
    Ok(format!("{room}@{profile}{flags}"))
}

/// `playback` Application-Response → outcome.
pub fn playback_outcome(response: Option<&str>) -> Outcome {
    match response {
        Some("FILE PLAYED") => Outcome::Played,
        Some(r) => Outcome::Error(format!("playback: {}", r.chars().filter(|c| !c.is_control()).take(150).collect::<String>())),
        None => Outcome::Error("playback: no result".into()),
    }
}
