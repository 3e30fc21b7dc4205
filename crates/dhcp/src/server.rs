//! The request pipeline: one datagram in, at most one reply out. Pure (no
//! I/O) so that it can be driven by tests, fuzzers and benchmarks.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::codec::{
    BOOTREPLY, BOOTREQUEST, DecodeError, FLAG_BROADCAST, Header, Message, MessageType,
    OPT_CLIENT_ID, OPT_MESSAGE_TYPE, OPT_RELAY_AGENT_INFO, OPT_SERVER_ID, encoded_option_len,
    finish, write_option,
};
use crate::table::{Entry, Table};

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;

/// Smallest message every client must accept (RFC 2131 2), used when the
/// client sends no maximum message size (option 57).
const DEFAULT_MAX_MESSAGE: usize = 576;
/// IP + UDP headers, which option 57 includes.
const IP_UDP_HEADERS: usize = 28;

/// Knobs of the pipeline that tests need to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// Port that replies to a relay (giaddr != 0) are sent to. Always 67 in
    /// production; tests use an ephemeral port.
    pub relay_port: u16,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            relay_port: SERVER_PORT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
    Nak,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Ack => "ack",
            Self::Nak => "nak",
        }
    }
}

/// Why a packet got no reply. Every variant is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DropReason {
    #[error("malformed packet: {0}")]
    Malformed(DecodeError),
    #[error("not a BOOTREQUEST")]
    NotRequest,
    #[error("hardware type is not Ethernet")]
    NotEthernet,
    #[error("no reservation for this MAC")]
    UnknownMac,
    #[error("addressed to another server")]
    WrongServer,
    #[error("message type is not sent by clients")]
    UnexpectedType,
    #[error("REQUEST without requested address or ciaddr")]
    NoAddress,
}

impl DropReason {
    /// Stable snake_case name, used as a metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Malformed(e) => MALFORMED_LABELS[e.index()],
            Self::NotRequest => "not_request",
            Self::NotEthernet => "not_ethernet",
            Self::UnknownMac => "unknown_mac",
            Self::WrongServer => "wrong_server",
            Self::UnexpectedType => "unexpected_type",
            Self::NoAddress => "no_address",
        }
    }
}

pub(crate) const MALFORMED_LABELS: [&str; 6] = [
    "malformed_too_short",
    "malformed_bad_cookie",
    "malformed_bad_hlen",
    "malformed_truncated_option",
    "malformed_missing_message_type",
    "malformed_bad_message_type",
];

/// What [`handle`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `out` holds a reply to send to `dest`. `request` is the client's
    /// message type (an ACK answers a REQUEST or an INFORM).
    Reply {
        dest: SocketAddrV4,
        kind: ReplyKind,
        request: MessageType,
    },
    /// A RELEASE or DECLINE: logged and counted, nothing to send.
    Handled(MessageType),
    /// No reply. `request` is the message type when the packet decoded.
    Drop {
        request: Option<MessageType>,
        reason: DropReason,
    },
}

/// [`handle_with`] with the production configuration.
pub fn handle(table: &Table, req: &[u8], src: SocketAddrV4, out: &mut Vec<u8>) -> Outcome {
    handle_with(&ServeConfig::default(), table, req, src, out)
}

