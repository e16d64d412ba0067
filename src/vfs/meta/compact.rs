//! Compact forms of what the inode table keeps per item, so that a million items fit in a
//! few hundred bytes each: short strings Box sends (ids, etags, version ids) as [`Token`]s (an
//! integer, the text only when it is not one), SHA-1s as 20-byte [`Digest`]s, and times as
//! whole seconds ([`Secs`]).
//!
//! Invariant: a token or digest gives back exactly the string it was made from
//! (`Token::new(s).to_string() == s`), so a compact id is never a different Box id.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A short string Box sends (an id, an etag, a version id) in 16 bytes: a number when it is
/// one, else its text behind one more pointer (rare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// A decimal number without leading zeros.
    Num(u64),
    #[allow(clippy::box_collection)] // a thin pointer keeps the enum at 16 bytes
    Text(Box<String>),
}

impl Token {
    pub fn new(s: &str) -> Token {
        match canonical_number(s) {
            Some(n) => Token::Num(n),
            None => Token::Text(Box::new(s.to_string())),
        }
    }

    /// The hash key of `s` as a token: equal for a string and the token made from it.
    pub fn key_of(s: &str) -> TokenKey<'_> {
        match canonical_number(s) {
            Some(n) => TokenKey::Num(n),
            None => TokenKey::Text(s),
        }
    }

    pub fn key(&self) -> TokenKey<'_> {
        match self {
            Token::Num(n) => TokenKey::Num(*n),
            Token::Text(s) => TokenKey::Text(s),
        }
    }

    pub fn is(&self, s: &str) -> bool {
        match self {
            Token::Num(n) => canonical_number(s) == Some(*n),
            Token::Text(t) => **t == s,
        }
    }
}

/// What a token is hashed as.
#[derive(Debug, Hash)]
pub enum TokenKey<'a> {
    Num(u64),
    Text(&'a str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Num(n) => fmt::Display::fmt(n, f),
            Token::Text(s) => f.write_str(s),
        }
    }
}

/// A SHA-1 as 20 bytes (its text when it is not 40 lowercase hex digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Digest {
    Hex20([u8; 20]),
    Text(Box<str>),
}

impl Digest {
    pub fn new(s: &str) -> Digest {
        match lower_hex20(s) {
            Some(bytes) => Digest::Hex20(bytes),
            None => Digest::Text(s.into()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Hex20(b) => {
                let mut hex = [0u8; 40];
                hex::encode_to_slice(b, &mut hex).expect("40 digits hold 20 bytes");
                f.write_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
            }
            Digest::Text(s) => f.write_str(s),
        }
    }
}

fn canonical_number(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

fn lower_hex20(s: &str) -> Option<[u8; 20]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let s = s.as_bytes();
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A time in whole seconds since the epoch, up to 2106 (Box's times are whole seconds);
/// other times are kept exactly elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secs(u32);

impl Secs {
    /// `t` as whole seconds, if it is that exactly.
    pub fn exact(t: SystemTime) -> Option<Secs> {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        (d.subsec_nanos() == 0).then(|| u32::try_from(d.as_secs()).ok().map(Secs)).flatten()
    }

    pub fn time(self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_give_back_their_string() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        for s in [
            "0",
            "12345",
            "0123",
            "",
            "local:abc",
            sha,
            "0123456789ABCDEF0123456789ABCDEF01234567",
            "18446744073709551616",
        ] {
            let t = Token::new(s);
            assert_eq!(t.to_string(), s);
            assert!(t.is(s), "{s}");
            assert!(!t.is("x"), "{s}");
            assert_eq!(Digest::new(s).to_string(), s);
        }
        assert!(matches!(Token::new("12345"), Token::Num(12345)));
        assert!(matches!(Digest::new(sha), Digest::Hex20(_)));
        assert_eq!(std::mem::size_of::<Token>(), 16);
        assert!(!Token::new("123").is("0123"));
        use std::hash::BuildHasher;
        let b = hashbrown::DefaultHashBuilder::default();
        for s in ["7", sha, "local:x"] {
            assert_eq!(b.hash_one(Token::key_of(s)), b.hash_one(Token::new(s).key()), "{s}");
        }
    }

    #[test]
    fn whole_seconds_are_kept_and_other_times_refused() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(Secs::exact(t).map(Secs::time), Some(t));
        assert_eq!(Secs::exact(t + Duration::from_nanos(1)), None);
        assert_eq!(Secs::exact(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 33)), None);
        assert_eq!(Secs::exact(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), None);
    }
}
