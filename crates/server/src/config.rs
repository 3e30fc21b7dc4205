//! The one TOML configuration file. Every key is optional; `neutrino.example.toml`
//! at the repository root lists them all with their defaults. Unknown keys are
//! refused so a typo stops the start with a message naming it, and values
//! with a fixed form (the identity mode, network types, segment ranges, the
//! base MAC) are typed as they are parsed: a bad one stops the start with an
//! error that names its key, the line and the accepted values.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use neutrino_engine::{EngineConfig, QUOTA_RESOURCES};
use neutrino_identity::{KeystoneConfig, ProjectConfig, UserConfig};
use neutrino_net::Mac;
use serde::Deserialize;

/// A config value that is one of a few words. The error of a bad one names
/// the key (`$key`) and the words it accepts.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $key:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The word as written in the config file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(s: String) -> Result<Self, String> {
                match s.as_str() {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "{}: '{s}' is not one of {}",
                        $key,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

word_enum! {
    /// `identity.mode`: who answers for tokens.
    IdentityMode, "identity.mode" {
        /// Neutrino answers Keystone v3 itself.
        Builtin = "builtin",
        /// Tokens are validated against an external Keystone.
        Keystone = "keystone",
        /// Every request is admin (development only).
        NoAuth = "noauth",
    }
}

word_enum! {
    /// An entry of `network.tenant_network_types`.
    NetworkType, "network.tenant_network_types" {
        Vxlan = "vxlan",
        Vlan = "vlan",
        Local = "local",
    }
}

/// `network.base_mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BaseMac(pub Mac);

impl TryFrom<String> for BaseMac {
    type Error = String;

    fn try_from(s: String) -> Result<BaseMac, String> {
        s.parse()
            .map(BaseMac)
            .map_err(|_| format!("network.base_mac: '{s}' is not a MAC address"))
    }
}

/// An entry of `network.vxlan_vni_ranges`: `"first:last"`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct VniRange {
    pub first: u32,
    pub last: u32,
}

/// The largest VXLAN network identifier (24 bits).
const MAX_VNI: u32 = 16_777_215;
/// The largest usable VLAN id.
const MAX_VLAN: u32 = 4094;

/// `first` and `last` of a segment range, both in `1..=max` and in order.
fn segment_range(first: &str, last: &str, max: u32) -> Option<(u32, u32)> {
    let (a, b): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
    (a != 0 && a <= b && b <= max).then_some((a, b))
}

impl TryFrom<String> for VniRange {
    type Error = String;

    fn try_from(r: String) -> Result<VniRange, String> {
        const KEY: &str = "network.vxlan_vni_ranges";
        let (a, b) = r
            .split_once(':')
            .ok_or_else(|| format!("{KEY}: '{r}' is not first:last"))?;
        let (first, last) = segment_range(a, b, MAX_VNI)
            .ok_or_else(|| format!("{KEY}: '{r}' must satisfy 1 <= first <= last <= {MAX_VNI}"))?;
        Ok(VniRange { first, last })
    }
}

/// An entry of `network.network_vlan_ranges`: `"physnet:first:last"`, inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct VlanRange {
    pub physnet: String,
    pub first: u32,
    pub last: u32,
}

impl TryFrom<String> for VlanRange {
    type Error = String;

