//! Schema migrations: embedded SQL files applied in order at start, each in
//! its own transaction, recorded in `schema_version`.

use rusqlite::Connection;

use crate::StoreError;

/// (version, SQL) in order. Append only: never edit an applied migration.
const SQLITE_MIGRATIONS: &[(u32, &str)] =
    &[(1, include_str!("../migrations/sqlite/0001_init.sql"))];

pub fn run(conn: &mut Connection) -> Result<u32, StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: u32 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    let known = SQLITE_MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in SQLITE_MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|source| StoreError::Migration {
                version: *version,
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(known)
}
