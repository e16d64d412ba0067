//! The request executor: budget, authentication (and `As-User`) and the one retry policy every
//! call goes through. A client is foreground by default; [`Client::background`] is the same client
//! whose calls yield the budget's reserve to foreground ones (prefetch, uploads). 429 waits `Retry-After`; 5xx, resets and timeouts back off exponentially with
//! jitter; 401 renews the token once; 202 with `Retry-After` is waited out where the caller
//! says it means "not ready yet". Attempts and total time are bounded. What the attempts meet
//! tells whether Box can be reached (`reach.rs`): while it cannot, calls fail at once with
//! [`ApiError::Offline`] and a probe watches for its return.

use super::auth::TokenSource;
use super::budget::{Budget, BudgetUse, Priority};
use super::config::ApiConfig;
use super::counters::Counters;
use super::error::{ApiError, ApiResult};
use super::model::ErrorBody;
use super::reach::{probe_interval, Connection, Failure, Reach};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Box API client; cheap to clone (shared connection pool, budget and tokens).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    priority: Priority,
}

pub(crate) struct Inner {
    pub http: reqwest::Client,
    /// For the events long-poll: no read timeout (the server stays silent for minutes on
    /// purpose); the request carries its own overall timeout.
    pub longpoll_http: reqwest::Client,
    pub cfg: ApiConfig,
    pub auth: TokenSource,
    budget: Budget,
    pub counters: Counters,
    pub reach: Reach,
    pub download_urls: super::download_urls::DownloadUrls,
}

/// One logical call: how to build the request (again for each attempt) and how to treat it.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: String,
    /// Counts against the upload budget.
    pub upload: bool,
    /// 202 + `Retry-After` means "not ready yet": wait and ask again.
    pub retry_accepted: bool,
    pub build: &'a (dyn Fn(RequestBuilder) -> RequestBuilder + Send + Sync),
}

/// A finished call.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> ApiResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Decode(format!("{e} in a {} response", self.status)))
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What to do after one attempt.
enum Next {
    Done(Reply),
    Fail(ApiError),
    Retry { wait: Duration, error: ApiError, ambiguous: bool, failure: Option<Failure> },
    Renew,
}

/// How a request that got no answer failed.
pub(crate) fn failure_of(e: &reqwest::Error) -> Failure {
    if e.is_connect() {
        Failure::Unreachable { timed_out: e.is_timeout() }
    } else {
        Failure::Transient
    }
}

