//! Business-hours calendars: weekly schedule, holidays, one-off overrides, IANA time zone, DST-correct.
//! OWNER: helper "routing-core". Interface below is fixed; fill in the bodies.
//!
//! JSON shape (stored in D1 `calendars` columns):
//! - `weekly`: `{"mon":[["09:00","17:00"]],"tue":[...],...,"sun":[]}` (local wall-clock; "24:00" allowed as an end;
//!   an end before its start spans midnight)
//! - `holidays`: `[{"date":"2026-12-25","name":"Christmas Day"}]` (local dates, whole day closed)
//! - `overrides`: `[{"start":"2026-12-24T12:00","end":"2026-12-24T23:59","state":"closed","name":"Xmas eve"}]`
//!   (local date-times; override beats holiday beats weekly)
//!
//! Semantics, precisely:
//! - Everything is evaluated on the local wall clock of `time_zone` (the UTC instant is
//!   converted first), so "09:00" means 09:00 local on DST days too; a local time skipped by a
//!   spring-forward never occurs, a repeated fall-back hour is evaluated twice, same answer.
//! - Weekly ranges are half-open `[start, end)` at minute resolution ("17:00" end: 16:59:59 is
//!   open, 17:00:00 is closed). A range whose end is before its start ("22:00"-"02:00" on fri)
//!   covers fri 22:00 → sat 02:00 and is reported as the fri rule; an end of "00:00" with a later
//!   start means "until midnight". start == end is rejected (use "00:00"-"24:00" for a full day).
//!   Missing days, `null` and `[]` mean no hours. Overlapping ranges are a union.
//! - A holiday closes its local date 00:00-24:00 (state `holiday`). Weekly ranges belong to the
//!   day they start on, so a holiday also cancels its own overnight range's spill into the next
//!   date (fri 22:00-02:00 with fri a holiday: sat 00:00-02:00 is `holiday` too, rule
//!   "holiday … (cancels weekly fri 22:00-02:00)"); the previous day's spill into a holiday
//!   date is cancelled by the holiday itself. Entries may be `{"date":..,"name":..}` objects or
//!   bare `"YYYY-MM-DD"` strings.
//! - Overrides are half-open `[start, end)` local date-times ("YYYY-MM-DDTHH:MM[:SS]", a space
//!   instead of 'T' is accepted, "T24:00" means the next midnight). When several overlap, the
//!   shortest one (the most specific) wins; equal lengths: the later in the list.
//! - Each of `weekly`, `holidays`, `overrides` may also arrive as a JSON *string* holding the
//!   document (raw D1 TEXT column); it is parsed.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub time_zone: String,
    #[serde(default)]
    pub weekly: serde_json::Value,
    #[serde(default)]
    pub holidays: serde_json::Value,
    #[serde(default)]
    pub overrides: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarState {
    Open,
    Closed,
    Holiday,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub state: CalendarState,
    /// Human-readable rule that decided, e.g. "weekly mon 09:00-17:00", "holiday 2026-12-25 Christmas Day",
    /// "override Xmas eve (closed)", "weekly: no hours on sun".
    pub rule: String,
    /// Local time used, RFC 3339 with offset, e.g. "2026-03-08T09:30:00-04:00".
    pub local_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarError(pub String);

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CalendarError {}

fn err<T>(msg: impl Into<String>) -> Result<T, CalendarError> {
    Err(CalendarError(msg.into()))
}

/// Day keys in `weekly`, Monday first (index = `Weekday::num_days_from_monday`).
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One weekly range in minutes since local midnight; `end` in 1..=1440, `end < start` spans midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    start: u32,
    end: u32,
    label: String,
}

impl Range {
    fn overnight(&self) -> bool {
        self.end <= self.start
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Holiday {
    date: NaiveDate,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Override {
    start: NaiveDateTime,
    end: NaiveDateTime,
    open: bool,
    name: String,
    label: String,
}

/// A validated calendar, ready to evaluate many times (what `evaluate` builds on every call;
/// keep one around to avoid re-parsing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledCalendar {
    tz: Tz,
    weekly: [Vec<Range>; 7],
    holidays: Vec<Holiday>,
    overrides: Vec<Override>,
}

/// Parse "HH:MM" (or "H:MM") into minutes since midnight; "24:00" only when `allow_24`.
fn parse_hhmm(s: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if allow_24 => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Strict "YYYY-MM-DD".
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
}

/// "YYYY-MM-DDTHH:MM[:SS]" (or a space instead of 'T'); "24:00" (end only) is the next midnight.
fn parse_local_datetime(s: &str, allow_24: bool) -> Option<NaiveDateTime> {
    if s.len() < 11 || !s.is_char_boundary(10) {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let date = parse_date(date)?;
    let time = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let (hhmm, secs) = match time.len() {
        5 => (time, 0),
        8 if time.as_bytes()[5] == b':' => {
            let ss = &time[6..];
            if !ss.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let ss: u32 = ss.parse().ok()?;
            if ss > 59 {
                return None;
            }
            (&time[..5], ss)
        }
        _ => return None,
    };
    let minutes = parse_hhmm(hhmm, allow_24)?;
    if minutes == 1440 {
        if secs != 0 {
            return None;
        }
        return date.succ_opt().map(|d| d.and_time(NaiveTime::MIN));
    }
    Some(date.and_time(NaiveTime::from_hms_opt(minutes / 60, minutes % 60, secs)?))
}

/// A section may be stored as the JSON value itself or as a string holding the JSON text.
fn section<'a>(v: &'a Value, field: &str) -> Result<Cow<'a, Value>, CalendarError> {
    match v {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed) => Ok(Cow::Owned(parsed)),
            Err(e) => err(format!("{field}: not valid JSON ({e})")),
        },
        other => Ok(Cow::Borrowed(other)),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn optional_name(obj: &serde_json::Map<String, Value>, field: &str) -> Result<String, CalendarError> {
    match obj.get("name") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(other) => err(format!("{field}.name: expected a string, got {}", type_name(other))),
    }
}

