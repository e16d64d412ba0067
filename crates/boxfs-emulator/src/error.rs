//! Box's error responses (`{type:"error", status, code, message, context_info, help_url,
//! request_id}`) and the one place where store errors become HTTP statuses and codes.

use super::store::StoreError;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub context_info: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.into(), message: message.into(), context_info: None, headers: Vec::new() }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not Found")
    }

    /// A missing or malformed request parameter.
    pub fn invalid_param(name: &str) -> ApiError {
        let mut e = ApiError::bad_request("bad_request", format!("Invalid value for '{name}'"));
        e.context_info = Some(json!({"errors": [{"reason": "invalid_parameter", "name": name,
            "message": format!("Invalid value '{name}'.")}]}));
        e
    }

    pub fn too_many_requests(retry_after_secs: u64) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Request rate limit exceeded, please try again later",
        )
        .with_header(axum::http::header::RETRY_AFTER, retry_after_secs.to_string())
    }

    pub fn with_header(mut self, name: HeaderName, value: String) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub fn with_context(mut self, context: Value) -> ApiError {
        self.context_info = Some(context);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            StoreError::NotFound { .. } => ApiError::new(S::NOT_FOUND, "not_found", "Not Found"),
            StoreError::Trashed => ApiError::new(S::NOT_FOUND, "trashed", "Item is trashed"),
            StoreError::NotTrashed => ApiError::new(S::NOT_FOUND, "not_trashed", "Item is not trashed"),
            StoreError::NameInUse { conflicts, as_array } => {
                let conflicts = if as_array {
                    Value::Array(conflicts)
                } else {
                    conflicts.into_iter().next().unwrap_or(Value::Null)
                };
                ApiError::new(S::CONFLICT, "item_name_in_use", "Item with the same name already exists")
                    .with_context(json!({ "conflicts": conflicts }))
            }
            StoreError::NameInvalid => ApiError::new(S::BAD_REQUEST, "item_name_invalid", "Item name invalid"),
            StoreError::NameTooLong => ApiError::new(S::BAD_REQUEST, "item_name_too_long", "Item name too long"),
            StoreError::FolderNotEmpty => {
                ApiError::new(S::BAD_REQUEST, "folder_not_empty", "Cannot delete – folder not empty")
            }
            StoreError::Cyclical => ApiError::new(S::BAD_REQUEST, "cyclical_folder_structure", msg),
            StoreError::PreconditionFailed => ApiError::new(
                S::PRECONDITION_FAILED,
                "precondition_failed",
                "The resource has been modified. Please retrieve the resource again and retry",
            ),
            StoreError::StorageLimitExceeded => {
                ApiError::new(S::FORBIDDEN, "storage_limit_exceeded", "Account storage limit reached")
            }
            StoreError::FileSizeLimitExceeded => ApiError::new(
                S::FORBIDDEN,
                "file_size_limit_exceeded",
                "File size exceeds the folder owner's file size limit",
            ),
            StoreError::BadRequest { code, .. } => ApiError::new(S::BAD_REQUEST, code, msg),
            StoreError::Gone { code, .. } => ApiError::new(S::GONE, code, msg),
            StoreError::RangeNotSatisfiable { code, .. } => ApiError::new(S::RANGE_NOT_SATISFIABLE, code, msg),
            StoreError::Conflict { code, .. } => ApiError::new(S::CONFLICT, code, msg),
            StoreError::Missing { code, .. } => ApiError::new(S::NOT_FOUND, code, msg),
            StoreError::Forbidden => ApiError::new(
                S::FORBIDDEN,
                "access_denied_insufficient_permissions",
                "Access denied - insufficient permission",
            ),
            StoreError::ItemLocked => {
                ApiError::new(S::FORBIDDEN, "access_denied_item_locked", "Access denied – item locked")
            }
            StoreError::SharedLinkPassword => ApiError::new(
                S::FORBIDDEN,
                "incorrect_shared_item_password",
                "The password for the shared link is missing or incorrect",
            ),
            StoreError::Sqlite(_) | StoreError::Io(_) => {
                tracing::error!(error = %msg, "emulator store failure");
                ApiError::new(S::INTERNAL_SERVER_ERROR, "internal_server_error", "Internal Server Error")
            }
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        StoreError::Io(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "error",
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "help_url": "http://developers.box.com/docs/#errors",
            "request_id": super::store::random_hex(6).to_lowercase(),
        });
        if let Some(ctx) = self.context_info {
            body["context_info"] = ctx;
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
