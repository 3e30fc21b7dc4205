//! Reply options: subnet parameters plus the port's `extra_dhcp_opts`,
//! encoded once per reservation at table-build time.

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::codec::{
    OPT_BROADCAST, OPT_CLASSLESS_ROUTES, OPT_DNS, OPT_DOMAIN_NAME, OPT_HOSTNAME, OPT_LEASE_TIME,
    OPT_MTU, OPT_REBINDING_TIME, OPT_RENEWAL_TIME, OPT_ROUTER, OPT_SERVER_ID, OPT_SUBNET_MASK,
    encoded_option_len, write_option,
};
use neutrino_net::Ipv4Net;

use crate::table::Reservation;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionError {
    #[error("unknown DHCP option name {0:?}")]
    UnknownName(String),
    #[error("option {code} is managed by the server and cannot be overridden")]
    Reserved { code: u8 },
    #[error("tagged option {0:?} is not supported")]
    Tagged(String),
    #[error("invalid value {value:?} for option {code}: {reason}")]
    BadValue {
        code: u8,
        value: String,
        reason: &'static str,
    },
}

/// A parsed `extra_dhcp_opts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraOption {
    /// Send this option with this (already encoded) value, replacing the
    /// subnet's value for the same code.
    Set { code: u8, data: Vec<u8> },
    /// An empty value: do not send this option at all (dnsmasq semantics;
    /// e.g. `router` = "" removes the default gateway).
    Suppress(u8),
    /// `server-ip-address`: the BOOTP `siaddr` (next server), not an option.
    ServerIp(Ipv4Addr),
}

/// How an option's text value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ip,
    IpList,
    /// Pairs of addresses (option 33, policy filters).
    IpPairs,
    Str,
    Bool,
    U8,
    U16,
    U32,
    I32,
    DomainSearch,
    ClasslessRoutes,
}

/// dnsmasq option names (as Neutron passes them through), plus the aliases
/// Neutron documents. Anything else can be given by number.
const NAMES: &[(&str, u8, Kind)] = &[
    ("netmask", 1, Kind::Ip),
    ("time-offset", 2, Kind::I32),
    ("router", 3, Kind::IpList),
    ("dns-server", 6, Kind::IpList),
    ("log-server", 7, Kind::IpList),
    ("lpr-server", 9, Kind::IpList),
    ("hostname", 12, Kind::Str),
    ("host-name", 12, Kind::Str),
    ("boot-file-size", 13, Kind::U16),
    ("domain-name", 15, Kind::Str),
    ("swap-server", 16, Kind::Ip),
    ("root-path", 17, Kind::Str),
    ("extension-path", 18, Kind::Str),
    ("ip-forward-enable", 19, Kind::Bool),
    ("non-local-source-routing", 20, Kind::Bool),
    ("policy-filter", 21, Kind::IpPairs),
    ("max-datagram-reassembly", 22, Kind::U16),
    ("default-ttl", 23, Kind::U8),
    ("mtu", 26, Kind::U16),
    ("all-subnets-local", 27, Kind::Bool),
    ("broadcast", 28, Kind::Ip),
    ("router-discovery", 31, Kind::Bool),
    ("router-solicitation", 32, Kind::Ip),
    ("static-route", 33, Kind::IpPairs),
    ("trailer-encapsulation", 34, Kind::Bool),
    ("arp-timeout", 35, Kind::U32),
    ("ethernet-encap", 36, Kind::Bool),
    ("tcp-ttl", 37, Kind::U8),
    ("tcp-keepalive", 38, Kind::U32),
    ("nis-domain", 40, Kind::Str),
    ("nis-server", 41, Kind::IpList),
    ("ntp-server", 42, Kind::IpList),
    ("netbios-ns", 44, Kind::IpList),
    ("netbios-dd", 45, Kind::IpList),
    ("netbios-nodetype", 46, Kind::U8),
    ("netbios-scope", 47, Kind::Str),
    ("x-windows-fs", 48, Kind::IpList),
    ("x-windows-dm", 49, Kind::IpList),
    ("lease-time", 51, Kind::U32),
    ("T1", 58, Kind::U32),
    ("T2", 59, Kind::U32),
    ("vendor-class", 60, Kind::Str),
    ("nis+-domain", 64, Kind::Str),
    ("nis+-server", 65, Kind::IpList),
    // Option 66 is a server *name* (text), even when it holds an address.
    ("tftp-server", 66, Kind::Str),
    ("bootfile-name", 67, Kind::Str),
    ("mobile-ip-home", 68, Kind::IpList),
    ("smtp-server", 69, Kind::IpList),
    ("pop3-server", 70, Kind::IpList),
    ("nntp-server", 71, Kind::IpList),
    ("irc-server", 74, Kind::IpList),
    ("user-class", 77, Kind::Str),
    ("domain-search", 119, Kind::DomainSearch),
    ("classless-static-route", 121, Kind::ClasslessRoutes),
    ("tftp-server-address", 150, Kind::IpList),
];