    fn try_from(r: String) -> Result<VlanRange, String> {
        const KEY: &str = "network.network_vlan_ranges";
        let parts: Vec<&str> = r.split(':').collect();
        let [physnet, a, b] = parts[..] else {
            return Err(format!("{KEY}: '{r}' is not physnet:first:last"));
        };
        let (first, last) = segment_range(a, b, MAX_VLAN)
            .ok_or_else(|| format!("{KEY}: '{r}' must satisfy 1 <= first <= last <= {MAX_VLAN}"))?;
        Ok(VlanRange {
            physnet: physnet.to_string(),
            first,
            last,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub identity: IdentityConfig,
    pub network: NetworkConfig,
    pub quotas: BTreeMap<String, i64>,
    pub api: ApiConfig,
    pub agents: AgentsConfig,
    pub metadata: MetadataConfig,
}

word_enum! {
    /// `metadata.backend`: who answers instances at 169.254.169.254.
    MetadataBackend, "metadata.backend" {
        /// Neutrino serves the OpenStack and EC2 trees from its own model.
        Builtin = "builtin",
        /// Requests go on to Nova's metadata API, signed.
        Proxy = "proxy",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub backend: MetadataBackend,
    /// Nova's metadata API (`proxy` only).
    pub nova_metadata_url: String,
    /// Nova's `[neutron] metadata_proxy_shared_secret` (`proxy` only).
    pub metadata_proxy_shared_secret: String,
    /// Longest wait for Nova's answer.
    pub nova_timeout_secs: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            backend: MetadataBackend::Builtin,
            nova_metadata_url: "http://127.0.0.1:8775".into(),
            metadata_proxy_shared_secret: String::new(),
            nova_timeout_secs: 60,
        }
    }
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
    pub mode: IdentityMode,
    pub token_ttl_secs: u64,
    pub region: String,
    pub projects: Vec<ProjectConfig>,
    pub users: Vec<UserConfig>,
    pub keystone: Option<KeystoneConfig>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            mode: IdentityMode::Builtin,
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
    pub base_mac: BaseMac,
    pub tenant_network_types: Vec<NetworkType>,
    /// VNI ranges for project VXLAN networks.
    pub vxlan_vni_ranges: Vec<VniRange>,
    /// VLAN ranges for project VLAN networks.
    pub network_vlan_ranges: Vec<VlanRange>,
    /// Physical networks that may carry flat networks ("*" = any).
    pub flat_networks: Vec<String>,
    pub global_physnet_mtu: u32,
    pub dns_domain: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            base_mac: BaseMac(Mac::new([0xfa, 0x16, 0x3e, 0, 0, 0])),
            tenant_network_types: vec![NetworkType::Vxlan],
            vxlan_vni_ranges: vec![VniRange {
                first: 1,
                last: MAX_VNI,
            }],
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
        if self.identity.mode == IdentityMode::Keystone && self.identity.keystone.is_none() {
            bail!("identity.keystone: required when identity.mode = \"keystone\"");
        }
        for k in self.quotas.keys() {
            if !QUOTA_RESOURCES.iter().any(|(r, _)| r == k) {
                bail!(
                    "quotas.{k}: unknown quota resource (known: network, subnet, port, router, floatingip, security_group, security_group_rule)"
                );
            }
        }
        if self.metadata.backend == MetadataBackend::Proxy {
            if self.metadata.metadata_proxy_shared_secret.is_empty() {
                bail!(
                    "metadata.metadata_proxy_shared_secret: required when metadata.backend = \"proxy\" (Nova refuses unsigned requests)"
                );
            }
            if !(1..=70).contains(&self.metadata.nova_timeout_secs) {
                bail!(
                    "metadata.nova_timeout_secs: {} is not in 1..=70 (the agents wait 75 s for the server)",
                    self.metadata.nova_timeout_secs
                );
            }
            if !self.metadata.nova_metadata_url.starts_with("http://") {
                bail!(
                    "metadata.nova_metadata_url: '{}' is not an http:// URL",
                    self.metadata.nova_metadata_url
                );
            }
        }
        self.engine_config().map(|_| ())
    }

    /// The metadata backend the configuration names.
    pub fn metadata_backend(&self) -> neutrino_metadata::Backend {
        let m = &self.metadata;
        match m.backend {
            MetadataBackend::Builtin => neutrino_metadata::Backend::Builtin,
            MetadataBackend::Proxy => neutrino_metadata::Backend::Proxy(
                neutrino_metadata::NovaProxy::new(neutrino_metadata::ProxyConfig {
                    nova_url: m.nova_metadata_url.clone(),
                    shared_secret: m.metadata_proxy_shared_secret.clone(),
                    timeout: std::time::Duration::from_secs(m.nova_timeout_secs),
                }),
            ),
        }
    }

    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let n = &self.network;
        let mut defaults = EngineConfig::default();
        for (k, v) in &self.quotas {
            defaults.quota_defaults.insert(k.clone(), *v);
        }
        Ok(EngineConfig {
            base_mac: n.base_mac.0,
            tenant_network_types: n
                .tenant_network_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            vxlan_ranges: n
                .vxlan_vni_ranges
                .iter()
                .map(|r| (r.first, r.last))
                .collect(),
            vlan_ranges: n
                .network_vlan_ranges
                .iter()
                .map(|r| (r.physnet.clone(), r.first, r.last))
                .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.check().map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    #[test]
    fn typed_values_parse() {
        let cfg = parse(
            "[identity]\nmode = \"noauth\"\n\
             [network]\nbase_mac = \"FA-16-3E-01-00-00\"\n\
             tenant_network_types = [\"vlan\", \"local\"]\n\
             vxlan_vni_ranges = [\"5:10\", \"20:20\"]\n\
             network_vlan_ranges = [\"physnet1:100:199\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.identity.mode, IdentityMode::NoAuth);
        assert_eq!(cfg.identity.mode.to_string(), "noauth");
        let e = cfg.engine_config().unwrap();
        assert_eq!(e.base_mac, Mac::new([0xfa, 0x16, 0x3e, 1, 0, 0]));
        assert_eq!(e.tenant_network_types, ["vlan", "local"]);
        assert_eq!(e.vxlan_ranges, [(5, 10), (20, 20)]);
        assert_eq!(e.vlan_ranges, [("physnet1".to_string(), 100, 199)]);
    }

    #[test]
    fn defaults_are_the_engines() {
        let e = Config::default().engine_config().unwrap();
        let d = EngineConfig::default();
        assert_eq!(e.base_mac, d.base_mac);
        assert_eq!(e.tenant_network_types, d.tenant_network_types);
        assert_eq!(e.vxlan_ranges, d.vxlan_ranges);
        assert_eq!(e.vlan_ranges, d.vlan_ranges);
        assert_eq!(Config::default().identity.mode, IdentityMode::Builtin);
    }

    #[test]
    fn a_bad_value_names_its_key_and_line() {
        for (text, key, why) in [
            (
                "[identity]\nmode = \"ldap\"\n",
                "identity.mode",
                "'ldap' is not one of builtin, keystone, noauth",
            ),
            ("[identity]\nmode = 3\n", "", "string"),
            (
                "[network]\nbase_mac = \"fa:16:3e\"\n",
                "network.base_mac",
                "'fa:16:3e' is not a MAC address",
            ),
            (
                "[network]\ntenant_network_types = [\"vxlan\", \"gre\"]\n",
                "network.tenant_network_types",
                "'gre' is not one of vxlan, vlan, local",
            ),
            (
                "[network]\nvxlan_vni_ranges = [\"5:1\"]\n",
                "network.vxlan_vni_ranges",
                "'5:1' must satisfy 1 <= first <= last <= 16777215",
            ),
            (
                "[network]\nvxlan_vni_ranges = [\"0:7\"]\n",
                "network.vxlan_vni_ranges",
                "must satisfy",
            ),
            (
                "[network]\nvxlan_vni_ranges = [\"7\"]\n",
                "network.vxlan_vni_ranges",
                "'7' is not first:last",
            ),
            (
                "[network]\nvxlan_vni_ranges = [\"a:b\"]\n",
                "network.vxlan_vni_ranges",
                "'a:b' must satisfy",
            ),
            (
                "[network]\nnetwork_vlan_ranges = [\"physnet1:1:4095\"]\n",
                "network.network_vlan_ranges",
                "<= 4094",
            ),
            (
                "[network]\nnetwork_vlan_ranges = [\"100:200\"]\n",
                "network.network_vlan_ranges",
                "'100:200' is not physnet:first:last",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key) && err.contains(why), "{text}: {err}");
            assert!(
                err.contains("line "),
                "the error should give the line: {err}"
            );
        }
        let err = parse("[identity]\nmode = \"keystone\"\n").unwrap_err();
        assert!(err.contains("identity.keystone"), "{err}");
    }
}
