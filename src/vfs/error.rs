//! Filesystem errors and the one place where every error (the vfs's own and the API
//! client's) becomes an errno.

use super::read::pins::PinError;
use boxfs_api::ApiError;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("read-only file system")]
    ReadOnly,
    #[error("operation not supported")]
    NotSupported,
    #[error("bad file handle")]
    BadHandle,
    #[error("no such attribute")]
    NoAttr,
    #[error("buffer too small")]
    Range,
    #[error("invalid argument")]
    Invalid,
    #[error("name too long")]
    NameTooLong,
    #[error("file exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("operation not permitted")]
    NotPermitted,
    /// The item is not in Box yet (its first upload is pending): ask again once it is.
    #[error("not in Box yet")]
    NotInBoxYet,
    /// The user's role on the item in Box does not allow the operation.
    #[error("permission denied by the item's permissions in Box")]
    Denied,
    #[error("{0}")]
    Pin(#[from] PinError),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("{0}")]
    Shared(Arc<ApiError>),
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub type VfsResult<T> = Result<T, VfsError>;

impl From<Arc<ApiError>> for VfsError {
    fn from(e: Arc<ApiError>) -> VfsError {
        VfsError::Shared(e)
    }
}

fn api_errno(e: &ApiError) -> i32 {
    match e.root() {
        ApiError::NotFound { .. } | ApiError::SessionExpired => libc::ENOENT,
        ApiError::Forbidden { .. } | ApiError::LoginRequired | ApiError::Unauthorized => libc::EACCES,
        ApiError::NameConflict { .. } => libc::EEXIST,
        ApiError::PreconditionFailed => libc::EAGAIN,
        ApiError::QuotaExceeded => libc::ENOSPC,
        ApiError::FileTooLarge => libc::EFBIG,
        ApiError::InvalidName { code } if code.as_deref() == Some("item_name_too_long") => libc::ENAMETOOLONG,
        ApiError::InvalidName { .. } => libc::EINVAL,
        ApiError::FolderNotEmpty => libc::ENOTEMPTY,
        ApiError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
        _ => libc::EIO,
    }
}

fn pin_errno(e: &PinError) -> i32 {
    match e {
        PinError::NoRoom { .. } => libc::ENOSPC,
        // Removing `user.boxfs.pinned` from an item only under a pinned folder.
        PinError::Inherited { .. } => libc::EPERM,
        PinError::NotPinned(_) => libc::ENODATA,
        PinError::NotPinnable(_) => libc::ENOTSUP,
        PinError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
    }
}

impl VfsError {
    /// The errno the kernel gets for this error.
    pub fn errno(&self) -> i32 {
        match self {
            VfsError::NotFound => libc::ENOENT,
            VfsError::NotDir => libc::ENOTDIR,
            VfsError::IsDir => libc::EISDIR,
            VfsError::ReadOnly => libc::EROFS,
            VfsError::NotSupported => libc::ENOTSUP,
            VfsError::BadHandle => libc::EBADF,
            VfsError::NoAttr => libc::ENODATA,
            VfsError::Range => libc::ERANGE,
            VfsError::Invalid => libc::EINVAL,
            VfsError::NameTooLong => libc::ENAMETOOLONG,
            VfsError::Exists => libc::EEXIST,
            VfsError::NotEmpty => libc::ENOTEMPTY,
            VfsError::NotPermitted => libc::EPERM,
            VfsError::Denied => libc::EACCES,
            VfsError::NotInBoxYet => libc::EAGAIN,
            VfsError::Pin(e) => pin_errno(e),
            VfsError::Api(e) => api_errno(e),
            VfsError::Shared(e) => api_errno(e),
            VfsError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// The API error underneath, if this is one.
    pub fn root_api(&self) -> Option<&ApiError> {
        match self {
            VfsError::Api(e) => Some(e.root()),
            VfsError::Shared(e) => Some(e.root()),
            _ => None,
        }
    }

    /// Box could not be reached: nothing was asked of it.
    pub fn is_offline(&self) -> bool {
        matches!(self.root_api(), Some(ApiError::Offline { .. }))
    }

    /// Failures that deserve a log line (the network or Box failed us, not the caller).
    pub fn is_remote_failure(&self) -> bool {
        self.errno() == libc::EIO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_map_to_one_errno_each() {
        let cases = [
            (ApiError::NotFound { code: None }, libc::ENOENT),
            (ApiError::Forbidden { code: None }, libc::EACCES),
            (ApiError::NameConflict { conflicts: vec![] }, libc::EEXIST),
            (ApiError::QuotaExceeded, libc::ENOSPC),
            (ApiError::LoginRequired, libc::EACCES),
            (ApiError::Network("reset".into()), libc::EIO),
            (
                ApiError::RetriesExhausted { attempts: 3, last: Box::new(ApiError::NotFound { code: None }) },
                libc::ENOENT,
            ),
        ];
        for (e, errno) in cases {
            assert_eq!(VfsError::Api(e).errno(), errno);
        }
    }
}