/// Codes the server owns: overriding them would break the protocol.
const RESERVED: &[u8] = &[0, 50, 52, 53, 54, 55, 57, 61, 82, 255];

/// Lease-related options, omitted from replies to INFORM (RFC 2131 4.3.5).
pub(crate) fn is_lease_option(code: u8) -> bool {
    matches!(code, OPT_LEASE_TIME | OPT_RENEWAL_TIME | OPT_REBINDING_TIME)
}

/// Parses one `extra_dhcp_opts` entry. `name` is a number ("66") or a
/// dnsmasq name, optionally prefixed with "option:".
pub fn parse_extra(name: &str, value: &str) -> Result<ExtraOption, OptionError> {
    let name = name.trim();
    if name.starts_with("tag:") || name.contains(',') {
        return Err(OptionError::Tagged(name.to_owned()));
    }
    let name = name.strip_prefix("option:").unwrap_or(name);
    let value = value.trim();
    if name == "server-ip-address" {
        return value
            .parse()
            .map(ExtraOption::ServerIp)
            .map_err(|_| bad(0, value, "not an IPv4 address"));
    }
    let (code, kind) = if let Ok(code) = name.parse::<u8>() {
        let kind = NAMES
            .iter()
            .find(|(_, c, _)| *c == code)
            .map(|(_, _, k)| *k);
        (code, kind)
    } else {
        let (_, code, kind) = NAMES
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| OptionError::UnknownName(name.to_owned()))?;
        (*code, Some(*kind))
    };
    if RESERVED.contains(&code) {
        return Err(OptionError::Reserved { code });
    }
    if value.is_empty() {
        return Ok(ExtraOption::Suppress(code));
    }
    let data = match kind {
        Some(kind) => encode_value(code, kind, value)?,
        None => guess_value(value),
    };
    Ok(ExtraOption::Set { code, data })
}

/// Parses all entries of a port, logging and skipping bad ones: a typo in one
/// option must not take the port's DHCP down. Called at table-build time so
/// the warning is emitted once, not per packet.
pub fn parse_extras<N, V>(opts: impl IntoIterator<Item = (N, V)>) -> Vec<ExtraOption>
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    opts.into_iter()
        .filter_map(|(n, v)| match parse_extra(n.as_ref(), v.as_ref()) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::warn!(name = n.as_ref(), value = v.as_ref(), error = %e, "skipping extra DHCP option");
                None
            }
        })
        .collect()
}

