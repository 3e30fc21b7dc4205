//! The agent's TOML file (`neutrino agent --config FILE`). Every key has a
//! default; `neutrino-agent.example.toml` (kept loadable by a test) and
//! docs/agent.md list them. Unknown keys and bad values (the enums
//! `dhcp.driver`, `dhcp.mode` and `l3.mode` are typed when parsed) stop the
//! start with a TOML error naming the key.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use neutrino_agent_rpc::{DhcpMode, L3Mode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub agent: AgentSection,
    pub l2: L2Section,
    pub dhcp: DhcpSection,
    pub firewall: FirewallSection,
    pub l3: L3Section,
    pub metadata: MetadataSection,
}

/// The metadata service at 169.254.169.254: where this host answers it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataSection {
    /// Answer instances' metadata requests: in the DHCP namespace of each
    /// isolated network served here (with a host route handed out by DHCP)
    /// and in each router namespace run here.
    pub enabled: bool,
    /// The port a router namespace's listener takes, where requests to
    /// 169.254.169.254:80 arriving on the router's legs are redirected.
    pub router_port: u16,
}

impl Default for MetadataSection {
    fn default() -> Self {
        MetadataSection {
            enabled: true,
            router_port: 9697,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct L3Section {
    /// `all` (single-host: this network node runs every router), `local`
    /// (multi-host: a copy of each router its instances use, NATting their
    /// floating IPs and their outbound traffic here) or `off`.
    pub mode: L3Mode,
    /// Announce a floating IP with a gratuitous ARP when it is added here
    /// (`arping` from iputils), so upstream caches follow a move at once.
    pub arping_path: String,
    /// conntrack-tools' `conntrack`, to end a removed floating IP's
    /// connections at once.
    pub conntrack_path: String,
}

impl Default for L3Section {
    fn default() -> Self {
        L3Section {
            mode: L3Mode::Off,
            arping_path: "arping".into(),
            conntrack_path: "conntrack".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirewallSection {
    /// Security groups and anti-spoofing on nftables (tables `bridge
    /// neutrino` and `inet neutrino`). false: the agent leaves them alone.
    pub enabled: bool,
    /// nova-network's option: false drops traffic between instances of one
    /// network unless a rule other than "from my own group" admits it.
    pub allow_same_net_traffic: bool,
}

impl Default for FirewallSection {
    fn default() -> Self {
        FirewallSection {
            enabled: true,
            allow_same_net_traffic: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// This host's name as ports' `binding:host_id` say it; default: hostname.
    pub host: String,
    pub server_url: String,
    /// File holding the shared secret (the server writes `<data_dir>/agent-secret`).
    pub secret_file: PathBuf,
    /// Namespaces the agent creates are named `<prefix>qdhcp-<network>`.
    pub namespace_prefix: String,
    /// Where dnsmasq's files live.
    pub state_dir: PathBuf,
    /// Prometheus `/metrics` and `/status`; "" disables.
    pub metrics_listen: String,
    pub report_interval_secs: u64,
    /// How often the host is re-read even when nothing was signalled (link
    /// events and feed changes trigger a pass at once; this catches drift).
    pub resync_interval_ms: u64,
    /// Run inside this named network namespace, as if it were the host
    /// (several "hosts" on one machine: tests and `neutrino demo`). Unset: the
    /// namespace the agent was started in.
    pub host_netns: Option<String>,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            host: String::new(),
            server_url: "http://127.0.0.1:9696".into(),
            secret_file: PathBuf::from("neutrino-data/agent-secret"),
            namespace_prefix: String::new(),
            state_dir: PathBuf::from("neutrino-agent"),
            metrics_listen: "127.0.0.1:9697".into(),
            report_interval_secs: 10,
            resync_interval_ms: 10_000,
            host_netns: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct L2Section {
    /// physical network → interface, for flat networks.
    pub physical_interface_mappings: BTreeMap<String, String>,
    /// VXLAN underlay address of this host; unset: no vxlan networks here.
    pub tunnel_ip: Option<Ipv4Addr>,
    pub vxlan_port: u16,
}

impl Default for L2Section {
    fn default() -> Self {
        L2Section {
            physical_interface_mappings: BTreeMap::new(),
            tunnel_ip: None,
            vxlan_port: 4789,
        }
    }
}

/// Which DHCP server answers this host's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DhcpDriver {
    /// Neutrino's own (`crates/dhcp`), one socket per network.
    Native,
    /// A dnsmasq process per network, as Neutron's DHCP agent runs it.
    Dnsmasq,
}

impl DhcpDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            DhcpDriver::Native => "native",
            DhcpDriver::Dnsmasq => "dnsmasq",
        }
    }
}

impl std::fmt::Display for DhcpDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpSection {
    /// `all` (single-host network node), `local` (multi-host) or `off`.
    pub mode: DhcpMode,
    pub driver: DhcpDriver,
    pub lease_time_secs: u32,
    pub dnsmasq_path: String,
    /// dnsmasq-utils' `dhcp_release`, to drop a deleted port's lease at once.
    pub dhcp_release_path: String,
}

impl Default for DhcpSection {
    fn default() -> Self {
        DhcpSection {
            mode: DhcpMode::All,
            driver: DhcpDriver::Native,
            lease_time_secs: 86_400,
            dnsmasq_path: "dnsmasq".into(),
            dhcp_release_path: "dhcp_release".into(),
        }
    }
}

impl AgentConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<AgentConfig> {
        let mut cfg = match path {
            None => AgentConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("{}", p.display()))?
            }
        };
        if cfg.agent.host.is_empty() {
            cfg.agent.host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
        }
        if cfg.agent.host.is_empty() {
            bail!("agent.host: not set and the hostname is unknown");
        }
        if cfg.agent.report_interval_secs == 0 {
            bail!("agent.report_interval_secs must be at least 1");
        }
        Ok(cfg)
    }

    /// Enters `agent.host_netns` when set. Call before starting any thread.
    pub fn enter_host_netns(&self) -> anyhow::Result<()> {
        if let Some(ns) = &self.agent.host_netns {
            neutrino_dataplane::netns::enter(ns)
                .with_context(|| format!("agent.host_netns: cannot enter {ns}"))?;
        }
        Ok(())
    }

    pub fn secret(&self) -> anyhow::Result<String> {
        let s = std::fs::read_to_string(&self.agent.secret_file).with_context(|| {
            format!(
                "agent.secret_file: cannot read {}",
                self.agent.secret_file.display()
            )
        })?;
        Ok(s.trim().to_string())
    }
}
