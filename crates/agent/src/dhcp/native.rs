//! The native driver: one UDP socket per served network, bound inside the
//! network's DHCP namespace, all answered by this process from reservation
//! tables that are swapped whole when the feed changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use neutrino_dataplane::netns;
use neutrino_dhcp::{Ipv4Net, Reservation, Stats, SubnetParams, Table};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::desired::DhcpService;
use crate::dhcp::MetricsSource;

struct Served {
    service: Arc<DhcpService>,
    table: Arc<ArcSwap<Table>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The native server's packet counters, rendered at scrape time.
pub struct NativeStats(Arc<Stats>);

impl MetricsSource for NativeStats {
    fn render(&self, out: &mut String) {
        self.0
            .render_prometheus("neutrino_dhcp", &[("driver", "native")], out);
    }
}

pub struct NativeDriver {
    served: BTreeMap<String, Served>,
    stats: Arc<Stats>,
}

/// The reservation table for one network's service.
pub fn table(s: &DhcpService) -> Table {
    let mtu = u16::try_from(s.mtu).ok().filter(|m| *m >= 68);
    let subnets: BTreeMap<&str, Arc<SubnetParams>> = s
        .subnets
        .iter()
        .filter_map(|sub| {
            let network = Ipv4Net::new(sub.network, sub.prefix).ok()?;
            Some((
                sub.id.as_str(),
                Arc::new(SubnetParams {
                    network,
                    router: sub.gateway,
                    dns: sub.dns.clone(),
                    domain: s.domain.clone(),
                    mtu,
                    routes: sub.routes.clone(),
                    lease_secs: s.lease_secs,
                    server_id: sub.server_ip,
                }),
            ))
        })
        .collect();
    Table::new(s.hosts.iter().filter_map(|h| {
        Some(Reservation {
            mac: h.mac,
            ip: h.ip,
            hostname: h.hostname.clone(),
            subnet: subnets.get(h.subnet_id.as_str())?.clone(),
            extra: neutrino_dhcp::parse_extras(h.extra.iter().map(|(n, v)| (n, v))).into(),
        })
    }))
}

impl Default for NativeDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl NativeDriver {
    pub fn new() -> NativeDriver {
        NativeDriver {
            served: BTreeMap::new(),
            stats: Arc::new(Stats::new()),
        }
    }

    pub async fn sync(
        &mut self,
        services: &BTreeMap<String, Arc<DhcpService>>,
    ) -> BTreeMap<String, String> {
        let gone: Vec<String> = self
            .served
            .iter()
            .filter(|(id, s)| {
                services.get(*id).is_none_or(|new| {
                    new.namespace != s.service.namespace || new.interface != s.service.interface
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(s) = self.served.remove(&id) {
                let _ = s.stop.send(true);
                let _ = s.task.await;
                tracing::info!(network = %id, "native DHCP stopped");
            }
        }
        let mut failed = BTreeMap::new();
        for (id, svc) in services {
            if let Some(s) = self.served.get_mut(id) {
                // Unchanged networks share the planner's Arc: no deep compare.
                if !Arc::ptr_eq(&s.service, svc) {
                    if *s.service != **svc {
                        // The next packet already sees the new table.
                        s.table.store(Arc::new(table(svc)));
                    }
                    s.service = svc.clone();
                }
                continue;
            }
            let (ns, ifname) = (svc.namespace.clone(), svc.interface.clone());
            let bound = tokio::task::spawn_blocking(move || {
                netns::run_in(&ns, || neutrino_dhcp::bind_dhcp_socket(&ifname))
            })
            .await;
            let socket = match bound {
                Ok(Ok(Ok(sock))) => sock,
                Ok(Ok(Err(e))) => {
                    failed.insert(id.clone(), format!("cannot bind the DHCP socket: {e}"));
                    continue;
                }
                Ok(Err(e)) => {
                    failed.insert(id.clone(), format!("cannot enter {}: {e}", svc.namespace));
                    continue;
                }
                Err(e) => {
                    failed.insert(id.clone(), e.to_string());
                    continue;
                }
            };
            let socket = match tokio::net::UdpSocket::from_std(socket) {
                Ok(s) => s,
                Err(e) => {
                    failed.insert(id.clone(), e.to_string());
                    continue;
                }
            };
            let table = Arc::new(ArcSwap::from_pointee(table(svc)));
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(neutrino_dhcp::serve(
                socket,
                table.clone(),
                self.stats.clone(),
                stop_rx,
            ));
            tracing::info!(network = %id, namespace = %svc.namespace, interface = %svc.interface, hosts = svc.hosts.len(), "native DHCP serving");
            self.served.insert(
                id.clone(),
                Served {
                    service: svc.clone(),
                    table,
                    stop,
                    task,
                },
            );
        }
        failed
    }

    pub fn metrics(&self) -> Arc<NativeStats> {
        Arc::new(NativeStats(self.stats.clone()))
    }

    pub fn status(&self) -> Value {
        json!(
            self.served
                .iter()
                .map(|(id, s)| (
                    id.clone(),
                    json!({
                        "namespace": s.service.namespace,
                        "interface": s.service.interface,
                        "reservations": s.table.load().len(),
                    })
                ))
                .collect::<serde_json::Map<_, _>>()
        )
    }

    pub async fn shutdown(&mut self) {
        for (_, s) in std::mem::take(&mut self.served) {
            let _ = s.stop.send(true);
            let _ = s.task.await;
        }
    }
}
