//! The dnsmasq driver, the classic way (nova-network's FlatDHCP, Neutron's
//! DHCP agent): one dnsmasq per network inside the network's DHCP namespace,
//! static leases only, from a generated hosts file and options file that it
//! re-reads on SIGHUP. A deleted port's lease is dropped at once with
//! `dhcp_release` (nova's `force_dhcp_release`), so its address is reusable.
//! dnsmasq processes outlive an agent restart; the agent finds them again by
//! their pid files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use neutrino_dataplane::netns;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::config::AgentConfig;
use crate::desired::{DhcpHost, DhcpService};
use crate::dhcp::MetricsSource;

/// What the dnsmasq driver counts (dnsmasq counts its packets itself).
#[derive(Default)]
pub struct DnsmasqCounters {
    reloads: AtomicU64,
    starts: AtomicU64,
}

impl MetricsSource for DnsmasqCounters {
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# TYPE neutrino_dnsmasq_reloads_total counter\nneutrino_dnsmasq_reloads_total {}\n\
             # TYPE neutrino_dnsmasq_starts_total counter\nneutrino_dnsmasq_starts_total {}",
            self.reloads.load(Ordering::Relaxed),
            self.starts.load(Ordering::Relaxed)
        );
    }
}

pub struct DnsmasqDriver {
    dir: PathBuf,
    dnsmasq: String,
    dhcp_release: String,
    /// network id → what its dnsmasq serves now.
    served: BTreeMap<String, DhcpService>,
    /// network id → the dnsmasq this agent started (its pid file may not be
    /// written yet; after a restart the pid files are all there is). Kept as
    /// a child so its exit is noticed and it is reaped.
    started: BTreeMap<String, std::process::Child>,
    counters: Arc<DnsmasqCounters>,
}

/// `--dhcp-hostsfile`: `mac,name,ip` per reservation, with `set:port-<id>`
/// after the MAC for a port with extra options (the tag carries them), as
/// Neutron writes it. Only those ports are tagged: see [`reload_is_safe`].
pub fn hosts_file(s: &DhcpService) -> String {
    let mut out = String::new();
    for h in &s.hosts {
        let tag = if h.extra.is_empty() {
            String::new()
        } else {
            format!("set:port-{},", h.port_id)
        };
        let _ = writeln!(out, "{},{tag}{},{}", h.mac, h.hostname, h.ip);
    }
    out
}

/// Whether dnsmasq may re-read its files on SIGHUP. dnsmasq 2.90 (Debian
/// 12's) frees the tags of the hosts file it read before while a lease
/// still points at them: a SIGHUP after a tagged host took a lease is a
/// segfault. So while one does, the change is a restart instead (the leases
/// file keeps every lease across it).
pub fn reload_is_safe(old_hosts: &str, leases: &str) -> bool {
    let leased: Vec<String> = leases
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_ascii_lowercase)
        .collect();
    !old_hosts.lines().any(|l| {
        let mut fields = l.split(',');
        let mac = fields.next().unwrap_or_default().to_ascii_lowercase();
        let tagged = fields.next().is_some_and(|f| f.starts_with("set:"));
        tagged && leased.contains(&mac)
    })
}

