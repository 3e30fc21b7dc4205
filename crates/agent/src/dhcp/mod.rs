//! DHCP drivers: the agent hands every driver the same description of what to
//! serve (`desired::DhcpService` per network) and the driver makes it so.
//! `native` answers from an in-memory table in this process; `dnsmasq` runs
//! one dnsmasq per network, as nova-network and Neutron's DHCP agent do.

pub mod dnsmasq;
pub mod native;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::config::{AgentConfig, DhcpDriver};
use crate::desired::DhcpService;

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
