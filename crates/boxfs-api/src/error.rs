//! The API client's errors: one variant per condition the filesystem must tell apart (and map
//! to one errno), built from HTTP statuses and Box's error codes in one place.

use super::model::{ErrorBody, Item};
use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found{}", detail(.code))]
    NotFound { code: Option<String> },
    #[error("access denied{}", detail(.code))]
    Forbidden { code: Option<String> },
    #[error("an item with that name already exists")]
    NameConflict { conflicts: Vec<Item> },
    #[error("the item changed on the server (precondition failed)")]
    PreconditionFailed,
    #[error("storage quota exceeded")]
    QuotaExceeded,
    #[error("the file is larger than the account's maximum upload size")]
    FileTooLarge,
    #[error("invalid item name{}", detail(.code))]
    InvalidName { code: Option<String> },
    #[error("folder not empty")]
    FolderNotEmpty,
    #[error("the login has expired or was revoked: log in again (boxfs login)")]
    LoginRequired,
    #[error("the access token was refused and cannot be refreshed")]
    Unauthorized,
    #[error("upload session expired")]
    SessionExpired,
    #[error("upload session does not match the local file: {0}")]
    SessionMismatch(String),
    #[error("Box answered {status}{}: {message}", detail(.code))]
    Http { status: u16, code: Option<String>, message: String },
    #[error("network error: {0}")]
    Network(String),
    /// Box cannot be reached right now (see `reach.rs`): nothing was sent.
    #[error("Box is unreachable (offline since {})", local_time(.since))]
    Offline { since: std::time::SystemTime },
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<ApiError> },
    #[error("unexpected response: {0}")]
    Decode(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("token file: {0}")]
    TokenFile(String),
    #[error("configuration: {0}")]
    Config(String),
}

fn detail(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
}

fn local_time(t: &std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(*t).format("%Y-%m-%d %H:%M:%S").to_string()
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Maps a non-success response (status + parsed body) to a typed error.
    pub fn from_response(status: StatusCode, body: &ErrorBody) -> ApiError {
        let code = body.code.clone();
        let message = body.message.clone().unwrap_or_default();
        match (status.as_u16(), code.as_deref()) {
            (404, _) => ApiError::NotFound { code },
            (403 | 409, Some("storage_limit_exceeded")) => ApiError::QuotaExceeded,
            (403 | 413, Some("file_size_limit_exceeded")) => ApiError::FileTooLarge,
            (403, _) => ApiError::Forbidden { code },
            (409, Some("item_name_in_use")) | (409, None) => ApiError::NameConflict {
                conflicts: body.conflicts().into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect(),
            },
            (412, _) => ApiError::PreconditionFailed,
            (400, Some("item_name_invalid" | "item_name_too_long")) => ApiError::InvalidName { code },
            (400, Some("folder_not_empty")) => ApiError::FolderNotEmpty,
            (410, _) => ApiError::SessionExpired,
            (s, _) => ApiError::Http { status: s, code, message },
        }
    }

    /// Transient failures worth another attempt (with backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Network(_) | ApiError::Offline { .. } => true,
            ApiError::Http { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504 | 509),
            _ => false,
        }
    }

    /// The root cause, looking through `RetriesExhausted`.
    pub fn root(&self) -> &ApiError {
        match self {
            ApiError::RetriesExhausted { last, .. } => last.root(),
            other => other,
        }
    }
}

impl From<reqwest::Error> for ApiError {
    fn from(e: reqwest::Error) -> ApiError {
        if e.is_decode() {
            ApiError::Decode(e.to_string())
        } else {
            // Connect errors, resets, timeouts, truncated bodies: all worth a retry.
            ApiError::Network(error_chain(&e))
        }
    }
}

/// `e` with its sources, for one clear log line (never includes headers or tokens).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