/// `--dhcp-optsfile`: per-subnet options, then per-port extra options.
pub fn opts_file(s: &DhcpService) -> String {
    let mut out = String::new();
    for sub in &s.subnets {
        let tag = format!("tag:subnet-{}", sub.id);
        match sub.gateway {
            Some(gw) => {
                let _ = writeln!(out, "{tag},option:router,{gw}");
            }
            // No gateway: send no router rather than dnsmasq's default (itself).
            None => {
                let _ = writeln!(out, "{tag},option:router");
            }
        }
        if !sub.dns.is_empty() {
            let dns: Vec<String> = sub.dns.iter().map(|d| d.to_string()).collect();
            let _ = writeln!(out, "{tag},option:dns-server,{}", dns.join(","));
        } else {
            let _ = writeln!(out, "{tag},option:dns-server");
        }
        if !sub.routes.is_empty() {
            // With 121 present clients ignore option 3: repeat the default route in it.
            let mut routes: Vec<String> = sub
                .routes
                .iter()
                .map(|(d, l, via)| format!("{d}/{l},{via}"))
                .collect();
            if let Some(gw) = sub.gateway {
                routes.push(format!("0.0.0.0/0,{gw}"));
            }
            let _ = writeln!(
                out,
                "{tag},option:classless-static-route,{}",
                routes.join(",")
            );
        }
        let _ = writeln!(out, "{tag},option:mtu,{}", s.mtu);
    }
    for h in &s.hosts {
        for (name, value) in &h.extra {
            // One option a line: a line break in either field would let a
            // port owner write options for everyone (the API refuses them too).
            if name.chars().chain(value.chars()).any(char::is_control) {
                tracing::warn!(port = %h.port_id, "skipping an extra DHCP option with a control character");
                continue;
            }
            let opt = if name.chars().all(|c| c.is_ascii_digit()) {
                format!("option:{name}")
            } else if name == "server-ip-address" {
                // siaddr is dnsmasq's --dhcp-boot field, not an option line.
                continue;
            } else {
                format!("option:{name}")
            };
            let _ = writeln!(out, "tag:port-{},{opt},{value}", h.port_id);
        }
    }
    out
}

/// Addresses the served subnets hold, capped.
fn lease_max(s: &DhcpService) -> u64 {
    let total: u64 = s
        .subnets
        .iter()
        .map(|sub| 1u64 << (32 - u32::from(sub.prefix.min(32))))
        .sum();
    total.clamp(16, 1 << 24)
}

fn args(s: &DhcpService, dir: &Path) -> Vec<String> {
    let mut a = vec![
        "--no-hosts".into(),
        "--no-resolv".into(),
        "--keep-in-foreground".into(),
        "--conf-file=/dev/null".into(),
        "--port=0".into(),
        "--bind-interfaces".into(),
        format!("--interface={}", s.interface),
        "--except-interface=lo".into(),
        format!("--pid-file={}", dir.join("pid").display()),
        format!("--dhcp-hostsfile={}", dir.join("host").display()),
        format!("--dhcp-optsfile={}", dir.join("opts").display()),
        format!("--dhcp-leasefile={}", dir.join("leases").display()),
        // From the subnets, not the reservations: the command line must not
        // change (a restart) when a port comes or goes (a reload).
        format!("--dhcp-lease-max={}", lease_max(s)),
        // Authoritative for the MACs in the hosts file: a client asking for
        // an address it should not have is told so (NAK) at once. Silent
        // for every other MAC (RFC 2131 4.3.2: no record of the client, no
        // answer), the way the native server drops them: in multi-host mode
        // the other hosts' instances are heard over VXLAN and answered by
        // their own host, and a NAK from here would send them back to
        // discovery. `known` is the tag dnsmasq sets on a client a
        // `--dhcp-host` (hosts file) line matches; ignored clients get no
        // reply of any type.
        "--dhcp-authoritative".into(),
        "--dhcp-ignore=tag:!known".into(),
        "--log-facility=-".into(),
    ];
    if !s.domain.is_empty() {
        a.push(format!("--domain={}", s.domain));
    }
    for sub in &s.subnets {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(sub.prefix))
            .unwrap_or(0);
        a.push(format!(
            "--dhcp-range=set:subnet-{},{},static,{},{}s",
            sub.id,
            sub.network,
            std::net::Ipv4Addr::from(mask),
            s.lease_secs
        ));
    }
    a
}

/// Keeps the lease lines (`expiry mac ip name client-id`) whose MAC and
/// address are still reserved.
pub fn prune_leases(leases: &str, s: &DhcpService) -> String {
    let mut out = String::new();
    for line in leases.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let keep = f.len() >= 3
            && s.hosts.iter().any(|h| {
                h.mac.to_string() == f[1].to_ascii_lowercase() && h.ip.to_string() == f[2]
            });
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(tmp, path)
}

