//! Share links: a random id that shows one prediction's images and parameters.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::SqliteDb;
use crate::server::ids::{new_id, now};

impl SqliteDb {
    pub fn create_share(&self, prediction: &str, include_face: bool) -> Result<String> {
        let id = new_id();
        self.db().execute(
            "INSERT INTO shares (share_id, prediction, include_face, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, prediction, include_face, now()],
        )?;
        Ok(id)
    }

    /// (prediction id, include_face) of a share.
    pub fn share(&self, share_id: &str) -> Result<Option<(String, bool)>> {
        Ok(self
            .db()
            .query_row(
                "SELECT prediction, include_face FROM shares WHERE share_id = ?1",
                [share_id],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)),
            )
            .optional()?)
    }

    /// Whether an uploaded face is visible through a share whose owner chose to include it.
    pub fn face_shared(&self, file: &str) -> Result<bool> {
        Ok(self.db().query_row(
            "SELECT EXISTS (SELECT 1 FROM shares s JOIN predictions p ON s.prediction = p.id WHERE s.include_face = 1 AND p.face_file = ?1)",
            [file],
            |r| r.get(0),
        )?)
    }

    pub fn delete_shares(&self, prediction: &str) -> Result<usize> {
        Ok(self
            .db()
            .execute("DELETE FROM shares WHERE prediction = ?1", [prediction])?)
    }
}
