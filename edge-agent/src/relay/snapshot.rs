//! Reading FreeSWITCH's answers for the resync snapshot (pure).
//!
//! `api show channels as json` (transcripts 03, 04, 12, 19) answers
//! `{"row_count":N,"rows":[{"uuid":..,"callstate":..,...}]}`, or `{"row_count": 0}`
//! without `rows` when there are none. Rows carry no channel variables, so the
//! account and Call-ID of a channel the table does not know yet are fetched with
//! `api uuid_getvar <uuid> sip_h_X-Account-Id` / `sip_call_id`: the value, `_undef_`
//! when unset, or `-ERR No such channel!` when the channel is already gone.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub uuid: String,
    pub callstate: String,
}

impl Row {
    /// Answered: the call state FreeSWITCH reports after answer.
    pub fn answered(&self) -> bool {
        matches!(self.callstate.as_str(), "ACTIVE" | "HELD" | "UNHELD")
    }
}

pub fn parse_channels(body: &str) -> Result<Vec<Row>, String> {
    let v: serde_json::Value = serde_json::from_str(body.trim()).map_err(|e| {
        let head: String = body.chars().take(80).collect();
        format!("show channels: not JSON ({e}): {head:?}")
    })?;
    let count = v.get("row_count").and_then(|c| c.as_u64().or_else(|| c.as_str().and_then(|s| s.parse().ok())));
    let Some(count) = count else { return Err("show channels: no row_count".into()) };
    let rows = match v.get("rows") {
        None if count == 0 => return Ok(Vec::new()),
        None => return Err(format!("show channels: row_count {count} without rows")),
        Some(r) => r.as_array().ok_or("show channels: rows is not an array")?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(uuid) = r.get("uuid").and_then(|u| u.as_str()).filter(|u| crate::esl::Uuid::parse(u).is_ok()) else {
            return Err("show channels: a row without a valid uuid".into());
        };
        out.push(Row { uuid: uuid.to_ascii_lowercase(), callstate: r.get("callstate").and_then(|c| c.as_str()).unwrap_or("").to_string() });
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Value(String),
    Unset,
    /// The channel no longer exists.
    NoChannel,
}

/// Interpret an `api uuid_getvar` answer.
pub fn parse_getvar(reply: &str) -> Result<Var, String> {
    let t = reply.trim_end_matches(['\n', '\r']);
    if t == "_undef_" || t.is_empty() {
        return Ok(Var::Unset);
    }
    if t.starts_with("-ERR No such channel") || t.starts_with("-ERR Cannot locate session") {
        return Ok(Var::NoChannel);
    }
    if t.starts_with("-ERR") || t.starts_with("-USAGE") {
        return Err(format!("uuid_getvar: {t}"));
    }
    Ok(Var::Value(t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_rows() {
        assert_eq!(parse_channels("{\"row_count\": 0}").unwrap(), vec![]);
        assert_eq!(parse_channels("\n{\"row_count\":0}\n\n").unwrap(), vec![]);
        let rows = parse_channels(r#"{"row_count":1,"rows":[{"uuid":"BA910242-9276-4c0b-b6d2-3a32edec8e71","callstate":"RINGING"}]}"#).unwrap();
        assert_eq!(rows, vec![Row { uuid: "ba910242-9276-4c0b-b6d2-3a32edec8e71".into(), callstate: "RINGING".into() }]);
        assert!(!rows[0].answered());
        assert!(parse_channels("-ERR no reply").is_err());
        assert!(parse_channels(r#"{"row_count":2}"#).is_err());
        assert!(parse_channels(r#"{"row_count":1,"rows":[{"uuid":"x"}]}"#).is_err());
    }

    #[test]
    fn getvar_answers() {
        assert_eq!(parse_getvar("_undef_"), Ok(Var::Unset));
        assert_eq!(parse_getvar("123"), Ok(Var::Value("123".into())));
        assert_eq!(parse_getvar("-ERR No such channel!\n"), Ok(Var::NoChannel));
        assert!(parse_getvar("-USAGE: <uuid> <var>\n").is_err());
    }
}
