//! The one TOML configuration file. Every key is optional; `neutrino.example.toml`
//! at the repository root lists them all with their defaults. Unknown keys are
//! refused so a typo stops the start with a message naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use neutrino_engine::{EngineConfig, QUOTA_RESOURCES};
use neutrino_identity::{KeystoneConfig, ProjectConfig, UserConfig};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub identity: IdentityConfig,
    pub network: NetworkConfig,
    pub quotas: BTreeMap<String, i64>,
    pub api: ApiConfig,
    pub agents: AgentsConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// An agent silent for this long is shown dead (`alive: false`).
    pub down_time_secs: u64,
    /// Recent changes kept for the agents' feed; an agent further behind resyncs.
    pub feed_history: usize,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            down_time_secs: 75,
            feed_history: 100_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port of the API (and of the builtin Keystone).
    pub listen: String,
    /// Where the SQLite database, the token signing key and clouds.yaml live.
    pub data_dir: PathBuf,
    /// The URL clients should use, if not `http://<listen>/` (behind a proxy).
    pub public_url: Option<String>,
    /// Log filter (tracing's EnvFilter syntax); `RUST_LOG` overrides it.
    pub log: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:9696".into(),
            data_dir: PathBuf::from("neutrino-data"),
            public_url: None,
            log: "info".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// `builtin` (Neutrino answers Keystone v3 itself), `keystone` (validate
    /// tokens against an external Keystone) or `noauth` (development only).
    pub mode: String,
    pub token_ttl_secs: u64,
    pub region: String,
    pub projects: Vec<ProjectConfig>,
    pub users: Vec<UserConfig>,
    pub keystone: Option<KeystoneConfig>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            mode: "builtin".into(),
            token_ttl_secs: 3600,
            region: "RegionOne".into(),
            projects: Vec::new(),
            users: Vec::new(),
            keystone: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    pub base_mac: String,
    pub tenant_network_types: Vec<String>,
    /// "first:last" VNI ranges for project VXLAN networks.
    pub vxlan_vni_ranges: Vec<String>,
    /// "physnet:first:last" VLAN ranges for project VLAN networks.
    pub network_vlan_ranges: Vec<String>,
    /// Physical networks that may carry flat networks ("*" = any).
    pub flat_networks: Vec<String>,
    pub global_physnet_mtu: u32,
    pub dns_domain: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            base_mac: "fa:16:3e:00:00:00".into(),
            tenant_network_types: vec!["vxlan".into()],
            vxlan_vni_ranges: vec!["1:16777215".into()],
            network_vlan_ranges: Vec::new(),
            flat_networks: vec!["*".into()],
            global_physnet_mtu: 1500,
            dns_domain: "openstacklocal".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub max_body_bytes: usize,
    /// Largest page returned by a list (0 = unlimited).
    pub pagination_max_limit: usize,
    pub max_bulk: usize,
    pub max_dns_nameservers: usize,
    pub max_subnet_host_routes: usize,
    pub max_allowed_address_pairs: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 8 * 1024 * 1024,
            pagination_max_limit: 0,
            max_bulk: 10_000,
            max_dns_nameservers: 5,
            max_subnet_host_routes: 20,
            max_allowed_address_pairs: 10,
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !matches!(
            self.identity.mode.as_str(),
            "builtin" | "keystone" | "noauth"
        ) {
            bail!(
                "identity.mode: '{}' is not one of builtin, keystone, noauth",
                self.identity.mode
            );
        }
        if self.identity.mode == "keystone" && self.identity.keystone.is_none() {
            bail!("identity.keystone: required when identity.mode = \"keystone\"");
        }
        for k in self.quotas.keys() {
            if !QUOTA_RESOURCES.iter().any(|(r, _)| r == k) {
                bail!(
                    "quotas.{k}: unknown quota resource (known: network, subnet, port, router, floatingip, security_group, security_group_rule)"
                );
            }
        }
        self.engine_config().map(|_| ())
    }

    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let n = &self.network;
        let mac = n.base_mac.parse::<neutrino_net::Mac>().map_err(|_| {
            anyhow::anyhow!("network.base_mac: '{}' is not a MAC address", n.base_mac)
        })?;
        let mut vxlan = Vec::new();
        for r in &n.vxlan_vni_ranges {
            let (a, b) = r.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("network.vxlan_vni_ranges: '{r}' is not first:last")
            })?;
            let (a, b): (u32, u32) = (a.parse()?, b.parse()?);
            if a == 0 || a > b || b > 16_777_215 {
                bail!(
                    "network.vxlan_vni_ranges: '{r}' must satisfy 1 <= first <= last <= 16777215"
                );
            }
            vxlan.push((a, b));
        }
        let mut vlan = Vec::new();
        for r in &n.network_vlan_ranges {
            let parts: Vec<&str> = r.split(':').collect();
            let [p, a, b] = parts[..] else {
                bail!("network.network_vlan_ranges: '{r}' is not physnet:first:last");
            };
            let (a, b): (u32, u32) = (a.parse()?, b.parse()?);
            if a == 0 || a > b || b > 4094 {
                bail!("network.network_vlan_ranges: '{r}' must satisfy 1 <= first <= last <= 4094");
            }
            vlan.push((p.to_string(), a, b));
        }
        for t in &n.tenant_network_types {
            if !matches!(t.as_str(), "vxlan" | "vlan" | "local") {
                bail!("network.tenant_network_types: '{t}' is not one of vxlan, vlan, local");
            }
        }
        let mut defaults = EngineConfig::default();
        for (k, v) in &self.quotas {
            defaults.quota_defaults.insert(k.clone(), *v);
        }
        Ok(EngineConfig {
            base_mac: mac,
            tenant_network_types: n.tenant_network_types.clone(),
            vxlan_ranges: vxlan,
            vlan_ranges: vlan,
            flat_networks: n.flat_networks.clone(),
            global_physnet_mtu: n.global_physnet_mtu,
            dns_domain: n.dns_domain.clone(),
            quota_defaults: defaults.quota_defaults,
            max_dns_nameservers: self.api.max_dns_nameservers,
            max_subnet_host_routes: self.api.max_subnet_host_routes,
            max_allowed_address_pairs: self.api.max_allowed_address_pairs,
            max_routes: defaults.max_routes,
            pagination_max_limit: self.api.pagination_max_limit,
            max_bulk: self.api.max_bulk,
            feed_history: self.agents.feed_history,
        })
    }
}
