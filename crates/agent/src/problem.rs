//! What keeps part of the host from converging, typed by the object it
//! concerns. The model loop (`reconcile`) and the host step (`host`) each
//! keep a [`Problems`] of their own and publish it; `/status` lists both
//! with their messages and ages, `/metrics` counts them by kind. Each
//! failing object is retried on its own [`Backoff`], while the rest of the
//! host converges.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics::now_ms;

/// An object that does not converge, by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// A network cannot be wired here (unmapped, unsupported, or a link
    /// of its own the kernel refuses).
    Network(String),
    /// The server would not create, complete or delete this host's DHCP
    /// port on a network.
    DhcpPort(String),
    /// A router's namespace, legs or NAT.
    Router(String),
    /// The server would not hand out (or take back) this host's gateway
    /// port of a router (multi-host).
    HostGateway(String),
    /// The server would not bind a router leg to this host.
    Binding(String),
    /// The DHCP driver cannot serve a network.
    DhcpDriver(String),
    /// The metadata listener of a network or router cannot be opened.
    Metadata(String),
    /// The firewall's tables (one for the whole host).
    Firewall,
    /// Something on the host that belongs to no wanted object: reading the
    /// host, or removing a leftover (the id names it).
    Host(String),
}

impl Problem {
    /// Every kind, as `/metrics` labels them.
    pub const KINDS: [&'static str; 9] = [
        "network",
        "dhcp_port",
        "router",
        "host_gateway",
        "binding",
        "dhcp_driver",
        "metadata",
        "firewall",
        "host",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Network(_) => "network",
            Problem::DhcpPort(_) => "dhcp_port",
            Problem::Router(_) => "router",
            Problem::HostGateway(_) => "host_gateway",
            Problem::Binding(_) => "binding",
            Problem::DhcpDriver(_) => "dhcp_driver",
            Problem::Metadata(_) => "metadata",
            Problem::Firewall => "firewall",
            Problem::Host(_) => "host",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Problem::Network(id)
            | Problem::DhcpPort(id)
            | Problem::Router(id)
            | Problem::HostGateway(id)
            | Problem::Binding(id)
            | Problem::DhcpDriver(id)
            | Problem::Metadata(id)
            | Problem::Host(id) => id,
            Problem::Firewall => "",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Firewall => f.write_str("firewall"),
            p => write!(f, "{} {}", p.kind(), p.id()),
        }
    }
}

/// One problem as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Noted {
    pub kind: &'static str,
    pub id: String,
    pub message: String,
    /// When it was first seen (unix ms); `/status` shows the age.
    #[serde(skip)]
    pub since_unix_ms: u64,
}

/// The current problems of one part of the agent, each kept from when it was
/// first seen until it is cleared (a changed message keeps its age).
#[derive(Debug, Default)]
pub struct Problems {
    map: BTreeMap<Problem, (String, u64)>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, p: &Problem) -> bool {
        self.map.contains_key(p)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Problem> {
        self.map.keys()
    }

    /// Records (Some) or clears (None) a problem; logs each change once.
    pub fn note(&mut self, p: Problem, error: Option<String>) {
        match error {
            Some(e) => match self.map.get_mut(&p) {
                Some((msg, _)) if *msg == e => {}
                Some((msg, _)) => {
                    tracing::warn!(problem = %p, error = %e, "cannot converge");
                    *msg = e;
                }
                None => {
                    tracing::warn!(problem = %p, error = %e, "cannot converge");
                    self.map.insert(p, (e, now_ms()));
                }
            },
            None => {
                if self.map.remove(&p).is_some() {
                    tracing::info!(problem = %p, "converged again");
                }
            }
        }
    }

    /// Makes the set exactly `now`: new ones noted, gone ones cleared.
    pub fn replace(&mut self, now: BTreeMap<Problem, String>) {
        let gone: Vec<Problem> = self
            .map
            .keys()
            .filter(|p| !now.contains_key(*p))
            .cloned()
            .collect();
        for p in gone {
            self.note(p, None);
        }
        for (p, e) in now {
            self.note(p, Some(e));
        }
    }

    /// Keeps only those `keep` says are still of interest (the object is
    /// still wanted); dropped ones are not logged as converged.
    pub fn retain(&mut self, mut keep: impl FnMut(&Problem) -> bool) {
        self.map.retain(|p, _| keep(p));
    }

    pub fn snapshot(&self) -> Arc<Vec<Noted>> {
        Arc::new(
            self.map
                .iter()
                .map(|(p, (message, since))| Noted {
                    kind: p.kind(),
                    id: p.id().to_owned(),
                    message: message.clone(),
                    since_unix_ms: *since,
                })
                .collect(),
        )
    }
}

