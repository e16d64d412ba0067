//! OAuth state: access tokens with an expiry (to the millisecond: fractional unix seconds, so
//! that a token of a few seconds lasts exactly its lifetime), single-use refresh tokens (each
//! refresh rotates the pair and burns the old refresh token), and 30-second authorization codes.
//! Every token acts for one user of the enterprise (a token without one, from before there
//! were several users, acts for the admin).

use super::{unix_now, Store, StoreResult};
use rusqlite::OptionalExtension;

#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
}

/// What an `Authorization: Bearer` token turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenGrant {
    /// A live token of this user.
    Valid(String),
    Expired,
    Unknown,
}

const AUTH_CODE_LIFETIME_SECS: i64 = 30;
const REFRESH_LIFETIME_SECS: i64 = 60 * 24 * 3600;

/// Unix time in seconds, with the fraction.
fn unix_now_precise() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

/// A random token of Box's shape: 32 alphanumeric characters.
fn new_token() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

impl Store {
    /// Issues an access token for `user_id` (and a refresh token when `with_refresh`).
    pub fn issue_tokens(
        &self,
        client_id: &str,
        user_id: &str,
        lifetime_secs: i64,
        with_refresh: bool,
    ) -> StoreResult<TokenPair> {
        let pair = TokenPair {
            access_token: new_token(),
            refresh_token: with_refresh.then(new_token),
            expires_in: lifetime_secs,
        };
        self.write(|tx| {
            let now = unix_now();
            tx.execute(
                "INSERT INTO tokens(token, kind, client_id, expires_at, user_id) VALUES (?1, 'access', ?2, ?3, ?4)",
                (&pair.access_token, client_id, unix_now_precise() + lifetime_secs as f64, user_id),
            )?;
            if let Some(refresh) = &pair.refresh_token {
                tx.execute(
                    "INSERT INTO tokens(token, kind, client_id, expires_at, user_id) VALUES (?1, 'refresh', ?2, ?3, ?4)",
                    (refresh, client_id, now + REFRESH_LIFETIME_SECS, user_id),
                )?;
            }
            Ok(())
        })?;
        Ok(pair)
    }

    pub fn check_access_token(&self, token: &str) -> StoreResult<TokenGrant> {
        self.read(|c| {
            let found: Option<(f64, Option<String>)> = c
                .query_row(
                    "SELECT expires_at, user_id FROM tokens WHERE token = ?1 AND kind = 'access'",
                    [token],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(match found {
                None => TokenGrant::Unknown,
                Some((t, _)) if t <= unix_now_precise() => TokenGrant::Expired,
                Some((_, user)) => TokenGrant::Valid(user.unwrap_or_else(|| super::ADMIN_ID.to_string())),
            })
        })
    }

    /// Burns `refresh_token` and issues a new pair; `None` when the refresh token is unknown,
    /// expired, already used or belongs to another client (`invalid_grant`).
    pub fn refresh_tokens(
        &self,
        refresh_token: &str,
        client_id: &str,
        lifetime_secs: i64,
    ) -> StoreResult<Option<TokenPair>> {
        let burned: Option<Option<String>> = self.write(|tx| {
            Ok(tx
                .query_row(
                    "UPDATE tokens SET used = 1 WHERE token = ?1 AND kind = 'refresh' AND used = 0 AND client_id = ?2
                       AND expires_at > ?3 RETURNING user_id",
                    (refresh_token, client_id, unix_now()),
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        let Some(user) = burned else { return Ok(None) };
        let user = user.unwrap_or_else(|| super::ADMIN_ID.to_string());
        self.issue_tokens(client_id, &user, lifetime_secs, true).map(Some)
    }

    pub fn create_auth_code(&self, client_id: &str, redirect_uri: &str) -> StoreResult<String> {
        let code = new_token();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO auth_codes(code, client_id, redirect_uri, expires_at) VALUES (?1, ?2, ?3, ?4)",
                (&code, client_id, redirect_uri, unix_now() + AUTH_CODE_LIFETIME_SECS),
            )?;
            Ok(())
        })?;
        Ok(code)
    }

    /// Consumes an authorization code; true when it was valid for this client.
    pub fn redeem_auth_code(&self, code: &str, client_id: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM auth_codes WHERE code = ?1 AND client_id = ?2 AND expires_at > ?3",
                (code, client_id, unix_now()),
            )?;
            Ok(n > 0)
        })
    }

    /// Revokes a token (access or refresh). Unknown tokens are ignored, as in Box.
    pub fn revoke_token(&self, token: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM tokens WHERE token = ?1", [token])?;
            Ok(())
        })
    }

    /// Test knob: every access token expires now.
    pub fn expire_access_tokens(&self) -> StoreResult<usize> {
        self.write(
            |tx| Ok(tx.execute("UPDATE tokens SET expires_at = ?1 WHERE kind = 'access'", [unix_now_precise()])?),
        )
    }
}
