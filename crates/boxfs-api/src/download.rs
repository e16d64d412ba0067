//! Ranged downloads. `GET /files/{id}/content` answers 302 to a short-lived URL on the download
//! host; that URL is followed with the `Range` header and without the Authorization header
//! (it must never leave the API host), cached for a few minutes per file version, and fetched
//! again when the download host refuses it. A body cut short is resumed where it stopped.

use super::client::{failure_of, Call, Client};
use super::error::{ApiError, ApiResult};
use super::reach::Failure;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use sha1::Digest;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncWrite, AsyncWriteExt};

impl Client {
    /// The download URL of a file (a version of it when given), waiting out 202.
    pub async fn download_url(&self, file_id: &str, version: Option<&str>) -> ApiResult<String> {
        let key = (file_id.to_string(), version.map(str::to_string));
        if let Some(url) = self.inner.download_urls.get(&key) {
            return Ok(url);
        }
        let mut url = self.api(&format!("/files/{file_id}/content"));
        if let Some(v) = version {
            url.push_str(&format!("?version={v}"));
        }
        let reply = self
            .execute(&Call { method: Method::GET, url, upload: false, retry_accepted: true, build: &|r| r })
            .await?;
        let location = match reply.status {
            StatusCode::FOUND | StatusCode::SEE_OTHER | StatusCode::TEMPORARY_REDIRECT => reply
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| ApiError::Decode("download redirect without Location".into()))?,
            other => return Err(ApiError::Decode(format!("expected a redirect to the download host, got {other}"))),
        };
        self.inner.download_urls.put(key, location.clone());
        Ok(location)
    }

    /// Reads up to `len` bytes at `offset` (fewer at the end of the file).
    pub async fn read_range(&self, file_id: &str, version: Option<&str>, offset: u64, len: u64) -> ApiResult<Vec<u8>> {
        let mut buf = Vec::with_capacity(len.min(64 << 20) as usize);
        self.read_range_into(file_id, version, offset, len, &mut buf).await?;
        Ok(buf)
    }

    /// Writes up to `len` bytes at `offset` into `out` (fewer at the end of the file, never
    /// more); returns how many.
    pub async fn read_range_into<W: AsyncWrite + Unpin + Send>(
        &self,
        file_id: &str,
        version: Option<&str>,
        offset: u64,
        len: u64,
        out: &mut W,
    ) -> ApiResult<u64> {
        if len == 0 {
            return Ok(0);
        }
        self.stream_range(file_id, version, offset, Some(offset + len - 1), out).await
    }

    /// Streams a whole file into `out`; returns its size and SHA-1 (hex).
    pub async fn download_to<W: AsyncWrite + Unpin + Send>(
        &self,
        file_id: &str,
        version: Option<&str>,
        out: &mut W,
    ) -> ApiResult<(u64, String)> {
        let mut hashing = HashingWriter { inner: out, hasher: sha1::Sha1::new() };
        let n = self.stream_range(file_id, version, 0, None, &mut hashing).await?;
        hashing.flush().await?;
        Ok((n, hex::encode(hashing.hasher.finalize())))
    }

    /// Writes bytes `first..=last` (to the end when `last` is None) into `out`, resuming after
    /// a dropped connection and fetching a new URL when the old one is refused.
    async fn stream_range<W: AsyncWrite + Unpin + Send>(
        &self,
        file_id: &str,
        version: Option<&str>,
        first: u64,
        last: Option<u64>,
        out: &mut W,
    ) -> ApiResult<u64> {
        let key = (file_id.to_string(), version.map(str::to_string));
        let policy = &self.inner.cfg.retry;
        let started = Instant::now();
        let mut got = 0u64;
        let mut attempt = 0u32;
        loop {
            self.refuse_if_offline()?;
            let url = self.download_url(file_id, version).await?;
            let range = match last {
                Some(l) => format!("bytes={}-{l}", first + got),
                None => format!("bytes={}-", first + got),
            };
            let want = last.map(|l| l + 1 - first);
            let outcome = self.fetch_into(&url, &range, first + got, want, out, &mut got).await;
            let error = match outcome {
                Ok(()) => return Ok(got),
                Err(Fetch::Eof) => return Ok(got),
                Err(Fetch::UrlRefused(status)) => {
                    self.inner.download_urls.forget(&key);
                    ApiError::Http { status, code: None, message: "download URL refused".into() }
                }
                Err(Fetch::Transient(e, failure)) => {
                    if let Some(failure) = failure {
                        self.no_answer(failure, &e)?;
                    }
                    e
                }
                Err(Fetch::Fatal(e)) => return Err(e),
            };
            attempt += 1;
            let wait = policy.backoff(attempt);
            if attempt >= policy.max_attempts || started.elapsed() + wait > policy.max_total {
                return Err(ApiError::RetriesExhausted { attempts: attempt, last: Box::new(error) });
            }
            tracing::debug!(file_id, %error, "download retry");
            self.inner.counters.retried();
            tokio::time::sleep(wait).await;
        }
    }

    /// One GET on the download host. `got` counts bytes written so far (across attempts); it
    /// stops at `want` bytes in all, whatever the host sends.
    async fn fetch_into<W: AsyncWrite + Unpin + Send>(
        &self,
        url: &str,
        range: &str,
        at: u64,
        want: Option<u64>,
        out: &mut W,
        got: &mut u64,
    ) -> Result<(), Fetch> {
        // A fresh request without Authorization: the token stays on the API host.
        let resp = self.inner.http.get(url).header(reqwest::header::RANGE, range).send().await;
        super::telemetry::download_answered(&resp);
        let resp = resp.map_err(|e| {
            let failure = failure_of(&e);
            Fetch::Transient(e.into(), Some(failure))
        })?;
        let status = resp.status();
        let failure = self.heard(status);
        let skip = match status.as_u16() {
            206 => 0,
            200 => at, // the host ignored Range: drop what comes before our offset
            416 => return Err(Fetch::Eof),
            401 | 403 | 404 | 410 => return Err(Fetch::UrlRefused(status.as_u16())),
            429 | 500..=599 => {
                if status == StatusCode::TOO_MANY_REQUESTS {
                    self.inner.counters.throttled();
                }
                let error = ApiError::Http { status: status.as_u16(), code: None, message: "download host".into() };
                return Err(Fetch::Transient(error, failure));
            }
            s => return Err(Fetch::Fatal(ApiError::Http { status: s, code: None, message: "download host".into() })),
        };
        let mut skip = skip;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Fetch::Transient(e.into(), Some(Failure::Transient)))?;
            let mut data = &chunk[..];
            if skip > 0 {
                let n = (skip as usize).min(data.len());
                data = &data[n..];
                skip -= n as u64;
            }
            let room = want.map_or(usize::MAX, |w| w.saturating_sub(*got).min(usize::MAX as u64) as usize);
            data = &data[..data.len().min(room)];
            out.write_all(data).await.map_err(|e| Fetch::Fatal(e.into()))?;
            super::telemetry::downloaded(data.len());
            *got += data.len() as u64;
            if want.is_some_and(|w| *got >= w) {
                break;
            }
        }
        Ok(())
    }
}

enum Fetch {
    Eof,
    UrlRefused(u16),
    /// Worth another attempt; with how it failed when Box gave no answer.
    Transient(ApiError, Option<Failure>),
    Fatal(ApiError),
}

/// Passes writes through while hashing them.
struct HashingWriter<'a, W> {
    inner: &'a mut W,
    hasher: sha1::Sha1,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<'_, W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut *this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            this.hasher.update(&buf[..*n]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}
