//! The recent change log in memory, for the agents' feed: which resources
//! changed at which revision. It is seeded from the store's durable log at
//! start, so an agent can resume across a server restart; an agent asking
//! for a revision older than what is kept gets a snapshot instead.
//!
//! The writer publishes a new model and appends its changes under one lock,
//! and a reader takes the model and the changes under the same lock, so a
//! reader never sees a revision without the changes that made it.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::state::State;

/// A change as the feed needs it: what kind of resource, which one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Changed {
    pub kind: String,
    pub id: String,
}

/// Kind of the feed-only change that says a port's membership in a security
/// group changed; its id is `<group id>/<port id>`.
pub const MEMBER_MARKER: &str = "member";

/// Kind of the feed-only change that says something a router's hosts hold
/// changed (an interface, a gateway port, a floating IP moving between
/// routers); its id is the router's.
pub const ROUTER_MARKER: &str = "l3";

/// Kind of the feed-only change a server start records: what came before
/// it lacks the markers above (they are not stored), so a host resuming
/// across it gets its groups' memberships whole again.
pub const RESYNC_GROUPS_MARKER: &str = "resync-groups";

struct Ring {
    /// Every change after this revision is in `entries`.
    floor: u64,
    entries: VecDeque<(u64, Changed)>,
    capacity: usize,
}

pub struct ChangeLog {
    ring: Mutex<Ring>,
    revision: watch::Sender<u64>,
}

/// What a reader gets for "changes since R".
pub enum Since {
    /// The distinct resources changed after R, up to the snapshot's revision.
    Changes(BTreeSet<Changed>),
    /// R is older than the log keeps (or newer than the server has): resync.
    Gone,
}

impl ChangeLog {
    /// `seed`: the most recent changes from the durable log (oldest first),
    /// each after `floor`.
    pub fn new(floor: u64, revision: u64, seed: Vec<(u64, Changed)>, capacity: usize) -> ChangeLog {
        let mut ring = Ring {
            floor,
            entries: seed.into(),
            capacity: capacity.max(1),
        };
        ring.trim();
        ChangeLog {
            ring: Mutex::new(ring),
            revision: watch::channel(revision).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // The ring holds plain data: a panic elsewhere cannot leave it torn.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writer side: publish the committed model and record its changes.
    pub(crate) fn publish(
        &self,
        published: &ArcSwap<State>,
        state: State,
        changes: Vec<(u64, Changed)>,
    ) {
        let revision = state.revision;
        {
            let mut ring = self.lock();
            published.store(Arc::new(state));
            ring.entries.extend(changes);
            ring.trim();
        }
        self.revision.send_replace(revision);
    }

    /// Reader side: the model and what changed after `since`, consistently.
    pub fn read(&self, published: &ArcSwap<State>, since: u64) -> (Arc<State>, Since) {
        let ring = self.lock();
        let state = published.load_full();
        // 0 is "I have nothing": a snapshot, however far back the log reaches.
        if since == 0 || since < ring.floor || since > state.revision {
            return (state, Since::Gone);
        }
        // Entries are in revision order: skip to the first one after `since`.
        let start = ring.entries.partition_point(|(r, _)| *r <= since);
        let changed = ring
            .entries
            .range(start..)
            .map(|(_, c)| c.clone())
            .collect();
        (state, Since::Changes(changed))
    }

    /// Watches the committed revision (for long polls).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// The oldest revision a reader can resume from.
    pub fn floor(&self) -> u64 {
        self.lock().floor
    }
}

impl Ring {
    fn trim(&mut self) {
        while self.entries.len() > self.capacity {
            if let Some((r, _)) = self.entries.pop_front() {
                self.floor = r;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(kind: &str, id: &str) -> Changed {
        Changed {
            kind: kind.into(),
            id: id.into(),
        }
    }

    fn state_at(revision: u64) -> State {
        State {
            revision,
            ..State::default()
        }
    }

    #[test]
    fn reads_changes_after_a_revision_and_reports_gaps() {
        let published = ArcSwap::from_pointee(state_at(2));
        let log = ChangeLog::new(0, 2, vec![(1, ch("network", "a")), (2, ch("port", "p"))], 3);
        assert!(matches!(log.read(&published, 0).1, Since::Gone));
        let (_, since) = log.read(&published, 1);
        let Since::Changes(c) = since else {
            panic!("expected changes")
        };
        assert_eq!(c.into_iter().collect::<Vec<_>>(), vec![ch("port", "p")]);

        log.publish(
            &published,
            state_at(4),
            vec![(3, ch("port", "q")), (4, ch("port", "p"))],
        );
        // Capacity 3: revision 1 fell out, so 0 is gone but 1 is still complete.
        assert!(matches!(log.read(&published, 0).1, Since::Gone));
        let Since::Changes(c) = log.read(&published, 1).1 else {
            panic!()
        };
        assert_eq!(c.len(), 2, "p counted once although changed twice");
        let Since::Changes(c) = log.read(&published, 4).1 else {
            panic!()
        };
        assert!(c.is_empty());
        // An agent ahead of the server (a restored database) must resync.
        assert!(matches!(log.read(&published, 9).1, Since::Gone));
        assert_eq!(*log.subscribe().borrow(), 4);
    }
}
