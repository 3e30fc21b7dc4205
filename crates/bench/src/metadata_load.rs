//! `neutrino-metadata-load`: many instances reading the metadata service at
//! once. One keep-alive HTTP/1 connection per source address (each bound to
//! its address, so the service sees as many instances), each asking for the
//! given paths in turn, as fast as answers come, for `--duration` seconds.
//!
//! Output (stdout): a `RESULT key=value ...` line for scripts: requests,
//! `req_s`, latency p50/p99/max in ms, `errors` (failed exchanges) and
//! `not_ok` (answers that were not 200), `cpu_pct` (this generator's own CPU
//! over the run, % of one core: it says which side limits).

// Casts between latency counters (microseconds, a run lasts seconds) and
// percentile indexes (clamped to the sample count): none can truncate.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

#[derive(Parser, Debug)]
#[command(
    name = "neutrino-metadata-load",
    about = "metadata service load (see the top of metadata_load.rs)"
)]
struct Args {
    /// The service, e.g. 169.254.169.254:80.
    #[arg(long)]
    target: SocketAddr,
    /// Source addresses, comma-separated: one instance each.
    #[arg(long, value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// Paths asked in turn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/openstack/latest/meta_data.json,/openstack/latest/network_data.json"
    )]
    paths: Vec<String>,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Requests per second over all instances, evenly paced (open loop;
    /// latency counts from when a request was due, so a late answer also
    /// delays what waits behind it). 0: each instance asks again as soon as
    /// it is answered (closed loop).
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    not_ok: u64,
}

async fn instance(
    target: SocketAddr,
    source: IpAddr,
    paths: Vec<String>,
    until: Instant,
    every: Option<Duration>,
) -> Tally {
    let mut t = Tally {
        latencies_us: Vec::new(),
        errors: 0,
        not_ok: 0,
    };
    while Instant::now() < until {
        let sock = match source {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let Ok(sock) = sock else {
            t.errors += 1;
            continue;
        };
        if sock.bind(SocketAddr::new(source, 0)).is_err() {
            t.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let Ok(stream) = sock.connect(target).await else {
            t.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut send, conn)) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
        else {
            t.errors += 1;
            continue;
        };
        tokio::spawn(conn);
        let mut n = 0usize;
        let mut due = Instant::now();
        while Instant::now() < until {
            let path = &paths[n % paths.len()];
            n += 1;
            if every.is_some() {
                tokio::time::sleep_until(due.into()).await;
            }
            let req = Request::get(path.as_str())
                .header("host", "169.254.169.254")
                .body(Empty::new())
                .expect("request");
            let start = if every.is_some() { due } else { Instant::now() };
            if let Some(every) = every {
                due += every;
            }
            let resp = match send.send_request(req).await {
                Ok(r) => r,
                Err(_) => {
                    t.errors += 1;
                    break;
                }
            };
            let status = resp.status().as_u16();
            if resp.into_body().collect().await.is_err() {
                t.errors += 1;
                break;
            }
            t.latencies_us
                .push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            if status != 200 {
                t.not_ok += 1;
            }
        }
    }
    t
}

fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    let cpu0 = cpu_ticks();
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let tallies = rt.block_on(async {
        let tasks: Vec<_> = args
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Each instance its share of the rate, the starts spread.
                let every = (args.rate > 0)
                    .then(|| Duration::from_secs_f64(args.sources.len() as f64 / args.rate as f64));
                let offset = every.map(|e| e.mul_f64(i as f64 / args.sources.len() as f64));
                let (target, source, paths) = (args.target, *s, args.paths.clone());
                tokio::spawn(async move {
                    if let Some(o) = offset {
                        tokio::time::sleep(o).await;
                    }
                    instance(target, source, paths, until, every).await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(t) = t.await {
                out.push(t);
            }
        }
        out
    });
    let secs = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks().saturating_sub(cpu0) as f64;
    let mut all: Vec<u32> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.iter().copied())
        .collect();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1000.0
    };
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let not_ok: u64 = tallies.iter().map(|t| t.not_ok).sum();
    println!(
        "RESULT instances={} rate={} requests={} req_s={:.0} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} errors={errors} not_ok={not_ok} cpu_pct={:.0}",
        args.sources.len(),
        args.rate,
        all.len(),
        all.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        all.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
        100.0 * ticks / 100.0 / secs,
    );
    Ok(())
}
