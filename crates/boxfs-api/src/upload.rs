//! Uploads. Below the cut-off: one multipart request (SHA-1 in `content-md5`, `if-match` for
//! new versions); a retry that meets a 409 whose conflicting file has our SHA-1 is our own
//! earlier success. Above it: an upload session, parts read from the local file (never the
//! whole file in memory) and sent N at a time with their `digest`, then a commit with the
//! whole-file digest that waits out 202 and `parts_mismatch`. A session can be resumed by id:
//! only the parts the server lacks are sent.

use super::client::{Call, Client};
use super::error::{ApiError, ApiResult};
use super::items::Fetched;
use super::model::{File, Files, Item, UploadPart, UploadParts, UploadSession, UploadedPart};
use base64::Engine;
use boxfs_io::blockbuf::BufPool;
use boxfs_io::direct_io::DirectFile;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where an upload goes.
#[derive(Clone, Copy, Debug)]
pub enum UploadTarget<'a> {
    NewFile { parent_id: &'a str, name: &'a str },
    NewVersion { file_id: &'a str, name: Option<&'a str>, if_match: Option<&'a str> },
}

#[derive(Clone, Debug, Default)]
pub struct UploadOptions {
    pub content_created_at: Option<String>,
    pub content_modified_at: Option<String>,
    /// Bytes the server has confirmed so far (parts stored, or the whole direct upload).
    pub progress: Option<Arc<AtomicU64>>,
    /// The file's SHA-1 when the caller can tell it (saves reading the file to hash it).
    pub sha1: Option<Sha1Source>,
    /// Called once every part of a session is stored, as its commit starts.
    pub on_commit: Option<CommitHook>,
}

/// See [`UploadOptions::on_commit`].
#[derive(Clone)]
pub struct CommitHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for CommitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitHook")
    }
}

/// The caller's way to the file's SHA-1, asked while the parts go up: a blocking call that
/// may wait for a hasher to catch up. `None` from it: unknown after all, the file is hashed.
#[derive(Clone)]
pub struct Sha1Source(pub Arc<dyn Fn() -> Option<[u8; 20]> + Send + Sync>);

impl std::fmt::Debug for Sha1Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha1Source")
    }
}

impl UploadOptions {
    fn confirmed(&self, bytes: u64) {
        if let Some(p) = &self.progress {
            p.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// Told the id of the upload session a file is going through (`None`: no usable session),
/// so that the caller can journal it and resume after a crash.
pub type SessionHook<'a> = &'a (dyn Fn(Option<&str>) + Send + Sync);

/// How many times a commit answered `parts_mismatch` is tried again (Box may still be
/// registering the last parts).
const COMMIT_MISMATCH_RETRIES: u32 = 20;

fn sha1_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(data))
}

/// Hashes a file in a blocking thread: (hex, base64) SHA-1.
async fn hash_file(path: &Path) -> ApiResult<(String, String)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<(String, String)> {
        let file = DirectFile::open(&path)?;
        let mut hasher = Sha1::new();
        file.for_each_chunk(0, file.cached().metadata()?.len(), |chunk| hasher.update(chunk))?;
        let raw = hasher.finalize();
        Ok((hex::encode(raw), base64::engine::general_purpose::STANDARD.encode(raw)))
    })
    .await
    .map_err(|e| ApiError::Io(std::io::Error::other(e)))?
    .map_err(ApiError::Io)
}

/// An error after which a session is useless, so it is aborted rather than kept for resume.
fn is_fatal(e: &ApiError) -> bool {
    !matches!(e.root(), ApiError::Network(_) | ApiError::Http { status: 429 | 500..=599, .. } | ApiError::Io(_))
}

impl Client {
    /// Uploads `path` to `target`, directly or through a session depending on its size.
    pub async fn upload(&self, target: UploadTarget<'_>, path: &Path, opts: &UploadOptions) -> ApiResult<File> {
        self.upload_resumable(target, path, opts, None, &|_| {}).await
    }

