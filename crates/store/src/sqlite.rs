//! The embedded SQLite backend: WAL mode with `synchronous = FULL`, so a
//! commit has reached the disk when `commit` returns.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Change, ChangeRecord, Document, Store, StoreError, migrate};

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers never block the writer. FULL: fsync the WAL on every
        // commit, so a 2xx survives power loss, not only a process crash.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate::run(&mut conn)?;
        Ok(SqliteStore { conn })
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrate::run(&mut conn)?;
        Ok(SqliteStore { conn })
    }
}

impl Store for SqliteStore {
    fn load_all(&mut self) -> Result<Vec<Document>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, id, body FROM resources ORDER BY kind, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Document {
                kind: r.get(0)?,
                id: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }

    fn commit(&mut self, batch: &[Change]) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        let mut revision: u64 = rev(tx.query_row(
            "SELECT COALESCE(MAX(revision), 0) FROM changes",
            [],
            |r| r.get::<_, i64>(0),
        )?);
        if revision == 0 {
            // After a compaction that emptied the log, continue from the stored mark.
            revision = tx
                .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO resources (kind, id, body, revision) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, revision = excluded.revision",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM resources WHERE kind = ?1 AND id = ?2")?;
            let mut log = tx.prepare_cached(
                "INSERT INTO changes (revision, kind, id, deleted) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for c in batch {
                revision += 1;
                let rev = i64::try_from(revision).unwrap_or(i64::MAX);
                match &c.body {
                    Some(body) => put.execute(params![c.kind, c.id, body, rev])?,
                    None => del.execute(params![c.kind, c.id])?,
                };
                log.execute(params![rev, c.kind, c.id, c.body.is_none()])?;
            }
        }
        tx.commit()?;
        Ok(revision)
    }

    fn revision(&mut self) -> Result<u64, StoreError> {
        let logged: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(revision), 0) FROM changes", [], |r| {
                    r.get(0)
                })?;
        let mark = self
            .get_meta("revision")?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(rev(logged.max(mark)))
    }

    fn changes_since(
        &mut self,
        revision: u64,
        limit: usize,
    ) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        let oldest: Option<i64> =
            self.conn
                .query_row("SELECT MIN(revision) FROM changes", [], |r| r.get(0))?;
        let floor = self
            .get_meta("compacted_through")?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if revision < floor && oldest.is_none_or(|o| rev(o) > revision + 1) {
            return Ok(None);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.revision, c.kind, c.id, c.deleted, r.body FROM changes c
             LEFT JOIN resources r ON r.kind = c.kind AND r.id = c.id
             WHERE c.revision > ?1 ORDER BY c.revision LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![sql(revision), sql(limit as u64)], |r| {
            Ok(ChangeRecord {
                revision: rev(r.get::<_, i64>(0)?),
                kind: r.get(1)?,
                id: r.get(2)?,
                deleted: r.get(3)?,
                body: r.get(4)?,
            })
        })?;
        Ok(Some(rows.collect::<Result<Vec<_>, _>>()?))
    }

    fn compact(&mut self, revision: u64) -> Result<(), StoreError> {
        let current = self.revision()?;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM changes WHERE revision <= ?1", [sql(revision)])?;
        for (k, v) in [("compacted_through", revision), ("revision", current)] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![k, v.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn get_meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn put_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

/// A revision as SQLite stores it (INTEGER is signed; revisions never reach 2^63).
fn sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A revision read back from SQLite.
fn rev(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(kind: &'static str, id: &str, body: &str) -> Change {
        Change {
            kind,
            id: id.into(),
            body: Some(body.into()),
        }
    }

    #[test]
    fn commits_are_numbered_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let mut s = SqliteStore::open(&path).unwrap();
            assert_eq!(
                s.commit(&[put("network", "a", "{}"), put("port", "p", "{\"x\":1}")])
                    .unwrap(),
                2
            );
            assert_eq!(
                s.commit(&[Change {
                    kind: "network",
                    id: "a".into(),
                    body: None
                }])
                .unwrap(),
                3
            );
        }
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.revision().unwrap(), 3);
        let docs = s.load_all().unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].id, "p");
        let feed = s.changes_since(1, 100).unwrap().unwrap();
        assert_eq!(feed.iter().map(|c| c.revision).collect::<Vec<_>>(), [2, 3]);
        assert!(feed[1].deleted && feed[1].body.is_none());
        assert_eq!(feed[0].body.as_deref(), Some("{\"x\":1}"));
    }

    #[test]
    fn compaction_forces_a_snapshot_for_old_revisions() {
        let mut s = SqliteStore::in_memory().unwrap();
        for i in 0..5 {
            s.commit(&[put("network", &format!("n{i}"), "{}")]).unwrap();
        }
        s.compact(3).unwrap();
        assert!(s.changes_since(1, 10).unwrap().is_none());
        assert_eq!(s.changes_since(3, 10).unwrap().unwrap().len(), 2);
        assert_eq!(s.revision().unwrap(), 5);
        assert_eq!(s.commit(&[put("network", "z", "{}")]).unwrap(), 6);
    }
}
