//! First-start setup of identity: the token signing key, the `admin` project
//! and user with a generated password, and a ready `clouds.yaml`.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use neutrino_identity::{BuiltinConfig, BuiltinIdentity, Identity, KeystoneValidator};

use crate::config::{Config, IdentityMode};

/// Writes a file readable only by its owner (keys and passwords).
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(b)
}

fn signing_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join("token-signing.key");
    if let Ok(bytes) = fs::read(&path) {
        return bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()));
    }
    let key = random_bytes::<32>()?;
    write_private(&path, &key)?;
    Ok(key)
}

/// The secret host agents present (`<data_dir>/agent-secret`, made on first
/// start). Agents read the same file, or a copy of it.
pub fn agent_secret(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("agent-secret");
    if let Ok(s) = fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let hex: String = random_bytes::<24>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write_private(&path, format!("{hex}\n").as_bytes())?;
    Ok(hex)
}

pub async fn identity(cfg: &Config, addr: SocketAddr) -> anyhow::Result<Identity> {
    match cfg.identity.mode {
        IdentityMode::NoAuth => {
            tracing::warn!(
                "identity.mode = noauth: every request acts as admin (development only)"
            );
            Ok(Identity::NoAuth)
        }
        IdentityMode::Keystone => {
            let k = cfg
                .identity
                .keystone
                .clone()
                .context("identity.keystone is required")?;
            Ok(Identity::Keystone(Arc::new(
                KeystoneValidator::new(k).context("identity.keystone")?,
            )))
        }
        IdentityMode::Builtin => builtin(cfg, addr),
    }
}

fn builtin(cfg: &Config, addr: SocketAddr) -> anyhow::Result<Identity> {
    let dir = &cfg.server.data_dir;
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let network_url = cfg
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{host}/"));
    let network_url = if network_url.ends_with('/') {
        network_url
    } else {
        format!("{network_url}/")
    };
    let identity_url = format!("{network_url}v3");
    // The admin password is generated once and kept (hashed) in the data dir.
    let hash_path = dir.join("admin-password.hash");
    let clouds_path = dir.join("clouds.yaml");
    let hash = match fs::read_to_string(&hash_path) {
        Ok(h) => h.trim().to_string(),
        Err(_) => {
            let pw: String = random_bytes::<18>()?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let hash = neutrino_identity::hash_password(&pw);
            let yaml = format!(
                "# Written by neutrino server on first start.\n# export OS_CLIENT_CONFIG_FILE={}\nclouds:\n  neutrino:\n    auth:\n      auth_url: {identity_url}\n      username: admin\n      password: {pw}\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    identity_api_version: 3\n    region_name: {}\n    interface: public\n",
                clouds_path.display(),
                cfg.identity.region
            );
            write_private(&clouds_path, yaml.as_bytes())?;
            write_private(&hash_path, hash.as_bytes())?;
            hash
        }
    };
    let config = BuiltinConfig {
        token_ttl_secs: cfg.identity.token_ttl_secs,
        region: cfg.identity.region.clone(),
        projects: cfg.identity.projects.clone(),
        users: cfg.identity.users.clone(),
    }
    .with_admin(hash);
    let identity = BuiltinIdentity::new(config, signing_key(dir)?, network_url, identity_url)
        .context("identity")?;
    let abs = fs::canonicalize(&clouds_path).unwrap_or(clouds_path);
    println!(
        "clouds.yaml: {} (export OS_CLIENT_CONFIG_FILE={} ; openstack --os-cloud neutrino network list)",
        abs.display(),
        abs.display()
    );
    Ok(Identity::Builtin(Arc::new(identity)))
}
