//! `neutrino-dhcp-load`: a lean DHCPv4 DORA load generator that acts as a relay agent.
//!
//! It does what `perfdhcp -4` does in `scripts/bench-dhcp.sh`, with far less CPU per
//! exchange, so that on a small machine the DHCP server, not the generator, is the limit:
//!
//! * one UDP socket bound to `<relay>:67`; every packet carries giaddr = relay, hops = 1
//!   and is sent unicast to `<server>:67`; replies come back to giaddr:67;
//! * per client a full DORA: DISCOVER -> OFFER -> REQUEST (option 50 = yiaddr, option
//!   54 = the OFFER's server id) -> ACK; a NAK or no reply within `--timeout-ms` (1000,
//!   perfdhcp's default drop time) at either step makes the exchange lost;
//! * clients: the MACs of `--macs FILE` (one a line, the file perfdhcp gets with `-M`),
//!   used in file order and cycling, or `--clients N` generated MACs `02:dc:XX:XX:XX:XX`;
//! * `--rate R`: open loop, R exchanges started per second (evenly paced, checked after
//!   every received packet and at least every millisecond) for `--duration` seconds;
//!   `--rate 0`: closed loop ("flood"), keeping `--outstanding` exchanges in flight.
//!   After `--duration` no new exchange starts; the ones in flight get their timeout.
//!
//! Single thread, one blocking socket (socket2 only to size its buffers) with a 1 ms receive timeout (no busy polling), all
//! buffers and tables allocated before the run: the hot loop does not allocate. Packets
//! are patched in place from two templates (xid, chaddr, options 50/54).
//!
//! Output (stdout): a `RESULT key=value ...` line for scripts and a human summary line.
//! `lost_pct` = 100 * (1 - ACKs / DISCOVERs sent), `exch_s` = ACKs / duration, latencies
//! in ms (p99 from a 1 us-resolution histogram below 100 ms, 1 ms above), `cpu_pct` = the
//! generator's own utime+stime (/proc/self/stat) over the run in % of one core,
//! `rcvbuf_errors` = the network namespace's UDP RcvbufErrors increase during the run
//! (replies the kernel dropped because this socket's buffer was full; the socket asks
//! for `--sockbuf` (4 MiB) receive/send buffers, `sock_rcvbuf` = what it got).

// Casts here are between nanosecond counters (u64/u128, a run lasts seconds), slot
// indexes (< 2^20, MAX_SLOTS) and clamped rates/latencies: none can truncate.
#![allow(clippy::cast_possible_truncation)]

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use neutrino_net::Mac;

#[derive(Parser, Debug)]
#[command(
    name = "neutrino-dhcp-load",
    about = "DHCPv4 DORA load generator acting as a relay agent (see the top of dhcp_load.rs)"
)]
struct Args {
    /// DHCP server address (unicast target, port --server-port).
    #[arg(long)]
    server: Ipv4Addr,
    /// Relay address: bound locally (port --relay-port) and sent as giaddr.
    #[arg(long)]
    relay: Ipv4Addr,
    #[arg(long, default_value_t = 67)]
    server_port: u16,
    #[arg(long, default_value_t = 67)]
    relay_port: u16,
    /// File with one MAC per line (aa:bb:cc:dd:ee:ff); clients use them in order, cycling.
    #[arg(long)]
    macs: Option<String>,
    /// Generated clients when --macs is not given.
    #[arg(long, default_value_t = 50000)]
    clients: u32,
    /// Exchanges started per second (open loop); 0 = closed loop with --outstanding.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Exchanges in flight in closed-loop mode (--rate 0).
    #[arg(long, default_value_t = 64)]
    outstanding: u32,
    /// Seconds during which new exchanges start.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Drop time per step (DISCOVER->OFFER, REQUEST->ACK), ms.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// SO_RCVBUF / SO_SNDBUF of the socket, bytes (the kernel caps them at
    /// net.core.rmem_max / wmem_max). The 208 KiB default overflows on reply bursts.
    #[arg(long, default_value_t = 4 << 20)]
    sockbuf: usize,
}