fn bad(code: u8, value: &str, reason: &'static str) -> OptionError {
    OptionError::BadValue {
        code,
        value: value.to_owned(),
        reason,
    }
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn ip_list(code: u8, value: &str) -> Result<Vec<Ipv4Addr>, OptionError> {
    split_list(value)
        .map(|s| {
            s.parse()
                .map_err(|_| bad(code, value, "not an IPv4 address list"))
        })
        .collect()
}

fn encode_value(code: u8, kind: Kind, value: &str) -> Result<Vec<u8>, OptionError> {
    let num = |reason| bad(code, value, reason);
    Ok(match kind {
        Kind::Ip => {
            let ip: Ipv4Addr = value.parse().map_err(|_| num("not an IPv4 address"))?;
            ip.octets().to_vec()
        }
        Kind::IpList => ip_list(code, value)?
            .iter()
            .flat_map(|a| a.octets())
            .collect(),
        Kind::IpPairs => {
            let ips = ip_list(code, value)?;
            if !ips.len().is_multiple_of(2) {
                return Err(num("needs an even number of addresses"));
            }
            ips.iter().flat_map(|a| a.octets()).collect()
        }
        Kind::Str => value.as_bytes().to_vec(),
        Kind::Bool => match value {
            "1" | "true" | "yes" | "on" => vec![1],
            "0" | "false" | "no" | "off" => vec![0],
            _ => return Err(num("not a boolean")),
        },
        Kind::U8 => vec![value.parse::<u8>().map_err(|_| num("not a u8"))?],
        Kind::U16 => value
            .parse::<u16>()
            .map_err(|_| num("not a u16"))?
            .to_be_bytes()
            .to_vec(),
        Kind::U32 => value
            .parse::<u32>()
            .map_err(|_| num("not a u32"))?
            .to_be_bytes()
            .to_vec(),
        Kind::I32 => value
            .parse::<i32>()
            .map_err(|_| num("not an i32"))?
            .to_be_bytes()
            .to_vec(),
        Kind::DomainSearch => domain_search(value).ok_or_else(|| num("invalid domain name"))?,
        Kind::ClasslessRoutes => {
            let routes =
                parse_routes(value).ok_or_else(|| num("expected dest/len,gateway pairs"))?;
            classless_routes(&routes)
        }
    })
}

/// dnsmasq's rule for options it has no type for: an address list if it
/// parses as one, else an integer in the fewest bytes, else text.
fn guess_value(value: &str) -> Vec<u8> {
    if let Ok(ips) = ip_list(0, value) {
        return ips.iter().flat_map(|a| a.octets()).collect();
    }
    if let Ok(n) = value.parse::<u32>() {
        return match (u8::try_from(n), u16::try_from(n)) {
            (Ok(b), _) => vec![b],
            (_, Ok(w)) => w.to_be_bytes().to_vec(),
            _ => n.to_be_bytes().to_vec(),
        };
    }
    value.as_bytes().to_vec()
}

/// RFC 3397 domain search list, in DNS wire format without compression.
fn domain_search(value: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for name in value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        for label in name.trim_end_matches('.').split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=63).contains(l))?;
            out.push(len);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }
    Some(out)
}

/// Parses "10.0.0.0/8,10.0.0.1,0.0.0.0/0,10.0.0.254" (dnsmasq syntax).
fn parse_routes(value: &str) -> Option<Vec<(Ipv4Addr, u8, Ipv4Addr)>> {
    let parts: Vec<&str> = split_list(value).collect();
    if parts.is_empty() || !parts.len().is_multiple_of(2) {
        return None;
    }
    parts
        .chunks(2)
        .map(|pair| {
            let (dest, len) = pair[0].split_once('/')?;
            let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
            Some((dest.parse().ok()?, len, pair[1].parse().ok()?))
        })
        .collect()
}

/// RFC 3442 option 121 value: per route, the prefix length, the significant
/// octets of the destination, then the router. Invalid prefixes are skipped.
pub fn classless_routes(routes: &[(Ipv4Addr, u8, Ipv4Addr)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(routes.len() * 9);
    for &(dest, len, gw) in routes {
        let Ok(dest) = Ipv4Net::new(dest, len) else {
            continue;
        };
        let masked = dest.addr().octets();
        out.push(len);
        out.extend_from_slice(&masked[..usize::from(len).div_ceil(8)]);
        out.extend_from_slice(&gw.octets());
    }
    out
}

/// The options a reservation's replies carry, before per-request ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyOptions {
    pub options: Vec<(u8, Vec<u8>)>,
    pub siaddr: Ipv4Addr,
}

