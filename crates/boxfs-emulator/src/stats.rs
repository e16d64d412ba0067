//! Request counters served at `GET /_emulator/stats` (reset with `DELETE`): requests per
//! `METHOD route`, statuses, injected faults, rate-limited requests, OAuth grants (asked for,
//! and refused per OAuth error), bytes, and folder listing pages rendered and answered from
//! the kept pages.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Stats {
    routes: Mutex<BTreeMap<String, u64>>,
    statuses: Mutex<BTreeMap<u16, u64>>,
    faults: Mutex<BTreeMap<String, u64>>,
    grants: Mutex<BTreeMap<String, u64>>,
    grant_errors: Mutex<BTreeMap<String, u64>>,
    rate_limited: AtomicU64,
    bytes_served: AtomicU64,
    bytes_received: AtomicU64,
    listing_pages_rendered: AtomicU64,
    listing_pages_cached: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_insert(0) += 1;
}

impl Stats {
    /// Counts a request that reached a route, e.g. `GET /2.0/folders/{id}/items`.
    pub fn request(&self, route: String, status: u16) {
        bump(&self.routes, route);
        bump(&self.statuses, status);
    }

    pub fn fault(&self, what: &str) {
        bump(&self.faults, what.to_string());
    }

    pub fn grant(&self, grant_type: &str) {
        bump(&self.grants, grant_type.to_string());
    }

    /// A token request refused with OAuth error `error` (e.g. `invalid_grant`).
    pub fn token_error(&self, error: &str) {
        bump(&self.grant_errors, error.to_string());
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn served(&self, bytes: u64) {
        self.bytes_served.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: u64) {
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A folder listing page answered: rendered, or `cached` (from the pages kept).
    pub fn listing_page(&self, cached: bool) {
        let counter = if cached { &self.listing_pages_cached } else { &self.listing_pages_rendered };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Value {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let statuses: BTreeMap<String, u64> =
            self.statuses.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.to_string(), *v)).collect();
        json!({
            "total_requests": routes.values().sum::<u64>(),
            "requests": routes,
            "statuses": statuses,
            "faults_injected": *self.faults.lock().unwrap_or_else(|p| p.into_inner()),
            "token_grants": *self.grants.lock().unwrap_or_else(|p| p.into_inner()),
            "token_errors": *self.grant_errors.lock().unwrap_or_else(|p| p.into_inner()),
            "rate_limited": self.rate_limited.load(Ordering::Relaxed),
            "bytes_served": self.bytes_served.load(Ordering::Relaxed),
            "bytes_received": self.bytes_received.load(Ordering::Relaxed),
            "listing_pages_rendered": self.listing_pages_rendered.load(Ordering::Relaxed),
            "listing_pages_cached": self.listing_pages_cached.load(Ordering::Relaxed),
        })
    }

    pub fn reset(&self) {
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.statuses.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.grants.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.grant_errors.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.rate_limited.store(0, Ordering::Relaxed);
        self.bytes_served.store(0, Ordering::Relaxed);
        self.bytes_received.store(0, Ordering::Relaxed);
        self.listing_pages_rendered.store(0, Ordering::Relaxed);
        self.listing_pages_cached.store(0, Ordering::Relaxed);
    }
}
