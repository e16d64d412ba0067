//! Names as the mount sees them: Box's naming rules turned into errnos, and the error for a
//! name a folder does not hold.

use crate::vfs::error::{VfsError, VfsResult};

/// Box's naming rules as errnos: `EINVAL` for names Box refuses, `ENAMETOOLONG` past 255
/// characters or (Linux's limit) 255 bytes.
pub fn check_name(name: &str) -> VfsResult<()> {
    use boxfs_api::model::{name_problem, NameProblem};
    match name_problem(name) {
        _ if name.len() > 255 => Err(VfsError::NameTooLong),
        Some(NameProblem::TooLong) => Err(VfsError::NameTooLong),
        Some(NameProblem::Invalid) => Err(VfsError::Invalid),
        None => Ok(()),
    }
}

/// The error for a name not found in a folder: `ENAMETOOLONG` for one longer than a name can
/// be (255 bytes), else `ENOENT`.
pub fn not_found(name: &str) -> VfsError {
    if name.len() > 255 {
        VfsError::NameTooLong
    } else {
        VfsError::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_box_rules() {
        assert!(check_name("ok name.txt").is_ok());
        for bad in ["", ".", "..", "a\\b", "trailing ", "ctl\u{1}"] {
            assert!(matches!(check_name(bad), Err(VfsError::Invalid)), "{bad:?}");
        }
        assert!(matches!(check_name(&"x".repeat(256)), Err(VfsError::NameTooLong)));
    }
}
