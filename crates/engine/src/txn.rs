//! A request's view of the working model while it runs in the writer: it
//! changes the model and records the same change for the store.

use std::sync::Arc;

use neutrino_model::{
    FloatingIp, InstanceMetadata, Kind, Network, Port, QuotaOverrides, Router, SecurityGroup,
    SecurityGroupRule, Subnet,
};
use neutrino_store::Change;
use serde::Serialize;

use crate::changes::{Changed, MEMBER_MARKER, ROUTER_MARKER};
use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::state::State;

pub struct Txn<'a> {
    pub state: &'a mut State,
    pub config: &'a EngineConfig,
    /// The request's timestamp (Unix seconds) for created_at/updated_at.
    pub now: i64,
    changes: Vec<Change>,
    /// Feed-only changes the store does not keep (see `member_markers`).
    markers: Vec<Changed>,
}

fn doc<T: Serialize>(v: &T) -> String {
    // Serialising plain structs of strings, numbers and JSON values cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_string())
}

impl<'a> Txn<'a> {
    pub fn new(state: &'a mut State, config: &'a EngineConfig, now: i64) -> Txn<'a> {
        Txn {
            state,
            config,
            now,
            changes: Vec::new(),
            markers: Vec::new(),
        }
    }

    /// Whether this transaction has written the item already.
    pub fn wrote(&self, kind: Kind, id: &str) -> bool {
        self.changes
            .iter()
            .any(|c| c.kind == kind.as_str() && c.id == id)
    }

    pub fn into_changes(self) -> (Vec<Change>, Vec<Changed>) {
        (self.changes, self.markers)
    }

    /// Remote-group membership is what other hosts' firewalls hold: when a
    /// port joins or leaves a group, or its addresses change, the feed must
    /// tell the hosts holding any group it was or is in. The old groups are
    /// only known here, so they are recorded as `member` markers
    /// (`<group>/<port>`) next to the port's own change.
    fn member_markers(&mut self, old: Option<&Port>, new: Option<&Port>) {
        if let (Some(o), Some(n)) = (old, new)
            && o.security_groups == n.security_groups
            && o.fixed_ips == n.fixed_ips
            && o.allowed_address_pairs == n.allowed_address_pairs
        {
            return;
        }
        let groups: std::collections::BTreeSet<&String> = old
            .into_iter()
            .chain(new)
            .flat_map(|p| p.security_groups.iter())
            .collect();
        let port = new.or(old).map(|p| p.id.as_str()).unwrap_or("");
        for g in groups {
            self.markers.push(Changed {
                kind: MEMBER_MARKER.to_string(),
                id: format!("{g}/{port}"),
            });
        }
    }

    fn record<T: Serialize>(&mut self, kind: Kind, id: &str, v: Option<&T>) {
        self.changes.push(Change {
            kind: kind.as_str(),
            id: id.to_string(),
            body: v.map(doc),
        });
    }

    pub fn put_network(&mut self, n: Network) {
        self.record(Kind::Network, &n.id, Some(&n));
        self.state.index_network(Arc::new(n));
    }

    pub fn delete_network(&mut self, id: &str) {
        self.record::<Network>(Kind::Network, id, None);
        self.state.unindex_network(id);
    }

    pub fn put_subnet(&mut self, s: Subnet) -> Result<(), EngineError> {
        self.record(Kind::Subnet, &s.id, Some(&s));
        self.state.index_subnet(Arc::new(s), true)
    }

    pub fn delete_subnet(&mut self, id: &str) {
        self.record::<Subnet>(Kind::Subnet, id, None);
        self.state.unindex_subnet(id);
    }

    pub fn put_port(&mut self, p: Port) {
        self.record(Kind::Port, &p.id, Some(&p));
        let old = self.state.ports.get(&p.id).cloned();
        self.member_markers(old.as_deref(), Some(&p));
        self.router_markers_for_port(old.as_deref(), Some(&p));
        self.state.index_port(Arc::new(p));
    }

    pub fn delete_port(&mut self, id: &str) -> Option<Arc<Port>> {
        self.record::<Port>(Kind::Port, id, None);
        let old = self.state.ports.get(id).cloned();
        self.router_markers_for_port(old.as_deref(), None);
        let old = self.state.unindex_port(id);
        self.member_markers(old.as_deref(), None);
        old
    }

    fn router_marker(&mut self, router_id: &str) {
        self.markers.push(Changed {
            kind: ROUTER_MARKER.to_string(),
            id: router_id.to_string(),
        });
    }

    /// A router's legs are ports, and its floating IPs follow their ports'
    /// hosts: a change to either is a change to what the router's hosts run.
    fn router_markers_for_port(&mut self, old: Option<&Port>, new: Option<&Port>) {
        // Only what a router's hosts use: a leg's addresses and identity, and
        // where an instance with a floating IP lives (not its status or name).
        if let (Some(o), Some(n)) = (old, new)
            && o.fixed_ips == n.fixed_ips
            && o.mac_address == n.mac_address
            && o.binding_host_id == n.binding_host_id
            && o.device_owner == n.device_owner
            && o.device_id == n.device_id
        {
            return;
        }
        let mut routers = std::collections::BTreeSet::new();
        for p in old.into_iter().chain(new) {
            if crate::host_feed::is_router_leg(p) {
                routers.insert(p.device_id.clone());
            }
            for f in self.state.fips_of_port(&p.id) {
                routers.extend(f.router_id.clone());
            }
        }
        for r in routers {
            self.router_marker(&r);
        }
    }

    pub fn put_group(&mut self, g: SecurityGroup) {
        self.record(Kind::SecurityGroup, &g.id, Some(&g));
        self.state.index_group(Arc::new(g));
    }

    pub fn delete_group(&mut self, id: &str) {
        self.record::<SecurityGroup>(Kind::SecurityGroup, id, None);
        self.state.unindex_group(id);
    }

    pub fn put_rule(&mut self, r: SecurityGroupRule) {
        self.record(Kind::SecurityGroupRule, &r.id, Some(&r));
        self.state.index_rule(Arc::new(r));
    }

    pub fn delete_rule(&mut self, id: &str) {
        self.record::<SecurityGroupRule>(Kind::SecurityGroupRule, id, None);
        self.state.unindex_rule(id);
    }

    pub fn put_quota(&mut self, q: QuotaOverrides) {
        self.record(Kind::Quota, &q.project_id, Some(&q));
        self.state.quotas.insert(q.project_id.clone(), Arc::new(q));
    }

    pub fn delete_quota(&mut self, project_id: &str) {
        self.record::<QuotaOverrides>(Kind::Quota, project_id, None);
        self.state.quotas.remove(project_id);
    }

    pub fn put_instance_metadata(&mut self, m: InstanceMetadata) {
        self.record(Kind::InstanceMetadata, &m.device_id, Some(&m));
        self.state
            .instance_metadata
            .insert(m.device_id.clone(), Arc::new(m));
    }

    pub fn delete_instance_metadata(&mut self, device_id: &str) {
        self.record::<InstanceMetadata>(Kind::InstanceMetadata, device_id, None);
        self.state.instance_metadata.remove(device_id);
    }

    pub fn put_router(&mut self, r: Router) {
        self.record(Kind::Router, &r.id, Some(&r));
        self.state.index_router(Arc::new(r));
    }

    pub fn delete_router(&mut self, id: &str) {
        self.record::<Router>(Kind::Router, id, None);
        self.state.unindex_router(id);
    }

    pub fn put_fip(&mut self, f: FloatingIp) {
        self.record(Kind::FloatingIp, &f.id, Some(&f));
        // The router it leaves is only known here.
        let old = self
            .state
            .floatingips
            .get(&f.id)
            .and_then(|o| o.router_id.clone());
        for r in old.into_iter().chain(f.router_id.clone()) {
            self.router_marker(&r);
        }
        self.state.index_fip(Arc::new(f));
    }

    pub fn delete_fip(&mut self, id: &str) {
        self.record::<FloatingIp>(Kind::FloatingIp, id, None);
        if let Some(r) = self
            .state
            .floatingips
            .get(id)
            .and_then(|o| o.router_id.clone())
        {
            self.router_marker(&r);
        }
        self.state.unindex_fip(id);
    }
}
