//! Sans-IO DHCPv4 codec (RFC 2131 / RFC 2132 / RFC 3396).
//!
//! Written by hand rather than taken from dhcproto because that crate panics
//! on short options, and this parser faces untrusted packets from tenants.
//! Decoding is bounds-checked everywhere and never panics.

use std::net::Ipv4Addr;

use neutrino_net::Mac;
use thiserror::Error;

pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
/// `htype` for Ethernet (10Mb), the only hardware type Neutron ports have.
pub const HTYPE_ETHERNET: u8 = 1;
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Fixed BOOTP header length, before the magic cookie.
pub const HEADER_LEN: usize = 236;
/// Old BOOTP relays drop anything smaller, so replies are padded to this.
pub const MIN_PACKET_LEN: usize = 300;
/// Broadcast bit of `flags`.
pub const FLAG_BROADCAST: u16 = 0x8000;

pub const OPT_PAD: u8 = 0;
pub const OPT_SUBNET_MASK: u8 = 1;
pub const OPT_ROUTER: u8 = 3;
pub const OPT_DNS: u8 = 6;
pub const OPT_HOSTNAME: u8 = 12;
pub const OPT_DOMAIN_NAME: u8 = 15;
pub const OPT_MTU: u8 = 26;
pub const OPT_BROADCAST: u8 = 28;
pub const OPT_REQUESTED_IP: u8 = 50;
pub const OPT_LEASE_TIME: u8 = 51;
pub const OPT_OVERLOAD: u8 = 52;
pub const OPT_MESSAGE_TYPE: u8 = 53;
pub const OPT_SERVER_ID: u8 = 54;
pub const OPT_PARAMETER_REQUEST_LIST: u8 = 55;
pub const OPT_MESSAGE: u8 = 56;
pub const OPT_MAX_MESSAGE_SIZE: u8 = 57;
pub const OPT_RENEWAL_TIME: u8 = 58;
pub const OPT_REBINDING_TIME: u8 = 59;
pub const OPT_CLIENT_ID: u8 = 61;
pub const OPT_RELAY_AGENT_INFO: u8 = 82;
pub const OPT_CLASSLESS_ROUTES: u8 = 121;
pub const OPT_END: u8 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("bad magic cookie")]
    BadCookie,
    #[error("hardware address length {0} > 16")]
    BadHlen(u8),
    #[error("option {0} truncated")]
    TruncatedOption(u8),
    #[error("no DHCP message type option")]
    MissingMessageType,
    #[error("invalid DHCP message type {0}")]
    BadMessageType(u8),
}

impl DecodeError {
    /// Stable snake_case name, used as a metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooShort(_) => "too_short",
            Self::BadCookie => "bad_cookie",
            Self::BadHlen(_) => "bad_hlen",
            Self::TruncatedOption(_) => "truncated_option",
            Self::MissingMessageType => "missing_message_type",
            Self::BadMessageType(_) => "bad_message_type",
        }
    }

    pub const ALL_LABELS: [&'static str; 6] = [
        "too_short",
        "bad_cookie",
        "bad_hlen",
        "truncated_option",
        "missing_message_type",
        "bad_message_type",
    ];

    pub(crate) fn index(&self) -> usize {
        match self {
            Self::TooShort(_) => 0,
            Self::BadCookie => 1,
            Self::BadHlen(_) => 2,
            Self::TruncatedOption(_) => 3,
            Self::MissingMessageType => 4,
            Self::BadMessageType(_) => 5,
        }
    }
}

/// DHCP message type (option 53), RFC 2132 9.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
    Inform = 8,
}

impl MessageType {
    pub const ALL: [MessageType; 8] = [
        Self::Discover,
        Self::Offer,
        Self::Request,
        Self::Decline,
        Self::Ack,
        Self::Nak,
        Self::Release,
        Self::Inform,
    ];

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v).wrapping_sub(1)).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discover => "discover",
            Self::Offer => "offer",
            Self::Request => "request",
            Self::Decline => "decline",
            Self::Ack => "ack",
            Self::Nak => "nak",
            Self::Release => "release",
            Self::Inform => "inform",
        }
    }
}

/// The fixed BOOTP part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    pub sname: [u8; 64],
    pub file: [u8; 128],
}

