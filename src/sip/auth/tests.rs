use super::*;
use crate::sip::digest::ha1;
use crate::testutil::block_on;
use std::cell::RefCell;
use std::collections::HashMap;

const SECRET: &[u8] = b"test-secret-0123456789";
const TTL: u64 = 300_000;
const T0: u64 = 1_790_000_000_000;

struct Mem {
    carriers: Vec<CarrierAddress>,
    domains: HashMap<String, Vec<Algorithm>>,
    devices: Vec<DeviceAuth>,
    nonces: RefCell<HashMap<String, u32>>,
    failures: RefCell<HashMap<String, u32>>,
}

impl AuthStore for Mem {
    async fn carrier_addresses(&self) -> ApiResult<Vec<CarrierAddress>> {
        Ok(self.carriers.clone())
    }
    async fn domain_algorithms(&self, domain: &str) -> ApiResult<Option<Vec<Algorithm>>> {
        Ok(self.domains.get(domain).cloned())
    }
    async fn device(&self, username: &str, realm: &str) -> ApiResult<Option<DeviceAuth>> {
        Ok(self.devices.iter().find(|d| d.username == username && d.realm == realm).cloned())
    }
    async fn use_nonce(&self, account_id: &str, nonce: &str, nc: u32, _forget: u64) -> ApiResult<bool> {
        let key = format!("{account_id}/{nonce}");
        let mut m = self.nonces.borrow_mut();
        match m.get(&key) {
            Some(last) if nc <= *last => Ok(false),
            _ => {
                m.insert(key, nc);
                Ok(true)
            }
        }
    }
    async fn record_failure(&self, ip: &str) -> ApiResult<Option<u64>> {
        let mut f = self.failures.borrow_mut();
        let n = f.entry(ip.to_string()).or_default();
        *n += 1;
        Ok(if *n >= 5 { Some(600) } else { None })
    }
}

fn device(username: &str, password: &str) -> DeviceAuth {
    DeviceAuth {
        id: format!("dev_{username}"),
        account_id: "acc_acme".into(),
        user_id: format!("usr_{username}"),
        extension: username.into(),
        username: username.into(),
        realm: "acme.sip.io".into(),
        ha1_md5: ha1(Algorithm::Md5, username, "acme.sip.io", password),
        ha1_sha256: ha1(Algorithm::Sha256, username, "acme.sip.io", password),
        enabled: true,
        account_status: "active".into(),
        country_code: "1".into(),
    }
}

fn store() -> Mem {
    Mem {
        carriers: vec![CarrierAddress { carrier_id: "car_demo".into(), cidr: "198.51.100.0/24".into(), port: Some(5060) }],
        domains: HashMap::from([("acme.sip.io".to_string(), vec![Algorithm::Sha256, Algorithm::Md5])]),
        devices: vec![device("1001", "secret-1001"), device("1002", "secret-1002")],
        nonces: RefCell::default(),
        failures: RefCell::default(),
    }
}

fn ctx(now_ms: u64) -> AuthContext<'static> {
    // A different salt per millisecond is enough for these tests; the adapter draws random bytes.
    AuthContext { secret: SECRET, now_ms, nonce_ttl_ms: TTL, salt: (now_ms as u64).to_le_bytes() }
}

fn register(user: &str) -> AuthRequest {
    AuthRequest {
        method: "REGISTER".into(),
        call_id: "reg-1".into(),
        source_ip: "203.0.113.9".into(),
        source_port: Some(5060),
        transport: "udp".into(),
        from_user: user.into(),
        from_domain: "acme.sip.io".into(),
        to_user: user.into(),
        to_domain: "acme.sip.io".into(),
        ruri: "sip:acme.sip.io".into(),
        ..Default::default()
    }
}