/// Decodes `req`, decides, and on `Outcome::Reply` leaves the encoded reply
/// in `out` (cleared first; its capacity is reused across calls).
pub fn handle_with(
    cfg: &ServeConfig,
    table: &Table,
    req: &[u8],
    src: SocketAddrV4,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    let msg = match Message::decode(req) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(%src, error = %e, "dropping malformed DHCP packet");
            return drop(None, DropReason::Malformed(e));
        }
    };
    // decode guarantees a valid message type.
    let Some(mtype) = msg.message_type() else {
        return drop(None, DropReason::Malformed(DecodeError::MissingMessageType));
    };
    if msg.header.op != BOOTREQUEST {
        return drop(Some(mtype), DropReason::NotRequest);
    }
    let Some(mac) = msg.header.mac() else {
        return drop(Some(mtype), DropReason::NotEthernet);
    };
    let Some(entry) = table.entry(&mac) else {
        tracing::debug!(mac = %mac, "DHCP {} from unknown MAC", mtype.as_str());
        return drop(Some(mtype), DropReason::UnknownMac);
    };
    let res = &entry.res;
    let ours = res.subnet.server_id;
    let for_us = msg.server_id().is_none_or(|id| id == ours);

    match mtype {
        MessageType::Discover => reply(cfg, entry, &msg, ReplyKind::Offer, mtype, res.ip, out),
        MessageType::Request => {
            if !for_us {
                // SELECTING state: the client chose another server's offer.
                return drop(Some(mtype), DropReason::WrongServer);
            }
            let asked = match (msg.requested_ip(), msg.header.ciaddr) {
                (Some(ip), _) => ip,
                (None, ci) if !ci.is_unspecified() => ci,
                _ => return drop(Some(mtype), DropReason::NoAddress),
            };
            if asked == res.ip {
                reply(cfg, entry, &msg, ReplyKind::Ack, mtype, res.ip, out)
            } else {
                // The controller owns this MAC's address, so any other one is
                // wrong (stale lease, or the VM moved networks): RFC 2131
                // 4.3.2 says NAK so the client restarts at DISCOVER.
                tracing::debug!(mac = %mac, %asked, reserved = %res.ip, "NAK: client asked for another address");
                nak(cfg, entry, &msg, mtype, out)
            }
        }
        MessageType::Inform => reply(
            cfg,
            entry,
            &msg,
            ReplyKind::Ack,
            mtype,
            Ipv4Addr::UNSPECIFIED,
            out,
        ),
        MessageType::Release | MessageType::Decline => {
            if !for_us {
                return drop(Some(mtype), DropReason::WrongServer);
            }
            if mtype == MessageType::Decline {
                // Another host answers ARP for the reserved address.
                if DECLINE_LOG.allow() {
                    let asked = msg.requested_ip().unwrap_or(Ipv4Addr::UNSPECIFIED);
                    tracing::warn!(mac = %mac, declined = %asked, reserved = %res.ip, "DHCPDECLINE: address conflict on the network");
                }
            } else {
                // The address stays reserved: the controller owns it.
                tracing::debug!(mac = %mac, ip = %msg.header.ciaddr, "DHCPRELEASE");
            }
            Outcome::Handled(mtype)
        }
        MessageType::Offer | MessageType::Ack | MessageType::Nak => {
            drop(Some(mtype), DropReason::UnexpectedType)
        }
    }
}

fn drop(request: Option<MessageType>, reason: DropReason) -> Outcome {
    Outcome::Drop { request, reason }
}

/// RFC 2131 4.1 destination. NAKs to directly attached clients are always
/// broadcast (4.3.2): the client may not hold the address it names.
fn destination(cfg: &ServeConfig, h: &Header, kind: ReplyKind) -> SocketAddrV4 {
    if !h.giaddr.is_unspecified() {
        SocketAddrV4::new(h.giaddr, cfg.relay_port)
    } else if !h.ciaddr.is_unspecified() && kind != ReplyKind::Nak {
        SocketAddrV4::new(h.ciaddr, CLIENT_PORT)
    } else {
        // Unicast to a client without an address needs an ARP entry we
        // cannot add from a UDP socket; broadcast works with every client.
        SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
    }
}

fn reply_header(req: &Header) -> Header {
    let relayed = !req.giaddr.is_unspecified();
    Header {
        op: BOOTREPLY,
        htype: req.htype,
        hlen: req.hlen,
        hops: if relayed { req.hops } else { 0 },
        xid: req.xid,
        secs: 0,
        flags: req.flags,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: req.giaddr,
        chaddr: req.chaddr,
        sname: [0; 64],
        file: [0; 128],
    }
}

/// Options echoed from the request: client identifier (RFC 6842) and relay
/// agent information (RFC 3046).
fn echoed(msg: &Message) -> impl Iterator<Item = (u8, &[u8])> {
    [OPT_CLIENT_ID, OPT_RELAY_AGENT_INFO]
        .into_iter()
        .filter_map(|c| msg.option(c).map(|v| (c, v)))
}

