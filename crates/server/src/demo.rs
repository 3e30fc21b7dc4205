//! `neutrino demo up|down`: a server and an agent on this machine, a network,
//! and two instances (network namespaces) that get their addresses from DHCP
//! and ping each other. It uses the same pieces an operator would: the
//! server on its embedded store, the agent in this host's namespace, the API
//! through Keystone tokens, `vif plug` as the hypervisor, a real DHCP client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const INSTANCES: [&str; 2] = ["demo-vm1", "demo-vm2"];
const CIDR: &str = "198.51.100.0/24";

/// Applies a udhcpc lease inside the instance's namespace (never /etc).
const UDHCPC_HOOK: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr replace "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done ;;
esac
exit 0
"#;

struct Api {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value, Option<String>)> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if !self.token.is_empty() {
            req = req.header("x-auth-token", &self.token);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let resp = self
            .http
            .request(req.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = resp.status().as_u16();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, v, token))
    }

    async fn create(&self, path: &str, key: &str, body: Value) -> anyhow::Result<Value> {
        let (status, v, _) = self.call("POST", path, Some(json!({ key: body }))).await?;
        if status != 201 {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v[key].clone())
    }
}

fn spawn(exe: &Path, args: &[&str], log: &Path) -> anyhow::Result<u32> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    // Its own process group: it outlives `demo up` and ignores this terminal's ^C.
    let child = std::os::unix::process::CommandExt::process_group(
        Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
        0,
    )
    .spawn()
    .with_context(|| format!("cannot start {}", exe.display()))?;
    Ok(child.id())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("timed out waiting for {what}")
}

fn password(clouds: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(clouds)
        .with_context(|| format!("cannot read {}", clouds.display()))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("password: ").map(str::to_string))
        .context("no admin password in clouds.yaml")
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .chain(
            ["/usr/sbin", "/sbin"]
                .iter()
                .map(|d| Path::new(d).join(name)),
        )
        .find(|p| p.exists())
}

