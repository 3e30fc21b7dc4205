//! Set and map elements written straight to nf_tables over netlink, in one
//! batch (one transaction). The `nft` tool reads the table's sets before it
//! changes one, which costs more the more ports a host has; this writes only
//! the elements, so a port's arrival costs the same on any host. Only hash
//! sets and maps are written here (interval sets go through `nft`).

use std::io;
use std::net::IpAddr;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use super::ruleset::{Elem, Family, Part, TABLE, Value};
use crate::socket::{error_code, messages};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_ERROR: u16 = 2;

const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_GOTO: i32 = -4;
/// An element takes at most ~120 bytes here: 400 stay well below 64 KiB.
const ELEMENTS_PER_MESSAGE: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum NfnlError {
    #[error("netlink: {0}")]
    Io(#[from] io::Error),
    #[error("kernel refused the batch: {0}")]
    Kernel(io::Error),
    #[error("cannot encode {0}")]
    Encode(String),
    #[error("bad reply: {0}")]
    Reply(String),
}

/// One element to add or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElemOp {
    pub add: bool,
    pub family: Family,
    pub set: String,
    pub elem: Elem,
}

fn nfproto(f: Family) -> u8 {
    match f {
        Family::Inet => 1,
        Family::Ip => 2,
        Family::Bridge => 7,
    }
}

/// A netlink attribute writer over one growing buffer.
struct Buf(Vec<u8>);

impl Buf {
    fn align(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.align();
    }

    fn string(&mut self, kind: u16, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(kind, &b);
    }