impl DnsmasqDriver {
    pub fn new(cfg: &AgentConfig) -> DnsmasqDriver {
        DnsmasqDriver {
            dir: cfg.agent.state_dir.join("dhcp"),
            dnsmasq: cfg.dhcp.dnsmasq_path.clone(),
            dhcp_release: cfg.dhcp.dhcp_release_path.clone(),
            served: BTreeMap::new(),
            started: BTreeMap::new(),
            counters: Arc::default(),
        }
    }

    fn net_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The running dnsmasq of a network: our child, or (after an agent
    /// restart) the one its pid file names, if that process is a dnsmasq.
    fn pid(&mut self, id: &str) -> Option<Pid> {
        if let Some(child) = self.started.get_mut(id) {
            match child.try_wait() {
                Ok(None) => return i32::try_from(child.id()).ok().map(Pid::from_raw),
                Ok(Some(status)) => {
                    tracing::warn!(network = %id, %status, "dnsmasq exited");
                }
                Err(e) => tracing::warn!(network = %id, error = %e, "cannot check dnsmasq"),
            }
            // Reaped: its pid file now names nothing of ours.
            self.started.remove(id);
            let _ = std::fs::remove_file(self.net_dir(id).join("pid"));
            return None;
        }
        let text = std::fs::read_to_string(self.net_dir(id).join("pid")).ok()?;
        let raw: i32 = text.trim().parse().ok()?;
        // A recycled pid must not get our signals.
        let comm = std::fs::read_to_string(format!("/proc/{raw}/comm")).ok()?;
        (comm.trim() == "dnsmasq").then(|| Pid::from_raw(raw))
    }

    /// Stops a network's dnsmasq and waits for it to go (2 s at most): a
    /// stop the agent chose is not reported as an exit, and our child is
    /// reaped rather than left a zombie.
    async fn stop(&mut self, id: &str, pid: Pid) {
        let mut child = self.started.remove(id);
        let _ = kill(pid, Signal::SIGTERM);
        for _ in 0..100 {
            let gone = match child.as_mut() {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => self.pid(id).is_none(),
            };
            if gone {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_file(self.net_dir(id).join("pid"));
    }

    /// Whether a dnsmasq this agent started has exited (the model loop then
    /// syncs again, which restarts it).
    pub fn needs_sync(&mut self) -> bool {
        let ids: Vec<String> = self.started.keys().cloned().collect();
        ids.iter().any(|id| self.pid(id).is_none())
    }

    pub async fn sync(
        &mut self,
        services: &BTreeMap<String, Arc<DhcpService>>,
    ) -> BTreeMap<String, String> {
        let mut failed = BTreeMap::new();
        // Networks no longer served here: stop their dnsmasq.
        let known: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for id in known.iter().filter(|id| !services.contains_key(*id)) {
            if let Some(pid) = self.pid(id) {
                self.stop(id, pid).await;
            }
            let _ = std::fs::remove_dir_all(self.net_dir(id));
            self.served.remove(id);
            self.started.remove(id);
            tracing::info!(network = %id, "dnsmasq stopped");
        }
        for (id, svc) in services {
            if let Err(e) = self.sync_one(id, svc).await {
                failed.insert(id.clone(), e);
            }
        }
        failed
    }

    async fn sync_one(&mut self, id: &str, svc: &DhcpService) -> Result<(), String> {
        let dir = self.net_dir(id);
        // dnsmasq drops root for `nobody` and must still read its files.
        for d in [&self.dir, &dir] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755));
        }
        let before = self.served.get(id).cloned();
        let running = self.pid(id);
        // After an agent restart `served` is empty but dnsmasq runs: compare
        // files, not memory, so an unchanged network is not even signalled.
        let hosts = hosts_file(svc);
        let opts = opts_file(svc);
        let read = |name: &str| std::fs::read_to_string(dir.join(name));
        let old_hosts = read("host").ok();
        let same_files =
            old_hosts.as_deref() == Some(hosts.as_str()) && read("opts").is_ok_and(|o| o == opts);
        let same_args = read("args").is_ok_and(|a| a == args(svc, &dir).join("\n"));
        let reloadable = same_files
            || reload_is_safe(
                old_hosts.as_deref().unwrap_or_default(),
                &read("leases").unwrap_or_default(),
            );
        if let (Some(pid), true, true) = (running, same_args, reloadable) {
            if !same_files {
                write_atomic(&dir.join("host"), &hosts).map_err(|e| e.to_string())?;
                write_atomic(&dir.join("opts"), &opts).map_err(|e| e.to_string())?;
                kill(pid, Signal::SIGHUP).map_err(|e| format!("cannot signal dnsmasq: {e}"))?;
                self.counters.reloads.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(old) = before {
                self.release_gone(&old, svc).await;
            }
            self.served.insert(id.to_string(), svc.clone());
            return Ok(());
        }
        // Not running, its command line must change (a new subnet), or a
        // reload would crash it: (re)start.
        if let Some(pid) = running {
            if same_args {
                tracing::info!(network = %id, "restarting dnsmasq: a tagged host holds a lease, a reload would crash it");
            }
            self.stop(id, pid).await;
        }
        write_atomic(&dir.join("host"), &hosts).map_err(|e| e.to_string())?;
        write_atomic(&dir.join("opts"), &opts).map_err(|e| e.to_string())?;
        // Leases of reservations that went while dnsmasq was down would block
        // their addresses for a new port: drop them before it reads the file.
        if let Ok(old) = std::fs::read_to_string(dir.join("leases")) {
            write_atomic(&dir.join("leases"), &prune_leases(&old, svc))
                .map_err(|e| e.to_string())?;
        }
        let argv = args(svc, &dir);
        write_atomic(&dir.join("args"), &argv.join("\n")).map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .map_err(|e| e.to_string())?;
        {
            use std::io::Write as _;
            let mut l = &log;
            let _ = writeln!(
                l,
                "neutrino-agent: starting {} {}",
                self.dnsmasq,
                argv.join(" ")
            );
        }
        let bin = self.dnsmasq.clone();
        let ns = svc.namespace.clone();
        // Spawned from a thread inside the namespace: the child is born there.
        let spawned = tokio::task::spawn_blocking(move || {
            netns::run_in(&ns, || {
                let err = log.try_clone()?;
                Command::new(&bin)
                    .args(&argv)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err)
                    .spawn()
            })
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot enter {}: {e}", svc.namespace))?
        .map_err(|e| format!("cannot start {}: {e}", self.dnsmasq))?;
        self.started.insert(id.to_string(), spawned);
        self.counters.starts.fetch_add(1, Ordering::Relaxed);
        tracing::info!(network = %id, namespace = %svc.namespace, hosts = svc.hosts.len(), "dnsmasq started");
        self.served.insert(id.to_string(), svc.clone());
        Ok(())
    }

    /// Leases of reservations that went are released in dnsmasq at once.
    async fn release_gone(&self, old: &DhcpService, new: &DhcpService) {
        let gone: Vec<DhcpHost> = old
            .hosts
            .iter()
            .filter(|h| !new.hosts.iter().any(|n| n.mac == h.mac && n.ip == h.ip))
            .cloned()
            .collect();
        if gone.is_empty() {
            return;
        }
        let (bin, ns, iface) = (
            self.dhcp_release.clone(),
            new.namespace.clone(),
            new.interface.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            netns::run_in(&ns, || {
                for h in gone {
                    let st = Command::new(&bin)
                        .args([iface.as_str(), &h.ip.to_string(), &h.mac.to_string()])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    if let Err(e) = st {
                        tracing::warn!(error = %e, ip = %h.ip, "dhcp_release failed");
                    }
                }
            })
        })
        .await;
    }

    pub fn metrics(&self) -> Arc<DnsmasqCounters> {
        self.counters.clone()
    }

    pub fn status(&self) -> Value {
        json!(
            self.served
                .iter()
                .map(|(id, s)| (
                    id.clone(),
                    json!({
                        "namespace": s.namespace,
                        "interface": s.interface,
                        "reservations": s.hosts.len(),
                        "pid": self.started.get(id).map(|c| c.id()),
                    })
                ))
                .collect::<serde_json::Map<_, _>>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::DhcpSubnet;

    fn service() -> DhcpService {
        DhcpService {
            network_id: "n1".into(),
            namespace: "qdhcp-n1".into(),
            interface: "ns-abc".into(),
            mtu: 1450,
            domain: "openstacklocal".into(),
            lease_secs: 600,
            subnets: vec![DhcpSubnet {
                id: "s1".into(),
                network: "10.0.0.0".parse().unwrap(),
                prefix: 24,
                gateway: Some("10.0.0.1".parse().unwrap()),
                dns: vec!["10.0.0.53".parse().unwrap()],
                routes: vec![(
                    "172.16.0.0".parse().unwrap(),
                    16,
                    "10.0.0.254".parse().unwrap(),
                )],
                server_ip: "10.0.0.2".parse().unwrap(),
            }],
            hosts: vec![DhcpHost {
                port_id: "p1".into(),
                mac: neutrino_net::Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1]),
                ip: "10.0.0.5".parse().unwrap(),
                subnet_id: "s1".into(),
                hostname: "host-10-0-0-5".into(),
                extra: vec![("tftp-server".into(), "10.0.0.9".into())],
            }],
        }
    }

    #[test]
    fn files_say_what_the_controller_decided() {
        let s = service();
        assert_eq!(
            hosts_file(&s),
            "fa:16:3e:00:00:01,set:port-p1,host-10-0-0-5,10.0.0.5\n"
        );
        // Only a port with extra options is tagged.
        let mut plain = service();
        plain.hosts[0].extra.clear();
        assert_eq!(
            hosts_file(&plain),
            "fa:16:3e:00:00:01,host-10-0-0-5,10.0.0.5\n"
        );
        assert_eq!(
            opts_file(&s),
            "tag:subnet-s1,option:router,10.0.0.1\n\
             tag:subnet-s1,option:dns-server,10.0.0.53\n\
             tag:subnet-s1,option:classless-static-route,172.16.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n\
             tag:subnet-s1,option:mtu,1450\n\
             tag:port-p1,option:tftp-server,10.0.0.9\n"
        );
        let a = args(&s, Path::new("/d"));
        assert!(a.contains(
            &"--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,600s".to_string()
        ));
        assert!(a.contains(&"--interface=ns-abc".to_string()));
        assert!(
            a.contains(&"--port=0".to_string()),
            "no DNS from this dnsmasq"
        );
        // Authoritative, but only about the MACs it holds.
        assert!(a.contains(&"--dhcp-authoritative".to_string()));
        assert!(a.contains(&"--dhcp-ignore=tag:!known".to_string()));
    }

    #[test]
    fn a_tagged_host_with_a_lease_makes_the_change_a_restart() {
        let hosts = "fa:16:3e:00:00:01,set:port-p1,host-a,10.0.0.5\n\
                     fa:16:3e:00:00:02,host-b,10.0.0.6\n";
        let lease = |mac: &str| format!("1700000000 {mac} 10.0.0.9 host *\n");
        assert!(reload_is_safe(hosts, ""));
        assert!(reload_is_safe(hosts, &lease("fa:16:3e:00:00:02")));
        assert!(!reload_is_safe(hosts, &lease("FA:16:3E:00:00:01")));
    }

    #[test]
    fn an_option_with_a_line_break_never_reaches_the_file() {
        let mut s = service();
        s.hosts[0].extra = vec![("3\noption:router".into(), "10.0.0.66".into())];
        assert!(!opts_file(&s).contains("10.0.0.66"));
    }

    #[test]
    fn leases_of_gone_reservations_are_pruned() {
        let leases = "1700000600 fa:16:3e:00:00:01 10.0.0.5 host-10-0-0-5 *\n\
                      1700000600 fa:16:3e:00:00:02 10.0.0.5 old *\n\
                      1700000600 fa:16:3e:00:00:01 10.0.0.6 moved *\n\
                      garbage\n";
        assert_eq!(
            prune_leases(leases, &service()),
            "1700000600 fa:16:3e:00:00:01 10.0.0.5 host-10-0-0-5 *\n"
        );
    }
}