impl Client {
    pub fn new(cfg: ApiConfig, auth: TokenSource) -> ApiResult<Client> {
        let http = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Config(format!("HTTP client: {e}")))?;
        let longpoll_http = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(cfg.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Config(format!("HTTP client: {e}")))?;
        // Box counts requests per user acted for.
        let identity = match &cfg.as_user {
            Some(user) => format!("{}\nas-user\n{user}", auth.mode().identity(&cfg.api_url)),
            None => auth.mode().identity(&cfg.api_url),
        };
        let budget = Budget::open(&cfg.budget, &identity);
        Ok(Client {
            priority: Priority::Foreground,
            inner: Arc::new(Inner {
                http,
                longpoll_http,
                cfg,
                auth,
                budget,
                counters: Counters::default(),
                reach: Reach::default(),
                download_urls: Default::default(),
            }),
        })
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.cfg
    }

    /// How this client authenticates (for people: no secrets in its `Display`).
    pub fn auth_mode(&self) -> &super::AuthMode {
        self.inner.auth.mode()
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// This client for work nobody waits on right now (prefetch, uploads): its requests leave
    /// the last part of the shared budget to foreground ones.
    pub fn background(&self) -> Client {
        Client { inner: self.inner.clone(), priority: Priority::Background }
    }

    /// Whether Box can be reached right now.
    pub fn connection(&self) -> Connection {
        self.inner.reach.connection()
    }

    /// Resolves once Box can be reached (at once when it can).
    pub async fn until_online(&self) {
        self.inner.reach.until_online().await
    }

    /// `Err(Offline)` while Box cannot be reached: the call is not even tried.
    pub(crate) fn refuse_if_offline(&self) -> ApiResult<()> {
        match self.inner.reach.offline_since() {
            Some(since) => Err(ApiError::Offline { since }),
            None => Ok(()),
        }
    }

    /// Box answered a request with `status`: below 500 it is reachable; 5xx counts as a
    /// failure without an answer (returned, for [`Client::no_answer`]).
    pub(crate) fn heard(&self, status: StatusCode) -> Option<Failure> {
        if status.is_server_error() {
            return Some(Failure::Transient);
        }
        self.inner.reach.answered();
        None
    }

    /// A request got no answer: `Err(Offline)` when Box is now taken to be unreachable (the
    /// first time, a probe starts watching for its return).
    pub(crate) fn no_answer(&self, failure: Failure, error: &ApiError) -> ApiResult<()> {
        if self.inner.reach.failed(failure, &error.to_string()) {
            tokio::spawn(self.clone().probe_until_online());
        }
        self.refuse_if_offline()
    }

    /// Asks Box, now and then, until it answers (without a token: any answer below 500, a 401
    /// included, means it is reachable).
    async fn probe_until_online(self) {
        for n in 0.. {
            tokio::time::sleep(probe_interval(n)).await;
            if self.inner.reach.offline_since().is_none() {
                return;
            }
            match self.inner.http.get(self.api("/users/me?fields=id")).send().await {
                Ok(resp) if self.heard(resp.status()).is_none() => return,
                Ok(resp) => tracing::debug!(status = %resp.status(), "Box still unavailable"),
                Err(e) => tracing::debug!(error = %ApiError::from(e), "Box still unreachable"),
            }
        }
    }

    /// This client for work nobody will wait on soon (downloads of pinned content): its
    /// requests leave a larger part of the shared budget to foreground and background ones.
    pub fn idle(&self) -> Client {
        Client { inner: self.inner.clone(), priority: Priority::Idle }
    }

    /// The request budget's use by every process sharing it.
    pub async fn budget_use(&self) -> BudgetUse {
        self.inner.budget.usage().await
    }

    pub(crate) fn api(&self, path: &str) -> String {
        format!("{}{path}", self.inner.cfg.api_url)
    }

    pub(crate) fn upload_host(&self, path: &str) -> String {
        format!("{}{path}", self.inner.cfg.upload_url)
    }

    /// Runs `call` under the retry policy; the body is read inside the loop so that a
    /// truncated body is retried like any other network failure.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> ApiResult<Reply> {
        self.execute_with_flag(call, &std::sync::atomic::AtomicBool::new(false)).await
    }

    /// `execute`, setting `maybe_sent` when an attempt may have reached the server unseen.
    pub(crate) async fn execute_with_flag(
        &self,
        call: &Call<'_>,
        maybe_sent: &std::sync::atomic::AtomicBool,
    ) -> ApiResult<Reply> {
        let policy = &self.inner.cfg.retry;
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut renewed = false;
        let mut ambiguous = false;
        let mut rejected: Option<String> = None;
        loop {
            self.refuse_if_offline()?;
            self.inner.budget.acquire(call.upload, self.priority).await;
            let token = match rejected.take() {
                Some(old) => self.inner.auth.renew(&self.inner.http, &self.inner.cfg.token_url, Some(&old)).await?,
                None => self.inner.auth.token(&self.inner.http, &self.inner.cfg.token_url).await?,
            };
            self.inner.counters.request_sent();
            let mut req = self.inner.http.request(call.method.clone(), &call.url).bearer_auth(&token);
            if let Some(user) = &self.inner.cfg.as_user {
                req = req.header("as-user", user);
            }
            let req = (call.build)(req);
            let next = self.attempt(req, call, attempt).await;
            let (wait, error) = match next {
                Next::Done(reply) => return Ok(reply),
                Next::Fail(e) => return Err(e),
                Next::Renew if renewed => return Err(ApiError::Unauthorized),
                Next::Renew => {
                    renewed = true;
                    rejected = Some(token);
                    continue;
                }
                Next::Retry { wait, error, ambiguous: unseen, failure } => {
                    ambiguous |= unseen;
                    maybe_sent.store(ambiguous, Ordering::Relaxed);
                    if let Some(failure) = failure {
                        self.no_answer(failure, &error)?;
                    }
                    (wait, error)
                }
            };
            attempt += 1;
            if attempt >= policy.max_attempts || started.elapsed() + wait > policy.max_total {
                return Err(ApiError::RetriesExhausted { attempts: attempt, last: Box::new(error) });
            }
            self.inner.counters.retried();
            tracing::debug!(method = %call.method, url = %call.url, %error, ?wait, attempt, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, req: RequestBuilder, call: &Call<'_>, attempt: u32) -> Next {
        let backoff = self.inner.cfg.retry.backoff(attempt);
        let resp = match super::telemetry::send(req, call.method.as_str(), &call.url).await {
            Ok(r) => r,
            Err(e) => {
                let failure = Some(failure_of(&e));
                return Next::Retry { wait: backoff, error: e.into(), ambiguous: true, failure };
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let failure = Some(Failure::Transient);
                return Next::Retry { wait: backoff, error: e.into(), ambiguous: true, failure };
            }
        };
        let failure = self.heard(status);
        let http_error = || ApiError::Http { status: status.as_u16(), code: None, message: String::new() };
        match status.as_u16() {
            202 if call.retry_accepted => {
                let wait = retry_after(&headers).unwrap_or(backoff);
                Next::Retry { wait, error: http_error(), ambiguous: false, failure: None }
            }
            200..=399 => Next::Done(Reply { status, headers, body }),
            401 => Next::Renew,
            429 => {
                self.inner.counters.throttled();
                let wait = retry_after(&headers).unwrap_or(backoff);
                Next::Retry { wait, error: http_error(), ambiguous: false, failure: None }
            }
            500 | 502 | 503 | 504 | 509 => {
                let wait = retry_after(&headers).unwrap_or(backoff);
                Next::Retry { wait, error: http_error(), ambiguous: true, failure }
            }
            _ => {
                let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
                Next::Fail(ApiError::from_response(status, &parsed))
            }
        }
    }

    /// A plain JSON call (no body), retried under the policy.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(&self, url: String) -> ApiResult<T> {
        self.execute(&Call { method: Method::GET, url, upload: false, retry_accepted: false, build: &|r| r })
            .await?
            .json()
    }
}