    /// Like `upload`, but resumable: a session named by `session_id` is continued (only its
    /// missing parts are sent) when it still matches the file; otherwise a new session is
    /// created. `hook` learns every session id in use, and `None` when one was given up.
    pub async fn upload_resumable(
        &self,
        target: UploadTarget<'_>,
        path: &Path,
        opts: &UploadOptions,
        session_id: Option<&str>,
        hook: SessionHook<'_>,
    ) -> ApiResult<File> {
        let size = tokio::fs::metadata(path).await?.len();
        if size < self.inner.cfg.upload_cutoff {
            return self.upload_direct(target, path, opts).await;
        }
        if let Some(id) = session_id {
            match self.resume_session(id, target, path, opts).await {
                Err(e) if session_unusable(&e) => {
                    tracing::info!(session = %id, error = %e, "starting a new upload session");
                    hook(None);
                }
                other => return other,
            }
        }
        self.upload_via_session(target, path, opts, &|s| hook(Some(&s.id))).await
    }

    /// One multipart request (for files below the cut-off).
    pub async fn upload_direct(&self, target: UploadTarget<'_>, path: &Path, opts: &UploadOptions) -> ApiResult<File> {
        self.upload_bytes(target, Bytes::from(tokio::fs::read(path).await?), opts).await
    }

    /// `data` in one multipart request (for content below the cut-off).
    pub async fn upload_bytes(&self, target: UploadTarget<'_>, data: Bytes, opts: &UploadOptions) -> ApiResult<File> {
        let sha1 = hex::encode(Sha1::digest(&data));
        let (url, attributes, if_match, file_name) = match target {
            UploadTarget::NewFile { parent_id, name } => {
                let mut a = json!({"name": name, "parent": {"id": parent_id}});
                set_times(&mut a, opts, true);
                (self.upload_host("/files/content"), a, None, name.to_string())
            }
            UploadTarget::NewVersion { file_id, name, if_match } => {
                let mut a = json!({});
                if let Some(n) = name {
                    a["name"] = json!(n);
                }
                set_times(&mut a, opts, false);
                (
                    self.upload_host(&format!("/files/{file_id}/content")),
                    a,
                    if_match.map(str::to_string),
                    name.unwrap_or("file").to_string(),
                )
            }
        };
        let attributes = attributes.to_string();
        let build = |r: reqwest::RequestBuilder| {
            let form = reqwest::multipart::Form::new()
                .text("attributes", attributes.clone())
                .part("file", reqwest::multipart::Part::stream(data.clone()).file_name(file_name.clone()));
            let r = r.header("content-md5", &sha1).multipart(form);
            match &if_match {
                Some(e) => r.header("if-match", e),
                None => r,
            }
        };
        let call = Call { method: Method::POST, url, upload: true, retry_accepted: false, build: &build };
        let size = data.len() as u64;
        let result = match self.execute_tracking(&call).await {
            (Ok(reply), _) => first_file(reply.json()?),
            (Err(ApiError::NameConflict { conflicts }), _) if matches!(target, UploadTarget::NewFile { .. }) => {
                self.adopt_identical(conflicts, &sha1).await
            }
            (Err(ApiError::PreconditionFailed), true) => match target {
                UploadTarget::NewVersion { file_id, .. } => self.adopt_landed_version(file_id, &sha1).await,
                UploadTarget::NewFile { .. } => Err(ApiError::PreconditionFailed),
            },
            (Err(e), _) => Err(e),
        };
        if result.is_ok() {
            opts.confirmed(size);
        }
        result
    }

    /// A 409 whose conflicting file already has our bytes: the upload is done (an earlier
    /// attempt landed, or the same content was there). Otherwise the conflict stands.
    async fn adopt_identical(&self, conflicts: Vec<Item>, sha1: &str) -> ApiResult<File> {
        let same = conflicts.iter().find_map(|c| match c {
            Item::File(f) if f.sha1.as_deref() == Some(sha1) => Some(f.common.id.clone()),
            _ => None,
        });
        match same {
            Some(id) => match self.get_file(&id, None).await? {
                Fetched::Modified(f) => Ok(f),
                Fetched::NotModified => Err(ApiError::Decode("304 without an etag".into())),
            },
            None => Err(ApiError::NameConflict { conflicts }),
        }
    }