    /// Starts a nested attribute; `end` fills in its length.
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = u16::try_from(self.0.len() - at).unwrap_or(u16::MAX);
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// A whole netlink message: header, nfgenmsg, attributes from `body`.
    fn message(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
        body: impl FnOnce(&mut Buf),
    ) {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(&flags.to_ne_bytes());
        self.0.extend_from_slice(&seq.to_ne_bytes());
        self.0.extend_from_slice(&0u32.to_ne_bytes());
        self.0.extend_from_slice(&[family, 0]);
        self.0.extend_from_slice(&res_id.to_be_bytes());
        body(self);
        self.align();
        let len = u32::try_from(self.0.len() - at).unwrap_or(u32::MAX);
        self.0[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// A key field as the kernel's registers hold it: each field padded to
/// four bytes; marks in host order, addresses and raw payload in network order.
fn encode_part(p: &Part, out: &mut Vec<u8>) -> Result<(), NfnlError> {
    let start = out.len();
    match p {
        Part::Ifname(n) => {
            let b = n.as_bytes();
            if b.len() >= 16 {
                return Err(NfnlError::Encode(format!("interface name {n}")));
            }
            out.extend_from_slice(b);
            out.resize(start + 16, 0);
        }
        Part::Mac(m) => out.extend_from_slice(m.as_bytes()),
        Part::Mark(m) => out.extend_from_slice(&m.to_ne_bytes()),
        Part::Net(c) | Part::Raw6(c) if c.is_host() => match c.addr() {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        },
        Part::Net(c) | Part::Raw6(c) => {
            return Err(NfnlError::Encode(format!(
                "network {} (interval sets go through nft)",
                c.compact()
            )));
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    Ok(())
}

fn encode_elem(b: &mut Buf, e: &Elem, with_value: bool) -> Result<(), NfnlError> {
    let mut key = Vec::new();
    for p in &e.key {
        encode_part(p, &mut key)?;
    }
    let el = b.begin(NFTA_LIST_ELEM);
    let k = b.begin(NFTA_SET_ELEM_KEY);
    b.attr(NFTA_DATA_VALUE, &key);
    b.end(k);
    if with_value && let Some(v) = &e.value {
        let d = b.begin(NFTA_SET_ELEM_DATA);
        match v {
            Value::Mark(m) => b.attr(NFTA_DATA_VALUE, &m.to_ne_bytes()),
            Value::Addr(IpAddr::V4(a)) => b.attr(NFTA_DATA_VALUE, &a.octets()),
            Value::Addr(IpAddr::V6(a)) => b.attr(NFTA_DATA_VALUE, &a.octets()),
            Value::Goto(chain) => {
                let verdict = b.begin(NFTA_DATA_VERDICT);
                b.attr(NFTA_VERDICT_CODE, &NFT_GOTO.to_be_bytes());
                b.string(NFTA_VERDICT_CHAIN, chain);
                b.end(verdict);
            }
        }
        b.end(d);
    }
    b.end(el);
    Ok(())
}

/// Applies the element changes in one transaction: deletions first, then
/// additions, as `nft` would. Nothing is written if any is refused.
pub fn apply_elements(ops: &[ElemOp]) -> Result<(), NfnlError> {
    if ops.is_empty() {
        return Ok(());
    }
    // One message per (delete/add, family, set), deletions first, each
    // small enough for its element list's 16-bit attribute length.
    let mut groups: Vec<(bool, Family, &str, Vec<&Elem>)> = Vec::new();
    for add in [false, true] {
        for op in ops.iter().filter(|o| o.add == add) {
            match groups.iter_mut().find(|g| {
                g.0 == add && g.1 == op.family && g.2 == op.set && g.3.len() < ELEMENTS_PER_MESSAGE
            }) {
                Some(g) => g.3.push(&op.elem),
                None => groups.push((add, op.family, &op.set, vec![&op.elem])),
            }
        }
    }
    let mut b = Buf(Vec::new());
    let mut seq = 1u32;
    b.message(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );
    let mut acks = Vec::new();
    for (add, family, set, elems) in &groups {
        seq += 1;
        acks.push(seq);
        let kind = (NFNL_SUBSYS_NFTABLES << 8)
            | if *add {
                NFT_MSG_NEWSETELEM
            } else {
                NFT_MSG_DELSETELEM
            };
        let flags = NLM_F_REQUEST | NLM_F_ACK | if *add { NLM_F_CREATE } else { 0 };
        let mut failure = None;
        b.message(kind, flags, seq, nfproto(*family), 0, |b| {
            b.string(NFTA_SET_ELEM_LIST_TABLE, TABLE);
            b.string(NFTA_SET_ELEM_LIST_SET, set);
            let list = b.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
            for e in elems {
                if let Err(err) = encode_elem(b, e, *add) {
                    failure = Some(err);
                    break;
                }
            }
            b.end(list);
        });
        if let Some(err) = failure {
            return Err(err);
        }
    }
    seq += 1;
    b.message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );

    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    // Errors without an echo of the (possibly large) request.
    sock.set_cap_ack(true)?;
    // A batch is one datagram: room for a first load's batches.
    use nix::sys::socket::{setsockopt, sockopt};
    let room = 8 << 20;
    if setsockopt(&sock, sockopt::SndBufForce, &room).is_err() {
        let _ = setsockopt(&sock, sockopt::SndBuf, &room);
    }
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    sock.send(&b.0, 0)?;
    // One ack (or the error) per element message.
    let mut pending: std::collections::BTreeSet<u32> = acks.into_iter().collect();
    let mut buf = Vec::with_capacity(64 * 1024);
    while !pending.is_empty() {
        buf.clear();
        let size = sock.recv(&mut Vec::new(), nix::libc::MSG_PEEK | nix::libc::MSG_TRUNC)?;
        buf.reserve(size);
        sock.recv(&mut buf, 0)?;
        for m in messages(&buf) {
            let (kind, mseq, payload) = m.map_err(|e| NfnlError::Reply(e.to_string()))?;
            if kind != NLMSG_ERROR {
                continue;
            }
            match error_code(payload).map_err(|e| NfnlError::Reply(e.to_string()))? {
                0 => {
                    pending.remove(&mseq);
                }
                code => {
                    return Err(NfnlError::Kernel(io::Error::from_raw_os_error(
                        code.wrapping_neg(),
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Whether every element of these changes can be written here.
pub fn writable(ops: &[ElemOp]) -> bool {
    ops.iter().all(|o| {
        o.elem.key.iter().all(|p| match p {
            Part::Net(c) | Part::Raw6(c) => c.is_host(),
            _ => true,
        })
    })
}
