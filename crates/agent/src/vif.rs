//! `neutrino vif plug|unplug`: what a hypervisor does for an instance NIC, for
//! this machine's tests and demos. Plugging binds the port to this host
//! through the server (as Nova does), then creates a veth pair: `tap<port>`
//! on the host, `eth0` with the port's MAC inside the instance's namespace.
//! The agent then puts the tap on the right bridge and reports the port ACTIVE.

use anyhow::{Context, bail};
use neutrino_dataplane::{netns, plug_veth, unplug};
use neutrino_net::names;

use crate::client::ServerClient;
use crate::config::AgentConfig;
use neutrino_net::Mac;

pub async fn plug(
    cfg: &AgentConfig,
    port_id: &str,
    namespace: &str,
    ifname: &str,
    mtu: u32,
) -> anyhow::Result<String> {
    let client = ServerClient::new(&cfg.agent.server_url, &cfg.secret()?);
    let port = client
        .bind(&cfg.agent.host, port_id)
        .await
        .context("binding the port")?;
    let Ok(mac) = port.mac_address.parse::<Mac>() else {
        bail!("port {port_id} has an unusable MAC {:?}", port.mac_address);
    };
    let tap = names::tap(&port.id);
    let (t, ns, ifn) = (tap.clone(), namespace.to_string(), ifname.to_string());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if !netns::list()?.contains(&ns) {
            netns::create(&ns).with_context(|| format!("creating namespace {ns}"))?;
        }
        plug_veth(&t, &ns, &ifn, mac, mtu)?;
        Ok(())
    })
    .await??;
    Ok(tap)
}

pub async fn unplug_port(port_id: &str) -> anyhow::Result<String> {
    let tap = names::tap(port_id);
    let t = tap.clone();
    tokio::task::spawn_blocking(move || unplug(&t)).await??;
    Ok(tap)
}