fn parse_weekly(v: &Value) -> Result<[Vec<Range>; 7], CalendarError> {
    let mut weekly: [Vec<Range>; 7] = Default::default();
    let v = section(v, "weekly")?;
    let obj = match v.as_ref() {
        Value::Null => return Ok(weekly),
        Value::Object(o) => o,
        other => return err(format!("weekly: expected an object of days (mon..sun), got {}", type_name(other))),
    };
    for (key, ranges) in obj {
        let Some(day) = DAYS.iter().position(|d| d == key) else {
            return err(format!("weekly: unknown day {key:?} (expected one of mon, tue, wed, thu, fri, sat, sun)"));
        };
        let list = match ranges {
            Value::Null => continue,
            Value::Array(a) => a,
            other => return err(format!("weekly.{key}: expected an array of [\"HH:MM\",\"HH:MM\"] ranges, got {}", type_name(other))),
        };
        for (i, r) in list.iter().enumerate() {
            let field = format!("weekly.{key}[{i}]");
            let pair = match r {
                Value::Array(p) if p.len() == 2 => p,
                _ => return err(format!("{field}: expected [\"HH:MM\",\"HH:MM\"], got {r}")),
            };
            let (Some(start_s), Some(end_s)) = (pair[0].as_str(), pair[1].as_str()) else {
                return err(format!("{field}: expected [\"HH:MM\",\"HH:MM\"], got {r}"));
            };
            let Some(start) = parse_hhmm(start_s, false) else {
                let hint = if start_s == "24:00" { " (24:00 is only allowed as an end)" } else { "" };
                return err(format!("{field}: bad time {start_s:?}{hint}"));
            };
            let Some(mut end) = parse_hhmm(end_s, true) else {
                return err(format!("{field}: bad time {end_s:?}"));
            };
            if start == end {
                return err(format!("{field}: start equals end {start_s:?} (use [\"00:00\",\"24:00\"] for a full day)"));
            }
            if end == 0 {
                end = 1440; // "22:00"-"00:00": until midnight
            }
            weekly[day].push(Range { start, end, label: format!("{start_s}-{end_s}") });
        }
    }
    Ok(weekly)
}

fn parse_holidays(v: &Value) -> Result<Vec<Holiday>, CalendarError> {
    let v = section(v, "holidays")?;
    let list = match v.as_ref() {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => return err(format!("holidays: expected an array, got {}", type_name(other))),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, h) in list.iter().enumerate() {
        let field = format!("holidays[{i}]");
        let (date_s, name) = match h {
            Value::String(s) => (s.as_str(), String::new()),
            Value::Object(o) => {
                let date_s = match o.get("date") {
                    Some(Value::String(s)) => s.as_str(),
                    None | Some(Value::Null) => return err(format!("{field}.date: missing")),
                    Some(other) => return err(format!("{field}.date: expected \"YYYY-MM-DD\", got {other}")),
                };
                (date_s, optional_name(o, &field)?)
            }
            other => return err(format!("{field}: expected {{\"date\":\"YYYY-MM-DD\",\"name\":...}}, got {}", type_name(other))),
        };
        let Some(date) = parse_date(date_s) else {
            return err(format!("{field}.date: bad date {date_s:?} (expected YYYY-MM-DD)"));
        };
        out.push(Holiday { date, name });
    }
    Ok(out)
}

fn parse_overrides(v: &Value) -> Result<Vec<Override>, CalendarError> {
    let v = section(v, "overrides")?;
    let list = match v.as_ref() {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => return err(format!("overrides: expected an array, got {}", type_name(other))),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, o) in list.iter().enumerate() {
        let field = format!("overrides[{i}]");
        let Value::Object(obj) = o else {
            return err(format!("{field}: expected an object with start, end, state, got {}", type_name(o)));
        };
        let text = |key: &str| -> Result<&str, CalendarError> {
            match obj.get(key) {
                Some(Value::String(s)) => Ok(s.as_str()),
                None | Some(Value::Null) => err(format!("{field}.{key}: missing")),
                Some(other) => err(format!("{field}.{key}: expected a string, got {}", type_name(other))),
            }
        };
        let start_s = text("start")?;
        let end_s = text("end")?;
        let state_s = text("state")?;
        let Some(start) = parse_local_datetime(start_s, false) else {
            return err(format!("{field}.start: bad local date-time {start_s:?} (expected YYYY-MM-DDTHH:MM)"));
        };
        let Some(end) = parse_local_datetime(end_s, true) else {
            return err(format!("{field}.end: bad local date-time {end_s:?} (expected YYYY-MM-DDTHH:MM)"));
        };
        if end <= start {
            let what = if end == start { "equals" } else { "is before" };
            return err(format!("{field}.end: {end_s:?} {what} start {start_s:?}"));
        }
        let open = match state_s {
            "open" => true,
            "closed" => false,
            other => return err(format!("{field}.state: expected \"open\" or \"closed\", got {other:?}")),
        };
        out.push(Override { start, end, open, name: optional_name(obj, &field)?, label: format!("{start_s}..{end_s}") });
    }
    Ok(out)
}

/// Validate and pre-parse a calendar.
pub fn compile(cal: &Calendar) -> Result<CompiledCalendar, CalendarError> {
    if cal.time_zone.trim().is_empty() {
        return err("time_zone: missing");
    }
    let tz: Tz = match cal.time_zone.parse() {
        Ok(tz) => tz,
        Err(_) => return err(format!("time_zone: unknown time zone {:?} (expected an IANA name like \"America/New_York\")", cal.time_zone)),
    };
    Ok(CompiledCalendar {
        tz,
        weekly: parse_weekly(&cal.weekly)?,
        holidays: parse_holidays(&cal.holidays)?,
        overrides: parse_overrides(&cal.overrides)?,
    })
}

/// Validate a calendar (time zone known, times parse, dates parse). Used by provisioning.
pub fn validate(cal: &Calendar) -> Result<(), CalendarError> {
    compile(cal).map(|_| ())
}

/// Evaluate the calendar at `now_ms` (Unix epoch milliseconds, UTC).
pub fn evaluate(cal: &Calendar, now_ms: i64) -> Result<Evaluation, CalendarError> {
    compile(cal)?.evaluate(now_ms)
}

fn holiday_rule(h: &Holiday) -> String {
    if h.name.is_empty() {
        format!("holiday {}", h.date)
    } else {
        format!("holiday {} {}", h.date, h.name)
    }
}

fn minute_of_day(t: &NaiveDateTime) -> u32 {
    t.hour() * 60 + t.minute()
}

