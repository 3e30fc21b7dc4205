//! A tiny synchronous rtnetlink client (netavark's approach): one request at
//! a time over a netlink-sys socket, bound to the namespace of the thread
//! that opened it.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
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
}

impl Nl {
    pub fn open() -> Result<Self, SocketError> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Nl { sock, seq: 0 })
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

    /// Send and collect replies until the ack (or DONE for dumps).
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, SocketError> {
        let seq = self.send(msg, flags)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        loop {
            let (buf, _) = self.sock.recv_from_full()?;
            let mut offset = 0;
            while offset < buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                    .map_err(|e| SocketError::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(SocketError::Decode("zero-length netlink message".into()));
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue; // stale reply to an earlier request
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => {
                            if !dump {
                                return Ok(out);
                            }
                        }
                        Some(code) => {
                            return Err(SocketError::Kernel(io::Error::from_raw_os_error(
                                -code.get(),
                            )));
                        }
                    },
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                    }
                    _ => {}
                }
            }
        }
    }

    /// A change request that the kernel acknowledges.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), SocketError> {
        self.exchange(msg, flags | NLM_F_ACK).map(drop)
    }

    /// A single get (no dump); returns the replies.
    pub fn get(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, SocketError> {
        self.exchange(msg, NLM_F_ACK)
    }

    pub fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, SocketError> {
        self.exchange(msg, NLM_F_DUMP)
    }
}