/// Subnet options overridden by the port's extra options.
pub fn reply_options(res: &Reservation) -> ReplyOptions {
    let s = &*res.subnet;
    // A router set or suppressed by the port changes the 121 default route too.
    let mut router = s.router;
    for e in res.extra.iter() {
        match e {
            ExtraOption::Set {
                code: OPT_ROUTER,
                data,
            } if data.len() >= 4 => {
                router = Some(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
            }
            ExtraOption::Suppress(OPT_ROUTER) => router = None,
            _ => {}
        }
    }

    let mut o: Vec<(u8, Vec<u8>)> = Vec::with_capacity(16);
    o.push((OPT_SERVER_ID, s.server_id.octets().to_vec()));
    o.push((OPT_LEASE_TIME, s.lease_secs.to_be_bytes().to_vec()));
    // An infinite lease (0xffffffff) has no renewal.
    if s.lease_secs != u32::MAX {
        let t1 = s.lease_secs / 2;
        let t2 = u32::try_from(u64::from(s.lease_secs) * 7 / 8).unwrap_or(u32::MAX);
        o.push((OPT_RENEWAL_TIME, t1.to_be_bytes().to_vec()));
        o.push((OPT_REBINDING_TIME, t2.to_be_bytes().to_vec()));
    }
    o.push((OPT_SUBNET_MASK, s.network.mask().octets().to_vec()));
    if let Some(r) = s.router {
        o.push((OPT_ROUTER, r.octets().to_vec()));
    }
    if !s.dns.is_empty() {
        o.push((OPT_DNS, s.dns.iter().flat_map(|a| a.octets()).collect()));
    }
    if !s.domain.is_empty() {
        o.push((OPT_DOMAIN_NAME, s.domain.as_bytes().to_vec()));
    }
    let hostname = res.hostname.trim();
    if !hostname.is_empty() {
        o.push((OPT_HOSTNAME, hostname.as_bytes().to_vec()));
    }
    // RFC 1191: 68 is the smallest legal MTU.
    if let Some(mtu) = s.mtu.filter(|m| *m >= 68) {
        o.push((OPT_MTU, mtu.to_be_bytes().to_vec()));
    }
    o.push((OPT_BROADCAST, s.network.broadcast().octets().to_vec()));
    if !s.routes.is_empty() {
        // RFC 3442 clients ignore option 3 when 121 is present, so the
        // default route must be repeated inside 121.
        let mut routes = s.routes.clone();
        if let Some(r) = router
            && !routes.iter().any(|(_, len, _)| *len == 0)
        {
            routes.push((Ipv4Addr::UNSPECIFIED, 0, r));
        }
        o.push((OPT_CLASSLESS_ROUTES, classless_routes(&routes)));
    }

    let mut siaddr = s.server_id;
    for e in res.extra.iter() {
        match e {
            ExtraOption::Set { code, data } => match o.iter_mut().find(|(c, _)| c == code) {
                Some((_, v)) => v.clone_from(data),
                None => o.push((*code, data.clone())),
            },
            ExtraOption::Suppress(code) => o.retain(|(c, _)| c != code),
            ExtraOption::ServerIp(ip) => siaddr = *ip,
        }
    }
    ReplyOptions { options: o, siaddr }
}

/// Reply options pre-encoded as TLVs, indexed by code.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    bytes: Vec<u8>,
    slots: Vec<(u8, usize, usize)>,
    pub(crate) siaddr: Ipv4Addr,
}

pub(crate) fn prepare(res: &Reservation) -> Prepared {
    let ro = reply_options(res);
    let mut bytes = Vec::with_capacity(ro.options.iter().map(|(_, d)| encoded_option_len(d)).sum());
    let mut slots = Vec::with_capacity(ro.options.len());
    for (code, data) in &ro.options {
        let start = bytes.len();
        write_option(&mut bytes, *code, data);
        slots.push((*code, start, bytes.len()));
    }
    Prepared {
        bytes,
        slots,
        siaddr: ro.siaddr,
    }
}

/// Always sent first when known, whatever the client asked for.
const FIRST: [u8; 6] = [
    OPT_SERVER_ID,
    OPT_LEASE_TIME,
    OPT_RENEWAL_TIME,
    OPT_REBINDING_TIME,
    OPT_SUBNET_MASK,
    OPT_ROUTER,
];

