//! Configuration from the environment (names compatible with fs-api where they overlap).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FSAPI_PORT` | 37274 | REST port |
//! | `FSAPI_BIND` | 127.0.0.1 | REST bind address |
//! | `FSAPI_TOKEN` | — | bearer token for `/v1/*`; required when `FSAPI_BIND` is not loopback |
//! | `ESL_HOST` / `ESL_PORT` / `ESL_PASSWORD` | 127.0.0.1 / 8021 / ClueCon | inbound event socket |
//! | `CALLPLANE_URL` / `CALLPLANE_TOKEN` | — | callplane (plain `http://` to loopback: a TLS-terminating proxy in front of the Worker) and this node's media-node credential; both set → the relays run |
//! | `CALLPLANE_HOST` | — | `Host` header for callplane when `CALLPLANE_URL` is a TCP-level TLS proxy (stunnel): the Worker's hostname |
//! | `CALLPLANE_NODE` | — | this media node's name as provisioned (`callplane-admin media-node create --name`); required whenever `CALLPLANE_URL` is set: every dialog event, reconcile and ban report names it |
//! | `RELAY_RECONCILE_SECONDS` | 30 | live Call-IDs → `/cac/reconcile` every N s; 0 disables |
//! | `RELAY_RECONCILE_GRACE_SECONDS` | — | `graceSeconds` sent with each reconcile (callplane's default: 60) |
//! | `RELAY_QUEUE` | 10000 | reports queued for callplane before the oldest is dropped |
//! | `BAN_FILE` | — | the node's ban list (`ip[/prefix] [expires-unix]` lines) → `/security/report` |
//! | `BAN_REPORT_SECONDS` | 30 | how often the ban list is reported |
//! | `FLOW_SOCKET_PORT` | 8084 | the flow runner's outbound-socket port on 127.0.0.1 (runs with `CALLPLANE_URL`); 0 disables |
//! | `FLOW_MEDIA_CACHE` | /var/cache/callplane/media | where `file` prompts are downloaded for FreeSWITCH to play |
//! | `FLOW_RECORD_DIR` | /var/lib/callplane/recordings | where FreeSWITCH writes recordings before the agent uploads them |
//! | `FLOW_TTS_ENGINE` / `FLOW_TTS_VOICE` | flite / kal | FreeSWITCH TTS module and default voice (`say:<engine>:<voice>:<text>`) |
//! | `FLOW_SIP_PROFILE` | callplane | sofia profile dial legs go out on |
//! | `FLOW_SIP_EDGE` | — | SIP URI of the SIP edge (Kamailio) every dial leg is sent through (`fs_path`) |
//! | `FLOW_CONFERENCE_PROFILE` | default | mod_conference profile |
//! | `LOG_FORMAT` | text | `json` for one JSON object per log line |

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub api_token: Option<String>,
    pub esl_host: String,
    pub esl_port: u16,
    pub esl_password: String,
    pub callplane_url: Option<String>,
    pub callplane_token: Option<String>,
    pub callplane_host: Option<String>,
    pub node_name: Option<String>,
    /// 0: no reconciliation.
    pub reconcile_secs: u64,
    pub reconcile_grace_secs: Option<u64>,
    pub relay_queue: usize,
    pub ban_file: Option<PathBuf>,
    pub ban_report_secs: u64,
    pub log_json: bool,
    /// The flow runner's outbound-socket port (127.0.0.1); None: off.
    pub flow_port: Option<u16>,
    pub flow_media_cache: PathBuf,
    pub flow_record_dir: String,
    pub flow_tts_engine: String,
    pub flow_tts_voice: String,
    pub flow_sip_profile: String,
    pub flow_sip_edge: Option<String>,
    pub flow_conference_profile: String,
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
        let num = |k: &str, d: u64, min: u64, max: u64| -> Result<u64, String> {
            match get(k) {
                None => Ok(d),
                Some(v) => v.parse::<u64>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| format!("{k}={v:?} must be a number in {min}..={max}")),
            }
        };
        let callplane_url = get("CALLPLANE_URL");
        let callplane_token = get("CALLPLANE_TOKEN");
        if let Some(u) = &callplane_url {
            // The agent speaks plain HTTP (no TLS stack): only to a proxy on this host,
            // never across a network with the credential in clear.
            let ep = crate::http::Endpoint::parse(u).map_err(|e| format!("CALLPLANE_URL: {e}"))?;
            let loopback = ep.host == "localhost" || ep.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(format!("CALLPLANE_URL={u:?}: plain http only to loopback (a TLS-terminating proxy on this host)"));
            }
            match &callplane_token {
                None => return Err("CALLPLANE_URL is set: set CALLPLANE_TOKEN to this node's media-node credential".into()),
                Some(t) if t.chars().any(|c| c.is_control() || c.is_whitespace()) => return Err("CALLPLANE_TOKEN must not contain spaces or control characters".into()),
                Some(_) => {}
            }
        }
        let callplane_host = get("CALLPLANE_HOST");
        if let Some(h) = &callplane_host {
            crate::http::Endpoint::check_virtual_host(h).map_err(|e| format!("CALLPLANE_HOST: {e}"))?;
        }
        let node_name = get("CALLPLANE_NODE");
        if let Some(n) = &node_name {
            if n.len() > 128 || n.chars().any(|c| c.is_control()) {
                return Err(format!("CALLPLANE_NODE={n:?} is not a node name"));
            }
        }
        // callplane pins a call's lease to the node named in its `confirmed` event and
        // judges a node's reconcile only against the leases pinned to it: a media node
        // must say who it is (callplane answers 400 to a reconcile without it).
        if callplane_url.is_some() && node_name.is_none() {
            return Err("CALLPLANE_URL is set: set CALLPLANE_NODE to this media node's name (as provisioned with callplane-admin media-node create --name)".into());
        }
        let ban_file = get("BAN_FILE").map(PathBuf::from);
        if ban_file.is_some() && node_name.is_none() {
            return Err("BAN_FILE is set: set CALLPLANE_NODE to this media node's name (as provisioned)".into());
        }
        let flow_port = match get("FLOW_SOCKET_PORT").as_deref() {
            Some("0") => None,
            _ => Some(port("FLOW_SOCKET_PORT", 8084)?),
        };
        let dir = |k: &str, d: &str| -> Result<String, String> {
            let v = get(k).unwrap_or_else(|| d.to_string());
            let v = v.trim_end_matches('/').to_string();
            if crate::flow::esl_map::is_local_path(&v) {
                Ok(v)
            } else {
                Err(format!("{k}={v:?}: an absolute path of A-Z a-z 0-9 _ . / - (FreeSWITCH reads it in application arguments)"))
            }
        };
        let name = |k: &str, d: &str| -> Result<String, String> {
            let v = get(k).unwrap_or_else(|| d.to_string());
            if crate::flow::esl_map::is_plain_name(&v) {
                Ok(v)
            } else {
                Err(format!("{k}={v:?}: 1-64 of A-Z a-z 0-9 _ . - :"))
            }
        };
        let flow_sip_edge = get("FLOW_SIP_EDGE");
        if let Some(e) = &flow_sip_edge {
            let ok = (e.starts_with("sip:") || e.starts_with("sips:")) && e.len() <= 256 && !e.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, ',' | '|' | '<' | '>' | '[' | ']' | '{' | '}' | '\'' | '"'));
            if !ok {
                return Err(format!("FLOW_SIP_EDGE={e:?} is not a SIP URI (sip:host[:port][;params])"));
            }
        }
        Ok(Config {
            flow_port,
            flow_media_cache: PathBuf::from(dir("FLOW_MEDIA_CACHE", "/var/cache/callplane/media")?),
            flow_record_dir: dir("FLOW_RECORD_DIR", "/var/lib/callplane/recordings")?,
            flow_tts_engine: name("FLOW_TTS_ENGINE", "flite")?,
            flow_tts_voice: name("FLOW_TTS_VOICE", "kal")?,
            flow_sip_profile: name("FLOW_SIP_PROFILE", "callplane")?,
            flow_sip_edge,
            flow_conference_profile: name("FLOW_CONFERENCE_PROFILE", "default")?,
            listen: SocketAddr::new(bind, port("FSAPI_PORT", 37274)?),
            api_token,
            esl_host,
            esl_port: port("ESL_PORT", 8021)?,
            esl_password,
            callplane_url,
            callplane_token,
            callplane_host,
            node_name,
            reconcile_secs: num("RELAY_RECONCILE_SECONDS", 30, 0, 86_400)?,
            reconcile_grace_secs: match get("RELAY_RECONCILE_GRACE_SECONDS") {
                None => None,
                Some(_) => Some(num("RELAY_RECONCILE_GRACE_SECONDS", 60, 0, 3600)?),
            },
            relay_queue: num("RELAY_QUEUE", 10_000, 100, 1_000_000)? as usize,
            ban_file,
            ban_report_secs: num("BAN_REPORT_SECONDS", 30, 5, 3600)?,
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
        let n = ("CALLPLANE_NODE", "fs-1");
        assert!(Config::from_map(&env(&[("CALLPLANE_URL", "http://example.com"), ("CALLPLANE_TOKEN", "t"), n])).is_err());
        let tls = Config::from_map(&env(&[("CALLPLANE_URL", "https://cp.example"), ("CALLPLANE_TOKEN", "t"), n])).unwrap_err();
        assert!(tls.contains("TLS-terminating proxy"), "{tls}");
        assert!(Config::from_map(&env(&[("CALLPLANE_URL", "http://127.0.0.1:8443"), n])).unwrap_err().contains("CALLPLANE_TOKEN"));
        assert!(Config::from_map(&env(&[("CALLPLANE_URL", "http://127.0.0.1.evil.example"), ("CALLPLANE_TOKEN", "t"), n])).is_err());
        let c = Config::from_map(&env(&[("CALLPLANE_URL", "http://127.0.0.1:8443"), ("CALLPLANE_TOKEN", "t"), n, ("LOG_FORMAT", "json")]))
            .unwrap();
        assert_eq!(c.callplane_url.as_deref(), Some("http://127.0.0.1:8443"));
        assert_eq!(c.node_name.as_deref(), Some("fs-1"));
        assert!(c.log_json);
        assert!(Config::from_map(&env(&[("CALLPLANE_URL", "http://[::1]:8443"), ("CALLPLANE_TOKEN", "t"), n])).is_ok());
        // The relays name the node in every report: no URL without it.
        let e = Config::from_map(&env(&[("CALLPLANE_URL", "http://127.0.0.1:8443"), ("CALLPLANE_TOKEN", "t")])).unwrap_err();
        assert!(e.contains("CALLPLANE_NODE"), "{e}");
        assert!(Config::from_map(&env(&[("CALLPLANE_URL", "http://127.0.0.1:8443"), ("CALLPLANE_TOKEN", "t"), ("CALLPLANE_NODE", "  ")])).is_err());
        assert!(Config::from_map(&env(&[("CALLPLANE_URL", "http://127.0.0.1:8443"), ("CALLPLANE_TOKEN", "t"), ("CALLPLANE_NODE", &"n".repeat(129))])).is_err());
        let c = Config::from_map(&env(&[("CALLPLANE_URL", "http://127.0.0.1:8443"), ("CALLPLANE_TOKEN", "t"), n, ("CALLPLANE_HOST", "cp.example.com")])).unwrap();
        assert_eq!(c.callplane_host.as_deref(), Some("cp.example.com"));
        assert!(Config::from_map(&env(&[("CALLPLANE_HOST", "a b")])).is_err());
    }

    #[test]
    fn the_shipped_environment_example_is_valid() {
        let text = include_str!("../contrib/edge-agent.env.example");
        let map: HashMap<String, String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').expect("NAME=value");
                (k.to_string(), v.to_string())
            })
            .collect();
        let c = Config::from_map(&map).unwrap();
        assert_eq!(c.callplane_url.as_deref(), Some("http://127.0.0.1:8443"));
        assert_eq!(c.callplane_host.as_deref(), Some("callplane.example.com"));
        assert_eq!(c.node_name.as_deref(), Some("fs-1"));
        assert!(c.ban_file.is_some() && c.log_json);
    }

    #[test]
    fn flow_runner_settings() {
        let c = Config::from_map(&env(&[])).unwrap();
        assert_eq!(c.flow_port, Some(8084));
        assert_eq!(c.flow_media_cache, PathBuf::from("/var/cache/callplane/media"));
        assert_eq!((c.flow_tts_engine.as_str(), c.flow_tts_voice.as_str(), c.flow_sip_profile.as_str()), ("flite", "kal", "callplane"));
        let c = Config::from_map(&env(&[("FLOW_SOCKET_PORT", "0"), ("FLOW_SIP_EDGE", "sip:10.0.0.5:5060;transport=tcp"), ("FLOW_RECORD_DIR", "/srv/rec/")])).unwrap();
        assert_eq!((c.flow_port, c.flow_sip_edge.as_deref(), c.flow_record_dir.as_str()), (None, Some("sip:10.0.0.5:5060;transport=tcp"), "/srv/rec"));
        for bad in [("FLOW_MEDIA_CACHE", "relative"), ("FLOW_RECORD_DIR", "/a b"), ("FLOW_RECORD_DIR", "/a/../b"), ("FLOW_TTS_ENGINE", "flite|x"), ("FLOW_SIP_EDGE", "sip:a>b"), ("FLOW_SIP_EDGE", "10.0.0.5"), ("FLOW_SOCKET_PORT", "x")] {
            assert!(Config::from_map(&env(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relay_settings() {
        let c = Config::from_map(&env(&[])).unwrap();
        assert_eq!((c.reconcile_secs, c.reconcile_grace_secs, c.relay_queue, c.ban_report_secs), (30, None, 10_000, 30));
        assert_eq!(c.ban_file, None);
        let c = Config::from_map(&env(&[
            ("RELAY_RECONCILE_SECONDS", "0"),
            ("RELAY_RECONCILE_GRACE_SECONDS", "120"),
            ("BAN_FILE", "/var/lib/callplane/bans"),
            ("CALLPLANE_NODE", "fs-1"),
        ]))
        .unwrap();
        assert_eq!((c.reconcile_secs, c.reconcile_grace_secs), (0, Some(120)));
        assert_eq!(c.ban_file.as_deref(), Some(std::path::Path::new("/var/lib/callplane/bans")));
        assert!(Config::from_map(&env(&[("BAN_FILE", "/x")])).unwrap_err().contains("CALLPLANE_NODE"));
        assert!(Config::from_map(&env(&[("RELAY_RECONCILE_GRACE_SECONDS", "99999")])).is_err());
        assert!(Config::from_map(&env(&[("BAN_REPORT_SECONDS", "1")])).is_err());
        assert!(Config::from_map(&env(&[("RELAY_QUEUE", "x")])).is_err());
    }
}
