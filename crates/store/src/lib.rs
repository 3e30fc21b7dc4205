//! Durable storage for the logical model. The engine holds the working model
//! in memory and hands the store batches of changes; the store commits each
//! batch in one transaction, durably, and numbers every change with a global
//! revision so agents can follow a change feed. SQLite is the embedded
//! default; the [`Store`] trait is what a PostgreSQL backend will implement.

mod error;
mod migrate;
mod sqlite;

pub use error::StoreError;
pub use sqlite::SqliteStore;

/// One change to one resource document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: &'static str,
    pub id: String,
    /// The new JSON document, or `None` for a delete.
    pub body: Option<String>,
}

/// A change as the feed reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub revision: u64,
    pub kind: String,
    pub id: String,
    /// The document as it is now (`None` if deleted since).
    pub body: Option<String>,
    pub deleted: bool,
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub kind: String,
    pub id: String,
    pub body: String,
}

/// The storage backend. Calls come from one writer thread (commits) and from
/// readers; implementations must make `commit` durable before returning.
pub trait Store: Send {
    /// Every stored document, for building the in-memory model at start.
    fn load_all(&mut self) -> Result<Vec<Document>, StoreError>;
    /// Commits a batch atomically and durably. Returns the revision of the
    /// last change (the current revision if the batch is empty).
    fn commit(&mut self, batch: &[Change]) -> Result<u64, StoreError>;
    /// The revision of the latest committed change.
    fn revision(&mut self) -> Result<u64, StoreError>;
    /// Changes after `revision`, oldest first, at most `limit`. `Ok(None)` if
    /// the log no longer reaches back that far (the caller needs a snapshot).
    fn changes_since(
        &mut self,
        revision: u64,
        limit: usize,
    ) -> Result<Option<Vec<ChangeRecord>>, StoreError>;
    /// Drops change-log rows at or below `revision` (documents stay).
    fn compact(&mut self, revision: u64) -> Result<(), StoreError>;
    fn get_meta(&mut self, key: &str) -> Result<Option<String>, StoreError>;
    fn put_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
}
