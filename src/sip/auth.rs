//! The /auth decision: SIP digest (REGISTER → 401 WWW-Authenticate, others → 407
//! Proxy-Authenticate), carrier trust by source address, nonce expiry and nc replay,
//! failed-attempt bans. Storage sits behind [`AuthStore`]; no clock, no I/O here.

use crate::api::{AuthOk, AuthRequest, AuthResponse};
use crate::error::{ApiError, ApiResult};
use crate::model::{default_algorithms, CarrierAddress, DeviceAuth};
use crate::net::{parse_ip, Cidr};
use crate::sip::digest::{self, Algorithm, ChallengeKind};
use crate::sip::nonce::{self, NonceState};

/// What /auth needs from configuration and live state.
#[allow(async_fn_in_trait)]
pub trait AuthStore {
    /// Every enabled carrier address.
    async fn carrier_addresses(&self) -> ApiResult<Vec<CarrierAddress>>;
    /// The digest algorithms the account owning `domain` offers (None: unknown domain).
    async fn domain_algorithms(&self, domain: &str) -> ApiResult<Option<Vec<Algorithm>>>;
    /// The device with this digest username in this realm.
    async fn device(&self, username: &str, realm: &str) -> ApiResult<Option<DeviceAuth>>;
    /// Record that `nonce` was used with count `nc` by the account; false when `nc` is not
    /// greater than every count seen before for that nonce (a replay).
    async fn use_nonce(&self, account_id: &str, nonce: &str, nc: u32, forget_after_ms: u64) -> ApiResult<bool>;
    /// Count a failed attempt from `ip`; Some(seconds) when the source must be banned.
    async fn record_failure(&self, ip: &str) -> ApiResult<Option<u64>>;
}

pub struct AuthContext<'a> {
    pub secret: &'a [u8],
    pub now_ms: u64,
    pub nonce_ttl_ms: u64,
    /// 8 random bytes for a challenge's nonce (the adapter draws them; tests fix them).
    pub salt: [u8; 8],
}

/// The answer plus the rule that produced it (for traces and logs; never sent to the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOutcome {
    pub response: AuthResponse,
    pub rule: String,
}

/// HA1 used when the user is unknown, so that an unknown user and a wrong password cost the same.
const DUMMY_HA1_MD5: &str = "00000000000000000000000000000000";
const DUMMY_HA1_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The generic refusal: identical for unknown users and wrong passwords.
const FORBIDDEN: &str = "Forbidden";

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

