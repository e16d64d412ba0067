//! The Box API client: configuration, authentication (fixed token, OAuth with single-flight
//! refresh, client credentials), one retry policy, a client-side request budget, typed
//! models, listings, item operations, ranged downloads, uploads (direct and sessions) and the
//! event stream. It knows HTTP and JSON, nothing of FUSE.

pub mod auth;
mod budget;
mod client;
pub mod config;
mod counters;
mod download;
pub mod error;
pub mod events;
mod items;
pub mod model;
pub mod oauth;
mod upload;

pub use auth::{AuthMode, StoredTokens, SubjectType, TokenSource};
pub use client::Client;
pub use config::{ApiConfig, BudgetConfig, RetryPolicy};
pub use counters::{Counters, LastMinute};
pub use error::{ApiError, ApiResult};
pub use events::{EventBatch, EventStream, StartAt, StreamState};
pub use items::{Fetched, STAT_FIELDS};
pub use upload::{CommitHook, SessionHook, Sha1Source, UploadOptions, UploadTarget};
