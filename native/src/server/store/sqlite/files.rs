//! Stored files: uploads and output images, as records in the database over content-addressed
//! blobs (`files/ab/abcdef…`). Several records may share one blob (the same photo uploaded
//! twice, or one upload used by several predictions); a blob goes with its last record.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteDb;
use crate::server::store::FileRecord;

fn file_record(row: &Row) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        id: row.get(0)?,
        sha256: row.get(1)?,
        owner: row.get(2)?,
        name: row.get(3)?,
        content_type: row.get(4)?,
        size: row.get::<_, i64>(5)? as u64,
        kind: row.get(6)?,
        prediction: row.get(7)?,
        created_at: row.get(8)?,
    })
}

const FILE_COLUMNS: &str =
    "id, sha256, owner, name, content_type, size, kind, prediction, created_at";

impl SqliteDb {
    /// Stores `bytes` (content-addressed on disk) as a new file record.
    pub fn add_file(
        &self,
        bytes: &[u8],
        owner: &str,
        name: &str,
        content_type: &str,
        kind: &str,
        prediction: Option<&str>,
    ) -> Result<FileRecord> {
        let file = FileRecord::new(bytes, owner, name, content_type, kind, prediction);
        let path = self.blob_path(&file.sha256);
        // Held from the blob check to the insert, as `delete_file` holds it from its count
        // to the removal: a blob is never removed under a record being added.
        let db = self.db();
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::io::output::write_atomic(&path, bytes)?;
        }
        db.execute(
            &format!(
                "INSERT INTO files ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            params![
                file.id,
                file.sha256,
                file.owner,
                file.name,
                file.content_type,
                file.size as i64,
                file.kind,
                file.prediction,
                file.created_at
            ],
        )?;
        Ok(file)
    }

    pub fn file(&self, id: &str) -> Result<Option<FileRecord>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1"),
                [id],
                file_record,
            )
            .optional()?)
    }

    /// Ties an upload to the job that uses it.
    pub fn attach_file(&self, file: &str, prediction: &str) -> Result<()> {
        self.db().execute(
            "UPDATE files SET prediction = ?2 WHERE id = ?1",
            params![file, prediction],
        )?;
        Ok(())
    }

    pub fn read_blob(&self, file: &FileRecord) -> Result<Vec<u8>> {
        std::fs::read(self.blob_path(&file.sha256)).context("cannot read a stored file")
    }

    /// Deletes a file record, and its content once no record refers to it.
    pub fn delete_file(&self, id: &str) -> Result<()> {
        let db = self.db();
        let sha: Option<String> = db
            .query_row("SELECT sha256 FROM files WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        let Some(sha) = sha else { return Ok(()) };
        db.execute("DELETE FROM files WHERE id = ?1", [id])?;
        let left: i64 = db.query_row(
            "SELECT COUNT(*) FROM files WHERE sha256 = ?1",
            [&sha],
            |r| r.get(0),
        )?;
        if left == 0 {
            let _ = std::fs::remove_file(self.blob_path(&sha));
        }
        Ok(())
    }

    /// Content-addressed: `files/ab/abcdef…` (the name is always our own hex digest).
    fn blob_path(&self, sha: &str) -> PathBuf {
        self.files.join(&sha[..2]).join(sha)
    }

    /// Records that `file` (a prediction's reference) was made from the upload `source`.
    pub fn set_source(&self, file: &str, source: &str) -> Result<()> {
        self.db().execute(
            "UPDATE files SET source = ?2 WHERE id = ?1",
            params![file, source],
        )?;
        Ok(())
    }

    /// What must go because predictions ended, whatever the end (normally at the job's end;
    /// also what was left when that failed, e.g. on a full disk, or when recovery ended a
    /// job): each ended prediction's reference to its face and label map unless it asked to
    /// keep its face, and each upload that predictions used once none of them still waits or
    /// runs.
    pub fn faces_to_release(&self) -> Result<Vec<String>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT u.id FROM files u WHERE u.kind = 'upload' AND u.prediction IS NULL \
               AND EXISTS (SELECT 1 FROM files r WHERE r.source = u.id) \
               AND NOT EXISTS (SELECT 1 FROM files r JOIN predictions p ON r.prediction = p.id \
                               WHERE r.source = u.id AND p.status IN ('starting', 'processing')) \
             UNION ALL \
             SELECT f.id FROM files f JOIN predictions p ON f.prediction = p.id \
               WHERE f.kind = 'upload' AND p.keep_face = 0 AND p.status IN ('succeeded', 'failed', 'canceled')",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes every file [`SqliteDb::faces_to_release`] names; how many went.
    pub fn release_faces(&self) -> Result<usize> {
        let ids = self.faces_to_release()?;
        for id in &ids {
            self.delete_file(id)?;
        }
        Ok(ids.len())
    }
}
