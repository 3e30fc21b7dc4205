//! The single writer: every mutating request runs here, one after another,
//! against the writer's own copy of the model. Requests that arrive while a
//! commit is in flight are grouped into the next batch, so one fsync covers
//! many requests (group commit) while each request stays all-or-nothing:
//! a failing request rolls back only its own changes. Replies go out only
//! after the batch is durable, and readers only ever see committed state.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

use arc_swap::ArcSwap;
use neutrino_model::ApiError;
use neutrino_store::{Change, Store};

use crate::changes::{ChangeLog, Changed};
use crate::config::EngineConfig;
use crate::state::State;
use crate::txn::Txn;

/// Called once the batch holding a request has committed (`None`) or failed.
pub type Completion = Box<dyn FnOnce(Option<ApiError>) + Send>;
/// A mutating request: runs against the working model and reports whether it
/// succeeded, plus how to reply once the batch's fate is known.
pub type Job = Box<dyn FnOnce(&mut Txn<'_>) -> (bool, Completion) + Send>;

/// Most requests folded into one commit.
const MAX_BATCH: usize = 256;

pub fn run(
    jobs: Receiver<Job>,
    mut store: Box<dyn Store>,
    published: Arc<ArcSwap<State>>,
    log: Arc<ChangeLog>,
    config: Arc<EngineConfig>,
) {
    let mut working: State = (**published.load()).clone();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let before_batch = working.clone();
        let mut changes: Vec<Change> = Vec::new();
        let mut markers: Vec<Changed> = Vec::new();
        let mut completions = Vec::with_capacity(batch.len());
        let now = neutrino_model::time::now_unix();
        for job in batch {
            let before_job = working.clone();
            let mut txn = Txn::new(&mut working, &config, now);
            // A bug in one request must not take the writer down: a panicking
            // job is rolled back and its caller sees a 500 (its reply channel drops).
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut txn)));
            match outcome {
                Ok((true, done)) => {
                    let (c, m) = txn.into_changes();
                    changes.extend(c);
                    markers.extend(m);
                    completions.push(done);
                }
                Ok((false, done)) => {
                    working = before_job;
                    completions.push(done);
                }
                Err(_) => {
                    tracing::error!("a request panicked in the writer; rolled back");
                    working = before_job;
                }
            }
        }
        let result = if changes.is_empty() {
            Ok(working.revision)
        } else {
            store.commit(&changes)
        };
        match result {
            Ok(revision) => {
                working.revision = revision;
                // The store numbered the batch's changes consecutively up to `revision`.
                let first = revision + 1 - changes.len() as u64;
                let changed = changes
                    .into_iter()
                    .zip(first..)
                    .map(|(c, r)| {
                        (
                            r,
                            Changed {
                                kind: c.kind.to_string(),
                                id: c.id,
                            },
                        )
                    })
                    .chain(markers.into_iter().map(|m| (revision, m)))
                    .collect();
                log.publish(&published, working.clone(), changed);
                for done in completions {
                    done(None);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = completions.len(), "commit failed; batch rolled back");
                working = before_batch;
                for done in completions {
                    done(Some(ApiError::unavailable(
                        "The server could not commit the change; try again.",
                    )));
                }
            }
        }
    }
    tracing::info!("writer stopped");
}
