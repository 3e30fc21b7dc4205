//! DHCP drivers: the agent hands every driver the same description of what to
//! serve (`desired::DhcpService` per network) and the driver makes it so.
//! `native` answers from an in-memory table in this process; `dnsmasq` runs
//! one dnsmasq per network, as nova-network and Neutron's DHCP agent do.
//!
//! A driver serves a network inside the network's DHCP namespace, on the
//! DHCP port's interface there, and the host step builds both. So a network
//! is handed to the driver only once the host step has found its endpoint
//! built ([`DhcpEndpoints`], [`endpoint_built`]); until then it is simply
//! not served yet, which is no failure.

pub mod dnsmasq;
pub mod native;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::config::{AgentConfig, DhcpDriver};
use crate::desired::DhcpService;

/// What the host step found in this host's DHCP namespaces when it last
/// read the host: namespace → the DHCP port interfaces in it that are up.
pub type DhcpEndpoints = BTreeMap<String, BTreeSet<String>>;

/// Whether the endpoint a service is served on exists: its namespace, and
/// in it the DHCP port's interface, up.
pub fn endpoint_built(s: &DhcpService, built: &DhcpEndpoints) -> bool {
    built
        .get(&s.namespace)
        .is_some_and(|links| links.contains(&s.interface))
}

/// The services a driver can serve now: those whose endpoint is built.
pub fn servable(
    services: &BTreeMap<String, Arc<DhcpService>>,
    built: &DhcpEndpoints,
) -> BTreeMap<String, Arc<DhcpService>> {
    services
        .iter()
        .filter(|(_, s)| endpoint_built(s, built))
        .map(|(id, s)| (id.clone(), s.clone()))
        .collect()
}

/// Counters a driver exposes on `/metrics`.
pub trait MetricsSource: Send + Sync {
    fn render(&self, out: &mut String);
}

pub enum Driver {
    Native(native::NativeDriver),
    Dnsmasq(dnsmasq::DnsmasqDriver),
}

impl Driver {
    pub fn from_config(cfg: &AgentConfig) -> Driver {
        match cfg.dhcp.driver {
            DhcpDriver::Dnsmasq => Driver::Dnsmasq(dnsmasq::DnsmasqDriver::new(cfg)),
            DhcpDriver::Native => Driver::Native(native::NativeDriver::new()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Driver::Native(_) => "native",
            Driver::Dnsmasq(_) => "dnsmasq",
        }
    }

    /// Serves exactly `services` from now on. Returns the networks that could
    /// not be served this time, with why (retried on the next pass).
    pub async fn sync(
        &mut self,
        services: &BTreeMap<String, Arc<DhcpService>>,
    ) -> BTreeMap<String, String> {
        match self {
            Driver::Native(d) => d.sync(services).await,
            Driver::Dnsmasq(d) => d.sync(services).await,
        }
    }

    /// The driver's counters, for `/metrics` to render when scraped.
    pub fn metrics(&self) -> Arc<dyn MetricsSource> {
        match self {
            Driver::Native(d) => d.metrics(),
            Driver::Dnsmasq(d) => d.metrics(),
        }
    }

    /// Whether the driver lost something it was serving (a dnsmasq died).
    pub fn needs_sync(&mut self) -> bool {
        match self {
            Driver::Native(_) => false,
            Driver::Dnsmasq(d) => d.needs_sync(),
        }
    }

    pub fn status(&self) -> Value {
        match self {
            Driver::Native(d) => d.status(),
            Driver::Dnsmasq(d) => d.status(),
        }
    }

    /// Stops serving (agent shutdown). Native sockets close with the process;
    /// dnsmasq processes are left running so DHCP outlives an agent restart.
    pub async fn shutdown(&mut self) {
        if let Driver::Native(d) = self {
            d.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(net: &str, interface: &str) -> Arc<DhcpService> {
        Arc::new(DhcpService {
            network_id: net.into(),
            namespace: format!("p-qdhcp-{net}"),
            interface: interface.into(),
            mtu: 1450,
            domain: "openstacklocal".into(),
            lease_secs: 600,
            subnets: Vec::new(),
            hosts: Vec::new(),
        })
    }

    #[test]
    fn a_network_is_served_once_its_endpoint_is_built() {
        let services = BTreeMap::from([
            ("n1".to_string(), service("n1", "ns-a")),
            ("n2".to_string(), service("n2", "ns-b")),
            ("n3".to_string(), service("n3", "ns-new")),
        ]);
        let built = DhcpEndpoints::from([
            (
                "p-qdhcp-n1".to_string(),
                BTreeSet::from(["ns-a".to_string()]),
            ),
            // The namespace, but the DHCP port's interface not (yet, or no
            // longer: the port was replaced).
            (
                "p-qdhcp-n3".to_string(),
                BTreeSet::from(["ns-old".to_string()]),
            ),
        ]);
        let ready: Vec<String> = servable(&services, &built).into_keys().collect();
        assert_eq!(ready, ["n1"]);
        assert!(servable(&services, &DhcpEndpoints::new()).is_empty());
    }
}
