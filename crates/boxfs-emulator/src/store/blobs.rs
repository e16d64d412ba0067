//! Content-addressed file bytes: `blobs/<first two hex>/<sha1>`, written to a temp file while
//! the SHA-1 is computed, then renamed into place (so a blob is always whole).

use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    pub sha1: String,
    pub size: i64,
}

#[derive(Clone, Debug)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    pub fn new(dir: PathBuf) -> std::io::Result<Blobs> {
        std::fs::create_dir_all(dir.join("tmp"))?;
        Ok(Blobs { dir })
    }

    pub fn path(&self, sha1: &str) -> PathBuf {
        let prefix = sha1.get(..2).unwrap_or("xx");
        self.dir.join(prefix).join(sha1)
    }

    /// A fresh temp path inside the blob dir (same filesystem, so renames are atomic).
    pub fn temp_path(&self) -> PathBuf {
        self.dir.join("tmp").join(super::random_hex(12))
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> std::io::Result<BlobInfo> {
        let tmp = self.temp_path();
        std::fs::write(&tmp, bytes)?;
        let info = BlobInfo { sha1: hex::encode(Sha1::digest(bytes)), size: bytes.len() as i64 };
        self.adopt(&tmp, &info)?;
        Ok(info)
    }

    /// Stores the concatenation of `chunks` without holding it all in memory.
    pub fn put_chunks(&self, chunks: impl Iterator<Item = Vec<u8>>) -> std::io::Result<BlobInfo> {
        let tmp = self.temp_path();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut hasher = Sha1::new();
        let mut size = 0i64;
        for chunk in chunks {
            hasher.update(&chunk);
            out.write_all(&chunk)?;
            size += chunk.len() as i64;
        }
        out.flush()?;
        drop(out);
        let info = BlobInfo { sha1: hex::encode(hasher.finalize()), size };
        self.adopt(&tmp, &info)?;
        Ok(info)
    }

    /// Moves a finished temp file into place under its digest.
    pub fn adopt(&self, tmp: &Path, info: &BlobInfo) -> std::io::Result<()> {
        let dest = self.path(&info.sha1);
        if dest.exists() {
            std::fs::remove_file(tmp)?;
            return Ok(());
        }
        std::fs::create_dir_all(dest.parent().expect("blob path has a parent"))?;
        std::fs::rename(tmp, dest)
    }

    /// Concatenates files (upload-session parts, in order) into a temp file; the caller
    /// checks the digest and then `adopt`s it.
    pub fn concat(&self, parts: &[PathBuf]) -> std::io::Result<(PathBuf, BlobInfo, [u8; 20])> {
        let tmp = self.temp_path();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut hasher = Sha1::new();
        let mut size = 0i64;
        let mut buf = vec![0u8; 1 << 20];
        for part in parts {
            let mut f = std::fs::File::open(part)?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                size += n as i64;
            }
        }
        out.flush()?;
        drop(out);
        let raw: [u8; 20] = hasher.finalize().into();
        Ok((tmp, BlobInfo { sha1: hex::encode(raw), size }, raw))
    }
}

/// Streams bytes to a temp file while hashing them; `finish` gives the digest.
pub struct HashingWriter {
    pub path: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha1,
    size: i64,
}

impl HashingWriter {
    pub async fn create(path: PathBuf) -> std::io::Result<HashingWriter> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let file = tokio::fs::File::create(&path).await?;
        Ok(HashingWriter {
            path,
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha1::new(),
            size: 0,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as i64;
        self.file.write_all(chunk).await
    }

    pub fn size(&self) -> i64 {
        self.size
    }

    /// Flushes and returns the path with the digest (hex SHA-1) of everything written.
    pub async fn finish(mut self) -> std::io::Result<(PathBuf, BlobInfo, [u8; 20])> {
        self.file.flush().await?;
        let raw: [u8; 20] = self.hasher.finalize().into();
        Ok((self.path, BlobInfo { sha1: hex::encode(raw), size: self.size }, raw))
    }
}