fn reply(
    cfg: &ServeConfig,
    entry: &Entry,
    msg: &Message,
    kind: ReplyKind,
    request: MessageType,
    yiaddr: Ipv4Addr,
    out: &mut Vec<u8>,
) -> Outcome {
    let inform = request == MessageType::Inform;
    let mut h = reply_header(&msg.header);
    h.yiaddr = yiaddr;
    h.siaddr = entry.prepared.siaddr;
    if request != MessageType::Discover {
        // RFC 2131 table 3: an ACK carries the request's ciaddr.
        h.ciaddr = msg.header.ciaddr;
    }
    h.write(out);
    let msg_type = if kind == ReplyKind::Offer { 2 } else { 5 };
    out.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, msg_type]);

    let max = msg.max_message_size().map_or(DEFAULT_MAX_MESSAGE, |m| {
        usize::from(m).max(DEFAULT_MAX_MESSAGE)
    });
    let echoed_len: usize = echoed(msg).map(|(_, v)| encoded_option_len(v)).sum();
    // What is left for configured options once the header, 53, the echoed
    // options and END are accounted for.
    let budget = max.saturating_sub(IP_UDP_HEADERS + out.len() + echoed_len + 1);
    let prl = msg.parameter_request_list().unwrap_or(&[]);
    entry.prepared.write(out, prl, !inform, budget);
    for (c, v) in echoed(msg) {
        write_option(out, c, v);
    }
    finish(out, 0);
    Outcome::Reply {
        dest: destination(cfg, &msg.header, kind),
        kind,
        request,
    }
}

fn nak(
    cfg: &ServeConfig,
    entry: &Entry,
    msg: &Message,
    request: MessageType,
    out: &mut Vec<u8>,
) -> Outcome {
    let mut h = reply_header(&msg.header);
    if !h.giaddr.is_unspecified() {
        // RFC 2131 4.3.2: the relay must broadcast a NAK to the client.
        h.flags |= FLAG_BROADCAST;
    }
    h.write(out);
    out.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, 6]);
    write_option(out, OPT_SERVER_ID, &entry.res.subnet.server_id.octets());
    for (c, v) in echoed(msg) {
        write_option(out, c, v);
    }
    finish(out, 0);
    Outcome::Reply {
        dest: destination(cfg, &msg.header, ReplyKind::Nak),
        kind: ReplyKind::Nak,
        request,
    }
}

/// At most one log line per second for events a client can repeat at will.
struct RateLimit {
    last_sec: AtomicU64,
}

static DECLINE_LOG: RateLimit = RateLimit {
    last_sec: AtomicU64::new(0),
};