impl Default for Header {
    fn default() -> Self {
        Self {
            op: BOOTREQUEST,
            htype: HTYPE_ETHERNET,
            hlen: 6,
            hops: 0,
            xid: 0,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: [0; 16],
            sname: [0; 64],
            file: [0; 128],
        }
    }
}

impl Header {
    /// The client MAC, when the hardware type is Ethernet with a 6-byte address.
    pub fn mac(&self) -> Option<Mac> {
        if self.htype != HTYPE_ETHERNET || self.hlen != 6 {
            return None;
        }
        Mac::try_from(&self.chaddr[..6]).ok()
    }

    /// Appends the 236-byte fixed header and the magic cookie.
    pub fn write(&self, buf: &mut Vec<u8>) {
        buf.reserve(HEADER_LEN + 4);
        buf.extend_from_slice(&[self.op, self.htype, self.hlen, self.hops]);
        buf.extend_from_slice(&self.xid.to_be_bytes());
        buf.extend_from_slice(&self.secs.to_be_bytes());
        buf.extend_from_slice(&self.flags.to_be_bytes());
        for a in [self.ciaddr, self.yiaddr, self.siaddr, self.giaddr] {
            buf.extend_from_slice(&a.octets());
        }
        buf.extend_from_slice(&self.chaddr);
        buf.extend_from_slice(&self.sname);
        buf.extend_from_slice(&self.file);
        buf.extend_from_slice(&MAGIC_COOKIE);
    }

    fn read(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < HEADER_LEN + 4 {
            return Err(DecodeError::TooShort(b.len()));
        }
        if b[HEADER_LEN..HEADER_LEN + 4] != MAGIC_COOKIE {
            return Err(DecodeError::BadCookie);
        }
        let hlen = b[2];
        if hlen > 16 {
            return Err(DecodeError::BadHlen(hlen));
        }
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        let mut h = Header {
            op: b[0],
            htype: b[1],
            hlen,
            hops: b[3],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ip(12),
            yiaddr: ip(16),
            siaddr: ip(20),
            giaddr: ip(24),
            ..Header::default()
        };
        h.chaddr.copy_from_slice(&b[28..44]);
        h.sname.copy_from_slice(&b[44..108]);
        h.file.copy_from_slice(&b[108..236]);
        Ok(h)
    }
}

/// A decoded DHCP message. Options keep their wire order; a code that appears
/// several times is concatenated into its first position (RFC 3396).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub header: Header,
    pub options: Vec<(u8, Vec<u8>)>,
}

impl Message {
    /// Parses a packet. Option overload (52) is not followed: sname/file are
    /// kept as raw bytes, which is all a reservation server needs. Hardware
    /// types other than Ethernet are accepted here; the server drops them.
    pub fn decode(b: &[u8]) -> Result<Message, DecodeError> {
        let header = Header::read(b)?;
        let mut options: Vec<(u8, Vec<u8>)> = Vec::with_capacity(12);
        let mut rest = &b[HEADER_LEN + 4..];
        // A missing END is tolerated: some clients stop at the data's end.
        while let Some((&code, tail)) = rest.split_first() {
            match code {
                OPT_PAD => {
                    rest = tail;
                    continue;
                }
                OPT_END => break,
                _ => {}
            }
            let Some((&len, tail)) = tail.split_first() else {
                return Err(DecodeError::TruncatedOption(code));
            };
            let len = usize::from(len);
            if tail.len() < len {
                return Err(DecodeError::TruncatedOption(code));
            }
            let (data, tail) = tail.split_at(len);
            match options.iter_mut().find(|(c, _)| *c == code) {
                Some((_, v)) => v.extend_from_slice(data),
                None => options.push((code, data.to_vec())),
            }
            rest = tail;
        }
        let msg = Message { header, options };
        match msg.option(OPT_MESSAGE_TYPE) {
            None => Err(DecodeError::MissingMessageType),
            Some([t]) if MessageType::from_u8(*t).is_some() => Ok(msg),
            Some([t, ..]) => Err(DecodeError::BadMessageType(*t)),
            Some([]) => Err(DecodeError::BadMessageType(0)),
        }
    }

