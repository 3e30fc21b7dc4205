//! The engine: Neutrino's logical model and its write path. Reads take an
//! immutable snapshot of the model; writes run one at a time in the writer
//! thread, are grouped into durable commits and become visible only once
//! committed. Every resource operation (validation against the model, IPAM,
//! quotas, policy) lives in `ops`.

mod config;
mod error;
pub mod ops;
pub mod policy;
mod state;
mod txn;
pub mod view;
mod writer;

use std::sync::Arc;
use std::sync::mpsc;

use arc_swap::ArcSwap;
use neutrino_model::{ApiError, ApiResult};
use neutrino_store::Store;

pub use config::{EngineConfig, QUOTA_RESOURCES};
pub use error::EngineError;
pub use state::State;
pub use txn::Txn;

/// Handle to the model, shared by all request handlers.
#[derive(Clone)]
pub struct Engine {
    published: Arc<ArcSwap<State>>,
    jobs: mpsc::Sender<writer::Job>,
    config: Arc<EngineConfig>,
}

impl Engine {
    /// Loads the model from the store and starts the writer thread.
    pub fn start(mut store: Box<dyn Store>, config: EngineConfig) -> Result<Engine, EngineError> {
        let revision = store.revision()?;
        let docs = store.load_all()?;
        let count = docs.len();
        let state = State::load(docs, revision)?;
        tracing::info!(documents = count, revision, "model loaded");
        let published = Arc::new(ArcSwap::from_pointee(state));
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel();
        let (p, c) = (published.clone(), config.clone());
        std::thread::Builder::new()
            .name("neutrino-writer".into())
            .spawn(move || writer::run(rx, store, p, c))
            .map_err(|e| EngineError::Corrupt(format!("cannot start writer: {e}")))?;
        Ok(Engine {
            published,
            jobs: tx,
            config,
        })
    }

    /// The latest committed model.
    pub fn snapshot(&self) -> Arc<State> {
        self.published.load_full()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Runs a mutation in the writer; resolves once it is durable (or failed).
    pub async fn write<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Txn<'_>) -> ApiResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: writer::Job = Box::new(move |txn| {
            let result = f(txn);
            let ok = result.is_ok();
            let done: writer::Completion = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    Some(e) => Err(e),
                    None => result,
                });
            });
            (ok, done)
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::from(EngineError::WriterGone))?;
        rx.await.unwrap_or_else(|_| Err(ApiError::internal()))
    }

    /// Waits until every write sent before this call has been committed.
    pub async fn flush(&self) -> ApiResult<()> {
        self.write(|_| Ok(())).await
    }
}
