//! Chunked upload sessions: the session row, its uploaded parts (bytes under
//! `sessions/<id>/<offset>.part`), expiry, abort and the committed result.

use super::{unix_now, Store, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionTarget {
    NewFile { folder_id: i64 },
    NewVersion { file_id: i64 },
}

#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id: String,
    pub target: SessionTarget,
    pub file_name: String,
    pub file_size: i64,
    pub part_size: i64,
    pub total_parts: i64,
    pub expires_at: i64,
    pub state: String,
    pub result_file_id: Option<i64>,
    pub parts_uploaded: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    pub part_id: String,
    pub offset: i64,
    pub size: i64,
    pub sha1: String,
}

fn load_session(conn: &Connection, id: &str) -> StoreResult<Option<SessionRow>> {
    Ok(conn
        .query_row(
            "SELECT id, folder_id, file_id, file_name, file_size, part_size, total_parts, expires_at, state, result_file_id,
                    (SELECT COUNT(*) FROM upload_parts p WHERE p.session_id = s.id)
             FROM upload_sessions s WHERE id = ?1",
            [id],
            |r| {
                let folder_id: Option<i64> = r.get(1)?;
                let file_id: Option<i64> = r.get(2)?;
                let target = match file_id {
                    Some(file_id) => SessionTarget::NewVersion { file_id },
                    None => SessionTarget::NewFile { folder_id: folder_id.unwrap_or(0) },
                };
                Ok(SessionRow {
                    id: r.get(0)?,
                    target,
                    file_name: r.get(3)?,
                    file_size: r.get(4)?,
                    part_size: r.get(5)?,
                    total_parts: r.get(6)?,
                    expires_at: r.get(7)?,
                    state: r.get(8)?,
                    result_file_id: r.get(9)?,
                    parts_uploaded: r.get(10)?,
                })
            },
        )
        .optional()?)
}

impl Store {
    pub fn session_dir(&self, id: &str) -> PathBuf {
        self.dir.join("sessions").join(id)
    }

    pub fn part_path(&self, id: &str, offset: i64) -> PathBuf {
        self.session_dir(id).join(format!("{offset}.part"))
    }

    pub fn create_session(
        &self,
        target: SessionTarget,
        file_name: &str,
        file_size: i64,
        part_size: i64,
        lifetime_secs: i64,
    ) -> StoreResult<SessionRow> {
        let id = super::random_hex(16);
        let total_parts = (file_size + part_size - 1) / part_size;
        let (folder_id, file_id) = match target {
            SessionTarget::NewFile { folder_id } => (Some(folder_id), None),
            SessionTarget::NewVersion { file_id } => (None, Some(file_id)),
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO upload_sessions(id, folder_id, file_id, file_name, file_size, part_size, total_parts, expires_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open')",
                rusqlite::params![id, folder_id, file_id, file_name, file_size, part_size, total_parts, unix_now() + lifetime_secs],
            )?;
            Ok(())
        })?;
        self.session(&id)
    }

    /// The session, if it exists, was not aborted and has not expired.
    pub fn session(&self, id: &str) -> StoreResult<SessionRow> {
        let row = self.read(|c| load_session(c, id))?.ok_or(StoreError::NotFound { what: "upload session" })?;
        if row.state == "aborted" {
            return Err(StoreError::NotFound { what: "upload session" });
        }
        if row.state == "open" && row.expires_at < unix_now() {
            return Err(StoreError::Gone { code: "session_expired", message: "The upload session has expired".into() });
        }
        Ok(row)
    }

    /// Records a part. The same bytes at the same offset again are accepted (idempotent
    /// retry); different bytes over an existing part are a conflict, as parts are immutable.
    pub fn add_part(&self, id: &str, part: Part) -> StoreResult<Part> {
        self.write(|tx| {
            let existing: Option<(String, i64, String)> = tx
                .query_row(
                    "SELECT part_id, size, sha1 FROM upload_parts WHERE session_id = ?1 AND offset = ?2",
                    (id, part.offset),
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            match existing {
                Some((part_id, size, sha1)) if size == part.size && sha1 == part.sha1 => {
                    Ok(Part { part_id, size, sha1, offset: part.offset })
                }
                Some(_) => Err(StoreError::Conflict {
                    code: "range_overlaps_existing_part",
                    message: "Part overlaps with previously uploaded part".into(),
                }),
                None => {
                    tx.execute(
                        "INSERT INTO upload_parts(session_id, offset, size, sha1, part_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                        (id, part.offset, part.size, &part.sha1, &part.part_id),
                    )?;
                    Ok(part)
                }
            }
        })
    }

    pub fn list_parts(&self, id: &str) -> StoreResult<Vec<Part>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT part_id, offset, size, sha1 FROM upload_parts WHERE session_id = ?1 ORDER BY offset",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(Part { part_id: r.get(0)?, offset: r.get(1)?, size: r.get(2)?, sha1: r.get(3)? })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    pub fn abort_session(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("UPDATE upload_sessions SET state = 'aborted' WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM upload_parts WHERE session_id = ?1", [id])?;
            Ok(())
        })?;
        let _ = std::fs::remove_dir_all(self.session_dir(id));
        Ok(())
    }

    /// Marks the session committed into `file_id` and drops its part files.
    pub fn finish_session(&self, id: &str, file_id: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE upload_sessions SET state = 'committed', result_file_id = ?2 WHERE id = ?1",
                (id, file_id),
            )?;
            Ok(())
        })?;
        let _ = std::fs::remove_dir_all(self.session_dir(id));
        Ok(())
    }
}
