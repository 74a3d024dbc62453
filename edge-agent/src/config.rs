//! Configuration from the environment (names compatible with fs-api where they overlap).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FSAPI_PORT` | 37274 | REST port |
//! | `FSAPI_BIND` | 127.0.0.1 | REST bind address |
//! | `FSAPI_TOKEN` | — | bearer token for `/v1/*`; required when `FSAPI_BIND` is not loopback |
//! | `ESL_HOST` / `ESL_PORT` / `ESL_PASSWORD` | 127.0.0.1 / 8021 / ClueCon | inbound event socket |
//! | `CALLPLANE_URL` / `CALLPLANE_TOKEN` | — | the Worker and this node's credential (flow runner, relays) |
//! | `LOG_FORMAT` | text | `json` for one JSON object per log line |

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub api_token: Option<String>,
    pub esl_host: String,
    pub esl_port: u16,
    pub esl_password: String,
    pub callplane_url: Option<String>,
    pub callplane_token: Option<String>,
    pub log_json: bool,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        Config::from_map(&std::env::vars().collect())
    }

    pub fn from_map(env: &HashMap<String, String>) -> Result<Config, String> {
        let get = |k: &str| env.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let port = |k: &str, d: u16| -> Result<u16, String> {
            match get(k) {
                None => Ok(d),
                Some(v) => v.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{k}={v:?} is not a port number")),
            }
        };
        let bind: IpAddr = match get("FSAPI_BIND") {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(v) => v.parse().map_err(|_| format!("FSAPI_BIND={v:?} is not an IP address"))?,
        };
        let api_token = get("FSAPI_TOKEN");
        if let Some(t) = &api_token {
            if t.len() < 16 || t.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err("FSAPI_TOKEN must be at least 16 printable characters without spaces".into());
            }
        }
        if !bind.is_loopback() && api_token.is_none() {
            return Err(format!("FSAPI_BIND={bind} is not loopback: set FSAPI_TOKEN to require a bearer token"));
        }
        let esl_password = get("ESL_PASSWORD").unwrap_or_else(|| "ClueCon".into());
        crate::esl::Command::auth(&esl_password).map_err(|e| format!("ESL_PASSWORD: {e}"))?;
        let esl_host = get("ESL_HOST").unwrap_or_else(|| "127.0.0.1".into());
        if esl_host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("ESL_HOST={esl_host:?} is not a host name"));
        }
        let callplane_url = get("CALLPLANE_URL");
        if let Some(u) = &callplane_url {
            if !(u.starts_with("https://") || u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost")) {
                return Err(format!("CALLPLANE_URL={u:?} must be https:// (plain http only to loopback)"));
            }
        }
        Ok(Config {
            listen: SocketAddr::new(bind, port("FSAPI_PORT", 37274)?),
            api_token,
            esl_host,
            esl_port: port("ESL_PORT", 8021)?,
            esl_password,
            callplane_url,
            callplane_token: get("CALLPLANE_TOKEN"),
            log_json: get("LOG_FORMAT").as_deref() == Some("json"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_map(&env(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:37274".parse().unwrap());
        assert_eq!((c.esl_host.as_str(), c.esl_port, c.esl_password.as_str()), ("127.0.0.1", 8021, "ClueCon"));
        assert_eq!(c.api_token, None);
        assert!(!c.log_json);
    }

    #[test]
    fn non_loopback_bind_requires_a_token() {
        let e = Config::from_map(&env(&[("FSAPI_BIND", "0.0.0.0")])).unwrap_err();
        assert!(e.contains("FSAPI_TOKEN"), "{e}");
        let c = Config::from_map(&env(&[("FSAPI_BIND", "0.0.0.0"), ("FSAPI_TOKEN", "0123456789abcdef")])).unwrap();
        assert_eq!(c.listen.port(), 37274);
        assert!(Config::from_map(&env(&[("FSAPI_TOKEN", "short")])).is_err());
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(Config::from_map(&env(&[("FSAPI_PORT", "70000")])).is_err());
        assert!(Config::from_map(&env(&[("ESL_PORT", "0")])).is_err());
        assert!(Config::from_map(&env(&[("ESL_PASSWORD", "a\nb")])).is_err());
        assert!(Config::from_map(&env(&[("FSAPI_BIND", "localhost")])).is_err());
        assert!(Config::from_map(&env(&[("CALLPLANE_URL", "http://example.com")])).is_err());
        let c = Config::from_map(&env(&[("CALLPLANE_URL", "https://cp.example"), ("CALLPLANE_TOKEN", "t"), ("LOG_FORMAT", "json")]))
            .unwrap();
        assert_eq!(c.callplane_url.as_deref(), Some("https://cp.example"));
        assert!(c.log_json);
    }
}