/// What a UA computes: the Authorization value answering a challenge.
fn answer(alg: Algorithm, user: &str, password: &str, method: &str, nonce: &str, nc: u32) -> String {
    let uri = "sip:acme.sip.io";
    let cnonce = "0a4f113b";
    let nc_raw = format!("{nc:08x}");
    let h1 = ha1(alg, user, "acme.sip.io", password);
    let c = crate::sip::digest::Credentials {
        username: user.into(),
        realm: "acme.sip.io".into(),
        nonce: nonce.into(),
        uri: uri.into(),
        response: String::new(),
        algorithm: alg,
        cnonce: Some(cnonce.into()),
        opaque: None,
        qop: Some("auth".into()),
        nc_raw: Some(nc_raw.clone()),
        nc: Some(nc),
    };
    let response = digest::expected_response(alg, &h1, method, &c);
    format!(
        "Digest username=\"{user}\", realm=\"acme.sip.io\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}, cnonce=\"{cnonce}\", qop=auth, nc={nc_raw}",
        alg.as_str()
    )
}

fn run(req: &AuthRequest, s: &Mem, now: u64) -> AuthOutcome {
    block_on(authenticate(req, s, &ctx(now))).unwrap()
}

fn nonce_of(out: &AuthOutcome) -> String {
    match &out.response {
        AuthResponse::Challenge { header, .. } => {
            let i = header.find("nonce=\"").unwrap() + 7;
            header[i..i + header[i..].find('"').unwrap()].to_string()
        }
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn register_without_credentials_gets_one_401_line_per_algorithm_sha256_first() {
    let out = run(&register("1001"), &store(), T0);
    match out.response {
        AuthResponse::Challenge { code, reason, header, headers } => {
            assert_eq!((code, reason.as_str()), (401, "Unauthorized"));
            assert_eq!(headers.len(), 2);
            assert_eq!(header, headers[0]);
            assert!(headers[0].starts_with("WWW-Authenticate: Digest ") && headers[0].contains("algorithm=SHA-256"));
            assert!(headers[1].contains("algorithm=MD5"));
            assert!(headers.iter().all(|h| !h.contains('\r') && !h.contains('\n') && h.contains("realm=\"acme.sip.io\"")));
            assert!(headers.iter().all(|h| h.contains("qop=\"auth\"") && !h.contains("stale")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invite_challenge_is_407_proxy_authenticate() {
    let mut req = register("1001");
    req.method = "INVITE".into();
    let out = run(&req, &store(), T0);
    match out.response {
        AuthResponse::Challenge { code, header, .. } => {
            assert_eq!(code, 407);
            assert!(header.starts_with("Proxy-Authenticate: Digest "));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn md5_only_domain_offers_only_md5() {
    let mut s = store();
    s.domains.insert("acme.sip.io".into(), vec![Algorithm::Md5]);
    match run(&register("1001"), &s, T0).response {
        AuthResponse::Challenge { headers, .. } => {
            assert_eq!(headers.len(), 1);
            assert!(headers[0].contains("algorithm=MD5"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn correct_digest_md5_and_sha256_are_accepted_with_canonical_aor() {
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let s = store();
        let nonce = nonce_of(&run(&register("1001"), &s, T0));
        let mut req = register("1001");
        req.authorization = answer(alg, "1001", "secret-1001", "REGISTER", &nonce, 1);
        let out = run(&req, &s, T0 + 1000);
        assert_eq!(
            out.response,
            AuthResponse::Ok(AuthOk::Device {
                account_id: "acc_acme".into(),
                device_id: "dev_1001".into(),
                user_id: "usr_1001".into(),
                extension: "1001".into(),
                aor: "sip:1001@acme.sip.io".into(),
            }),
            "{alg:?}"
        );
    }
}

#[test]
fn unknown_user_and_wrong_password_get_the_same_answer() {
    let s = store();
    let nonce = nonce_of(&run(&register("1001"), &s, T0));
    let mut wrong = register("1001");
    wrong.authorization = answer(Algorithm::Md5, "1001", "not-the-password", "REGISTER", &nonce, 1);
    let mut unknown = register("9999");
    unknown.authorization = answer(Algorithm::Md5, "9999", "whatever", "REGISTER", &nonce, 1);
    let a = run(&wrong, &s, T0 + 10).response;
    let b = run(&unknown, &s, T0 + 10).response;
    assert_eq!(a, AuthResponse::Reject { code: 403, reason: "Forbidden".into(), ban: None });
    assert_eq!(a, b);
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
}

#[test]
fn repeated_failures_answer_a_ban() {
    let s = store();
    let nonce = nonce_of(&run(&register("1001"), &s, T0));
    let mut wrong = register("1001");
    wrong.authorization = answer(Algorithm::Md5, "1001", "guess", "REGISTER", &nonce, 1);
    let bans: Vec<Option<u64>> = (0..5)
        .map(|_| match run(&wrong, &s, T0).response {
            AuthResponse::Reject { ban, .. } => ban,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bans, vec![None, None, None, None, Some(600)]);
}

#[test]
fn replayed_or_lower_nc_is_rejected_and_higher_nc_accepted() {
    let s = store();
    let nonce = nonce_of(&run(&register("1001"), &s, T0));
    let mut req = register("1001");
    for (nc, accepted) in [(1, true), (1, false), (2, true), (0x10, true), (0x0f, false), (0x100, true), (0xff, false)] {
        req.authorization = answer(Algorithm::Sha256, "1001", "secret-1001", "REGISTER", &nonce, nc);
        let ok = matches!(run(&req, &s, T0 + 5).response, AuthResponse::Ok(_));
        assert_eq!(ok, accepted, "nc {nc:#x}");
    }
}

#[test]
fn expired_nonce_with_correct_digest_gets_stale_challenge() {
    let s = store();
    let nonce = nonce_of(&run(&register("1001"), &s, T0));
    let mut req = register("1001");
    req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "REGISTER", &nonce, 1);
    match run(&req, &s, T0 + TTL + 1).response {
        AuthResponse::Challenge { headers, code, .. } => {
            assert_eq!(code, 401);
            assert!(headers.iter().all(|h| h.ends_with("stale=true")));
            assert_ne!(nonce_of(&run(&register("1001"), &s, T0 + TTL + 1)), nonce);
        }
        other => panic!("{other:?}"),
    }
    // Wrong password with an expired nonce is still a failure, not a stale hint.
    req.authorization = answer(Algorithm::Md5, "1001", "nope", "REGISTER", &nonce, 1);
    assert!(matches!(run(&req, &s, T0 + TTL + 1).response, AuthResponse::Reject { code: 403, .. }));
}

#[test]
fn forged_nonce_gets_a_fresh_challenge() {
    let s = store();
    let mut req = register("1001");
    req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "REGISTER", "00000000deadbeef", 1);
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Challenge { code: 401, .. }));
}

#[test]
fn register_for_another_to_user_is_rejected() {
    let s = store();
    let nonce = nonce_of(&run(&register("1001"), &s, T0));
    let mut req = register("1002");
    req.from_user = "1001".into();
    req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "REGISTER", &nonce, 1);
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Reject { code: 403, .. }));
}

#[test]
fn disabled_device_or_account_is_rejected_even_with_the_right_password() {
    for (enabled, status) in [(false, "active"), (true, "suspended"), (true, "disabled")] {
        let mut s = store();
        s.devices[0].enabled = enabled;
        s.devices[0].account_status = status.into();
        let nonce = nonce_of(&run(&register("1001"), &s, T0));
        let mut req = register("1001");
        req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "REGISTER", &nonce, 1);
        assert!(matches!(run(&req, &s, T0).response, AuthResponse::Reject { code: 403, .. }), "{enabled} {status}");
    }
}

#[test]
fn invite_from_carrier_address_is_trusted_but_only_on_its_port() {
    let s = store();
    let mut req = register("1001");
    req.method = "INVITE".into();
    req.source_ip = "198.51.100.20".into();
    req.source_port = Some(5060);
    assert_eq!(
        run(&req, &s, T0).response,
        AuthResponse::Ok(AuthOk::Carrier { trust: "carrier".into(), carrier_id: "car_demo".into() })
    );
    req.source_port = Some(5062);
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Challenge { code: 407, .. }));
    // A REGISTER from a carrier address is never trusted.
    let mut reg = register("1001");
    reg.source_ip = "198.51.100.20".into();
    assert!(matches!(run(&reg, &s, T0).response, AuthResponse::Challenge { code: 401, .. }));
}

#[test]
fn malformed_header_and_realm_mismatch_are_rejected() {
    let s = store();
    let mut req = register("1001");
    req.authorization = "Digest username=\"1001".into();
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Reject { code: 400, .. }));
    let nonce = nonce_of(&run(&register("1001"), &s, T0));
    req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "REGISTER", &nonce, 1);
    req.to_domain = "other.example".into();
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Reject { code: 403, .. }));
}