const PKT_LEN: usize = 300; // BOOTP minimum, what most clients send
const GEN_BITS: u32 = 12;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;
const MAX_SLOTS: usize = 1 << (32 - GEN_BITS);
const PRL: [u8; 7] = [1, 28, 2, 3, 15, 6, 12]; // perfdhcp's parameter request list
const REQ_IP_OFF: usize = 240 + 3 + 2; // option 50 value in the REQUEST template
const REQ_SID_OFF: usize = REQ_IP_OFF + 4 + 2; // option 54 value

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    WaitOffer,
    WaitAck,
}

#[derive(Clone, Copy)]
struct Slot {
    state: State,
    generation: u32,
    mac: u32,
    t0: u64, // ns since start: DISCOVER sent
    t1: u64, // REQUEST sent
}

/// Latency histogram: 1 us buckets below 100 ms, 1 ms buckets up to 10 s.
struct Hist {
    b: Vec<u32>,
    n: u64,
    sum_ns: u128,
    max_ns: u64,
}

const FINE: u64 = 100_000;
impl Hist {
    fn new() -> Self {
        Hist {
            b: vec![0; (FINE + 10_000) as usize],
            n: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
    fn add(&mut self, ns: u64) {
        let us = ns / 1000;
        let i = if us < FINE {
            us
        } else {
            (FINE + (us - FINE) / 1000).min(FINE + 9_999)
        };
        self.b[i as usize] += 1;
        self.n += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }
    fn avg_ms(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.n as f64 / 1e6
        }
    }
    fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }
    fn pct_ms(&self, p: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_sign_loss, reason = "at least 1.0")]
        let want = ((self.n as f64) * p / 100.0).ceil().max(1.0) as u64;
        let mut acc = 0u64;
        for (i, &c) in self.b.iter().enumerate() {
            acc += u64::from(c);
            if acc >= want {
                let i = i as u64;
                // upper edge of the bucket
                let us = if i < FINE {
                    i + 1
                } else {
                    FINE + (i - FINE + 1) * 1000
                };
                return (us as f64 / 1e3).min(self.max_ms());
            }
        }
        self.max_ms()
    }
}

#[derive(Default)]
struct Counters {
    started: u64,
    offers: u64,
    completed: u64,
    naks: u64,
    lost_offer: u64,
    lost_ack: u64,
    late_or_unknown: u64, // replies for an exchange already timed out / unknown xid
    table_full: u64,      // exchanges not started: every slot in flight
    send_errors: u64,
    recv_errors: u64,
}

fn load_macs(args: &Args) -> Result<Vec<[u8; 6]>> {
    if let Some(path) = &args.macs {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let mut v = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            v.push(
                line.parse::<Mac>()
                    .map(Mac::octets)
                    .with_context(|| format!("{path}:{}: bad MAC {line:?}", n + 1))?,
            );
        }
        if v.is_empty() {
            bail!("{path}: no MACs");
        }
        Ok(v)
    } else {
        if args.clients == 0 {
            bail!("--clients must be > 0");
        }
        Ok((0..args.clients)
            .map(|i| {
                let b = i.to_be_bytes();
                [0x02, 0xdc, b[0], b[1], b[2], b[3]]
            })
            .collect())
    }
}

fn template(kind: u8, relay: Ipv4Addr) -> [u8; PKT_LEN] {
    let mut p = [0u8; PKT_LEN];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // ethernet
    p[2] = 6;
    p[3] = 1; // hops: one relay
    p[24..28].copy_from_slice(&relay.octets()); // giaddr
    p[236..240].copy_from_slice(&[99, 130, 83, 99]);
    let mut o = 240;
    let mut put = |bytes: &[u8]| {
        p[o..o + bytes.len()].copy_from_slice(bytes);
        o += bytes.len();
    };
    put(&[53, 1, kind]);
    if kind == 3 {
        put(&[50, 4, 0, 0, 0, 0]);
        put(&[54, 4, 0, 0, 0, 0]);
    }
    put(&[55, PRL.len() as u8]);
    put(&PRL);
    put(&[255]);
    p
}

