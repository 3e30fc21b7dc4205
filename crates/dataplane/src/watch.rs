//! Link events: the kernel says when a link appears, changes or goes (a
//! hypervisor plugging a tap, someone deleting a bridge), so the agent reacts
//! at once instead of re-reading every link on a short timer.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::socket::SocketError;

/// `RTMGRP_LINK`: the multicast group of link notifications.
const RTMGRP_LINK: u32 = 1;

/// Link notifications of the namespace of the thread that opened it.
pub struct LinkEvents {
    sock: Socket,
}

impl LinkEvents {
    pub fn open() -> Result<LinkEvents, SocketError> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        Ok(LinkEvents { sock })
    }

    /// Blocks until the kernel reports link changes; returns the names of the
    /// links concerned, or `None` when the socket overflowed and events were
    /// lost (the caller must then assume anything changed).
    pub fn wait(&mut self) -> Result<Option<Vec<String>>, SocketError> {
        let buf = match self.sock.recv_from_full() {
            Ok((buf, _)) => buf,
            // ENOBUFS: more events than the socket could hold.
            Err(e) if e.raw_os_error() == Some(105) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut names = Vec::new();
        let mut offset = 0;
        while offset < buf.len() {
            let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..]) else {
                break;
            };
            let len = msg.header.length as usize;
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
            if let NetlinkPayload::InnerMessage(
                RouteNetlinkMessage::NewLink(link) | RouteNetlinkMessage::DelLink(link),
            ) = msg.payload
                // AF_BRIDGE notifications are the bridge's own port-state
                // chatter (they also follow our reads); a tap appearing, a
                // master or MTU change come as AF_UNSPEC ones.
                && link.header.interface_family != AddressFamily::Bridge
            {
                names.extend(link.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }));
            }
        }
        Ok(Some(names))
    }
}