impl RateLimit {
    fn allow(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_sec.load(Ordering::Relaxed);
        now != last
            && self
                .last_sec
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{OPT_PARAMETER_REQUEST_LIST, OPT_REQUESTED_IP};
    use crate::options::parse_extras;
    use crate::table::{Reservation, SubnetParams};
    use std::sync::Arc;

    const MAC: neutrino_net::Mac = neutrino_net::Mac::new([0xfa, 0x16, 0x3e, 0x11, 0x22, 0x33]);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

    fn src() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)
    }

    fn table() -> Table {
        let subnet = Arc::new(SubnetParams {
            network: "10.0.0.0/24".parse().unwrap(),
            router: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dns: vec![Ipv4Addr::new(10, 0, 0, 3)],
            domain: "openstacklocal".into(),
            mtu: Some(1450),
            routes: vec![(
                Ipv4Addr::new(169, 254, 169, 254),
                32,
                Ipv4Addr::new(10, 0, 0, 3),
            )],
            lease_secs: 600,
            server_id: SERVER,
        });
        Table::new([Reservation {
            mac: MAC,
            ip: IP,
            hostname: "vm-1".into(),
            subnet,
            extra: parse_extras([("bootfile-name", "pxelinux.0")]).into(),
        }])
    }

    fn request(t: MessageType) -> Message {
        let mut m = Message::default();
        m.header.xid = 42;
        m.header.chaddr[..6].copy_from_slice(MAC.as_bytes());
        m.options.push((OPT_MESSAGE_TYPE, vec![t as u8]));
        m
    }

    fn run(m: &Message) -> (Outcome, Option<Message>) {
        let mut b = Vec::new();
        m.encode(&mut b);
        let mut out = Vec::new();
        let o = handle(&table(), &b, src(), &mut out);
        let reply = (!out.is_empty()).then(|| Message::decode(&out).unwrap());
        (o, reply)
    }

    fn broadcast() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)
    }

    #[test]
    fn discover_gets_offer() {
        let mut m = request(MessageType::Discover);
        m.set_option(
            OPT_PARAMETER_REQUEST_LIST,
            vec![1, 28, 2, 3, 15, 6, 12, 121],
        );
        m.set_option(OPT_CLIENT_ID, vec![1, 0xfa, 0x16, 0x3e, 0x11, 0x22, 0x33]);
        m.header.flags = FLAG_BROADCAST;
        let (o, r) = run(&m);
        assert_eq!(
            o,
            Outcome::Reply {
                dest: broadcast(),
                kind: ReplyKind::Offer,
                request: MessageType::Discover
            }
        );
        let r = r.unwrap();
        assert_eq!(r.header.op, BOOTREPLY);
        assert_eq!(r.header.xid, 42);
        assert_eq!(r.header.flags, FLAG_BROADCAST);
        assert_eq!(r.header.yiaddr, IP);
        assert_eq!(r.header.siaddr, SERVER);
        assert_eq!(r.header.mac(), Some(MAC));
        assert_eq!(r.message_type(), Some(MessageType::Offer));
        assert_eq!(r.server_id(), Some(SERVER));
        assert_eq!(r.option(51), Some(&600u32.to_be_bytes()[..]));
        assert_eq!(r.option(58), Some(&300u32.to_be_bytes()[..]));
        assert_eq!(r.option(59), Some(&525u32.to_be_bytes()[..]));
        assert_eq!(r.option(1), Some(&[255, 255, 255, 0][..]));
        assert_eq!(r.option(3), Some(&[10, 0, 0, 1][..]));
        assert_eq!(r.option(12), Some(&b"vm-1"[..]));
        assert_eq!(r.option(26), Some(&1450u16.to_be_bytes()[..]));
        assert_eq!(r.option(67), Some(&b"pxelinux.0"[..]));
        assert_eq!(
            r.option(121),
            Some(&[32, 169, 254, 169, 254, 10, 0, 0, 3, 0, 10, 0, 0, 1][..])
        );
        assert_eq!(r.client_id(), m.client_id());
        let codes: Vec<u8> = r.options.iter().map(|(c, _)| *c).collect();
        assert_eq!(&codes[..7], &[53, 54, 51, 58, 59, 1, 3]);
        // Then the request list order (28, 15, 6, 12, 121), 2 is unknown.
        assert_eq!(&codes[7..12], &[28, 15, 6, 12, 121]);
    }

    #[test]
    fn discover_asking_other_ip_still_gets_reservation() {
        let mut m = request(MessageType::Discover);
        m.set_option(OPT_REQUESTED_IP, vec![10, 0, 0, 99]);
        let (_, r) = run(&m);
        assert_eq!(r.unwrap().header.yiaddr, IP);
    }

    #[test]
    fn request_selecting_ack() {
        let mut m = request(MessageType::Request);
        m.set_option(OPT_REQUESTED_IP, IP.octets().to_vec());
        m.set_option(OPT_SERVER_ID, SERVER.octets().to_vec());
        let (o, r) = run(&m);
        assert_eq!(
            o,
            Outcome::Reply {
                dest: broadcast(),
                kind: ReplyKind::Ack,
                request: MessageType::Request
            }
        );
        let r = r.unwrap();
        assert_eq!(r.message_type(), Some(MessageType::Ack));
        assert_eq!(r.header.yiaddr, IP);
    }

    #[test]
    fn request_for_other_server_is_ignored() {
        let mut m = request(MessageType::Request);
        m.set_option(OPT_REQUESTED_IP, vec![10, 0, 0, 77]);
        m.set_option(OPT_SERVER_ID, vec![10, 0, 0, 9]);
        let (o, r) = run(&m);
        assert_eq!(
            o,
            Outcome::Drop {
                request: Some(MessageType::Request),
                reason: DropReason::WrongServer
            }
        );
        assert!(r.is_none());
    }

    #[test]
    fn init_reboot_wrong_address_gets_nak() {
        let mut m = request(MessageType::Request);
        m.set_option(OPT_REQUESTED_IP, vec![10, 0, 0, 77]);
        m.set_option(OPT_CLIENT_ID, vec![0, 1, 2]);
        let (o, r) = run(&m);
        assert_eq!(
            o,
            Outcome::Reply {
                dest: broadcast(),
                kind: ReplyKind::Nak,
                request: MessageType::Request
            }
        );
        let r = r.unwrap();
        assert_eq!(r.message_type(), Some(MessageType::Nak));
        assert_eq!(r.header.yiaddr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(r.header.siaddr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(r.server_id(), Some(SERVER));
        assert_eq!(r.client_id(), Some(&[0, 1, 2][..]));
        assert_eq!(r.option(51), None);
        // Selecting with our server id but a wrong address is also NAKed.
        m.set_option(OPT_SERVER_ID, SERVER.octets().to_vec());
        assert!(matches!(
            run(&m).0,
            Outcome::Reply {
                kind: ReplyKind::Nak,
                ..
            }
        ));
    }

    #[test]
    fn renewing_uses_ciaddr_and_unicasts() {
        let mut m = request(MessageType::Request);
        m.header.ciaddr = IP;
        let (o, r) = run(&m);
        assert_eq!(
            o,
            Outcome::Reply {
                dest: SocketAddrV4::new(IP, 68),
                kind: ReplyKind::Ack,
                request: MessageType::Request
            }
        );
        assert_eq!(r.unwrap().header.ciaddr, IP);
        // A renewal for another address is NAKed, by broadcast.
        m.header.ciaddr = Ipv4Addr::new(10, 0, 0, 6);
        let (o, _) = run(&m);
        assert_eq!(
            o,
            Outcome::Reply {
                dest: broadcast(),
                kind: ReplyKind::Nak,
                request: MessageType::Request
            }
        );
    }

    #[test]
    fn request_without_address_is_dropped() {
        let m = request(MessageType::Request);
        assert_eq!(
            run(&m).0,
            Outcome::Drop {
                request: Some(MessageType::Request),
                reason: DropReason::NoAddress
            }
        );
    }

    #[test]
    fn relayed_reply_goes_to_giaddr() {
        let mut m = request(MessageType::Discover);
        m.header.giaddr = Ipv4Addr::new(192, 168, 1, 1);
        m.header.hops = 1;
        m.set_option(OPT_RELAY_AGENT_INFO, vec![1, 3, b'e', b't', b'h']);
        let (o, r) = run(&m);
        assert_eq!(
            o,
            Outcome::Reply {
                dest: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 1), 67),
                kind: ReplyKind::Offer,
                request: MessageType::Discover
            }
        );
        let r = r.unwrap();
        assert_eq!(r.header.giaddr, Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(r.header.hops, 1);
        assert_eq!(r.option(82), Some(&[1, 3, b'e', b't', b'h'][..]));
        // Relayed NAKs ask the relay to broadcast.
        let mut m = request(MessageType::Request);
        m.header.giaddr = Ipv4Addr::new(192, 168, 1, 1);
        m.set_option(OPT_REQUESTED_IP, vec![10, 0, 0, 77]);
        let (_, r) = run(&m);
        assert_eq!(r.unwrap().header.flags & FLAG_BROADCAST, FLAG_BROADCAST);
        // The relay port is configurable (tests).
        let mut b = Vec::new();
        request(MessageType::Discover).encode(&mut b);
        let mut m2 = Message::decode(&b).unwrap();
        m2.header.giaddr = Ipv4Addr::LOCALHOST;
        b.clear();
        m2.encode(&mut b);
        let cfg = ServeConfig { relay_port: 4242 };
        let o = handle_with(&cfg, &table(), &b, src(), &mut Vec::new());
        assert!(
            matches!(o, Outcome::Reply { dest, .. } if dest == SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4242))
        );
    }

    #[test]
    fn inform_gets_ack_without_lease() {
        let mut m = request(MessageType::Inform);
        m.header.ciaddr = IP;
        let (o, r) = run(&m);
        assert_eq!(
            o,
            Outcome::Reply {
                dest: SocketAddrV4::new(IP, 68),
                kind: ReplyKind::Ack,
                request: MessageType::Inform
            }
        );
        let r = r.unwrap();
        assert_eq!(r.message_type(), Some(MessageType::Ack));
        assert_eq!(r.header.yiaddr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(r.header.ciaddr, IP);
        for code in [51, 58, 59] {
            assert_eq!(r.option(code), None);
        }
        assert_eq!(r.option(1), Some(&[255, 255, 255, 0][..]));
    }

    #[test]
    fn release_and_decline_are_handled_silently() {
        for t in [MessageType::Release, MessageType::Decline] {
            let mut m = request(t);
            m.set_option(OPT_SERVER_ID, SERVER.octets().to_vec());
            let (o, r) = run(&m);
            assert_eq!(o, Outcome::Handled(t));
            assert!(r.is_none());
            m.set_option(OPT_SERVER_ID, vec![1, 1, 1, 1]);
            assert_eq!(
                run(&m).0,
                Outcome::Drop {
                    request: Some(t),
                    reason: DropReason::WrongServer
                }
            );
        }
    }

    #[test]
    fn drops() {
        let mut m = request(MessageType::Discover);
        m.header.chaddr[5] ^= 1;
        assert_eq!(
            run(&m).0,
            Outcome::Drop {
                request: Some(MessageType::Discover),
                reason: DropReason::UnknownMac
            }
        );

        let mut m = request(MessageType::Discover);
        m.header.op = BOOTREPLY;
        assert_eq!(
            run(&m).0,
            Outcome::Drop {
                request: Some(MessageType::Discover),
                reason: DropReason::NotRequest
            }
        );

        let mut m = request(MessageType::Discover);
        m.header.htype = 6;
        assert_eq!(
            run(&m).0,
            Outcome::Drop {
                request: Some(MessageType::Discover),
                reason: DropReason::NotEthernet
            }
        );

        for t in [MessageType::Offer, MessageType::Ack, MessageType::Nak] {
            assert_eq!(
                run(&request(t)).0,
                Outcome::Drop {
                    request: Some(t),
                    reason: DropReason::UnexpectedType
                }
            );
        }

        let mut out = vec![1, 2, 3];
        let o = handle(&table(), &[1, 2, 3], src(), &mut out);
        assert_eq!(
            o,
            Outcome::Drop {
                request: None,
                reason: DropReason::Malformed(DecodeError::TooShort(3))
            }
        );
        assert!(out.is_empty());
        assert_eq!(
            DropReason::Malformed(DecodeError::BadCookie).label(),
            "malformed_bad_cookie"
        );
    }

    #[test]
    fn small_max_message_size_drops_options_not_mandatory_ones() {
        let mut m = request(MessageType::Discover);
        m.set_option(57, 576u16.to_be_bytes().to_vec());
        m.set_option(OPT_CLIENT_ID, vec![7; 200]);
        let mut b = Vec::new();
        m.encode(&mut b);
        let mut out = Vec::new();
        handle(&table(), &b, src(), &mut out);
        assert!(out.len() + IP_UDP_HEADERS <= 576, "{}", out.len());
        let r = Message::decode(&out).unwrap();
        assert_eq!(r.server_id(), Some(SERVER));
        assert_eq!(r.client_id().map(<[u8]>::len), Some(200));
    }

    #[test]
    fn reply_size_within_default_limit() {
        let (_, r) = run(&request(MessageType::Discover));
        let mut b = Vec::new();
        r.unwrap().encode(&mut b);
        assert!(b.len() + IP_UDP_HEADERS <= DEFAULT_MAX_MESSAGE);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn handle_never_panics(b in proptest::collection::vec(any::<u8>(), 0..800)) {
                let mut out = Vec::new();
                let _ = handle(&table(), &b, src(), &mut out);
            }

            /// Valid header and known MAC with random options: the deep path.
            #[test]
            fn handle_known_mac_random_options(tail in proptest::collection::vec(any::<u8>(), 0..400), t in 1u8..=8) {
                let m = request(MessageType::Discover);
                let mut b = Vec::new();
                m.header.write(&mut b);
                b.extend_from_slice(&[53, 1, t]);
                b.extend_from_slice(&tail);
                let mut out = Vec::new();
                if let Outcome::Reply { .. } = handle(&table(), &b, src(), &mut out) {
                    prop_assert!(Message::decode(&out).is_ok());
                }
            }
        }
    }
}
