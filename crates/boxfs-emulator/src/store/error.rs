//! Errors of the emulator's store, each one a Box API error condition.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("item is trashed")]
    Trashed,
    #[error("item is not trashed")]
    NotTrashed,
    #[error("item with the same name already exists")]
    NameInUse { conflicts: Vec<Value>, as_array: bool },
    #[error("item name invalid")]
    NameInvalid,
    #[error("item name too long")]
    NameTooLong,
    #[error("folder is not empty")]
    FolderNotEmpty,
    #[error("cannot move a folder into itself or one of its descendants")]
    Cyclical,
    #[error("the resource has been modified")]
    PreconditionFailed,
    #[error("storage limit exceeded")]
    StorageLimitExceeded,
    #[error("file size exceeds the maximum upload size")]
    FileSizeLimitExceeded,
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("{message}")]
    RangeNotSatisfiable { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A 404 with a code more specific than `not_found`.
    #[error("{message}")]
    Missing { code: &'static str, message: String },
    #[error("the item is locked by another user")]
    ItemLocked,
    /// The viewer's rights (their role) do not allow the operation.
    #[error("access denied: insufficient permission")]
    Forbidden,
    #[error("the shared link password is missing or wrong")]
    SharedLinkPassword,
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        StoreError::BadRequest { code, message: message.into() }
    }
}