/// (message type, server id) of a BOOTREPLY, or None.
fn parse_reply(p: &[u8]) -> Option<(u8, Option<[u8; 4]>)> {
    if p.len() < 240 || p[0] != 2 || p[236..240] != [99, 130, 83, 99] {
        return None;
    }
    let (mut mt, mut sid) = (0u8, None);
    let mut i = 240;
    while i < p.len() {
        let code = p[i];
        if code == 0 {
            i += 1;
            continue;
        }
        if code == 255 || i + 1 >= p.len() {
            break;
        }
        let len = p[i + 1] as usize;
        let v = p.get(i + 2..i + 2 + len)?;
        match code {
            53 if len == 1 => mt = v[0],
            54 if len == 4 => sid = Some([v[0], v[1], v[2], v[3]]),
            _ => {}
        }
        i += 2 + len;
    }
    (mt != 0).then_some((mt, sid))
}

/// utime+stime of this process, in ns (USER_HZ = 100 on Linux).
fn cpu_ns() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let Some(rest) = s.rsplit_once(") ").map(|x| x.1) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // fields after "(comm) ": state=0, ..., utime=11, stime=12
    (t(11) + t(12)) * 10_000_000
}

/// The network namespace's UDP RcvbufErrors counter.
fn udp_rcvbuf_errors() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut lines = s.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(h), Some(v)) = (lines.next(), lines.next()) else {
        return 0;
    };
    h.split_whitespace()
        .zip(v.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

struct Gen {
    sock: UdpSocket,
    dst: SocketAddr,
    macs: Vec<[u8; 6]>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    q_offer: VecDeque<(u32, u32, u64)>, // (slot, generation, deadline ns)
    q_ack: VecDeque<(u32, u32, u64)>,
    disc: [u8; PKT_LEN],
    req: [u8; PKT_LEN],
    timeout_ns: u64,
    inflight: u32,
    next_mac: usize,
    c: Counters,
    h_do: Hist,
    h_ra: Hist,
}

impl Gen {
    fn start_one(&mut self, now: u64) {
        let Some(idx) = self.free.pop() else {
            self.c.table_full += 1;
            return;
        };
        let mac = self.next_mac;
        self.next_mac = if mac + 1 == self.macs.len() {
            0
        } else {
            mac + 1
        };
        let s = &mut self.slots[idx as usize];
        s.generation = (s.generation + 1) & GEN_MASK;
        s.state = State::WaitOffer;
        s.mac = mac as u32;
        s.t0 = now;
        let xid = (idx << GEN_BITS) | s.generation;
        self.disc[4..8].copy_from_slice(&xid.to_be_bytes());
        self.disc[28..34].copy_from_slice(&self.macs[mac]);
        self.q_offer
            .push_back((idx, s.generation, now + self.timeout_ns));
        self.inflight += 1;
        self.c.started += 1;
        if self.sock.send_to(&self.disc, self.dst).is_err() {
            self.c.send_errors += 1;
        }
    }

    fn release(&mut self, idx: u32) {
        self.slots[idx as usize].state = State::Free;
        self.free.push(idx);
        self.inflight -= 1;
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(idx, g, dl)) = self.q_offer.front() {
            if dl > now {
                break;
            }
            self.q_offer.pop_front();
            let s = self.slots[idx as usize];
            if s.generation == g && s.state == State::WaitOffer {
                self.c.lost_offer += 1;
                self.release(idx);
            }
        }
        while let Some(&(idx, g, dl)) = self.q_ack.front() {
            if dl > now {
                break;
            }
            self.q_ack.pop_front();
            let s = self.slots[idx as usize];
            if s.generation == g && s.state == State::WaitAck {
                self.c.lost_ack += 1;
                self.release(idx);
            }
        }
    }

    fn on_packet(&mut self, p: &[u8], from: SocketAddr, now: u64) {
        let Some((mt, sid)) = parse_reply(p) else {
            self.c.late_or_unknown += 1;
            return;
        };
        let xid = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let idx = xid >> GEN_BITS;
        let Some(s) = self.slots.get(idx as usize).copied() else {
            self.c.late_or_unknown += 1;
            return;
        };
        if s.generation != xid & GEN_MASK || p[28..34] != self.macs[s.mac as usize] {
            self.c.late_or_unknown += 1;
            return;
        }
        match (mt, s.state) {
            (2, State::WaitOffer) => {
                self.c.offers += 1;
                self.h_do.add(now - s.t0);
                let sid = sid.unwrap_or(match from {
                    SocketAddr::V4(a) => a.ip().octets(),
                    SocketAddr::V6(_) => [0; 4],
                });
                self.req[4..8].copy_from_slice(&xid.to_be_bytes());
                self.req[28..34].copy_from_slice(&p[28..34]);
                self.req[REQ_IP_OFF..REQ_IP_OFF + 4].copy_from_slice(&p[16..20]);
                self.req[REQ_SID_OFF..REQ_SID_OFF + 4].copy_from_slice(&sid);
                let sl = &mut self.slots[idx as usize];
                sl.state = State::WaitAck;
                sl.t1 = now;
                self.q_ack
                    .push_back((idx, s.generation, now + self.timeout_ns));
                if self.sock.send_to(&self.req, self.dst).is_err() {
                    self.c.send_errors += 1;
                }
            }
            (5, State::WaitAck) => {
                self.c.completed += 1;
                self.h_ra.add(now - s.t1);
                self.release(idx);
            }
            (6, State::WaitAck) => {
                self.c.naks += 1;
                self.release(idx);
            }
            _ => self.c.late_or_unknown += 1,
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.rate >= 0.0 && args.duration > 0.0) {
        bail!("--rate must be >= 0 and --duration > 0");
    }
    let macs = load_macs(&args)?;
    let bind = SocketAddrV4::new(args.relay, args.relay_port);
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel silently caps these at rmem_max / wmem_max.
    let _ = sock.set_recv_buffer_size(args.sockbuf);
    let _ = sock.set_send_buffer_size(args.sockbuf);
    let rcvbuf_bytes = sock.recv_buffer_size().unwrap_or(0);
    sock.bind(&SocketAddr::V4(bind).into())
        .with_context(|| format!("binding {bind}"))?;
    let sock: UdpSocket = sock.into();
    sock.set_read_timeout(Some(Duration::from_millis(1)))?;
    let timeout_ns = args.timeout_ms * 1_000_000;
    #[allow(clippy::cast_sign_loss, reason = "the rate is positive here")]
    let cap = if args.rate > 0.0 {
        // at most rate x (2 drop times) exchanges can be in flight
        (args.rate * 2.0 * args.timeout_ms as f64 / 1000.0) as usize + 1024
    } else {
        args.outstanding.max(1) as usize
    }
    .min(MAX_SLOTS);
    let slot0 = Slot {
        state: State::Free,
        generation: 0,
        mac: 0,
        t0: 0,
        t1: 0,
    };
    let qcap = cap.max(65_536);
    let mut g = Gen {
        sock,
        dst: SocketAddr::V4(SocketAddrV4::new(args.server, args.server_port)),
        macs,
        slots: vec![slot0; cap],
        free: (0..cap as u32).rev().collect(),
        q_offer: VecDeque::with_capacity(qcap),
        q_ack: VecDeque::with_capacity(qcap),
        disc: template(1, args.relay),
        req: template(3, args.relay),
        timeout_ns,
        inflight: 0,
        next_mac: 0,
        c: Counters::default(),
        h_do: Hist::new(),
        h_ra: Hist::new(),
    };

    #[allow(clippy::cast_sign_loss, reason = "durations are not negative")]
    let dur_ns = (args.duration * 1e9) as u64;
    let rate = args.rate;
    let outstanding = args.outstanding.max(1);
    let mut buf = [0u8; 1500];
    let rcvbuf0 = udp_rcvbuf_errors();
    let cpu0 = cpu_ns();
    let t_start = Instant::now();
    let mut now;
    loop {
        now = t_start.elapsed().as_nanos() as u64;
        if now < dur_ns {
            if rate > 0.0 {
                // exchanges due by now (the first at t = 0); at most 256 per turn so
                // that replies keep being read after a stall
                #[allow(clippy::cast_sign_loss, reason = "time and rate are not negative")]
                let due = (now as f64 * rate / 1e9) as u64 + 1;
                let mut n = 0;
                while g.c.started + g.c.table_full < due && n < 256 {
                    g.start_one(now);
                    n += 1;
                }
            } else {
                while g.inflight < outstanding && !g.free.is_empty() {
                    g.start_one(now);
                }
            }
        } else if g.inflight == 0 || now > dur_ns + 2 * timeout_ns + 100_000_000 {
            break;
        }
        g.expire(now);
        match g.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let now = t_start.elapsed().as_nanos() as u64;
                g.on_packet(&buf[..n], from, now);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => g.c.recv_errors += 1,
        }
    }
    let wall_ns = t_start.elapsed().as_nanos() as u64;
    let cpu = cpu_ns().saturating_sub(cpu0);
    let rcvbuf = udp_rcvbuf_errors().saturating_sub(rcvbuf0);

    let c = &g.c;
    let lost_pct = if c.started > 0 {
        100.0 * (1.0 - c.completed as f64 / c.started as f64)
    } else {
        100.0
    };
    let exch_s = c.completed as f64 / args.duration;
    let cpu_pct = 100.0 * cpu as f64 / wall_ns as f64;
    let us_per_exch = if c.completed > 0 {
        cpu as f64 / 1e3 / c.completed as f64
    } else {
        0.0
    };
    let rate_s = if rate > 0.0 {
        format!("{rate}")
    } else {
        format!("closed/{outstanding}")
    };
    println!(
        "RESULT rate={rate_s} duration={} started={} offers={} completed={} naks={} lost_offer={} lost_ack={} \
         lost_pct={lost_pct:.3} exch_s={exch_s:.0} do_avg_ms={:.3} do_p99_ms={:.3} do_max_ms={:.3} \
         ra_avg_ms={:.3} ra_p99_ms={:.3} ra_max_ms={:.3} cpu_pct={cpu_pct:.1} cpu_us_per_exch={us_per_exch:.1} \
         wall_s={:.3} sock_rcvbuf={rcvbuf_bytes} late_or_unknown={} table_full={} send_errors={} recv_errors={} rcvbuf_errors={rcvbuf}",
        args.duration,
        c.started,
        c.offers,
        c.completed,
        c.naks,
        c.lost_offer,
        c.lost_ack,
        g.h_do.avg_ms(),
        g.h_do.pct_ms(99.0),
        g.h_do.max_ms(),
        g.h_ra.avg_ms(),
        g.h_ra.pct_ms(99.0),
        g.h_ra.max_ms(),
        wall_ns as f64 / 1e9,
        c.late_or_unknown,
        c.table_full,
        c.send_errors,
        c.recv_errors,
    );
    println!(
        "{} exchanges started ({rate_s}/s for {} s), {} completed ({exch_s:.0}/s), {lost_pct:.3} % lost; \
         DISCOVER->OFFER avg/p99/max {:.3}/{:.3}/{:.3} ms, REQUEST->ACK {:.3}/{:.3}/{:.3} ms; \
         generator CPU {cpu_pct:.1} % of a core ({us_per_exch:.1} us/exchange)",
        c.started,
        args.duration,
        c.completed,
        g.h_do.avg_ms(),
        g.h_do.pct_ms(99.0),
        g.h_do.max_ms(),
        g.h_ra.avg_ms(),
        g.h_ra.pct_ms(99.0),
        g.h_ra.max_ms(),
    );
    Ok(())
}
