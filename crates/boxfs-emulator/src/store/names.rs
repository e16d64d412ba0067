//! Box's rules for item names, as the emulator enforces them: written from Box's OpenAPI spec
//! (`POST /folders` `name`: 1–255 characters; no non-printable ASCII, no `/` or `\`, no trailing
//! space, not `.` or `..`) and kept apart from the client's own copy of the rules, so that one
//! misreading of Box cannot pass both the client and its oracle.
//!
//! Uniqueness is a different rule: Box compares names case-insensitively (`Item::name_key`).

use super::StoreError;

/// The spec's `maxLength` for names, counted in characters (JSON Schema counts code points).
pub const MAX_NAME_CHARS: usize = 255;

/// Why Box refuses a name, as its error codes say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRefusal {
    /// `item_name_invalid`.
    Invalid,
    /// `item_name_too_long`.
    TooLong,
}

impl From<NameRefusal> for StoreError {
    fn from(r: NameRefusal) -> StoreError {
        match r {
            NameRefusal::Invalid => StoreError::NameInvalid,
            NameRefusal::TooLong => StoreError::NameTooLong,
        }
    }
}

/// ASCII control characters, which Box calls non-printable (`0x00`–`0x1f` and `0x7f`).
fn non_printable_ascii(c: char) -> bool {
    c.is_ascii_control()
}

/// Checks `name` against Box's naming rules.
pub fn check_name(name: &str) -> Result<(), NameRefusal> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameRefusal::TooLong);
    }
    let refused = matches!(name, "" | "." | "..")
        || name.ends_with(' ')
        || name.contains(['/', '\\'])
        || name.chars().any(non_printable_ascii);
    if refused {
        Err(NameRefusal::Invalid)
    } else {
        Ok(())
    }
}

/// [`check_name`] as a store error (`item_name_invalid` / `item_name_too_long`).
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    check_name(name).map_err(StoreError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples() {
        for ok in ["New Folder", "a", " leading space", "ünïcödé ✓", "x.", "...", "a b", &"é".repeat(255)] {
            assert_eq!(check_name(ok), Ok(()), "{ok:?}");
        }
        for bad in ["", ".", "..", "trailing ", "a/b", "a\\b", "tab\there", "nul\0", "del\x7f", "nl\n"] {
            assert_eq!(check_name(bad), Err(NameRefusal::Invalid), "{bad:?}");
        }
        assert_eq!(check_name(&"x".repeat(256)), Err(NameRefusal::TooLong));
        assert_eq!(check_name(&"é".repeat(256)), Err(NameRefusal::TooLong));
    }
}
