use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration {version} failed: {source}")]
    Migration {
        version: u32,
        source: rusqlite::Error,
    },
    #[error("the database schema is version {found}, newer than this binary knows ({known})")]
    SchemaTooNew { found: u32, known: u32 },
    #[error("cannot create data directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