impl Prepared {
    /// Appends the options: the mandatory ones, then those in the client's
    /// parameter request list order, then the rest; each only if it fits in
    /// `budget` bytes (the client's maximum message size).
    pub(crate) fn write(&self, out: &mut Vec<u8>, prl: &[u8], lease: bool, mut budget: usize) {
        let mut done = [0u64; 4];
        let mut emit = |code: u8| {
            let (word, bit) = (usize::from(code >> 6), 1u64 << (code & 63));
            if done[word] & bit != 0 {
                return;
            }
            done[word] |= bit;
            if !lease && is_lease_option(code) {
                return;
            }
            if let Some(&(_, start, end)) = self.slots.iter().find(|(c, _, _)| *c == code)
                && end - start <= budget
            {
                out.extend_from_slice(&self.bytes[start..end]);
                budget -= end - start;
            }
        };
        FIRST.iter().chain(prl).for_each(|c| emit(*c));
        self.slots.iter().for_each(|(c, _, _)| emit(*c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::SubnetParams;
    use neutrino_net::Mac;
    use std::sync::Arc;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn subnet() -> SubnetParams {
        SubnetParams {
            network: "10.0.0.0/24".parse().unwrap(),
            router: Some(ip("10.0.0.1")),
            dns: vec![ip("8.8.8.8"), ip("1.1.1.1")],
            domain: "example.org".into(),
            mtu: Some(1450),
            routes: vec![],
            lease_secs: 86400,
            server_id: ip("10.0.0.2"),
        }
    }

    fn res(s: SubnetParams, extra: Vec<ExtraOption>) -> Reservation {
        Reservation {
            mac: Mac::new([2, 0, 0, 0, 0, 1]),
            ip: ip("10.0.0.5"),
            hostname: "vm-1".into(),
            subnet: Arc::new(s),
            extra: extra.into(),
        }
    }

    fn get(ro: &ReplyOptions, code: u8) -> Option<&[u8]> {
        ro.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn rfc3442_vectors() {
        let cases: &[((&str, u8), &[u8])] = &[
            (("0.0.0.0", 0), &[0]),
            (("10.0.0.0", 8), &[8, 10]),
            (("10.17.0.0", 16), &[16, 10, 17]),
            (("10.27.129.0", 24), &[24, 10, 27, 129]),
            (("10.229.0.128", 25), &[25, 10, 229, 0, 128]),
            (("10.198.122.47", 32), &[32, 10, 198, 122, 47]),
        ];
        let gw = ip("10.0.0.1");
        for ((dest, len), want) in cases {
            let got = classless_routes(&[(ip(dest), *len, gw)]);
            let mut expected = want.to_vec();
            expected.extend_from_slice(&[10, 0, 0, 1]);
            assert_eq!(got, expected, "{dest}/{len}");
        }
        // Host bits beyond the prefix are not sent.
        assert_eq!(
            classless_routes(&[(ip("10.1.2.3"), 9, gw)]),
            vec![9, 10, 0, 10, 0, 0, 1]
        );
        assert!(classless_routes(&[(ip("10.1.2.3"), 33, gw)]).is_empty());
    }

    #[test]
    fn subnet_options() {
        let ro = reply_options(&res(subnet(), vec![]));
        assert_eq!(get(&ro, 54), Some(&[10, 0, 0, 2][..]));
        assert_eq!(get(&ro, 1), Some(&[255, 255, 255, 0][..]));
        assert_eq!(get(&ro, 3), Some(&[10, 0, 0, 1][..]));
        assert_eq!(get(&ro, 6), Some(&[8, 8, 8, 8, 1, 1, 1, 1][..]));
        assert_eq!(get(&ro, 15), Some(&b"example.org"[..]));
        assert_eq!(get(&ro, 12), Some(&b"vm-1"[..]));
        assert_eq!(get(&ro, 26), Some(&1450u16.to_be_bytes()[..]));
        assert_eq!(get(&ro, 28), Some(&[10, 0, 0, 255][..]));
        assert_eq!(get(&ro, 51), Some(&86400u32.to_be_bytes()[..]));
        assert_eq!(get(&ro, 58), Some(&43200u32.to_be_bytes()[..]));
        assert_eq!(get(&ro, 59), Some(&75600u32.to_be_bytes()[..]));
        assert_eq!(get(&ro, 121), None);
        assert_eq!(ro.siaddr, ip("10.0.0.2"));
    }

    #[test]
    fn optional_fields_omitted() {
        let mut s = subnet();
        s.router = None;
        s.dns.clear();
        s.domain.clear();
        s.mtu = Some(20);
        s.lease_secs = u32::MAX;
        let mut r = res(s, vec![]);
        r.hostname = "  ".into();
        let ro = reply_options(&r);
        for code in [3, 6, 15, 12, 26, 58, 59] {
            assert_eq!(get(&ro, code), None, "option {code}");
        }
        assert_eq!(get(&ro, 51), Some(&[255, 255, 255, 255][..]));
    }

    #[test]
    fn routes_include_default_route() {
        let mut s = subnet();
        s.routes = vec![(ip("169.254.169.254"), 32, ip("10.0.0.3"))];
        let ro = reply_options(&res(s.clone(), vec![]));
        assert_eq!(
            get(&ro, 121),
            Some(&[32, 169, 254, 169, 254, 10, 0, 0, 3, 0, 10, 0, 0, 1][..])
        );
        // Without a router there is no default route to add.
        s.router = None;
        let ro = reply_options(&res(s.clone(), vec![]));
        assert_eq!(
            get(&ro, 121),
            Some(&[32, 169, 254, 169, 254, 10, 0, 0, 3][..])
        );
        // An explicit default route is not duplicated.
        s.router = Some(ip("10.0.0.1"));
        s.routes.push((ip("0.0.0.0"), 0, ip("10.0.0.9")));
        let ro = reply_options(&res(s, vec![]));
        assert_eq!(get(&ro, 121).unwrap().len(), 9 + 5);
    }

    #[test]
    fn extras_override_and_suppress() {
        let mut s = subnet();
        s.routes = vec![(ip("192.168.0.0"), 16, ip("10.0.0.4"))];
        let extra = parse_extras([
            ("dns-server", "9.9.9.9"),
            ("mtu", "9000"),
            ("router", "10.0.0.254"),
            ("66", "tftp.example.org"),
            ("bootfile-name", "pxelinux.0"),
            ("server-ip-address", "10.0.0.10"),
            ("domain-name", ""),
            ("no-such-option", "x"),
            ("mtu", "big"),
        ]);
        assert_eq!(extra.len(), 7);
        let ro = reply_options(&res(s, extra));
        assert_eq!(get(&ro, 6), Some(&[9, 9, 9, 9][..]));
        assert_eq!(get(&ro, 26), Some(&9000u16.to_be_bytes()[..]));
        assert_eq!(get(&ro, 3), Some(&[10, 0, 0, 254][..]));
        assert_eq!(get(&ro, 66), Some(&b"tftp.example.org"[..]));
        assert_eq!(get(&ro, 67), Some(&b"pxelinux.0"[..]));
        assert_eq!(get(&ro, 15), None);
        assert_eq!(ro.siaddr, ip("10.0.0.10"));
        // The default route in 121 follows the overriding router.
        assert_eq!(
            get(&ro, 121),
            Some(&[16, 192, 168, 10, 0, 0, 4, 0, 10, 0, 0, 254][..])
        );
    }

    #[test]
    fn suppressed_router_removes_default_route() {
        let mut s = subnet();
        s.routes = vec![(ip("192.168.0.0"), 16, ip("10.0.0.4"))];
        let ro = reply_options(&res(s, vec![ExtraOption::Suppress(3)]));
        assert_eq!(get(&ro, 3), None);
        assert_eq!(get(&ro, 121), Some(&[16, 192, 168, 10, 0, 0, 4][..]));
    }

    #[test]
    fn parse_values() {
        use ExtraOption::Set;
        let set = |code, data: &[u8]| Set {
            code,
            data: data.to_vec(),
        };
        assert_eq!(
            parse_extra("ntp-server", "1.2.3.4, 5.6.7.8"),
            Ok(set(42, &[1, 2, 3, 4, 5, 6, 7, 8]))
        );
        assert_eq!(
            parse_extra("tftp-server-address", "10.0.0.1"),
            Ok(set(150, &[10, 0, 0, 1]))
        );
        assert_eq!(parse_extra("150", "10.0.0.1"), Ok(set(150, &[10, 0, 0, 1])));
        assert_eq!(
            parse_extra("option:mtu", "1400"),
            Ok(set(26, &[0x05, 0x78]))
        );
        assert_eq!(
            parse_extra("lease-time", "3600"),
            Ok(set(51, &3600u32.to_be_bytes()))
        );
        assert_eq!(parse_extra("ip-forward-enable", "0"), Ok(set(19, &[0])));
        assert_eq!(
            parse_extra("time-offset", "-3600"),
            Ok(set(2, &(-3600i32).to_be_bytes()))
        );
        assert_eq!(
            parse_extra("domain-search", "a.org,b.example.com"),
            Ok(set(119, b"\x01a\x03org\x00\x01b\x07example\x03com\x00"))
        );
        assert_eq!(
            parse_extra(
                "classless-static-route",
                "10.0.0.0/8,10.0.0.1,0.0.0.0/0,10.0.0.254"
            ),
            Ok(set(121, &[8, 10, 10, 0, 0, 1, 0, 10, 0, 0, 254]))
        );
        // Unknown codes: dnsmasq-style guessing.
        assert_eq!(
            parse_extra("224", "10.0.0.1,10.0.0.2"),
            Ok(set(224, &[10, 0, 0, 1, 10, 0, 0, 2]))
        );
        assert_eq!(parse_extra("224", "7"), Ok(set(224, &[7])));
        assert_eq!(parse_extra("224", "1500"), Ok(set(224, &[0x05, 0xdc])));
        assert_eq!(parse_extra("224", "hello"), Ok(set(224, b"hello")));
        assert_eq!(parse_extra("router", ""), Ok(ExtraOption::Suppress(3)));
        assert_eq!(
            parse_extra("server-ip-address", "10.1.1.1"),
            Ok(ExtraOption::ServerIp(ip("10.1.1.1")))
        );

        assert!(matches!(
            parse_extra("bogus", "1"),
            Err(OptionError::UnknownName(_))
        ));
        assert!(matches!(
            parse_extra("54", "1.2.3.4"),
            Err(OptionError::Reserved { code: 54 })
        ));
        assert!(matches!(
            parse_extra("tag:ipxe,67", "x"),
            Err(OptionError::Tagged(_))
        ));
        for (n, v) in [
            ("router", "10.0.0.300"),
            ("mtu", "70000"),
            ("default-ttl", "256"),
            ("static-route", "1.1.1.1"),
            ("domain-search", "a..b"),
            ("classless-static-route", "10.0.0.0/8"),
            ("classless-static-route", "10.0.0.0/40,1.1.1.1"),
            ("ip-forward-enable", "maybe"),
            ("server-ip-address", "x"),
        ] {
            assert!(
                matches!(parse_extra(n, v), Err(OptionError::BadValue { .. })),
                "{n}={v}"
            );
        }
    }

    #[test]
    fn prepared_ordering_and_budget() {
        let p = prepare(&res(subnet(), vec![]));
        let codes = |b: &[u8]| {
            let mut v = Vec::new();
            let mut i = 0;
            while i < b.len() {
                v.push(b[i]);
                i += 2 + usize::from(b[i + 1]);
            }
            v
        };
        let mut out = Vec::new();
        p.write(&mut out, &[15, 6, 12], true, 1000);
        assert_eq!(codes(&out), vec![54, 51, 58, 59, 1, 3, 15, 6, 12, 26, 28]);
        out.clear();
        p.write(&mut out, &[6], false, 1000);
        assert_eq!(codes(&out), vec![54, 1, 3, 6, 15, 12, 26, 28]);
        // 54 (6 bytes) + 51 (6) fit; 58 (6) does not; smaller ones never fit.
        out.clear();
        p.write(&mut out, &[], true, 14);
        assert_eq!(codes(&out), vec![54, 51]);
    }

    #[test]
    fn network_type_reexported() {
        let _ = crate::Ipv4Net::new(ip("10.0.0.0"), 8).unwrap();
    }
}