    /// Appends the wire form: header, cookie, options (long values split per
    /// RFC 3396), END, zero padding up to 300 bytes.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        self.header.write(buf);
        for (code, data) in &self.options {
            if *code != OPT_PAD && *code != OPT_END {
                write_option(buf, *code, data);
            }
        }
        finish(buf, start);
    }

    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    /// Replaces the option's value, or appends it.
    pub fn set_option(&mut self, code: u8, data: Vec<u8>) {
        match self.options.iter_mut().find(|(c, _)| *c == code) {
            Some((_, v)) => *v = data,
            None => self.options.push((code, data)),
        }
    }

    /// Always `Some` for a decoded message (decode rejects anything else).
    pub fn message_type(&self) -> Option<MessageType> {
        match self.option(OPT_MESSAGE_TYPE)? {
            [t] => MessageType::from_u8(*t),
            _ => None,
        }
    }

    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.option(OPT_REQUESTED_IP).and_then(ipv4)
    }

    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.option(OPT_SERVER_ID).and_then(ipv4)
    }

    pub fn parameter_request_list(&self) -> Option<&[u8]> {
        self.option(OPT_PARAMETER_REQUEST_LIST)
    }

    pub fn client_id(&self) -> Option<&[u8]> {
        self.option(OPT_CLIENT_ID)
    }

    /// Option 12, when it is valid UTF-8.
    pub fn hostname(&self) -> Option<&str> {
        self.option(OPT_HOSTNAME)
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn max_message_size(&self) -> Option<u16> {
        match self.option(OPT_MAX_MESSAGE_SIZE)? {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

/// Appends one option, split into 255-byte chunks of the same code when the
/// value is longer (RFC 3396). An empty value is written as a zero-length option.
/// The server identifier (option 54) of an encoded reply, read in place:
/// the address a reply must leave from.
pub fn encoded_server_id(msg: &[u8]) -> Option<Ipv4Addr> {
    let mut i = 240; // fixed header and magic cookie
    while i < msg.len() {
        let code = msg[i];
        match code {
            0 => i += 1,
            255 => return None,
            _ => {
                let len = usize::from(*msg.get(i + 1)?);
                let data = msg.get(i + 2..i + 2 + len)?;
                if code == OPT_SERVER_ID {
                    return <[u8; 4]>::try_from(data).ok().map(Ipv4Addr::from);
                }
                i += 2 + len;
            }
        }
    }
    None
}

pub fn write_option(buf: &mut Vec<u8>, code: u8, data: &[u8]) {
    if data.is_empty() {
        buf.extend_from_slice(&[code, 0]);
        return;
    }
    for chunk in data.chunks(255) {
        // chunks(255) guarantees the length fits a u8.
        buf.extend_from_slice(&[code, u8::try_from(chunk.len()).unwrap_or(u8::MAX)]);
        buf.extend_from_slice(chunk);
    }
}

/// Length of `data` once written by [`write_option`].
pub fn encoded_option_len(data: &[u8]) -> usize {
    let chunks = data.len().div_ceil(255).max(1);
    data.len() + 2 * chunks
}

/// Writes END and pads the packet that began at `start` to the BOOTP minimum.
pub fn finish(buf: &mut Vec<u8>, start: usize) {
    buf.push(OPT_END);
    let len = buf.len() - start;
    if len < MIN_PACKET_LEN {
        buf.resize(start + MIN_PACKET_LEN, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn discover_bytes() -> Vec<u8> {
        let mut m = Message::default();
        m.header.xid = 0xdead_beef;
        m.header.flags = FLAG_BROADCAST;
        m.header.chaddr[..6].copy_from_slice(&[0xfa, 0x16, 0x3e, 0, 0, 1]);
        m.options.push((OPT_MESSAGE_TYPE, vec![1]));
        m.options
            .push((OPT_PARAMETER_REQUEST_LIST, vec![1, 3, 6, 15, 121]));
        m.options
            .push((OPT_CLIENT_ID, vec![1, 0xfa, 0x16, 0x3e, 0, 0, 1]));
        m.options.push((OPT_MAX_MESSAGE_SIZE, vec![0x05, 0xdc]));
        m.options.push((OPT_HOSTNAME, b"vm1".to_vec()));
        let mut b = Vec::new();
        m.encode(&mut b);
        b
    }

    #[test]
    fn decode_known_discover() {
        let b = discover_bytes();
        assert_eq!(b.len(), MIN_PACKET_LEN);
        assert_eq!(&b[..4], &[1, 1, 6, 0]);
        assert_eq!(&b[4..8], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&b[236..240], &MAGIC_COOKIE);
        assert_eq!(&b[240..243], &[53, 1, 1]);
        let m = Message::decode(&b).unwrap();
        assert_eq!(m.message_type(), Some(MessageType::Discover));
        assert_eq!(m.header.xid, 0xdead_beef);
        assert_eq!(m.header.flags, FLAG_BROADCAST);
        assert_eq!(m.header.mac(), Some(Mac::new([0xfa, 0x16, 0x3e, 0, 0, 1])));
        assert_eq!(m.parameter_request_list(), Some(&[1, 3, 6, 15, 121][..]));
        assert_eq!(m.client_id(), Some(&[1, 0xfa, 0x16, 0x3e, 0, 0, 1][..]));
        assert_eq!(m.max_message_size(), Some(1500));
        assert_eq!(m.hostname(), Some("vm1"));
        assert_eq!(m.requested_ip(), None);
        assert_eq!(m.server_id(), None);
    }

    /// A hand-written REQUEST with pads, no END and a requested IP/server id.
    #[test]
    fn decode_handwritten_request() {
        let mut b = vec![0u8; 240];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[236..240].copy_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[0, 0, 53, 1, 3, 0, 50, 4, 10, 0, 0, 5, 54, 4, 10, 0, 0, 2]);
        let m = Message::decode(&b).unwrap();
        assert_eq!(m.message_type(), Some(MessageType::Request));
        assert_eq!(m.requested_ip(), Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(m.server_id(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        // Bytes after END are ignored.
        b.extend_from_slice(&[255, 7, 200]);
        assert!(Message::decode(&b).is_ok());
    }

    #[test]
    fn repeated_options_are_concatenated() {
        let mut b = discover_bytes();
        b.truncate(240);
        b.extend_from_slice(&[53, 1, 1, 121, 2, 1, 2, 6, 4, 8, 8, 8, 8, 121, 1, 3, 255]);
        let m = Message::decode(&b).unwrap();
        assert_eq!(m.option(121), Some(&[1, 2, 3][..]));
        let codes: Vec<u8> = m.options.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, vec![53, 121, 6]);
    }

    #[test]
    fn long_option_split_and_rejoined() {
        let mut m = Message::default();
        m.options.push((OPT_MESSAGE_TYPE, vec![3]));
        m.options
            .push((119, (0..600u32).map(|i| (i % 251) as u8).collect()));
        let mut b = Vec::new();
        m.encode(&mut b);
        // 3 chunks: 255 + 255 + 90.
        assert_eq!(b[243], 119);
        assert_eq!(b[244], 255);
        assert_eq!(b[243 + 257], 119);
        assert_eq!(Message::decode(&b).unwrap(), m);
    }

    #[test]
    fn malformed_cases() {
        let good = discover_bytes();
        assert_eq!(Message::decode(&[]), Err(DecodeError::TooShort(0)));
        assert_eq!(
            Message::decode(&good[..239]),
            Err(DecodeError::TooShort(239))
        );

        let mut b = good.clone();
        b[237] = 0;
        assert_eq!(Message::decode(&b), Err(DecodeError::BadCookie));

        let mut b = good.clone();
        b[2] = 17;
        assert_eq!(Message::decode(&b), Err(DecodeError::BadHlen(17)));

        // Code without length byte.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 1, 1, 12]);
        assert_eq!(Message::decode(&b), Err(DecodeError::TruncatedOption(12)));
        // Length past the end.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 1, 1, 12, 10, b'a']);
        assert_eq!(Message::decode(&b), Err(DecodeError::TruncatedOption(12)));

        // No message type at all (cookie then END).
        let mut b = good[..240].to_vec();
        b.push(255);
        assert_eq!(Message::decode(&b), Err(DecodeError::MissingMessageType));
        // Only options before END count.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[255, 53, 1, 1]);
        assert_eq!(Message::decode(&b), Err(DecodeError::MissingMessageType));

        for bad in [
            [53u8, 1, 0].as_slice(),
            &[53, 1, 9],
            &[53, 2, 1, 1],
            &[53, 0],
        ] {
            let mut b = good[..240].to_vec();
            b.extend_from_slice(bad);
            assert!(
                matches!(Message::decode(&b), Err(DecodeError::BadMessageType(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn non_ethernet_is_decoded_but_has_no_mac() {
        let mut b = discover_bytes();
        b[1] = 6; // IEEE 802
        let m = Message::decode(&b).unwrap();
        assert_eq!(m.header.mac(), None);
    }

    #[test]
    fn labels_match_indices() {
        let all = [
            DecodeError::TooShort(0),
            DecodeError::BadCookie,
            DecodeError::BadHlen(0),
            DecodeError::TruncatedOption(0),
            DecodeError::MissingMessageType,
            DecodeError::BadMessageType(0),
        ];
        for e in all {
            assert_eq!(DecodeError::ALL_LABELS[e.index()], e.label());
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn header() -> impl Strategy<Value = Header> {
            (
                (
                    any::<u8>(),
                    any::<u8>(),
                    0u8..=16,
                    any::<u8>(),
                    any::<u32>(),
                ),
                (any::<u16>(), any::<u16>(), any::<[u32; 4]>()),
                (
                    any::<[u8; 16]>(),
                    proptest::collection::vec(any::<u8>(), 64),
                    proptest::collection::vec(any::<u8>(), 128),
                ),
            )
                .prop_map(
                    |((op, htype, hlen, hops, xid), (secs, flags, a), (ch, sn, fi))| {
                        let mut h = Header {
                            op,
                            htype,
                            hlen,
                            hops,
                            xid,
                            secs,
                            flags,
                            ciaddr: a[0].into(),
                            yiaddr: a[1].into(),
                            siaddr: a[2].into(),
                            giaddr: a[3].into(),
                            chaddr: ch,
                            ..Header::default()
                        };
                        h.sname.copy_from_slice(&sn);
                        h.file.copy_from_slice(&fi);
                        h
                    },
                )
        }

        fn message() -> impl Strategy<Value = Message> {
            (
                header(),
                1u8..=8,
                0usize..8,
                proptest::collection::vec(
                    (1u8..=254, proptest::collection::vec(any::<u8>(), 0..700)),
                    0..10,
                ),
            )
                .prop_map(|(header, t, pos, opts)| {
                    let mut options: Vec<(u8, Vec<u8>)> = Vec::new();
                    for (c, v) in opts {
                        if c != OPT_MESSAGE_TYPE && !options.iter().any(|(x, _)| *x == c) {
                            options.push((c, v));
                        }
                    }
                    let pos = pos.min(options.len());
                    options.insert(pos, (OPT_MESSAGE_TYPE, vec![t]));
                    Message { header, options }
                })
        }

        proptest! {
            #[test]
            fn roundtrip(m in message()) {
                let mut b = Vec::new();
                m.encode(&mut b);
                prop_assert!(b.len() >= MIN_PACKET_LEN);
                prop_assert_eq!(Message::decode(&b).unwrap(), m);
            }

            #[test]
            fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..1500)) {
                let _ = Message::decode(&b);
            }

            /// Random option bytes after a valid header exercise the TLV walker.
            #[test]
            fn decode_never_panics_after_cookie(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
                let mut b = vec![0u8; 236];
                b.extend_from_slice(&MAGIC_COOKIE);
                b.extend_from_slice(&tail);
                if let Ok(m) = Message::decode(&b) {
                    let mut again = Vec::new();
                    m.encode(&mut again);
                    prop_assert_eq!(Message::decode(&again).unwrap(), m);
                }
            }
        }
    }

    #[test]
    fn a_replys_server_id_is_read_in_place() {
        let mut msg = vec![0u8; 240];
        msg.extend([53, 1, 2, 0, 54, 4, 10, 0, 0, 2, 255]);
        assert_eq!(encoded_server_id(&msg), Some(Ipv4Addr::new(10, 0, 0, 2)));
        // Cut short inside the option, or absent: none.
        assert_eq!(encoded_server_id(&msg[..248]), None);
        assert_eq!(encoded_server_id(&msg[..243]), None);
        assert_eq!(encoded_server_id(&[0u8; 10]), None);
    }
}