#[test]
fn missing_method_is_a_bad_request() {
    let mut req = register("1001");
    req.method = "".into();
    assert_eq!(block_on(authenticate(&req, &store(), &ctx(T0))).unwrap_err().status, 400);
    req.method = "REG ISTER".into();
    assert_eq!(block_on(authenticate(&req, &store(), &ctx(T0))).unwrap_err().status, 400);
}

#[test]
fn domains_that_are_not_hosts_are_refused_before_any_challenge() {
    for d in ["acme\"sip.io", "a b", "x\\y", "evil\r\nVia: x"] {
        let mut req = register("1001");
        req.to_domain = d.into();
        req.from_domain = d.into();
        assert!(matches!(run(&req, &store(), T0).response, AuthResponse::Reject { code: 400, .. }), "{d:?}");
    }
}

#[test]
fn challenges_in_the_same_millisecond_get_different_nonces() {
    let s = store();
    let a = nonce_of(&block_on(authenticate(&register("1001"), &s, &AuthContext { salt: [1; 8], ..ctx(T0) })).unwrap());
    let b = nonce_of(&block_on(authenticate(&register("1002"), &s, &AuthContext { salt: [2; 8], ..ctx(T0) })).unwrap());
    assert_ne!(a, b);
    // Both clients answer nc=1 on their own nonce: neither is taken for a replay.
    for (user, pw, nonce) in [("1001", "secret-1001", &a), ("1002", "secret-1002", &b)] {
        let mut req = register(user);
        req.authorization = answer(Algorithm::Md5, user, pw, "REGISTER", nonce, 1);
        assert!(matches!(run(&req, &s, T0).response, AuthResponse::Ok(_)), "{user}");
    }
}

#[test]
fn invite_from_another_user_than_the_credentials_is_rejected() {
    let s = store();
    let mut req = register("1001");
    req.method = "INVITE".into();
    let nonce = nonce_of(&run(&req, &s, T0));
    req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "INVITE", &nonce, 1);
    req.from_user = "1002".into();
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Reject { code: 403, .. }));
    req.from_user = "1001".into();
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Ok(_)));
}

#[test]
fn a_suspended_account_still_reaches_emergency_services_and_nothing_else() {
    let mut s = store();
    s.devices[0].account_status = "suspended".into();
    let mut req = register("1001");
    req.method = "INVITE".into();
    let nonce = nonce_of(&run(&req, &s, T0));
    req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "INVITE", &nonce, 1);
    req.ruri = "sip:911@acme.sip.io".into();
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Ok(_)));
    req.authorization = answer(Algorithm::Md5, "1001", "secret-1001", "INVITE", &nonce, 2);
    req.ruri = "sip:5557654321@acme.sip.io".into();
    assert!(matches!(run(&req, &s, T0).response, AuthResponse::Reject { code: 403, .. }));
}
