//! The engine: Neutrino's logical model and its write path. Reads take an
//! immutable snapshot of the model; writes run one at a time in the writer
//! thread, are grouped into durable commits and become visible only once
//! committed. Every resource operation (validation against the model, IPAM,
//! quotas, policy) lives in `ops`; every API resource implements
//! [`resource::Resource`].

pub mod changes;
mod config;
mod error;
pub mod host_feed;
pub mod metadata;
pub mod ops;
pub mod policy;
pub mod resource;
mod state;
mod txn;
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
    log: Arc<changes::ChangeLog>,
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
        let log = Arc::new(seed_change_log(
            store.as_mut(),
            &state,
            revision,
            config.feed_history,
        )?);
        let published = Arc::new(ArcSwap::from_pointee(state));
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel();
        let (p, l, c) = (published.clone(), log.clone(), config.clone());
        std::thread::Builder::new()
            .name("neutrino-writer".into())
            .spawn(move || writer::run(rx, store, p, l, c))
            .map_err(|e| EngineError::Corrupt(format!("cannot start writer: {e}")))?;
        Ok(Engine {
            published,
            log,
            jobs: tx,
            config,
        })
    }

    /// The latest committed model.
    pub fn snapshot(&self) -> Arc<State> {
        self.published.load_full()
    }

    /// The committed model and what changed after `since`, consistently.
    pub fn changes_since(&self, since: u64) -> (Arc<State>, changes::Since) {
        self.log.read(&self.published, since)
    }

    /// Watches the committed revision.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.log.subscribe()
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

/// The most recent `keep` changes of the durable log, so agents resume across
/// a server restart without a full resync.
fn seed_change_log(
    store: &mut dyn Store,
    state: &state::State,
    revision: u64,
    keep: usize,
) -> Result<changes::ChangeLog, EngineError> {
    let from = revision.saturating_sub(keep as u64);
    let seed = match store.changes_since(from, keep)? {
        Some(records) => records,
        // The log was compacted past `from`: resume only from now on.
        None => {
            return Ok(changes::ChangeLog::new(
                revision,
                revision,
                Vec::new(),
                keep,
            ));
        }
    };
    let floor = match seed.first() {
        Some(r) => r.revision.saturating_sub(1).max(from),
        None => revision,
    };
    // Membership markers were not stored: a port's current groups stand in
    // for them, so a resumed host learns of joins and address changes (leaves
    // of a port that still exists are the gap a restart leaves).
    let mut entries = Vec::with_capacity(seed.len());
    for r in seed {
        let router_of = |id: Option<&String>| {
            id.map(|id| changes::Changed {
                kind: changes::ROUTER_MARKER.to_string(),
                id: id.clone(),
            })
        };
        let router = match r.kind.as_str() {
            "floatingip" => router_of(
                state
                    .floatingips
                    .get(&r.id)
                    .and_then(|f| f.router_id.as_ref()),
            ),
            "port" => router_of(
                state
                    .ports
                    .get(&r.id)
                    .filter(|p| host_feed::is_router_leg(p))
                    .map(|p| &p.device_id),
            ),
            _ => None,
        };
        entries.extend(router.map(|m| (r.revision, m)));
        if r.kind == "port"
            && let Some(p) = state.ports.get(&r.id)
        {
            for g in &p.security_groups {
                entries.push((
                    r.revision,
                    changes::Changed {
                        kind: changes::MEMBER_MARKER.to_string(),
                        id: format!("{g}/{}", p.id),
                    },
                ));
            }
        }
        entries.push((
            r.revision,
            changes::Changed {
                kind: r.kind,
                id: r.id,
            },
        ));
    }
    // The markers of what came before this start were not stored: a host
    // resuming from before it gets its routers and group memberships whole.
    if !entries.is_empty() {
        for id in state.routers.keys() {
            entries.push((
                revision,
                changes::Changed {
                    kind: changes::ROUTER_MARKER.to_string(),
                    id: id.clone(),
                },
            ));
        }
        entries.push((
            revision,
            changes::Changed {
                kind: changes::RESYNC_GROUPS_MARKER.to_string(),
                id: String::new(),
            },
        ));
    }
    let seed = entries;
    Ok(changes::ChangeLog::new(floor, revision, seed, keep))
}
