//! A tiny synchronous rtnetlink client (netavark's approach): one request at
//! a time over a netlink-sys socket, bound to the namespace of the thread
//! that opened it.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    ParseableParametrized,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("kernel: {0}")]
    Kernel(io::Error),
    #[error("decode: {0}")]
    Decode(String),
}

impl SocketError {
    /// The errno the kernel answered with, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SocketError::Kernel(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

pub struct Nl {
    sock: Socket,
    seq: u32,
    /// Receive buffer, reused across datagrams and requests.
    buf: Vec<u8>,
}

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

/// One reply message as it sits in the receive buffer.
pub struct Reply<'a> {
    /// nlmsg_type, e.g. RTM_NEWLINK.
    pub kind: u16,
    /// Everything after the netlink header.
    pub payload: &'a [u8],
}

fn decode_err(what: &str) -> SocketError {
    SocketError::Decode(what.into())
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Split one datagram into (nlmsg_type, nlmsg_seq, payload) messages,
/// bounds-checked: a bad length is an error, never a panic.
pub(crate) fn messages(
    mut buf: &[u8],
) -> impl Iterator<Item = Result<(u16, u32, &[u8]), SocketError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let len = u32_at(buf, 0).map(|l| l as usize);
        let Some(len) = len.filter(|l| (NLMSG_HDRLEN..=buf.len()).contains(l)) else {
            buf = &[];
            return Some(Err(decode_err("bad netlink message length")));
        };
        let (kind, seq) = (u16_at(buf, 4)?, u32_at(buf, 8)?);
        let payload = &buf[NLMSG_HDRLEN..len];
        // The last message of a datagram may lack its alignment padding.
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
        Some(Ok((kind, seq, payload)))
    })
}

/// The errno of an NLMSG_ERROR payload; 0 is an ack.
pub(crate) fn error_code(payload: &[u8]) -> Result<i32, SocketError> {
    u32_at(payload, 0)
        .map(u32::cast_signed)
        .ok_or_else(|| decode_err("truncated NLMSG_ERROR"))
}

impl Nl {
    pub fn open() -> Result<Self, SocketError> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Nl {
            sock,
            seq: 0,
            buf: Vec::new(),
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, SocketError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        Ok(self.seq)
    }

    /// Read one whole datagram into the reused buffer (peek for its size
    /// first: a dump datagram can exceed any fixed size).
    fn recv(&mut self) -> Result<(), SocketError> {
        let size = self
            .sock
            .recv(&mut Vec::new(), nix::libc::MSG_PEEK | nix::libc::MSG_TRUNC)?;
        self.buf.clear();
        self.buf.reserve(size);
        self.sock.recv(&mut self.buf, 0)?;
        Ok(())
    }

    /// Feed the replies to `seq` to `each` as they arrive, until the ack
    /// (or DONE for dumps). Nothing is held beyond one datagram.
    fn replies(
        &mut self,
        seq: u32,
        dump: bool,
        mut each: impl FnMut(Reply<'_>) -> Result<(), SocketError>,
    ) -> Result<(), SocketError> {
        loop {
            self.recv()?;
            for m in messages(&self.buf) {
                let (kind, mseq, payload) = m?;
                if mseq != seq {
                    continue; // stale reply to an earlier request
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => match error_code(payload)? {
                        0 if dump => {}
                        0 => return Ok(()),
                        code => {
                            return Err(SocketError::Kernel(io::Error::from_raw_os_error(
                                code.wrapping_neg(),
                            )));
                        }
                    },
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    _ => each(Reply { kind, payload })?,
                }
            }
        }
    }

    /// A change request that the kernel acknowledges.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), SocketError> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.replies(seq, false, |_| Ok(()))
    }

    /// A single get (no dump); returns the replies, fully decoded.
    pub fn get(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, SocketError> {
        let seq = self.send(msg, NLM_F_ACK)?;
        let mut out = Vec::new();
        self.replies(seq, false, |r| {
            out.push(decode(&r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Turn the kernel's strict checking of dump requests on or off
    /// (NETLINK_GET_STRICT_CHK, Linux >= 4.20): only then does it honour
    /// filters in the request header. Err on kernels without it.
    pub fn set_strict(&mut self, on: bool) -> Result<(), SocketError> {
        Ok(self.sock.set_netlink_get_strict_chk(on)?)
    }

    /// A dump, each reply handed to `each` undecoded as it arrives.
    pub fn dump_raw(
        &mut self,
        msg: RouteNetlinkMessage,
        each: impl FnMut(Reply<'_>) -> Result<(), SocketError>,
    ) -> Result<(), SocketError> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        self.replies(seq, true, each)
    }
}

/// Full netlink-packet-route decode of one reply (small or rare replies).
pub fn decode(r: &Reply<'_>) -> Result<RouteNetlinkMessage, SocketError> {
    RouteNetlinkMessage::parse_with_param(r.payload, r.kind)
        .map_err(|e| SocketError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two messages; the second (DONE) without trailing padding.
    fn datagram() -> Vec<u8> {
        let mut b = Vec::new();
        for (kind, payload) in [
            (16u16, &[1u8, 2, 3, 4, 5][..]),
            (NLMSG_DONE, &[0, 0, 0, 0][..]),
        ] {
            let len = NLMSG_HDRLEN + payload.len();
            b.extend(u32::try_from(len).unwrap().to_ne_bytes());
            b.extend(kind.to_ne_bytes());
            b.extend(0u16.to_ne_bytes());
            b.extend(9u32.to_ne_bytes());
            b.extend(0u32.to_ne_bytes());
            b.extend(payload);
            b.resize((b.len() + 3) & !3, 0);
        }
        b
    }

    #[test]
    fn messages_split_a_datagram() {
        let d = datagram();
        let got: Vec<_> = messages(&d).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0, got[0].1, got[0].2),
            (16, 9, &[1u8, 2, 3, 4, 5][..])
        );
        assert_eq!(got[1].0, NLMSG_DONE);
    }

    #[test]
    fn truncated_datagrams_are_errors_not_panics() {
        let d = datagram();
        // Only the first message whole, with or without (some) padding.
        let first = NLMSG_HDRLEN + 5..=NLMSG_HDRLEN + 8;
        for n in 1..d.len() {
            let r: Result<Vec<_>, _> = messages(&d[..n]).collect();
            assert_eq!(r.is_ok(), first.contains(&n), "cut at {n}");
        }
        let mut zero = d.clone();
        zero[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(messages(&zero).collect::<Result<Vec<_>, _>>().is_err());
        assert!(error_code(&[0, 0]).is_err());
    }
}
