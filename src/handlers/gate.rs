//! Credential gating: `Authorization: Bearer <token>` or `X-API-Key: <token>`.
//! A token is `<credential id>.<secret>`; only SHA-256(token) is stored, compared in constant time.

use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::sip::digest::ct_eq;
use crate::store::Store;
use sha2::{Digest, Sha256};
use worker::Request;

#[derive(Debug, Clone)]
pub struct Caller {
    pub credential_id: String,
    pub role: Role,
    /// Credentials scoped to one account may only act on it.
    pub account_id: Option<String>,
}

impl Caller {
    /// Refuse an account-scoped credential acting on another account.
    pub fn check_account(&self, account_id: &str) -> ApiResult<()> {
        match &self.account_id {
            Some(a) if a != account_id => Err(ApiError::forbidden("credential is scoped to another account")),
            _ => Ok(()),
        }
    }
}

fn presented_token(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(v) = h.get("authorization").ok().flatten() {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim().to_string());
        }
    }
    h.get("x-api-key").ok().flatten().map(|v| v.trim().to_string())
}

pub async fn authenticate(req: &Request, store: &Store) -> ApiResult<Caller> {
    let token = presented_token(req).filter(|t| !t.is_empty()).ok_or_else(|| ApiError::unauthorized("credential required: Authorization: Bearer <token> or X-API-Key"))?;
    let invalid = || ApiError::unauthorized("invalid credential");
    if token.len() > 256 {
        return Err(invalid());
    }
    let (id, _) = token.split_once('.').ok_or_else(invalid)?;
    if !crate::typeid::is_valid(id, "cred") {
        return Err(invalid());
    }
    let row = store.credential(id).await?.ok_or_else(invalid)?;
    let presented = hex(&Sha256::digest(token.as_bytes()));
    if !ct_eq(presented.as_bytes(), row.token_hash.to_ascii_lowercase().as_bytes()) || row.revoked_at.is_some() {
        return Err(invalid());
    }
    let role = Role::parse(&row.role).ok_or_else(invalid)?;
    Ok(Caller { credential_id: row.id, role, account_id: row.account_id })
}

pub fn require(caller: &Caller, roles: &[Role], path: &str) -> ApiResult<()> {
    if caller.role == Role::Operator || roles.contains(&caller.role) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!("role {} may not call {path}", caller.role.as_str())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
