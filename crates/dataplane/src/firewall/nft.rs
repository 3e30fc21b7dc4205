//! The edge: reading and writing the kernel's ruleset with the `nft` tool.
//! A script given to `nft -f` is one netlink batch: all of it commits or
//! none does, so traffic never sees a half-applied change.

use std::io::Write;
use std::process::{Command, Stdio};

use super::observe::{ObserveError, Observed};
use super::ruleset::{Family, TABLE};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("nft failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Observe(#[from] ObserveError),
}

/// Reads both of the agent's firewall tables (absent tables are simply not
/// there).
pub fn observe() -> Result<Observed, NftError> {
    observe_families(&[Family::Bridge, Family::Inet])
}

/// Reads the agent's table in each of these families, in the namespace the
/// calling thread is in.
pub fn observe_families(families: &[Family]) -> Result<Observed, NftError> {
    let mut o = Observed::default();
    for &f in families {
        let out = Command::new("nft")
            .args(["-j", "list", "table", f.as_str(), TABLE])
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            o.add_json(f, &String::from_utf8_lossy(&out.stdout))?;
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.contains("No such file or directory") {
                return Err(NftError::Failed(err.trim().to_string()));
            }
        }
    }
    Ok(o)
}

/// Runs a script as one transaction.
pub fn apply(script: &str) -> Result<(), NftError> {
    if script.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Deletes both tables (when the agent is told to stop filtering).
pub fn remove_tables() -> Result<(), NftError> {
    let o = observe()?;
    let script: String = o
        .tables
        .iter()
        .map(|f| format!("delete table {f} {TABLE}\n"))
        .collect();
    apply(&script)
}

/// Bridged IPv4 and IPv6 must pass the inet hooks (br_netfilter) for
/// conntrack to see instance traffic; these switches are per namespace.
pub fn enable_bridge_netfilter() -> std::io::Result<()> {
    for f in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        std::fs::write(format!("/proc/sys/net/bridge/{f}"), "1")?;
    }
    Ok(())
}
