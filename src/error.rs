//! The one error type at the HTTP edge: every failure becomes a status code and
//! `{"status":"error","message":...}`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// What the client is told.
    pub message: String,
    /// What only the logs see (internal failures: D1, Durable Object, runtime errors).
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), detail: None }
    }
    /// A failure whose cause stays in the logs; the client gets `message` only.
    pub fn hidden(status: u16, message: impl Into<String>, detail: impl fmt::Display) -> Self {
        ApiError { status, message: message.into(), detail: Some(detail.to_string()) }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(501, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }
    /// An internal failure. The detail is for logs; clients get a generic message.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::hidden(500, "internal error", detail)
    }

    /// The response body.
    pub fn body(&self) -> String {
        serde_json::json!({ "status": "error", "message": self.message }).to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::bad_request(format!("invalid JSON: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_error_envelope() {
        let e = ApiError::forbidden("role \"agent-app\" may not call /auth");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["message"], "role \"agent-app\" may not call /auth");
        assert_eq!(e.status, 403);
    }

    #[test]
    fn internal_details_stay_out_of_the_body() {
        let e = ApiError::internal("D1_ERROR: no such table: devices");
        assert_eq!(e.status, 500);
        assert!(!e.body().contains("D1_ERROR"));
        assert!(e.to_string().contains("D1_ERROR"), "but the log line has it");
        let u = ApiError::hidden(503, "live state unavailable", "Durable Object reset because its code was updated");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&u.body()).unwrap()["message"], "live state unavailable");
    }

    #[test]
    fn json_errors_are_client_errors() {
        let e: ApiError = serde_json::from_str::<serde_json::Value>("{").unwrap_err().into();
        assert_eq!(e.status, 400);
        assert!(e.message.starts_with("invalid JSON"));
    }
}
