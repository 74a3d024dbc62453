//! Running the interpreter against the outside world: the loop that answers the interpreter's
//! [`Need`]s through a [`FlowLoader`] (D1 and the account's live state in the Worker, maps in
//! tests), and a [`FlowEnv`] whose media URLs are signed for one method. Async but I/O-free:
//! the loader does the I/O; time comes in as an argument.

use super::definition::{self, Endpoint, FlowDefinition};
use super::interpreter::{FlowEnv, FlowError, Lookup, Need, Resolved, MAX_RESOLVE_ROUNDS};
use crate::error::{ApiError, ApiResult};
use crate::routing::calendar::Calendar;

/// Lifetime of the media URLs handed to the edge (a recording may last an hour).
pub const MEDIA_URL_TTL_S: u64 = 2 * 3600;

/// What resolving a flow's needs requires, always scoped to the call's account.
#[allow(async_fn_in_trait)]
pub trait FlowLoader {
    async fn calendar(&self, account_id: &str, id: &str) -> ApiResult<Option<Calendar>>;
    /// (version, stored definition text) of the account's flow: the published version for
    /// `None`, exactly `Some(v)` otherwise. None: no such flow (or version) in this account.
    async fn flow_text(&self, account_id: &str, flow_id: &str, version: Option<u32>) -> ApiResult<Option<(u32, String)>>;
    /// SIP URIs that ring `endpoint` now (empty: nothing reachable); None: no such target in the account.
    async fn dial(&self, account_id: &str, endpoint: &Endpoint) -> ApiResult<Option<Vec<String>>>;
}

/// Media URLs for the edge: `{origin}/media/{account}/{key}?exp=…&sig=…`, signed for GET when the
/// edge plays the key and for PUT when it uploads a recording to it. `system/…` keys are shared.
pub struct SignedMedia {
    pub origin: String,
    pub account_id: String,
    pub key: Vec<u8>,
    pub now_s: u64,
}

impl SignedMedia {
    pub fn full_key(&self, key: &str) -> String {
        if key.starts_with("system/") {
            key.to_string()
        } else {
            format!("{}/{key}", self.account_id)
        }
    }

    pub fn url(&self, key: &str, upload: bool) -> String {
        let method = if upload { "PUT" } else { "GET" };
        format!("{}{}", self.origin, crate::media::signed_path(&self.key, method, &self.full_key(key), self.now_s + MEDIA_URL_TTL_S))
    }
}

/// The env the interpreter sees: loaded lookups plus signed media URLs.
pub struct Env<'a> {
    pub resolved: &'a Resolved,
    pub media: &'a SignedMedia,
}

impl FlowEnv for Env<'_> {
    fn calendar(&self, calendar_id: &str) -> Lookup<&Calendar> {
        self.resolved.calendar(calendar_id)
    }
    fn flow(&self, flow_id: &str, version: Option<u32>) -> Lookup<(u32, &FlowDefinition)> {
        self.resolved.flow(flow_id, version)
    }
    fn dial(&self, endpoint: &Endpoint) -> Lookup<Vec<String>> {
        self.resolved.dial(endpoint)
    }
    fn media_url(&self, key: &str, upload: bool) -> String {
        self.media.url(key, upload)
    }
}

/// Run `attempt` until it stops asking for lookups, loading each need through `loader` into
/// `resolved` (bounded by [`MAX_RESOLVE_ROUNDS`]). `attempt` must not change anything when it
/// returns [`FlowError::Needs`] — the interpreter guarantees that for start and step.
pub async fn resolve<L, T>(
    loader: &L,
    account_id: &str,
    resolved: &mut Resolved,
    media: &SignedMedia,
    mut attempt: impl FnMut(&dyn FlowEnv) -> Result<T, FlowError>,
) -> ApiResult<T>
where
    L: FlowLoader,
{
    for _ in 0..MAX_RESOLVE_ROUNDS {
        let needs = match attempt(&Env { resolved, media }) {
            Err(FlowError::Needs(needs)) => needs,
            other => return other.map_err(ApiError::from),
        };
        for need in needs {
            load(loader, account_id, resolved, need).await?;
        }
    }
    Err(ApiError::internal(format!("flow lookups did not settle within {MAX_RESOLVE_ROUNDS} rounds")))
}