pub async fn authenticate<S: AuthStore>(req: &AuthRequest, store: &S, ctx: &AuthContext<'_>) -> ApiResult<AuthOutcome> {
    let method = req.method.trim().to_ascii_uppercase();
    if !is_token(&method) {
        return Err(ApiError::bad_request("method is required and must be a SIP method token"));
    }
    let kind = if method == "REGISTER" { ChallengeKind::Www } else { ChallengeKind::Proxy };
    let domain = if method == "REGISTER" && !req.to_domain.trim().is_empty() { &req.to_domain } else { &req.from_domain };
    let domain = domain.trim().to_ascii_lowercase();
    // Realms go into quoted challenge parameters and nonce MACs: only host-like domains.
    if !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) || domain.len() > 253 {
        return Ok(reject(400, "Bad Request", None, format!("domain {domain:?} is not a host name or address")));
    }

    if req.authorization.trim().is_empty() {
        if method != "REGISTER" {
            if let Some(addr) = trusted_carrier(&store.carrier_addresses().await?, &req.source_ip, req.source_port) {
                return Ok(AuthOutcome {
                    rule: format!("carrier {} trusted by source {} ({})", addr.carrier_id, req.source_ip, addr.cidr),
                    response: AuthResponse::Ok(AuthOk::Carrier { trust: "carrier".into(), carrier_id: addr.carrier_id }),
                });
            }
        }
        if domain.is_empty() {
            return Err(ApiError::bad_request("fromDomain (or toDomain for REGISTER) is required to challenge"));
        }
        return challenge(store, kind, &domain, ctx, false, "no credentials: challenge").await;
    }

    let creds = match digest::parse_credentials(&req.authorization) {
        Ok(c) => c,
        Err(e) => return fail(store, req, 400, "Malformed Credentials", format!("malformed credentials: {e:?}")).await,
    };
    if !domain.is_empty() && !creds.realm.eq_ignore_ascii_case(&domain) {
        return fail(store, req, 403, FORBIDDEN, format!("realm \"{}\" does not match domain \"{domain}\"", creds.realm)).await;
    }
    if method == "REGISTER" && req.to_user != creds.username {
        return fail(store, req, 403, FORBIDDEN, format!("To user \"{}\" differs from digest username \"{}\"", req.to_user, creds.username))
            .await;
    }
    // Other requests must come From the identity they authenticate as (no From spoofing).
    if method != "REGISTER" && req.from_user != creds.username {
        return fail(store, req, 403, FORBIDDEN, format!("From user \"{}\" differs from digest username \"{}\"", req.from_user, creds.username))
            .await;
    }
    let realm = creds.realm.to_ascii_lowercase();
    let state = nonce::check(ctx.secret, &realm, &creds.nonce, ctx.now_ms, ctx.nonce_ttl_ms);
    if state == NonceState::Invalid {
        // Not a nonce of ours (or the secret rotated): ask again, it is not a failed password.
        return challenge(store, kind, &realm, ctx, false, "nonce not issued by us: fresh challenge").await;
    }

    let device = store.device(&creds.username, &realm).await?;
    let ha1 = match (&device, creds.algorithm) {
        (Some(d), Algorithm::Md5) => d.ha1_md5.as_str(),
        (Some(d), Algorithm::Sha256) => d.ha1_sha256.as_str(),
        (None, Algorithm::Md5) => DUMMY_HA1_MD5,
        (None, Algorithm::Sha256) => DUMMY_HA1_SHA256,
    };
    let digest_ok = digest::verify(ha1, &method, &creds);
    let device = match device {
        Some(d) if digest_ok => d,
        _ => return fail(store, req, 403, FORBIDDEN, format!("unknown user or wrong password for {}@{realm}", creds.username)).await,
    };
    if state == NonceState::Stale {
        return challenge(store, kind, &realm, ctx, true, "correct digest with an expired nonce: stale challenge").await;
    }
    // A suspended account keeps emergency calling (an enabled device, an INVITE to an emergency number).
    let emergency = method == "INVITE" && device.account_status == "suspended" && device.enabled && {
        let plan = crate::routing::e164::DialPlan { country_code: device.country_code.clone(), premium_prefixes: vec![] };
        crate::routing::e164::is_emergency(crate::routing::e164::user_part(&req.ruri), &plan)
    };
    if (!device.enabled || device.account_status != "active") && !emergency {
        return Ok(reject(
            403,
            FORBIDDEN,
            None,
            format!("device {} enabled={} account status {}", device.id, device.enabled, device.account_status),
        ));
    }
    let issued = nonce::issued_at(&creds.nonce).unwrap_or(ctx.now_ms);
    let nc = creds.nc.unwrap_or(0);
    if !store.use_nonce(&device.account_id, &creds.nonce, nc, issued.saturating_add(ctx.nonce_ttl_ms)).await? {
        return Ok(reject(403, "Nonce Count Replayed", None, format!("nc {nc:#x} not above the last count seen for this nonce")));
    }
    Ok(AuthOutcome {
        rule: format!("device {} authenticated with {}", device.id, creds.algorithm.as_str()),
        response: AuthResponse::Ok(AuthOk::Device {
            aor: format!("sip:{}@{}", device.extension, realm),
            account_id: device.account_id,
            device_id: device.id,
            user_id: device.user_id,
            extension: device.extension,
        }),
    })
}

/// The first carrier address containing the source (and matching its port, when the address names one).
pub fn trusted_carrier(addresses: &[CarrierAddress], source_ip: &str, source_port: Option<u64>) -> Option<CarrierAddress> {
    let ip = parse_ip(source_ip)?;
    addresses
        .iter()
        .find(|a| {
            Cidr::parse(&a.cidr).is_some_and(|c| c.contains(&ip)) && a.port.is_none_or(|p| Some(u64::from(p)) == source_port)
        })
        .cloned()
}

async fn challenge<S: AuthStore>(
    store: &S,
    kind: ChallengeKind,
    realm: &str,
    ctx: &AuthContext<'_>,
    stale: bool,
    rule: &str,
) -> ApiResult<AuthOutcome> {
    let algorithms = store.domain_algorithms(realm).await?.unwrap_or_else(default_algorithms);
    let nonce = nonce::issue(ctx.secret, realm, ctx.now_ms, ctx.salt);
    let opaque = &nonce[..16];
    let headers: Vec<String> = algorithms.iter().map(|a| digest::challenge_line(kind, *a, realm, &nonce, opaque, stale)).collect();
    let (code, reason) = match kind {
        ChallengeKind::Www => (401, "Unauthorized"),
        ChallengeKind::Proxy => (407, "Proxy Authentication Required"),
    };
    Ok(AuthOutcome {
        rule: rule.to_string(),
        response: AuthResponse::Challenge { code, reason: reason.into(), header: headers[0].clone(), headers },
    })
}

async fn fail<S: AuthStore>(store: &S, req: &AuthRequest, code: u16, reason: &str, rule: String) -> ApiResult<AuthOutcome> {
    let ban = if parse_ip(&req.source_ip).is_some() { store.record_failure(req.source_ip.trim()).await? } else { None };
    Ok(reject(code, reason, ban, rule))
}

fn reject(code: u16, reason: &str, ban: Option<u64>, rule: String) -> AuthOutcome {
    AuthOutcome { response: AuthResponse::Reject { code, reason: reason.into(), ban }, rule }
}

#[cfg(test)]
mod tests;