    /// After an unseen attempt, a 412 may mean our own version landed: check the SHA-1.
    async fn adopt_landed_version(&self, file_id: &str, sha1: &str) -> ApiResult<File> {
        match self.get_file(file_id, None).await? {
            Fetched::Modified(f) if f.sha1.as_deref() == Some(sha1) => Ok(f),
            _ => Err(ApiError::PreconditionFailed),
        }
    }

    /// Creates an upload session for `size` bytes.
    pub async fn create_session(&self, target: UploadTarget<'_>, size: u64) -> ApiResult<UploadSession> {
        let (url, body) = match target {
            UploadTarget::NewFile { parent_id, name } => (
                self.upload_host("/files/upload_sessions"),
                json!({"folder_id": parent_id, "file_size": size, "file_name": name}),
            ),
            UploadTarget::NewVersion { file_id, name, .. } => {
                let mut b = json!({"file_size": size});
                if let Some(n) = name {
                    b["file_name"] = json!(n);
                }
                (self.upload_host(&format!("/files/{file_id}/upload_sessions")), b)
            }
        };
        let build = move |r: reqwest::RequestBuilder| r.json(&body);
        self.execute(&Call { method: Method::POST, url, upload: true, retry_accepted: false, build: &build })
            .await?
            .json()
    }

    /// A session's current state (its endpoints and progress).
    pub async fn session_status(&self, session_id: &str) -> ApiResult<UploadSession> {
        self.get_json(self.upload_host(&format!("/files/upload_sessions/{session_id}"))).await
    }

    /// The parts the server has for a session, by offset.
    pub async fn session_parts(&self, session: &UploadSession) -> ApiResult<Vec<UploadPart>> {
        let mut out = Vec::new();
        loop {
            let url = format!("{}?offset={}&limit=1000", session.session_endpoints.list_parts, out.len());
            let page: UploadParts = self.get_json(url).await?;
            let n = page.entries.len();
            out.extend(page.entries);
            if n == 0 || page.total_count.is_some_and(|t| out.len() as u64 >= t) {
                return Ok(out);
            }
        }
    }

    pub async fn abort_session(&self, session: &UploadSession) -> ApiResult<()> {
        let url = session.session_endpoints.abort.clone();
        self.execute(&Call { method: Method::DELETE, url, upload: false, retry_accepted: false, build: &|r| r })
            .await?;
        Ok(())
    }

    /// Uploads through a new session. `on_created` sees the session first (so a caller can
    /// journal its id for a later resume). A fatal error aborts the session; a transient one
    /// leaves it for `resume_session`.
    pub async fn upload_via_session(
        &self,
        target: UploadTarget<'_>,
        path: &Path,
        opts: &UploadOptions,
        on_created: &(dyn Fn(&UploadSession) + Send + Sync),
    ) -> ApiResult<File> {
        let size = tokio::fs::metadata(path).await?.len();
        let session = self.create_session(target, size).await?;
        on_created(&session);
        let result = self.finish_session(&session, Vec::new(), target, path, opts).await;
        if let Err(e) = &result {
            if is_fatal(e) {
                tracing::warn!(session = %session.id, error = %e, "aborting upload session");
                let _ = self.abort_session(&session).await;
            }
        }
        result
    }

    /// Continues a session created earlier: sends only the missing parts, then commits.
    /// A session whose size or stored parts differ from the local file is aborted
    /// (`SessionMismatch`): the file changed since it was created.
    pub async fn resume_session(
        &self,
        session_id: &str,
        target: UploadTarget<'_>,
        path: &Path,
        opts: &UploadOptions,
    ) -> ApiResult<File> {
        let session = self.session_status(session_id).await?;
        let stored = match self.stored_parts_matching(&session, path).await {
            Ok(parts) => parts,
            Err(e) => {
                let _ = self.abort_session(&session).await;
                return Err(e);
            }
        };
        self.finish_session(&session, stored, target, path, opts).await
    }

