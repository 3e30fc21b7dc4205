//! The only I/O of the crate: the DHCP server socket and its receive loop.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::server::{Outcome, SERVER_PORT, ServeConfig, handle_with};
use crate::stats::Stats;
use crate::table::Table;

/// Larger than any DHCP request (clients rarely exceed 576 bytes; jumbo
/// frames are out of scope), so nothing is silently truncated.
const RECV_BUF: usize = 4096;

/// Receive buffer of the DHCP socket: room for tens of thousands of requests.
const RECV_SOCKET_BUFFER: usize = 4 << 20;

/// Binds 0.0.0.0:67 on `ifname` only. Call it on a thread that is inside the
/// interface's network namespace: the socket stays in the namespace it was
/// created in.
pub fn bind_dhcp_socket(ifname: &str) -> io::Result<std::net::UdpSocket> {
    bind_udp_socket(
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT),
        Some(ifname),
    )
}

/// Binds a non-blocking UDP socket with SO_REUSEADDR and SO_BROADCAST, and
/// SO_BINDTODEVICE when `ifname` is given. SO_BINDTODEVICE is what lets one
/// process serve several interfaces on port 67, and makes broadcast replies
/// leave through the right interface.
pub fn bind_udp_socket(
    addr: SocketAddrV4,
    ifname: Option<&str>,
) -> io::Result<std::net::UdpSocket> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.set_broadcast(true)?;
    // Requests come in bursts (a rack booting, a relay flushing its queue);
    // the default ~200 KiB holds about a hundred of them and the kernel drops
    // the rest while this task waits for a CPU. The kernel caps the size at
    // net.core.rmem_max.
    sock.set_recv_buffer_size(RECV_SOCKET_BUFFER)?;
    if let Some(ifname) = ifname {
        sock.bind_device(Some(ifname.as_bytes()))?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::from(addr))?;
    Ok(sock.into())
}

/// [`serve_with`] with the production configuration.
pub async fn serve(
    socket: UdpSocket,
    table: Arc<ArcSwap<Table>>,
    stats: Arc<Stats>,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(socket, table, stats, shutdown, ServeConfig::default()).await;
}

/// Receives, answers and counts packets until `shutdown` becomes true (or
/// its sender is dropped). The table is re-read for every packet, so an
/// `ArcSwap::store` by the agent takes effect on the next packet.
pub async fn serve_with(
    socket: UdpSocket,
    table: Arc<ArcSwap<Table>>,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
    cfg: ServeConfig,
) {
    // Both buffers live for the whole loop: no allocation per packet here.
    let mut buf = vec![0u8; RECV_BUF];
    let mut out = Vec::with_capacity(1500);
    let mut recv_log = LogLimit::default();
    let mut send_log = LogLimit::default();
    if *shutdown.borrow_and_update() {
        return;
    }
    loop {
        let received = tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow_and_update() {
                    break;
                }
                continue;
            }
            r = socket.recv_from(&mut buf) => r,
        };
        let (len, src) = match received {
            Ok(v) => v,
            Err(e) => {
                stats.record_recv_error();
                if recv_log.allow() {
                    tracing::warn!(error = %e, "DHCP socket receive failed");
                }
                // Avoid spinning if the error is persistent.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // An IPv4 socket only yields IPv4 sources.
        let SocketAddr::V4(src) = src else {
            continue;
        };
        let outcome = handle_with(&cfg, &table.load(), &buf[..len], src, &mut out);
        stats.record(&outcome);
        if let Outcome::Reply { dest, .. } = outcome
            && let Err(e) = send_from(&socket, &out, dest).await
        {
            stats.record_send_error();
            if send_log.allow() {
                tracing::warn!(%dest, error = %e, "DHCP reply send failed");
            }
        }
    }
    tracing::debug!("DHCP serve loop stopped");
}

/// Sends a reply from its server identifier (IP_PKTINFO), whatever other
/// addresses the interface has: the kernel would pick the first one of the
/// interface for a broadcast, which may be the metadata service's
/// 169.254.169.254 beside the DHCP port's own. A server id that is not a
/// local address (tests on loopback, odd configurations) is left to the kernel.
async fn send_from(socket: &UdpSocket, out: &[u8], dest: SocketAddrV4) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrIn, sendmsg};
    use std::os::fd::AsRawFd;
    let Some(source) = crate::codec::encoded_server_id(out) else {
        return socket.send_to(out, dest).await;
    };
    let info = nix::libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: nix::libc::in_addr {
            s_addr: u32::from_ne_bytes(source.octets()),
        },
        ipi_addr: nix::libc::in_addr { s_addr: 0 },
    };
    let fd = socket.as_raw_fd();
    let sent = socket
        .async_io(tokio::io::Interest::WRITABLE, || {
            sendmsg(
                fd,
                &[io::IoSlice::new(out)],
                &[ControlMessage::Ipv4PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&SockaddrIn::from(dest)),
            )
            .map_err(io::Error::from)
        })
        .await;
    match sent {
        // The kernel refuses a source that is not local (EINVAL, or
        // EADDRNOTAVAIL): let it choose.
        Err(_) => socket.send_to(out, dest).await,
        ok => ok,
    }
}

/// One warning per 10 s per loop: a broken socket or flood must not fill the
/// log; the counters keep the exact numbers.
#[derive(Default)]
struct LogLimit {
    last: Option<Instant>,
}

impl LogLimit {
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < Duration::from_secs(10) => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}