async fn load<L: FlowLoader>(loader: &L, account_id: &str, resolved: &mut Resolved, need: Need) -> ApiResult<()> {
    match need {
        Need::Calendar { id } => {
            let cal = loader.calendar(account_id, &id).await?;
            resolved.set_calendar(&id, cal);
        }
        Need::Flow { flow_id, version } => {
            let found = match loader.flow_text(account_id, &flow_id, version).await? {
                // A stored version that no longer parses is treated as missing: the interpreter
                // fails the node with a readable reason instead of the whole request.
                Some((v, text)) => definition::parse(&text).ok().map(|def| (v, def)),
                None => None,
            };
            resolved.set_flow(&flow_id, version, found);
        }
        Need::Dial { endpoint } => {
            let uris = loader.dial(account_id, &endpoint).await?;
            resolved.set_endpoint(endpoint, uris);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::interpreter;
    use crate::flow::wire::{Command, FlowStart, Outcome};
    use crate::testutil::block_on;
    use std::cell::Cell;
    use std::collections::BTreeMap;

    const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";
    const FLOW: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbt";
    const SUB: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbv";

    struct Mem {
        flows: BTreeMap<String, (u32, String)>,
        loads: Cell<u32>,
    }

    impl FlowLoader for Mem {
        async fn calendar(&self, _: &str, _: &str) -> ApiResult<Option<Calendar>> {
            self.loads.set(self.loads.get() + 1);
            Ok(None)
        }
        async fn flow_text(&self, account_id: &str, flow_id: &str, _: Option<u32>) -> ApiResult<Option<(u32, String)>> {
            self.loads.set(self.loads.get() + 1);
            Ok(if account_id == ACC { self.flows.get(flow_id).cloned() } else { None })
        }
        async fn dial(&self, _: &str, endpoint: &Endpoint) -> ApiResult<Option<Vec<String>>> {
            self.loads.set(self.loads.get() + 1);
            Ok(match endpoint {
                Endpoint::User(u) if u == "usr_01jf18ah3jeb5w6dfp27sgjsbt" => Some(vec!["sip:1002@acme.sip.io".into()]),
                _ => None,
            })
        }
    }

    fn media() -> SignedMedia {
        SignedMedia { origin: "https://cp.example".into(), account_id: ACC.into(), key: b"k".to_vec(), now_s: 1_000 }
    }

    #[test]
    fn media_urls_are_signed_per_method_and_scoped_to_the_account() {
        let m = media();
        let get = m.url("prompts/hello.wav", false);
        let put = m.url("recordings/c1/3.wav", true);
        assert!(get.starts_with(&format!("https://cp.example/media/{ACC}/prompts/hello.wav?exp=8200&sig=")), "{get}");
        assert!(put.starts_with(&format!("https://cp.example/media/{ACC}/recordings/c1/3.wav?exp=8200&sig=")));
        let sig = |u: &str| u.split("sig=").nth(1).unwrap().to_string();
        let k = format!("{ACC}/prompts/hello.wav");
        assert_eq!(crate::media::verify(b"k", "GET", &k, "8200", &sig(&get), 1_000), crate::media::SigCheck::Valid);
        assert_eq!(crate::media::verify(b"k", "PUT", &k, "8200", &sig(&get), 1_000), crate::media::SigCheck::Invalid);
        assert!(m.url("system/prompts/en/beep.wav", false).contains("/media/system/prompts/en/beep.wav?"));
    }

    #[test]
    fn needs_are_loaded_until_the_interpreter_settles() {
        let main = format!(
            r#"{{"version":1,"start":"sub","nodes":{{"sub":{{"type":"subflow","flow":"{SUB}","next":"ring"}},"ring":{{"type":"dial","targets":[{{"user":"usr_01jf18ah3jeb5w6dfp27sgjsbt"}}],"next":"bye"}},"bye":{{"type":"hangup"}}}}}}"#
        );
        let sub = r#"{"version":1,"start":"hi","nodes":{"hi":{"type":"play","tts":{"text":"hi"}}}}"#;
        let def = definition::parse(&main).expect("main flow parses");
        let loader = Mem { flows: BTreeMap::from([(SUB.to_string(), (3, sub.to_string()))]), loads: Cell::new(0) };
        let req = FlowStart { call_id: "c1".into(), account_id: ACC.into(), flow_id: FLOW.into(), vars: Default::default() };
        let mut resolved = Resolved::default();
        let (mut session, first) = block_on(resolve(&loader, ACC, &mut resolved, &media(), |env| interpreter::start(&req, 1, &def, 0, env))).unwrap();
        assert!(matches!(first.command, Command::Play(_)), "{first:?}");
        let loads_after_start = loader.loads.get();
        assert_eq!(loads_after_start, 1, "the sub-flow was loaded once");
        let next = block_on(resolve(&loader, ACC, &mut resolved, &media(), |env| interpreter::step(&mut session, &def, 1, &Outcome::Played, None, 10, env))).unwrap();
        match &next.response.command {
            Command::Dial(d) => assert!(serde_json::to_string(d).unwrap().contains("sip:1002@acme.sip.io"), "{d:?}"),
            other => panic!("expected a dial, got {other:?}"),
        }
        assert_eq!(loader.loads.get(), loads_after_start + 1, "the dial target was resolved once");
    }

    #[test]
    fn a_missing_sub_flow_fails_the_call_readably_not_the_request() {
        let main = format!(r#"{{"version":1,"start":"sub","nodes":{{"sub":{{"type":"subflow","flow":"{SUB}"}}}}}}"#);
        let def = definition::parse(&main).unwrap();
        let loader = Mem { flows: BTreeMap::new(), loads: Cell::new(0) };
        let req = FlowStart { call_id: "c1".into(), account_id: ACC.into(), flow_id: FLOW.into(), vars: Default::default() };
        let (_, first) = block_on(resolve(&loader, ACC, &mut Resolved::default(), &media(), |env| interpreter::start(&req, 1, &def, 0, env))).unwrap();
        assert!(matches!(first.command, Command::Hangup(_)), "{first:?}");
    }

    #[test]
    fn endless_needs_are_bounded() {
        let loader = Mem { flows: BTreeMap::new(), loads: Cell::new(0) };
        let r: ApiResult<()> = block_on(resolve(&loader, ACC, &mut Resolved::default(), &media(), |_| {
            Err(FlowError::Needs(vec![Need::Calendar { id: "cal_x".into() }]))
        }));
        assert_eq!(r.unwrap_err().status, 500);
        assert_eq!(loader.loads.get(), MAX_RESOLVE_ROUNDS as u32);
    }
}