    /// The parts a session already holds, once checked against the local file.
    async fn stored_parts_matching(&self, session: &UploadSession, path: &Path) -> ApiResult<Vec<UploadPart>> {
        let size = tokio::fs::metadata(path).await?.len();
        if session.total_parts != size.div_ceil(session.part_size.max(1)) {
            return Err(ApiError::SessionMismatch(format!("{} parts for {size} bytes", session.total_parts)));
        }
        let parts = self.session_parts(session).await?;
        let (file, ranges) = (DirectFile::open(path)?, parts.iter().map(|p| (p.offset, p.size)).collect());
        let local = tokio::task::spawn_blocking(move || ranges_sha1(&file, ranges))
            .await
            .map_err(|e| ApiError::Io(std::io::Error::other(e)))??;
        match parts.iter().zip(local).find(|(part, sha1)| part.sha1 != *sha1) {
            Some((part, _)) => Err(ApiError::SessionMismatch(format!("part at {} differs", part.offset))),
            None => Ok(parts),
        }
    }

    /// Sends the parts `stored` lacks, then commits.
    async fn finish_session(
        &self,
        session: &UploadSession,
        stored: Vec<UploadPart>,
        target: UploadTarget<'_>,
        path: &Path,
        opts: &UploadOptions,
    ) -> ApiResult<File> {
        let size = tokio::fs::metadata(path).await?.len();
        let part_size = session.part_size.max(1);
        let have: BTreeMap<u64, UploadPart> = stored.into_iter().map(|p| (p.offset, p)).collect();
        let file = Arc::new(DirectFile::open(path)?);
        // Part buffers are reused across parts and unmapped when the upload ends: heap buffers
        // of this size stayed resident in the allocator's arenas, one set per worker thread.
        let parallel = self.inner.cfg.upload_parallelism.max(1);
        let pool = BufPool::new(part_size, parallel);
        let missing: Vec<u64> =
            (0..size.div_ceil(part_size)).map(|i| i * part_size).filter(|o| !have.contains_key(o)).collect();
        tracing::debug!(session = %session.id, have = have.len(), missing = missing.len(), "uploading session parts");
        opts.confirmed(have.values().map(|p| p.size).sum());
        let digest = async {
            let known = match opts.sha1.clone() {
                Some(Sha1Source(get)) => tokio::task::spawn_blocking(move || get()).await.ok().flatten(),
                None => None,
            };
            match known {
                Some(raw) => Ok((hex::encode(raw), base64::engine::general_purpose::STANDARD.encode(raw))),
                None => hash_file(path).await,
            }
        };
        let sent = futures_util::stream::iter(missing)
            .map(|offset| {
                let (file, pool) = (file.clone(), pool.clone());
                async move {
                    let len = part_size.min(size - offset);
                    let part = self.send_part(session, file, &pool, offset, len, size).await?;
                    opts.confirmed(len);
                    Ok::<_, ApiError>(part)
                }
            })
            .buffer_unordered(parallel)
            .try_collect::<Vec<_>>();
        let (sent, digest) = futures_util::future::try_join(sent, digest).await?;
        let mut parts: Vec<UploadPart> = have.into_values().chain(sent).collect();
        parts.sort_by_key(|p| p.offset);
        self.commit_session(session, &parts, &digest.1, target, opts).await
    }