/// Exponential retry delay for one failing object: 500 ms, doubling, at most 30 s.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    delay: Duration,
    /// Not retried before this.
    pub until: Instant,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(500);
    pub const MAX: Duration = Duration::from_secs(30);

    /// After a first failure.
    pub fn start(now: Instant) -> Backoff {
        Backoff {
            delay: Self::FIRST,
            until: now + Self::FIRST,
        }
    }

    /// After another failure: twice the delay, up to [`Backoff::MAX`].
    pub fn again(self, now: Instant) -> Backoff {
        let delay = (self.delay * 2).min(Self::MAX);
        Backoff {
            delay,
            until: now + delay,
        }
    }

    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// `b` after a failure at `now`, whether it had failed before or not.
    pub fn failed(b: Option<Backoff>, now: Instant) -> Backoff {
        match b {
            Some(b) => b.again(now),
            None => Backoff::start(now),
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_for_metrics() {
        let id = || "x".to_string();
        let all = [
            Problem::Network(id()),
            Problem::DhcpPort(id()),
            Problem::Router(id()),
            Problem::HostGateway(id()),
            Problem::Binding(id()),
            Problem::DhcpDriver(id()),
            Problem::Metadata(id()),
            Problem::Firewall,
            Problem::Host(id()),
        ];
        // A new variant must be added above (the match makes that fail to compile).
        for p in &all {
            match p {
                Problem::Network(_)
                | Problem::DhcpPort(_)
                | Problem::Router(_)
                | Problem::HostGateway(_)
                | Problem::Binding(_)
                | Problem::DhcpDriver(_)
                | Problem::Metadata(_)
                | Problem::Firewall
                | Problem::Host(_) => {}
            }
        }
        let kinds: Vec<&str> = all.iter().map(Problem::kind).collect();
        assert_eq!(kinds, Problem::KINDS);
    }

    #[test]
    fn backoff_doubles_from_half_a_second_to_thirty() {
        let now = Instant::now();
        let mut b = Backoff::start(now);
        let mut delays = vec![b.delay()];
        for _ in 0..8 {
            b = b.again(now);
            delays.push(b.delay());
        }
        let ms: Vec<u128> = delays.iter().map(|d| d.as_millis()).collect();
        assert_eq!(
            ms,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert!(!b.due(now) && b.due(now + Duration::from_secs(30)));
    }

    #[test]
    fn problems_keep_their_age_and_clear() {
        let mut p = Problems::default();
        p.note(Problem::Network("n1".into()), Some("a".into()));
        let since = p.snapshot()[0].since_unix_ms;
        p.note(Problem::Network("n1".into()), Some("b".into()));
        let s = p.snapshot();
        assert_eq!((s[0].message.as_str(), s[0].since_unix_ms), ("b", since));
        assert_eq!((s[0].kind, s[0].id.as_str()), ("network", "n1"));
        p.replace(BTreeMap::from([(Problem::Router("r".into()), "x".into())]));
        let kinds: Vec<&str> = p.snapshot().iter().map(|n| n.kind).collect();
        assert_eq!(kinds, ["router"]);
        assert_eq!(Problem::DhcpPort("n".into()).to_string(), "dhcp_port n");
        assert_eq!(Problem::Firewall.to_string(), "firewall");
    }
}