pub async fn up(dir: &Path, port: u16) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the demo creates network namespaces and bridges: run it as root");
    }
    let udhcpc =
        which("udhcpc").context("the demo needs udhcpc (Debian: apt-get install udhcpc)")?;
    if let Ok(pids) = std::fs::read_to_string(dir.join("pids"))
        && pids
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .any(alive)
    {
        bail!(
            "a demo is already up in {}: run `neutrino demo down` first",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let exe = std::env::current_exe()?;
    let server_toml = dir.join("server.toml");
    std::fs::write(
        &server_toml,
        format!(
            "# neutrino demo: the server on its embedded default, one local (single-host) network type.\n\
             [server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[network]\ntenant_network_types = [\"local\"]\n",
            dir.join("server").display()
        ),
    )?;
    let agent_toml = dir.join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!(
            "# neutrino demo: the agent for this machine, serving DHCP for every network.\n\
             [agent]\nhost = \"demo-host\"\nserver_url = \"http://127.0.0.1:{port}\"\nsecret_file = \"{}\"\n\
             namespace_prefix = \"demo-\"\nstate_dir = \"{}\"\nmetrics_listen = \"127.0.0.1:{}\"\nreport_interval_secs = 2\n\
             [dhcp]\nmode = \"all\"\ndriver = \"native\"\n",
            dir.join("server/agent-secret").display(),
            dir.join("agent").display(),
            port + 1
        ),
    )?;
    let hook = dir.join("udhcpc-hook.sh");
    std::fs::write(&hook, UDHCPC_HOOK)?;
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    let server = spawn(
        &exe,
        &[
            "server",
            "--config",
            server_toml.to_str().unwrap_or_default(),
        ],
        &dir.join("server.log"),
    )?;
    std::fs::write(dir.join("pids"), format!("{server}\n"))?;
    println!(
        "started the server (pid {server}) on http://127.0.0.1:{port}/, log {}",
        dir.join("server.log").display()
    );
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    let mut api = Api {
        http: Client::builder(TokioExecutor::new()).build(connector),
        base: format!("http://127.0.0.1:{port}"),
        token: String::new(),
    };
    wait_for("the server", Duration::from_secs(30), || async {
        api.call("GET", "/", None).await.is_ok()
    })
    .await?;
    let agent = spawn(
        &exe,
        &["agent", "--config", agent_toml.to_str().unwrap_or_default()],
        &dir.join("agent.log"),
    )?;
    std::fs::write(dir.join("pids"), format!("{server}\n{agent}\n"))?;
    println!(
        "started the agent (pid {agent}), log {}",
        dir.join("agent.log").display()
    );

    let clouds = dir.join("server/clouds.yaml");
    let login = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password(&clouds)?}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let (status, _, token) = api.call("POST", "/v3/auth/tokens", Some(login)).await?;
    api.token = token
        .filter(|_| status == 201)
        .context("cannot log in as admin")?;

    let net = api
        .create("/v2.0/networks", "network", json!({"name": "demo-net"}))
        .await?;
    let net_id = net["id"].as_str().unwrap_or_default().to_string();
    std::fs::write(dir.join("network"), &net_id)?;
    let sub = api
        .create(
            "/v2.0/subnets",
            "subnet",
            json!({"network_id": net_id, "name": "demo-subnet", "ip_version": 4, "cidr": CIDR,
            "dns_nameservers": ["198.51.100.53"]}),
        )
        .await?;
    println!(
        "created network demo-net ({net_id}, type {}) and subnet {} with gateway {}",
        net["provider:network_type"].as_str().unwrap_or("?"),
        sub["cidr"].as_str().unwrap_or("?"),
        sub["gateway_ip"].as_str().unwrap_or("none")
    );
    let agent_cfg = neutrino_agent::config::AgentConfig::load(Some(&agent_toml))?;
    let mut addrs = Vec::new();
    for name in INSTANCES {
        let p = api
            .create("/v2.0/ports", "port", json!({"network_id": net_id, "name": name, "dns_name": name, "device_id": name, "device_owner": "compute:demo"}))
            .await?;
        let id = p["id"].as_str().unwrap_or_default().to_string();
        let ip = p["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let tap = neutrino_agent::vif::plug(&agent_cfg, &id, name, "eth0", 1500).await?;
        println!(
            "booted {name}: port {id}, MAC {}, address {ip} chosen by IPAM; plugged as {tap}",
            p["mac_address"].as_str().unwrap_or("?")
        );
        addrs.push((name, id, ip));
    }
    for (name, id, ip) in &addrs {
        wait_for(&format!("{name}'s port to turn ACTIVE"), Duration::from_secs(30), || async {
            matches!(api.call("GET", &format!("/v2.0/ports/{id}"), None).await, Ok((200, v, _)) if v["port"]["status"] == "ACTIVE")
        })
        .await?;
        let out = run(Command::new("ip")
            .args(["netns", "exec", name])
            .arg(&udhcpc)
            .args([
                "-i", "eth0", "-q", "-f", "-n", "-t", "10", "-T", "1", "-O", "mtu", "-s",
            ])
            .arg(&hook))?;
        let got = run(Command::new("ip").args([
            "netns", "exec", name, "ip", "-4", "-o", "addr", "show", "dev", "eth0",
        ]))?;
        if !got.contains(&format!("{ip}/")) {
            bail!("{name} did not get {ip} from DHCP:\n{out}\n{got}");
        }
        println!("{name} is ACTIVE and got {ip} from DHCP (udhcpc)");
    }
    let ping = run(Command::new("ip").args([
        "netns",
        "exec",
        addrs[0].0,
        "ping",
        "-c",
        "3",
        "-i",
        "0.2",
        &addrs[1].2,
    ]))?;
    println!(
        "\n$ ip netns exec {} ping -c 3 {}\n{ping}",
        addrs[0].0, addrs[1].2
    );
    println!(
        "How to look:\n  export OS_CLIENT_CONFIG_FILE={}\n  openstack --os-cloud neutrino port list --network demo-net\n  \
         openstack --os-cloud neutrino network agent list\n  ip netns exec demo-vm1 ip addr show eth0\n  \
         neutrino agent status --config {}\n  curl -s http://127.0.0.1:{}/metrics | grep neutrino_dhcp\n\
         Remove it all: neutrino demo down",
        clouds.display(),
        agent_toml.display(),
        port + 1
    );
    Ok(())
}

pub async fn down(dir: &Path) -> anyhow::Result<()> {
    // Instances first (deleting a namespace deletes its veth and so the tap),
    // then the processes the demo started, by PID, then what the agent built:
    // its DHCP namespaces (prefix demo-) and the network's bridge.
    for name in INSTANCES {
        if tokio::task::spawn_blocking(move || {
            neutrino_dataplane::netns::list().map(|l| l.iter().any(|n| n == name))
        })
        .await??
        {
            tokio::task::spawn_blocking(move || neutrino_dataplane::netns::delete(name)).await??;
            println!("removed instance {name}");
        }
    }
    if let Ok(pids) = std::fs::read_to_string(dir.join("pids")) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let pid = nix::unistd::Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
                for _ in 0..50 {
                    if nix::sys::signal::kill(pid, None).is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                println!("stopped pid {pid}");
            }
        }
    }
    let owned: Vec<String> = tokio::task::spawn_blocking(neutrino_dataplane::netns::list)
        .await??
        .into_iter()
        .filter(|n| n.starts_with("demo-qdhcp-"))
        .collect();
    for ns in owned {
        let n = ns.clone();
        tokio::task::spawn_blocking(move || neutrino_dataplane::netns::delete(&n)).await??;
        println!("removed namespace {ns}");
    }
    if let Ok(net_id) = std::fs::read_to_string(dir.join("network")) {
        let bridge = neutrino_net::names::bridge(net_id.trim());
        let ops = vec![neutrino_dataplane::Op::DeleteLink {
            name: bridge.clone(),
        }];
        tokio::task::spawn_blocking(move || neutrino_dataplane::Host::new().apply(&ops)).await??;
        println!("removed bridge {bridge}");
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
        println!("removed {}", dir.display());
    }
    Ok(())
}