    async fn send_part(
        &self,
        session: &UploadSession,
        file: Arc<DirectFile>,
        pool: &Arc<BufPool>,
        offset: u64,
        len: u64,
        total: u64,
    ) -> ApiResult<UploadPart> {
        let mut buf = pool.take(len);
        let data = tokio::task::spawn_blocking(move || {
            buf.fill_with(|space| file.read_exact_at(space, offset)).map(|_| buf.freeze())
        })
        .await
        .map_err(|e| ApiError::Io(std::io::Error::other(e)))??;
        let digest = format!("sha={}", sha1_b64(&data));
        let range = format!("bytes {offset}-{}/{total}", offset + len - 1);
        let build = |r: reqwest::RequestBuilder| {
            r.header("content-range", &range)
                .header("digest", &digest)
                .header("content-type", "application/octet-stream")
                .body(data.clone())
        };
        let url = session.session_endpoints.upload_part.clone();
        match self
            .execute_tracking(&Call { method: Method::PUT, url, upload: false, retry_accepted: false, build: &build })
            .await
        {
            (Ok(reply), _) => Ok(reply.json::<UploadedPart>()?.part),
            // An unseen earlier attempt may have stored this part: if so, it is done.
            (Err(e @ (ApiError::NameConflict { .. } | ApiError::Http { status: 409 | 416, .. })), true) => {
                let sha1 = hex::encode(Sha1::digest(&data));
                let parts = self.session_parts(session).await?;
                parts.into_iter().find(|p| p.offset == offset && p.sha1 == sha1).ok_or(e)
            }
            (Err(e), _) => Err(e),
        }
    }

    async fn commit_session(
        &self,
        session: &UploadSession,
        parts: &[UploadPart],
        digest_b64: &str,
        target: UploadTarget<'_>,
        opts: &UploadOptions,
    ) -> ApiResult<File> {
        let mut body = json!({"parts": parts});
        let mut attributes = json!({});
        set_times(&mut attributes, opts, matches!(target, UploadTarget::NewFile { .. }));
        if attributes.as_object().is_some_and(|a| !a.is_empty()) {
            body["attributes"] = attributes;
        }
        let if_match = match target {
            UploadTarget::NewVersion { if_match, .. } => if_match.map(str::to_string),
            UploadTarget::NewFile { .. } => None,
        };
        let digest = format!("sha={digest_b64}");
        let build = |r: reqwest::RequestBuilder| {
            let r = r.header("digest", &digest).json(&body);
            match &if_match {
                Some(e) => r.header("if-match", e),
                None => r,
            }
        };
        let url = session.session_endpoints.commit.clone();
        let call = Call { method: Method::POST, url, upload: false, retry_accepted: true, build: &build };
        if let Some(CommitHook(hook)) = &opts.on_commit {
            hook();
        }
        let mut mismatches = 0;
        loop {
            match self.execute(&call).await {
                Ok(reply) => return first_file(reply.json()?),
                Err(ApiError::Http { status: 400, code: Some(code), .. })
                    if code == "parts_mismatch" && mismatches < COMMIT_MISMATCH_RETRIES =>
                {
                    mismatches += 1;
                    tokio::time::sleep(self.inner.cfg.retry.backoff(mismatches.min(4))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Errors after which a journaled session cannot be continued and a new one is due.
fn session_unusable(e: &ApiError) -> bool {
    matches!(
        e.root(),
        ApiError::NotFound { .. } | ApiError::SessionExpired | ApiError::SessionMismatch(_) | ApiError::Http { status: 400..=428 | 430..=499, .. }
    )
}

/// SHA-1 (hex) of each `(offset, len)` range of `file`.
fn ranges_sha1(file: &DirectFile, ranges: Vec<(u64, u64)>) -> ApiResult<Vec<String>> {
    let mut out = Vec::with_capacity(ranges.len());
    for (offset, len) in ranges {
        let mut hasher = Sha1::new();
        file.for_each_chunk(offset, len, |chunk| hasher.update(chunk))?;
        out.push(hex::encode(hasher.finalize()));
    }
    Ok(out)
}

fn set_times(attrs: &mut Value, opts: &UploadOptions, with_created: bool) {
    if let (true, Some(t)) = (with_created, &opts.content_created_at) {
        attrs["content_created_at"] = json!(t);
    }
    if let Some(t) = &opts.content_modified_at {
        attrs["content_modified_at"] = json!(t);
    }
}

fn first_file(files: Files) -> ApiResult<File> {
    files.entries.into_iter().next().ok_or_else(|| ApiError::Decode("upload answered without a file".into()))
}
