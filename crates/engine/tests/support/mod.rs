#![allow(dead_code)] // each test binary uses part of it
//! An engine over an in-memory SQLite store whose committed documents are
//! mirrored where a test can read them, so what the engine holds in memory
//! can be compared with what a restart would rebuild.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use neutrino_engine::{Engine, EngineConfig, State};
use neutrino_model::{AuthContext, Role};
use neutrino_store::{Change, ChangeRecord, Document, SqliteStore, Store, StoreError};
use serde_json::{Map, Value};

type Docs = Arc<Mutex<BTreeMap<(String, String), String>>>;

/// A store that keeps a copy of every committed document.
struct Mirror {
    inner: SqliteStore,
    docs: Docs,
}

impl Store for Mirror {
    fn load_all(&mut self) -> Result<Vec<Document>, StoreError> {
        self.inner.load_all()
    }
    fn commit(&mut self, batch: &[Change]) -> Result<u64, StoreError> {
        let rev = self.inner.commit(batch)?;
        let mut docs = self.docs.lock().unwrap();
        for c in batch {
            let key = (c.kind.to_string(), c.id.clone());
            match &c.body {
                Some(b) => docs.insert(key, b.clone()),
                None => docs.remove(&key),
            };
        }
        Ok(rev)
    }
    fn revision(&mut self) -> Result<u64, StoreError> {
        self.inner.revision()
    }
    fn changes_since(
        &mut self,
        revision: u64,
        limit: usize,
    ) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        self.inner.changes_since(revision, limit)
    }
    fn compact(&mut self, revision: u64) -> Result<(), StoreError> {
        self.inner.compact(revision)
    }
    fn get_meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_meta(key)
    }
    fn put_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.put_meta(key, value)
    }
}

pub struct TestEngine {
    pub engine: Engine,
    docs: Docs,
}

impl TestEngine {
    pub fn start() -> TestEngine {
        let docs = Docs::default();
        let store = Mirror {
            inner: SqliteStore::in_memory().unwrap(),
            docs: docs.clone(),
        };
        let engine = Engine::start(Box::new(store), EngineConfig::default()).unwrap();
        TestEngine { engine, docs }
    }

    /// The model a restart would load from what is stored now.
    pub fn rebuilt(&self) -> State {
        let docs = self
            .docs
            .lock()
            .unwrap()
            .iter()
            .map(|((kind, id), body)| Document {
                kind: kind.clone(),
                id: id.clone(),
                body: body.clone(),
            })
            .collect();
        State::load(docs, 0).unwrap()
    }
}

pub fn admin() -> AuthContext {
    caller("admin-project", Role::Admin)
}

pub fn member(project: &str) -> AuthContext {
    caller(project, Role::Member)
}

fn caller(project: &str, role: Role) -> AuthContext {
    AuthContext {
        user_id: format!("{project}-user"),
        user_name: format!("{project}-user"),
        project_id: project.to_string(),
        project_name: project.to_string(),
        roles: vec![role],
    }
}

/// A JSON object literal as a request body.
pub fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}