impl CompiledCalendar {
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Evaluate at `now_ms` (Unix epoch milliseconds, UTC).
    pub fn evaluate(&self, now_ms: i64) -> Result<Evaluation, CalendarError> {
        let Some(utc) = DateTime::<Utc>::from_timestamp_millis(now_ms) else {
            return err(format!("now_ms: out of range ({now_ms})"));
        };
        let local = utc.with_timezone(&self.tz);
        let local_time = local.to_rfc3339_opts(SecondsFormat::Secs, false);
        let wall = local.naive_local();
        let (state, rule) = self.decide(&wall);
        Ok(Evaluation { state, rule, local_time })
    }

    /// The decision on a local wall-clock date-time.
    fn decide(&self, wall: &NaiveDateTime) -> (CalendarState, String) {
        // 1. overrides: the shortest active one wins, ties to the later entry.
        let mut best: Option<&Override> = None;
        for o in self.overrides.iter().filter(|o| o.start <= *wall && *wall < o.end) {
            let len = o.end - o.start;
            if best.is_none_or(|b| len <= b.end - b.start) {
                best = Some(o);
            }
        }
        if let Some(o) = best {
            let state = if o.open { CalendarState::Open } else { CalendarState::Closed };
            let what = if o.open { "open" } else { "closed" };
            let name = if o.name.is_empty() { &o.label } else { &o.name };
            return (state, format!("override {name} ({what})"));
        }
        // 2. holidays: the whole local date.
        let date = wall.date();
        if let Some(h) = self.holidays.iter().find(|h| h.date == date) {
            return (CalendarState::Holiday, holiday_rule(h));
        }
        // 3. weekly.
        let day = wall.weekday().num_days_from_monday() as usize;
        let prev = (day + 6) % 7;
        let m = minute_of_day(wall);
        for r in &self.weekly[day] {
            let open = if r.overnight() { m >= r.start } else { r.start <= m && m < r.end };
            if open {
                return (CalendarState::Open, format!("weekly {} {}", DAYS[day], r.label));
            }
        }
        let prev_holiday = date.pred_opt().and_then(|p| self.holidays.iter().find(|h| h.date == p));
        for r in self.weekly[prev].iter().filter(|r| r.overnight()) {
            if m < r.end {
                if let Some(h) = prev_holiday {
                    let cancels = format!("(cancels weekly {} {})", DAYS[prev], r.label);
                    return (CalendarState::Holiday, format!("{} {cancels}", holiday_rule(h)));
                }
                return (CalendarState::Open, format!("weekly {} {}", DAYS[prev], r.label));
            }
        }
        if self.weekly[day].is_empty() {
            (CalendarState::Closed, format!("weekly: no hours on {}", DAYS[day]))
        } else {
            let hours: Vec<&str> = self.weekly[day].iter().map(|r| r.label.as_str()).collect();
            (CalendarState::Closed, format!("weekly: {} outside {}", DAYS[day], hours.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// UTC instant from an RFC 3339 string (independent of the code under test's tz handling).
    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).expect(rfc3339).timestamp_millis()
    }

    fn cal(tz: &str, weekly: Value) -> Calendar {
        Calendar { time_zone: tz.into(), weekly, holidays: Value::Null, overrides: Value::Null }
    }

    fn nine_to_five_every_day(tz: &str) -> Calendar {
        let r = json!([["09:00", "17:00"]]);
        cal(tz, json!({"mon": r, "tue": r, "wed": r, "thu": r, "fri": r, "sat": r, "sun": r}))
    }

    fn office(tz: &str) -> Calendar {
        let r = json!([["09:00", "17:00"]]);
        cal(tz, json!({"mon": r, "tue": r, "wed": r, "thu": r, "fri": r, "sat": [], "sun": []}))
    }

    #[track_caller]
    fn check(c: &Calendar, at: &str, state: CalendarState, rule: &str, local: &str) {
        let e = evaluate(c, ms(at)).unwrap();
        assert_eq!((e.state, e.rule.as_str(), e.local_time.as_str()), (state, rule, local), "at {at}");
    }

    #[track_caller]
    fn state_at(c: &Calendar, at: &str) -> CalendarState {
        evaluate(c, ms(at)).unwrap().state
    }

    use CalendarState::{Closed, Holiday, Open};

    #[test]
    fn plain_weekday_hours_and_boundaries() {
        let c = office("America/New_York");
        // Tue 2026-01-13, EST (UTC-5)
        check(&c, "2026-01-13T13:59:59Z", Closed, "weekly: tue outside 09:00-17:00", "2026-01-13T08:59:59-05:00");
        check(&c, "2026-01-13T14:00:00Z", Open, "weekly tue 09:00-17:00", "2026-01-13T09:00:00-05:00");
        check(&c, "2026-01-13T21:59:59Z", Open, "weekly tue 09:00-17:00", "2026-01-13T16:59:59-05:00");
        check(&c, "2026-01-13T22:00:00Z", Closed, "weekly: tue outside 09:00-17:00", "2026-01-13T17:00:00-05:00");
        // Sat
        check(&c, "2026-01-17T15:00:00Z", Closed, "weekly: no hours on sat", "2026-01-17T10:00:00-05:00");
        // milliseconds do not leak into the local time
        assert_eq!(evaluate(&c, ms("2026-01-13T14:00:00Z") + 999).unwrap().local_time, "2026-01-13T09:00:00-05:00");
    }

    #[test]
    fn new_york_spring_forward() {
        // 2026-03-08 (Sun): 02:00 EST -> 03:00 EDT, i.e. at 07:00Z.
        let c = nine_to_five_every_day("America/New_York");
        // Day before, still EST: 09:00 local = 14:00Z
        check(&c, "2026-03-07T13:59:00Z", Closed, "weekly: sat outside 09:00-17:00", "2026-03-07T08:59:00-05:00");
        check(&c, "2026-03-07T14:00:00Z", Open, "weekly sat 09:00-17:00", "2026-03-07T09:00:00-05:00");
        // DST day: 09:00 EDT = 13:00Z (an EST-based evaluation would say 08:00 and closed)
        check(&c, "2026-03-08T12:59:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-03-08T08:59:00-04:00");
        check(&c, "2026-03-08T13:00:00Z", Open, "weekly sun 09:00-17:00", "2026-03-08T09:00:00-04:00");
        check(&c, "2026-03-08T20:59:59Z", Open, "weekly sun 09:00-17:00", "2026-03-08T16:59:59-04:00");
        check(&c, "2026-03-08T21:00:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-03-08T17:00:00-04:00");
        // Mon after: 09:00 EDT = 13:00Z
        assert_eq!(state_at(&c, "2026-03-09T12:59:59Z"), Closed);
        assert_eq!(state_at(&c, "2026-03-09T13:00:00Z"), Open);

        // A range through the skipped hour: 01:59:59 EST is closed, the next second is 03:00 EDT, open.
        let night = cal("America/New_York", json!({"sun": [["02:00", "04:00"]]}));
        check(&night, "2026-03-08T06:59:59Z", Closed, "weekly: sun outside 02:00-04:00", "2026-03-08T01:59:59-05:00");
        check(&night, "2026-03-08T07:00:00Z", Open, "weekly sun 02:00-04:00", "2026-03-08T03:00:00-04:00");
        check(&night, "2026-03-08T07:59:59Z", Open, "weekly sun 02:00-04:00", "2026-03-08T03:59:59-04:00");
        check(&night, "2026-03-08T08:00:00Z", Closed, "weekly: sun outside 02:00-04:00", "2026-03-08T04:00:00-04:00");
        // Only one wall-clock hour of the range exists that night (07:00Z..08:00Z).
        let open_minutes = (0..24 * 60)
            .filter(|i| evaluate(&night, ms("2026-03-08T00:00:00Z") + i * 60_000).unwrap().state == Open)
            .count();
        assert_eq!(open_minutes, 60);

        // An overnight range from Saturday spilling into the short Sunday.
        let sat_night = cal("America/New_York", json!({"sat": [["22:00", "04:00"]]}));
        check(&sat_night, "2026-03-08T03:00:00Z", Open, "weekly sat 22:00-04:00", "2026-03-07T22:00:00-05:00");
        check(&sat_night, "2026-03-08T07:30:00Z", Open, "weekly sat 22:00-04:00", "2026-03-08T03:30:00-04:00");
        check(&sat_night, "2026-03-08T08:00:00Z", Closed, "weekly: no hours on sun", "2026-03-08T04:00:00-04:00");
    }

    #[test]
    fn new_york_fall_back() {
        // 2026-11-01 (Sun): 02:00 EDT -> 01:00 EST, i.e. at 06:00Z; 01:xx happens twice.
        let c = nine_to_five_every_day("America/New_York");
        // Sat before, EDT: 09:00 local = 13:00Z
        check(&c, "2026-10-31T12:59:00Z", Closed, "weekly: sat outside 09:00-17:00", "2026-10-31T08:59:00-04:00");
        check(&c, "2026-10-31T13:00:00Z", Open, "weekly sat 09:00-17:00", "2026-10-31T09:00:00-04:00");
        // DST day: 09:00 EST = 14:00Z (an EDT-based evaluation would already say 09:00 at 13:00Z)
        check(&c, "2026-11-01T13:00:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-11-01T08:00:00-05:00");
        check(&c, "2026-11-01T13:59:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-11-01T08:59:00-05:00");
        check(&c, "2026-11-01T14:00:00Z", Open, "weekly sun 09:00-17:00", "2026-11-01T09:00:00-05:00");
        check(&c, "2026-11-01T21:59:00Z", Open, "weekly sun 09:00-17:00", "2026-11-01T16:59:00-05:00");
        check(&c, "2026-11-01T22:00:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-11-01T17:00:00-05:00");

        // The repeated hour: 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) are both inside 01:00-02:00.
        let night = cal("America/New_York", json!({"sun": [["01:00", "02:00"]]}));
        check(&night, "2026-11-01T04:59:00Z", Closed, "weekly: sun outside 01:00-02:00", "2026-11-01T00:59:00-04:00");
        check(&night, "2026-11-01T05:30:00Z", Open, "weekly sun 01:00-02:00", "2026-11-01T01:30:00-04:00");
        check(&night, "2026-11-01T06:30:00Z", Open, "weekly sun 01:00-02:00", "2026-11-01T01:30:00-05:00");
        check(&night, "2026-11-01T07:00:00Z", Closed, "weekly: sun outside 01:00-02:00", "2026-11-01T02:00:00-05:00");
        let open_minutes = (0..24 * 60)
            .filter(|i| evaluate(&night, ms("2026-11-01T00:00:00Z") + i * 60_000).unwrap().state == Open)
            .count();
        assert_eq!(open_minutes, 120, "the one-hour range is open for two real hours that night");
    }

    #[test]
    fn london_transitions() {
        let c = nine_to_five_every_day("Europe/London");
        // 2026-03-29 (Sun): 01:00 GMT -> 02:00 BST. 09:00 BST = 08:00Z.
        check(&c, "2026-03-28T08:59:00Z", Closed, "weekly: sat outside 09:00-17:00", "2026-03-28T08:59:00+00:00");
        check(&c, "2026-03-28T09:00:00Z", Open, "weekly sat 09:00-17:00", "2026-03-28T09:00:00+00:00");
        check(&c, "2026-03-29T07:59:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-03-29T08:59:00+01:00");
        check(&c, "2026-03-29T08:00:00Z", Open, "weekly sun 09:00-17:00", "2026-03-29T09:00:00+01:00");
        check(&c, "2026-03-29T15:59:00Z", Open, "weekly sun 09:00-17:00", "2026-03-29T16:59:00+01:00");
        check(&c, "2026-03-29T16:00:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-03-29T17:00:00+01:00");
        // 2026-10-25 (Sun): 02:00 BST -> 01:00 GMT. 09:00 GMT = 09:00Z.
        check(&c, "2026-10-24T07:59:00Z", Closed, "weekly: sat outside 09:00-17:00", "2026-10-24T08:59:00+01:00");
        check(&c, "2026-10-24T08:00:00Z", Open, "weekly sat 09:00-17:00", "2026-10-24T09:00:00+01:00");
        check(&c, "2026-10-25T08:00:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-10-25T08:00:00+00:00");
        check(&c, "2026-10-25T08:59:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-10-25T08:59:00+00:00");
        check(&c, "2026-10-25T09:00:00Z", Open, "weekly sun 09:00-17:00", "2026-10-25T09:00:00+00:00");
        check(&c, "2026-10-25T17:00:00Z", Closed, "weekly: sun outside 09:00-17:00", "2026-10-25T17:00:00+00:00");
    }

    #[test]
    fn sydney_southern_hemisphere() {
        let mut c = office("Australia/Sydney");
        // Summer (AEDT, UTC+11): Mon 2026-01-12 09:00 local = Sun 2026-01-11 22:00Z.
        // The UTC weekday is Sunday; the local one, which counts, is Monday.
        check(&c, "2026-01-11T21:59:00Z", Closed, "weekly: mon outside 09:00-17:00", "2026-01-12T08:59:00+11:00");
        check(&c, "2026-01-11T22:00:00Z", Open, "weekly mon 09:00-17:00", "2026-01-12T09:00:00+11:00");
        // DST ends Sun 2026-04-05 03:00 AEDT -> 02:00 AEST. Fri before: 09:00 AEDT = Thu 22:00Z.
        check(&c, "2026-04-02T22:00:00Z", Open, "weekly fri 09:00-17:00", "2026-04-03T09:00:00+11:00");
        // Mon after: 09:00 AEST = Sun 23:00Z; 22:00Z is 08:00 local.
        check(&c, "2026-04-05T22:00:00Z", Closed, "weekly: mon outside 09:00-17:00", "2026-04-06T08:00:00+10:00");
        check(&c, "2026-04-05T23:00:00Z", Open, "weekly mon 09:00-17:00", "2026-04-06T09:00:00+10:00");
        // DST starts Sun 2026-10-04 02:00 AEST -> 03:00 AEDT. Mon after: 09:00 AEDT = Sun 22:00Z.
        check(&c, "2026-10-04T21:59:00Z", Closed, "weekly: mon outside 09:00-17:00", "2026-10-05T08:59:00+11:00");
        check(&c, "2026-10-04T22:00:00Z", Open, "weekly mon 09:00-17:00", "2026-10-05T09:00:00+11:00");
        // Australia Day is a local date: Mon 2026-01-26 starts at 2026-01-25T13:00Z.
        c.holidays = json!([{"date": "2026-01-26", "name": "Australia Day"}]);
        check(&c, "2026-01-25T12:59:59Z", Closed, "weekly: no hours on sun", "2026-01-25T23:59:59+11:00");
        check(&c, "2026-01-25T13:00:00Z", Holiday, "holiday 2026-01-26 Australia Day", "2026-01-26T00:00:00+11:00");
        check(&c, "2026-01-25T22:00:00Z", Holiday, "holiday 2026-01-26 Australia Day", "2026-01-26T09:00:00+11:00");
        check(&c, "2026-01-26T22:00:00Z", Open, "weekly tue 09:00-17:00", "2026-01-27T09:00:00+11:00");
    }

    #[test]
    fn midnight_spanning_ranges() {
        // fri 22:00 -> sat 02:00, and sun 23:00 -> mon 01:00 (wraps the week), in UTC for clarity.
        let c = cal("UTC", json!({"fri": [["22:00", "02:00"]], "sun": [["23:00", "01:00"]], "mon": [["09:00", "17:00"]]}));
        check(&c, "2026-03-06T21:59:59Z", Closed, "weekly: fri outside 22:00-02:00", "2026-03-06T21:59:59+00:00");
        check(&c, "2026-03-06T22:00:00Z", Open, "weekly fri 22:00-02:00", "2026-03-06T22:00:00+00:00");
        check(&c, "2026-03-06T23:59:59Z", Open, "weekly fri 22:00-02:00", "2026-03-06T23:59:59+00:00");
        check(&c, "2026-03-07T00:00:00Z", Open, "weekly fri 22:00-02:00", "2026-03-07T00:00:00+00:00");
        check(&c, "2026-03-07T01:59:59Z", Open, "weekly fri 22:00-02:00", "2026-03-07T01:59:59+00:00");
        check(&c, "2026-03-07T02:00:00Z", Closed, "weekly: no hours on sat", "2026-03-07T02:00:00+00:00");
        // the early part of fri is not covered by fri's own late range
        assert_eq!(state_at(&c, "2026-03-06T01:00:00Z"), Closed);
        // sunday night into monday
        check(&c, "2026-03-08T23:30:00Z", Open, "weekly sun 23:00-01:00", "2026-03-08T23:30:00+00:00");
        check(&c, "2026-03-09T00:30:00Z", Open, "weekly sun 23:00-01:00", "2026-03-09T00:30:00+00:00");
        check(&c, "2026-03-09T01:00:00Z", Closed, "weekly: mon outside 09:00-17:00", "2026-03-09T01:00:00+00:00");
        check(&c, "2026-03-09T09:00:00Z", Open, "weekly mon 09:00-17:00", "2026-03-09T09:00:00+00:00");

        // "24:00" and "00:00" as ends mean midnight, not a spill
        let late = cal("UTC", json!({"tue": [["18:00", "24:00"]], "wed": [["18:00", "00:00"]], "thu": [["00:00", "24:00"]]}));
        assert_eq!(state_at(&late, "2026-03-10T23:59:59Z"), Open);
        assert_eq!(state_at(&late, "2026-03-11T00:00:00Z"), Closed);
        assert_eq!(state_at(&late, "2026-03-11T23:59:59Z"), Open);
        check(&late, "2026-03-12T00:00:00Z", Open, "weekly thu 00:00-24:00", "2026-03-12T00:00:00+00:00");
        check(&late, "2026-03-12T23:59:59Z", Open, "weekly thu 00:00-24:00", "2026-03-12T23:59:59+00:00");
        check(&late, "2026-03-13T00:00:00Z", Closed, "weekly: no hours on fri", "2026-03-13T00:00:00+00:00");
    }

    #[test]
    fn split_shifts_and_overlaps() {
        let c = cal("Europe/Paris", json!({"mon": [["09:00", "12:00"], ["14:00", "18:00"], ["11:00", "12:30"]]}));
        // Mon 2026-01-12, CET (UTC+1)
        check(&c, "2026-01-12T08:00:00Z", Open, "weekly mon 09:00-12:00", "2026-01-12T09:00:00+01:00");
        check(&c, "2026-01-12T11:15:00Z", Open, "weekly mon 11:00-12:30", "2026-01-12T12:15:00+01:00");
        check(&c, "2026-01-12T12:00:00Z", Closed, "weekly: mon outside 09:00-12:00, 14:00-18:00, 11:00-12:30", "2026-01-12T13:00:00+01:00");
        check(&c, "2026-01-12T13:00:00Z", Open, "weekly mon 14:00-18:00", "2026-01-12T14:00:00+01:00");
    }

    #[test]
    fn holidays_close_the_local_date() {
        let mut c = office("America/New_York");
        c.holidays = json!([{"date": "2026-12-25", "name": "Christmas Day"}, "2026-12-31", {"date": "2027-01-01", "name": null}]);
        // Fri 2026-12-25, EST: the whole local day, including what would be open hours.
        check(&c, "2026-12-25T05:00:00Z", Holiday, "holiday 2026-12-25 Christmas Day", "2026-12-25T00:00:00-05:00");
        check(&c, "2026-12-25T15:00:00Z", Holiday, "holiday 2026-12-25 Christmas Day", "2026-12-25T10:00:00-05:00");
        check(&c, "2026-12-26T04:59:59Z", Holiday, "holiday 2026-12-25 Christmas Day", "2026-12-25T23:59:59-05:00");
        // 2026-12-25T02:00Z is still Dec 24 in New York: a normal Thursday evening.
        check(&c, "2026-12-25T02:00:00Z", Closed, "weekly: thu outside 09:00-17:00", "2026-12-24T21:00:00-05:00");
        check(&c, "2026-12-24T15:00:00Z", Open, "weekly thu 09:00-17:00", "2026-12-24T10:00:00-05:00");
        // bare-string and unnamed holidays
        check(&c, "2026-12-31T15:00:00Z", Holiday, "holiday 2026-12-31", "2026-12-31T10:00:00-05:00");
        check(&c, "2027-01-01T15:00:00Z", Holiday, "holiday 2027-01-01", "2027-01-01T10:00:00-05:00");
        check(&c, "2027-01-04T15:00:00Z", Open, "weekly mon 09:00-17:00", "2027-01-04T10:00:00-05:00");
    }

    #[test]
    fn holiday_cancels_its_overnight_shift() {
        let mut c = cal("UTC", json!({"thu": [["22:00", "02:00"]], "fri": [["22:00", "02:00"]]}));
        c.holidays = json!([{"date": "2026-12-25", "name": "Christmas Day"}]);
        // Thu 24th night spills into the holiday: the holiday wins on its date.
        check(&c, "2026-12-24T23:00:00Z", Open, "weekly thu 22:00-02:00", "2026-12-24T23:00:00+00:00");
        check(&c, "2026-12-25T01:00:00Z", Holiday, "holiday 2026-12-25 Christmas Day", "2026-12-25T01:00:00+00:00");
        // Fri 25th's own shift does not run, including its spill into Sat 26th.
        check(&c, "2026-12-25T23:00:00Z", Holiday, "holiday 2026-12-25 Christmas Day", "2026-12-25T23:00:00+00:00");
        check(
            &c,
            "2026-12-26T01:00:00Z",
            Holiday,
            "holiday 2026-12-25 Christmas Day (cancels weekly fri 22:00-02:00)",
            "2026-12-26T01:00:00+00:00",
        );
        check(&c, "2026-12-26T02:00:00Z", Closed, "weekly: no hours on sat", "2026-12-26T02:00:00+00:00");
    }

    #[test]
    fn overrides_beat_holidays_and_weekly() {
        let mut c = office("America/New_York");
        c.holidays = json!([{"date": "2026-12-25", "name": "Christmas Day"}]);
        c.overrides = json!([
            {"start": "2026-12-24T12:00", "end": "2026-12-24T23:59", "state": "closed", "name": "Xmas eve"},
            {"start": "2026-12-25T10:00", "end": "2026-12-25T14:00", "state": "open", "name": "Skeleton crew"},
            {"start": "2026-12-27T09:00", "end": "2026-12-27T13:00", "state": "open"},
            {"start": "2026-12-28T00:00", "end": "2027-01-02T00:00", "state": "closed", "name": "Year-end shutdown"},
            {"start": "2026-12-29 10:00:00", "end": "2026-12-29T24:00", "state": "open", "name": "Billing hotline"}
        ]);
        // Thu 24th: open in the morning (weekly), closed by override from 12:00 local (17:00Z).
        check(&c, "2026-12-24T16:59:59Z", Open, "weekly thu 09:00-17:00", "2026-12-24T11:59:59-05:00");
        check(&c, "2026-12-24T17:00:00Z", Closed, "override Xmas eve (closed)", "2026-12-24T12:00:00-05:00");
        // override end is exclusive
        check(&c, "2026-12-25T04:59:00Z", Closed, "weekly: thu outside 09:00-17:00", "2026-12-24T23:59:00-05:00");
        // Fri 25th: holiday, except the open override window
        check(&c, "2026-12-25T14:59:00Z", Holiday, "holiday 2026-12-25 Christmas Day", "2026-12-25T09:59:00-05:00");
        check(&c, "2026-12-25T15:00:00Z", Open, "override Skeleton crew (open)", "2026-12-25T10:00:00-05:00");
        check(&c, "2026-12-25T18:59:59Z", Open, "override Skeleton crew (open)", "2026-12-25T13:59:59-05:00");
        check(&c, "2026-12-25T19:00:00Z", Holiday, "holiday 2026-12-25 Christmas Day", "2026-12-25T14:00:00-05:00");
        // Sun 27th: unnamed open override on a day without hours
        check(&c, "2026-12-27T15:00:00Z", Open, "override 2026-12-27T09:00..2026-12-27T13:00 (open)", "2026-12-27T10:00:00-05:00");
        // Mon 28th: shutdown override beats weekly hours
        check(&c, "2026-12-28T15:00:00Z", Closed, "override Year-end shutdown (closed)", "2026-12-28T10:00:00-05:00");
        // Tue 29th: the shorter open override inside the shutdown wins; before it, the shutdown
        check(&c, "2026-12-29T14:59:00Z", Closed, "override Year-end shutdown (closed)", "2026-12-29T09:59:00-05:00");
        check(&c, "2026-12-29T15:00:00Z", Open, "override Billing hotline (open)", "2026-12-29T10:00:00-05:00");
        check(&c, "2026-12-30T04:59:59Z", Open, "override Billing hotline (open)", "2026-12-29T23:59:59-05:00");
        check(&c, "2026-12-30T05:00:00Z", Closed, "override Year-end shutdown (closed)", "2026-12-30T00:00:00-05:00");
        // after everything: back to weekly
        check(&c, "2027-01-04T15:00:00Z", Open, "weekly mon 09:00-17:00", "2027-01-04T10:00:00-05:00");
    }

    #[test]
    fn equal_length_overrides_later_wins() {
        let mut c = office("UTC");
        c.overrides = json!([
            {"start": "2026-06-01T10:00", "end": "2026-06-01T11:00", "state": "closed", "name": "first"},
            {"start": "2026-06-01T10:30", "end": "2026-06-01T11:30", "state": "open", "name": "second"}
        ]);
        assert_eq!(evaluate(&c, ms("2026-06-01T10:15:00Z")).unwrap().rule, "override first (closed)");
        assert_eq!(evaluate(&c, ms("2026-06-01T10:45:00Z")).unwrap().rule, "override second (open)");
        assert_eq!(evaluate(&c, ms("2026-06-01T11:15:00Z")).unwrap().rule, "override second (open)");
    }

    #[test]
    fn overrides_use_local_wall_clock_across_dst() {
        // An override written in local time on the NY spring-forward day: 01:00-04:00 local
        // is only two real hours long (06:00Z..08:00Z).
        let mut c = cal("America/New_York", Value::Null);
        c.overrides = json!([{"start": "2026-03-08T01:00", "end": "2026-03-08T04:00", "state": "open", "name": "maintenance"}]);
        assert_eq!(state_at(&c, "2026-03-08T05:59:59Z"), Closed);
        assert_eq!(state_at(&c, "2026-03-08T06:00:00Z"), Open);
        assert_eq!(state_at(&c, "2026-03-08T07:59:59Z"), Open);
        assert_eq!(state_at(&c, "2026-03-08T08:00:00Z"), Closed);
        assert_eq!(evaluate(&c, ms("2026-03-08T12:00:00Z")).unwrap().rule, "weekly: no hours on sun");
    }

    #[test]
    fn empty_and_string_encoded_sections() {
        // nothing configured: always closed, valid
        let c = cal("UTC", Value::Null);
        validate(&c).unwrap();
        check(&c, "2026-06-01T12:00:00Z", Closed, "weekly: no hours on mon", "2026-06-01T12:00:00+00:00");
        let c = cal("UTC", json!({}));
        validate(&c).unwrap();
        let c = cal("UTC", json!({"mon": null, "tue": []}));
        assert_eq!(state_at(&c, "2026-06-01T12:00:00Z"), Closed);
        // raw D1 TEXT columns holding JSON
        let c = Calendar {
            time_zone: "Europe/Berlin".into(),
            weekly: Value::String(r#"{"mon":[["09:00","17:00"]]}"#.into()),
            holidays: Value::String(r#"[{"date":"2026-06-08","name":"Test"}]"#.into()),
            overrides: Value::String("[]".into()),
        };
        // Mon 2026-06-01 10:00 CEST = 08:00Z
        check(&c, "2026-06-01T08:00:00Z", Open, "weekly mon 09:00-17:00", "2026-06-01T10:00:00+02:00");
        check(&c, "2026-06-08T08:00:00Z", Holiday, "holiday 2026-06-08 Test", "2026-06-08T10:00:00+02:00");
        // the D1 row shape deserializes
        let row: Calendar = serde_json::from_value(json!({"time_zone": "UTC", "weekly": {"sun": [["10:00", "11:00"]]}})).unwrap();
        assert_eq!(row.holidays, Value::Null);
        validate(&row).unwrap();
        let compiled = compile(&row).unwrap();
        assert_eq!(compiled.time_zone(), chrono_tz::UTC);
        assert_eq!(compiled.evaluate(ms("2026-06-07T10:30:00Z")).unwrap().state, Open);
    }

    #[track_caller]
    fn invalid(c: &Calendar, expected: &str) {
        let e = validate(c).expect_err(expected);
        assert_eq!(e.0, expected);
        // evaluate refuses the same calendar with the same message
        assert_eq!(evaluate(c, 0).unwrap_err(), e);
    }

    #[test]
    fn validation_errors_name_the_field() {
        invalid(&cal("Mars/Olympus_Mons", Value::Null), "time_zone: unknown time zone \"Mars/Olympus_Mons\" (expected an IANA name like \"America/New_York\")");
        invalid(&cal("", Value::Null), "time_zone: missing");
        invalid(&cal("EST5EDT ", Value::Null), "time_zone: unknown time zone \"EST5EDT \" (expected an IANA name like \"America/New_York\")");
        let w = |weekly: Value| cal("UTC", weekly);
        invalid(&w(json!({"mon": [["9am", "5pm"]]})), "weekly.mon[0]: bad time \"9am\"");
        invalid(&w(json!({"mon": [["09:00", "17:00"], ["18:00", "25:00"]]})), "weekly.mon[1]: bad time \"25:00\"");
        invalid(&w(json!({"tue": [["12:60", "13:00"]]})), "weekly.tue[0]: bad time \"12:60\"");
        invalid(&w(json!({"tue": [["12:00", "13:5"]]})), "weekly.tue[0]: bad time \"13:5\"");
        invalid(&w(json!({"tue": [["-1:00", "13:00"]]})), "weekly.tue[0]: bad time \"-1:00\"");
        invalid(&w(json!({"wed": [["24:00", "02:00"]]})), "weekly.wed[0]: bad time \"24:00\" (24:00 is only allowed as an end)");
        invalid(&w(json!({"thu": [["09:00", "09:00"]]})), "weekly.thu[0]: start equals end \"09:00\" (use [\"00:00\",\"24:00\"] for a full day)");
        invalid(&w(json!({"thu": [["00:00", "00:00"]]})), "weekly.thu[0]: start equals end \"00:00\" (use [\"00:00\",\"24:00\"] for a full day)");
        invalid(&w(json!({"fri": [["09:00"]]})), "weekly.fri[0]: expected [\"HH:MM\",\"HH:MM\"], got [\"09:00\"]");
        invalid(&w(json!({"fri": [["09:00", "12:00", "17:00"]]})), "weekly.fri[0]: expected [\"HH:MM\",\"HH:MM\"], got [\"09:00\",\"12:00\",\"17:00\"]");
        invalid(&w(json!({"fri": [[900, 1700]]})), "weekly.fri[0]: expected [\"HH:MM\",\"HH:MM\"], got [900,1700]");
        invalid(&w(json!({"fri": ["09:00-17:00"]})), "weekly.fri[0]: expected [\"HH:MM\",\"HH:MM\"], got \"09:00-17:00\"");
        invalid(&w(json!({"sat": "09:00-17:00"})), "weekly.sat: expected an array of [\"HH:MM\",\"HH:MM\"] ranges, got a string");
        invalid(&w(json!({"monday": []})), "weekly: unknown day \"monday\" (expected one of mon, tue, wed, thu, fri, sat, sun)");
        invalid(&w(json!({"Mon": []})), "weekly: unknown day \"Mon\" (expected one of mon, tue, wed, thu, fri, sat, sun)");
        invalid(&w(json!([["09:00", "17:00"]])), "weekly: expected an object of days (mon..sun), got an array");
        invalid(&w(json!(42)), "weekly: expected an object of days (mon..sun), got a number");
        let e = validate(&w(Value::String("{not json".into()))).unwrap_err();
        assert!(e.0.starts_with("weekly: not valid JSON"), "{e}");

        let h = |holidays: Value| Calendar { holidays, ..cal("UTC", Value::Null) };
        invalid(&h(json!({"date": "2026-12-25"})), "holidays: expected an array, got an object");
        invalid(&h(json!([{"date": "2026-02-30"}])), "holidays[0].date: bad date \"2026-02-30\" (expected YYYY-MM-DD)");
        invalid(&h(json!([{"date": "2026-12-25"}, {"date": "2026-13-01"}])), "holidays[1].date: bad date \"2026-13-01\" (expected YYYY-MM-DD)");
        invalid(&h(json!(["26-12-25"])), "holidays[0].date: bad date \"26-12-25\" (expected YYYY-MM-DD)");
        invalid(&h(json!(["2026-1-5"])), "holidays[0].date: bad date \"2026-1-5\" (expected YYYY-MM-DD)");
        invalid(&h(json!(["2026/12/25"])), "holidays[0].date: bad date \"2026/12/25\" (expected YYYY-MM-DD)");
        invalid(&h(json!([{"name": "Christmas"}])), "holidays[0].date: missing");
        invalid(&h(json!([{"date": 20261225}])), "holidays[0].date: expected \"YYYY-MM-DD\", got 20261225");
        invalid(&h(json!([{"date": "2026-12-25", "name": 7}])), "holidays[0].name: expected a string, got a number");
        invalid(&h(json!([true])), "holidays[0]: expected {\"date\":\"YYYY-MM-DD\",\"name\":...}, got a boolean");

        let o = |overrides: Value| Calendar { overrides, ..cal("UTC", Value::Null) };
        let ok = |start: &str, end: &str, state: &str| json!([{"start": start, "end": end, "state": state}]);
        invalid(&o(json!({})), "overrides: expected an array, got an object");
        invalid(&o(json!(["2026-12-24"])), "overrides[0]: expected an object with start, end, state, got a string");
        invalid(&o(json!([{"end": "2026-12-24T13:00", "state": "open"}])), "overrides[0].start: missing");
        invalid(&o(json!([{"start": "2026-12-24T12:00", "state": "open"}])), "overrides[0].end: missing");
        invalid(&o(json!([{"start": "2026-12-24T12:00", "end": "2026-12-24T13:00"}])), "overrides[0].state: missing");
        invalid(&o(ok("2026-12-24T12:00", "2026-12-24T13:00", "Closed")), "overrides[0].state: expected \"open\" or \"closed\", got \"Closed\"");
        invalid(&o(ok("2026-12-24T12:00", "2026-12-24T13:00", "holiday")), "overrides[0].state: expected \"open\" or \"closed\", got \"holiday\"");
        invalid(&o(ok("2026-12-24", "2026-12-25", "closed")), "overrides[0].start: bad local date-time \"2026-12-24\" (expected YYYY-MM-DDTHH:MM)");
        invalid(&o(ok("2026-12-24T12:00", "2026-12-24T12:00Z", "closed")), "overrides[0].end: bad local date-time \"2026-12-24T12:00Z\" (expected YYYY-MM-DDTHH:MM)");
        invalid(&o(ok("2026-12-24T24:00", "2026-12-25T12:00", "closed")), "overrides[0].start: bad local date-time \"2026-12-24T24:00\" (expected YYYY-MM-DDTHH:MM)");
        invalid(&o(ok("2026-12-24T12:00", "2026-12-24T12:00:60", "closed")), "overrides[0].end: bad local date-time \"2026-12-24T12:00:60\" (expected YYYY-MM-DDTHH:MM)");
        invalid(&o(ok("2026-02-29T12:00", "2026-03-01T12:00", "closed")), "overrides[0].start: bad local date-time \"2026-02-29T12:00\" (expected YYYY-MM-DDTHH:MM)");
        invalid(&o(ok("2026-12-24T12:00", "2026-12-24T12:00", "open")), "overrides[0].end: \"2026-12-24T12:00\" equals start \"2026-12-24T12:00\"");
        invalid(&o(ok("2026-12-24T12:00", "2026-12-23T12:00", "open")), "overrides[0].end: \"2026-12-23T12:00\" is before start \"2026-12-24T12:00\"");
        invalid(
            &o(json!([{"start": "2026-12-24T12:00", "end": "2026-12-24T13:00", "state": "open", "name": ["x"]}])),
            "overrides[0].name: expected a string, got an array",
        );
        invalid(&o(ok("2026-12-2४T12:00", "2026-12-25T12:00", "open")), "overrides[0].start: bad local date-time \"2026-12-2४T12:00\" (expected YYYY-MM-DDTHH:MM)");

        // valid edge forms are accepted
        validate(&o(ok("2026-12-24 12:00:30", "2026-12-24T24:00", "open"))).unwrap();
        validate(&w(json!({"mon": [["9:00", "17:30"]], "sun": [["00:00", "24:00"]]}))).unwrap();
    }

    #[test]
    fn now_out_of_range() {
        let c = office("UTC");
        assert_eq!(evaluate(&c, i64::MAX).unwrap_err().0, format!("now_ms: out of range ({})", i64::MAX));
        assert!(evaluate(&c, 0).is_ok());
        assert!(evaluate(&c, -86_400_000).is_ok(), "before 1970 is still a valid instant");
    }

    #[test]
    fn evaluation_serializes_for_explain() {
        let e = evaluate(&office("America/New_York"), ms("2026-03-09T13:30:00Z")).unwrap();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"state": "open", "rule": "weekly mon 09:00-17:00", "localTime": "2026-03-09T09:30:00-04:00"})
        );
    }
}
