//! The Box API client: configuration, authentication (fixed token, OAuth tokens in a token
//! file shared by the account's processes with one refresh at a time across them, client
//! credentials, JWT apps), acting for another user (`As-User`), one retry policy, a request
//! budget shared by the processes of an identity, typed models, listings, item operations,
//! metadata instances, shared links and locks, ranged downloads, uploads (direct and sessions)
//! and the event stream; what it sends is recorded through the `metrics` facade (`telemetry`).
//! It knows HTTP and JSON, nothing of FUSE.

pub mod auth;
mod budget;
mod client;
pub mod config;
mod counters;
mod download;
mod download_urls;
pub mod error;
pub mod events;
mod items;
pub mod jwt;
pub mod metadata;
pub mod model;
pub mod oauth;
mod reach;
pub mod sharing;
pub mod telemetry;
pub mod token_file;
mod upload;

pub use auth::{AuthMode, SubjectType, TokenSource};
pub use budget::{BudgetUse, Priority};
pub use client::Client;
pub use config::{ApiConfig, BudgetConfig, RetryPolicy};
pub use counters::{Counters, LastMinute};
pub use error::{ApiError, ApiResult};
pub use events::{EventBatch, EventStream, StartAt, StreamState};
pub use items::{Fetched, LIST_FIELDS, STAT_FIELDS};
pub use reach::Connection;
pub use token_file::StoredTokens;
pub use upload::{CommitHook, SessionHook, Sha1Source, UploadOptions, UploadTarget};
