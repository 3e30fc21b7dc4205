//! `neutrino-bench`: load generator for an OpenStack Networking (Neutron v2.0) API.
//!
//! It mirrors `shared/peers/neutron/bench.py` (same scenarios, same CIDRs, same JSON keys,
//! same percentile formula) so its numbers compare with the real Neutron measured by that
//! script, but it is a plain hyper 1 HTTP/1.1 client: one keep-alive connection per
//! concurrent worker, latency measured client-side per request with `Instant`.
//!
//! Usage (the server must already run):
//!
//! ```text
//! neutrino-bench --endpoint http://127.0.0.1:9696 [--token T] [--project P]
//!                [--count 2000] [--concurrency 16] [--seq-concurrency 1]
//!                [--networks 200] [--list-repeat 10] [--scenarios a,c,b,d,e]
//!                [--server-pid PID] [--keep] > results.jsonl
//! neutrino-bench --endpoint http://127.0.0.1:9696 --big 100000 [--bulk-size 500]
//!                [--list-at 10000] [--server-pid PID] [--keep]
//! ```
//!
//! Scenarios (run in the order given by `--scenarios`, default a,c,b,d,e, so that (c)
//! sees exactly the N ports of (a)):
//!   a  network A + 10.10.0.0/16 subnet, then N (`--count`) ports at `--seq-concurrency` (1)
//!   c  GET /v2.0/ports (all) `--list-repeat` (10) times with the N ports of (a) present
//!      (p50/p99/max, response bytes, created ports missing from the listing)
//!   b  network B + 10.20.0.0/16 subnet, then N ports at `--concurrency` (16); checks
//!      duplicate IPs/MACs in the create responses and in a re-list of network B
//!   d  delete the 2N ports of a and b at `--seq-concurrency` (1)
//!   e  `--networks` (200) times: create network + 10.1xx.y.0/24 subnet, delete the
//!      network (`rate_per_s` = full cycles per second) at `--seq-concurrency`
//!
//! `--big N`: network + 10.40.0.0/15 subnet, N ports created with bulk requests
//! (`{"ports":[...]}`, `--bulk-size` (500) per request, at `--seq-concurrency`). When
//! the number of ports reaches each `--list-at` value (default 10000) and at N, it times
//! `GET /v2.0/ports` `--list-repeat` times (bytes, ports listed) and samples the server
//! RSS. Then (unless `--keep`) it deletes the ports at `--concurrency` and the network.
//! Targets: list 10,000 ports in < 150 ms, server RSS with 100,000 ports < 300 MB.
//!
//! Output: one JSON line per scenario on stdout (ok, errors, error_types, rate_per_s,
//! p50/p90/p99/max/mean ms, elapsed_s, t_start/t_end epoch seconds, and with
//! `--server-pid` the server's VmRSS after the scenario, its peak during the scenario
//! (sampled every 100 ms) and VmHWM), a final `{"scenario":"end",...}` line, and a
//! human-readable summary table on stderr. Progress goes to stderr.
//!
//! Headers: `--token` -> X-Auth-Token; `--project` -> X-Project-Id and `"project_id"` in
//! create bodies (what bench.py does; the real Neutron in noauth mode needs the body field).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "neutrino-bench",
    about = "Load generator for a Neutron v2.0 API (see the top of main.rs)"
)]
struct Args {
    /// API root, with or without /v2.0, e.g. http://127.0.0.1:9696
    #[arg(long)]
    endpoint: String,
    /// Sent as X-Auth-Token.
    #[arg(long)]
    token: Option<String>,
    /// Sent as X-Project-Id and as "project_id" in create bodies.
    #[arg(long)]
    project: Option<String>,
    /// N ports for scenarios a/b/c/d.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Concurrent workers (one connection each) for scenario b and the --big cleanup.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Workers for scenarios a, d, e and the --big bulk creates (bench.py --concurrency).
    #[arg(long, default_value_t = 1)]
    seq_concurrency: usize,
    /// Create/delete cycles in scenario e.
    #[arg(long, default_value_t = 200)]
    networks: usize,
    /// GETs in scenario c (and at each --big checkpoint).
    #[arg(long, default_value_t = 10)]
    list_repeat: usize,
    /// Subset/order of scenarios.
    #[arg(long, default_value = "a,c,b,d,e")]
    scenarios: String,
    /// Sample VmRSS of this process (/proc/PID/status).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Big mode: create this many ports with bulk requests, list, report RSS.
    #[arg(long)]
    big: Option<usize>,
    /// Ports per bulk request in --big mode.
    #[arg(long, default_value_t = 500)]
    bulk_size: usize,
    /// Comma-separated port counts at which --big times GET /v2.0/ports (N is always added).
    #[arg(long, default_value = "10000")]
    list_at: String,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Do not delete what was created.
    #[arg(long)]
    keep: bool,
}

// ---------------------------------------------------------------- HTTP client

/// Connection parameters shared by every worker.
struct Api {
    hostport: String,
    base: String,
    token: Option<String>,
    project: Option<String>,
    timeout: Duration,
}

impl Api {
    fn new(args: &Args) -> Result<Api> {
        let ep = args.endpoint.trim_end_matches('/');
        let rest = ep
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("--endpoint must start with http:// (got {ep})"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = path.strip_suffix("/v2.0").unwrap_or(path);
        let hostport = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        Ok(Api {
            hostport,
            base: format!("{path}/v2.0"),
            token: args.token.clone(),
            project: args.project.clone(),
            timeout: Duration::from_secs_f64(args.timeout),
        })
    }

    /// `{kind: attrs}` plus project_id when --project was given.
    fn body(&self, kind: &str, mut attrs: Map<String, Value>) -> Value {
        if let Some(p) = &self.project {
            attrs.insert("project_id".into(), Value::String(p.clone()));
        }
        let mut m = Map::new();
        m.insert(kind.into(), Value::Object(attrs));
        Value::Object(m)
    }
}

/// One response (or transport failure): status 0 means no HTTP response.
struct Resp {
    status: u16,
    json: Option<Value>,
    text: String,
    nbytes: usize,
    dt: f64,
}

impl Resp {
    fn err_key(&self) -> String {
        if let Some(t) = self
            .json
            .as_ref()
            .and_then(|j| j.get("NeutronError"))
            .and_then(|e| e.get("type"))
        {
            return format!("{} {}", self.status, t.as_str().unwrap_or("?"));
        }
        if self.status == 0 {
            "conn-error".into()
        } else {
            self.status.to_string()
        }
    }
    fn err_msg(&self) -> String {
        let s = match self.json.as_ref().and_then(|j| j.get("NeutronError")) {
            Some(e) => e
                .get("message")
                .map(|m| {
                    m.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| m.to_string())
                })
                .unwrap_or_default(),
            None => self.text.clone(),
        };
        s.chars().take(200).collect()
    }
}

/// One keep-alive HTTP/1.1 connection, (re)opened lazily.
struct Conn {
    api: Arc<Api>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(api: Arc<Api>) -> Conn {
        Conn { api, sender: None }
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(&self.api.hostport)
            .await
            .with_context(|| format!("connect {}", self.api.hostport))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// `path` is relative to /v2.0 (e.g. "/ports?network_id=x").
    async fn req(&mut self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let payload = body
            .map(|b| Bytes::from(serde_json::to_vec(b).expect("json")))
            .unwrap_or_default();
        let t0 = Instant::now();
        let timeout = self.api.timeout;
        let r = tokio::time::timeout(timeout, self.send(method, path, payload)).await;
        let dt = t0.elapsed().as_secs_f64();
        match r {
            Ok(Ok((status, bytes))) => {
                let json = if bytes.is_empty() {
                    None
                } else {
                    serde_json::from_slice(&bytes).ok()
                };
                let text = if json.is_none() {
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
                } else {
                    String::new()
                };
                Resp {
                    status,
                    json,
                    text,
                    nbytes: bytes.len(),
                    dt,
                }
            }
            Ok(Err(e)) => {
                self.sender = None;
                Resp {
                    status: 0,
                    json: None,
                    text: format!("{e:#}"),
                    nbytes: 0,
                    dt,
                }
            }
            Err(_) => {
                self.sender = None;
                Resp {
                    status: 0,
                    json: None,
                    text: format!("timeout after {timeout:?}"),
                    nbytes: 0,
                    dt,
                }
            }
        }
    }

    async fn send(&mut self, method: &str, path: &str, payload: Bytes) -> Result<(u16, Bytes)> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        if sender.ready().await.is_err() {
            // Stale keep-alive connection (closed by the server while idle): nothing was
            // sent yet, so reconnecting is safe even for a POST.
            self.connect().await?;
        }
        let api = &self.api;
        let mut rb = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", api.base, path))
            .header("host", &api.hostport)
            .header("accept", "application/json");
        if !payload.is_empty() {
            rb = rb.header("content-type", "application/json");
        }
        if let Some(t) = &api.token {
            rb = rb.header("x-auth-token", t);
        }
        if let Some(p) = &api.project {
            rb = rb.header("x-project-id", p);
        }
        let req = rb.body(Full::new(payload))?;
        let sender = self.sender.as_mut().expect("connected");
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

// ---------------------------------------------------------------- stats

#[derive(Default)]
struct Stats {
    lat: Vec<f64>,
    errors: BTreeMap<String, u64>,
    samples: Vec<String>,
}

impl Stats {
    fn add(&mut self, ok: bool, r: &Resp) {
        self.add_dt(ok, r.dt, r);
    }
    fn add_dt(&mut self, ok: bool, dt: f64, r: &Resp) {
        if ok {
            self.lat.push(dt);
        } else {
            *self.errors.entry(r.err_key()).or_default() += 1;
            if self.samples.len() < 5 {
                self.samples.push(r.err_msg());
            }
        }
    }
    fn nerr(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Same keys and percentile formula as bench.py's Stats.summary.
    fn summary(&self, elapsed: Option<f64>, prefix: &str) -> Map<String, Value> {
        let mut lat = self.lat.clone();
        lat.sort_by(f64::total_cmp);
        let mut d = Map::new();
        let k = |s: &str| format!("{prefix}{s}");
        d.insert(k("ok"), json!(lat.len()));
        d.insert(k("errors"), json!(self.nerr()));
        d.insert(k("p50_ms"), json!(pct(&lat, 50.0)));
        d.insert(k("p90_ms"), json!(pct(&lat, 90.0)));
        d.insert(k("p99_ms"), json!(pct(&lat, 99.0)));
        d.insert(k("max_ms"), json!(lat.last().map(|x| ms(*x))));
        d.insert(
            k("mean_ms"),
            json!(if lat.is_empty() {
                None
            } else {
                Some(ms(lat.iter().sum::<f64>() / lat.len() as f64))
            }),
        );
        if let Some(e) = elapsed {
            d.insert(k("elapsed_s"), json!(round(e, 3)));
            d.insert(
                k("rate_per_s"),
                json!(if e > 0.0 {
                    Some(round(lat.len() as f64 / e, 2))
                } else {
                    None
                }),
            );
        }
        if !self.errors.is_empty() {
            d.insert(k("error_types"), json!(self.errors));
            d.insert(k("error_samples"), json!(self.samples));
        }
        d
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn ms(s: f64) -> f64 {
    round(s * 1000.0, 2)
}

/// bench.py: k = max(0, min(n-1, round(p/100*n + 0.5) - 1)) with Python's round-half-even.
#[allow(clippy::cast_possible_truncation)] // small, non-negative, clamped index
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    #[allow(clippy::cast_sign_loss, reason = "clamped to 0..n-1 above")]
    let k =
        ((p / 100.0 * n as f64 + 0.5).round_ties_even() - 1.0).clamp(0.0, (n - 1) as f64) as usize;
    Some(ms(sorted[k]))
}

/// p50 of the first and last 10% of requests (submission order), as bench.py.
fn decile_p50s(lat_by_index: &[Option<f64>]) -> Map<String, Value> {
    let vals: Vec<f64> = lat_by_index.iter().flatten().copied().collect();
    let k = (vals.len() / 10).max(1);
    let med = |xs: &[f64]| {
        if xs.is_empty() {
            return None;
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        Some(ms(v[v.len() / 2]))
    };
    let mut m = Map::new();
    m.insert(
        "first10pct_p50_ms".into(),
        json!(med(&vals[..k.min(vals.len())])),
    );
    m.insert(
        "last10pct_p50_ms".into(),
        json!(med(&vals[vals.len().saturating_sub(k)..])),
    );
    m
}

// ---------------------------------------------------------------- worker pool

/// Runs `f(i, conn)` for i in 0..n on `concurrency` workers, each owning one connection.
/// Returns the results by index and the elapsed wall time.
async fn run_pool<F, Fut, R>(
    api: &Arc<Api>,
    n: usize,
    concurrency: usize,
    f: F,
) -> (Vec<Option<R>>, f64)
where
    F: Fn(usize, Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Conn, R)> + Send + 'static,
    R: Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..concurrency.max(1).min(n.max(1)) {
        let (f, next, done, api) = (f.clone(), next.clone(), done.clone(), api.clone());
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::new(api);
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (c, r) = f(i, conn).await;
                conn = c;
                out.push((i, r));
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % 500 == 0 {
                    eprintln!("  ... {d}/{n}");
                }
            }
            out
        }));
    }
    let mut results: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for h in handles {
        for (i, r) in h.await.expect("worker panicked") {
            results[i] = Some(r);
        }
    }
    (results, t0.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------- RSS sampling

fn read_rss(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:").unwrap_or(0)))
}

/// Background sampler of the server RSS (kB), every 100 ms; `take_peak` resets the window.
struct RssSampler {
    pid: u32,
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kb.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some((rss, _)) = read_rss(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssSampler { pid, peak_kb, stop }
    }
    fn take_peak(&self) -> u64 {
        let now = read_rss(self.pid).map(|x| x.0).unwrap_or(0);
        self.peak_kb.swap(now, Ordering::Relaxed).max(now)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn mib(kb: u64) -> f64 {
    round(kb as f64 / 1024.0, 1)
}

// ---------------------------------------------------------------- output

struct Out {
    t0: f64,
    rss: Option<RssSampler>,
    rows: Vec<Map<String, Value>>,
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Out {
    fn emit(&mut self, mut d: Map<String, Value>) {
        d.insert("t_start".into(), json!(round(self.t0, 3)));
        let t = now_epoch();
        d.insert("t_end".into(), json!(round(t, 3)));
        self.t0 = t;
        if let Some(s) = &self.rss {
            let peak = s.take_peak();
            if let Some((rss, hwm)) = read_rss(s.pid) {
                d.insert("server_rss_mib".into(), json!(mib(rss)));
                d.insert("server_rss_peak_mib".into(), json!(mib(peak)));
                d.insert("server_hwm_mib".into(), json!(mib(hwm)));
            } else {
                d.insert("server_rss_mib".into(), Value::Null);
            }
        }
        println!("{}", Value::Object(d.clone()));
        self.rows.push(d);
    }

    fn table(&self) {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\n{:<18} {:>7} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "scenario",
            "ok",
            "errors",
            "rate/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "elapsed",
            "RSS MiB"
        );
        let f = |d: &Map<String, Value>, k: &str| match d.get(k) {
            Some(Value::Null) | None => "-".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        for d in &self.rows {
            let _ = writeln!(
                s,
                "{:<18} {:>7} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                f(d, "scenario"),
                f(d, "ok"),
                f(d, "errors"),
                f(d, "rate_per_s"),
                f(d, "p50_ms"),
                f(d, "p90_ms"),
                f(d, "p99_ms"),
                f(d, "max_ms"),
                f(d, "elapsed_s"),
                f(d, "server_rss_mib"),
            );
        }
        for d in &self.rows {
            let mut extra = Vec::new();
            for k in [
                "what",
                "response_bytes",
                "ports_listed",
                "ports_created",
                "requests_per_s",
                "created_ports_missing",
                "duplicate_ips",
                "duplicate_macs",
                "relist_ports",
                "relist_duplicate_ips",
                "ips_outside_subnet",
                "ports_without_ip",
                "first10pct_p50_ms",
                "last10pct_p50_ms",
                "error_types",
                "server_rss_peak_mib",
            ] {
                if let Some(v) = d.get(k) {
                    extra.push(format!("{k}={v}"));
                }
            }
            let _ = writeln!(s, "  {}: {}", f(d, "scenario"), extra.join(" "));
        }
        eprint!("{s}");
    }
}

// ---------------------------------------------------------------- scenarios

fn attrs(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn uniq_tag() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:06x}",
        (n ^ u128::from(std::process::id()) << 20) & 0xff_ffff
    )
}

async fn make_net(conn: &mut Conn, tag: &str, cidr: &str) -> Result<(String, String)> {
    let api = conn.api.clone();
    let r = conn
        .req(
            "POST",
            "/networks",
            Some(&api.body("network", attrs(json!({"name": format!("bench-{tag}")})))),
        )
        .await;
    if r.status != 201 {
        bail!("cannot create network {tag}: {} {}", r.status, r.err_msg());
    }
    let net = r
        .json
        .as_ref()
        .and_then(|j| j["network"]["id"].as_str())
        .ok_or_else(|| anyhow!("no network id"))?
        .to_string();
    let body = api.body(
        "subnet",
        attrs(json!({"network_id": net, "ip_version": 4, "cidr": cidr, "name": format!("bench-{tag}-v4"), "enable_dhcp": false})),
    );
    let r = conn.req("POST", "/subnets", Some(&body)).await;
    if r.status != 201 {
        conn.req("DELETE", &format!("/networks/{net}"), None).await;
        bail!(
            "cannot create subnet {cidr} on {tag}: {} {}",
            r.status,
            r.err_msg()
        );
    }
    let sub = r
        .json
        .as_ref()
        .and_then(|j| j["subnet"]["id"].as_str())
        .unwrap_or_default()
        .to_string();
    Ok((net, sub))
}

/// (id, ips, mac) of a port object.
fn port_info(p: &Value) -> (String, Vec<String>, String) {
    let id = p["id"].as_str().unwrap_or_default().to_string();
    let ips = p["fixed_ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["ip_address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mac = p["mac_address"].as_str().unwrap_or_default().to_string();
    (id, ips, mac)
}

fn parse_v4(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Some(ip), Some(net), Ok(len)) = (parse_v4(ip), parse_v4(net), len.parse::<u32>()) else {
        return false;
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    ip & mask == net & mask
}

struct Ctx {
    args: Args,
    api: Arc<Api>,
    out: Out,
    nets: Vec<String>,
    ports_a: Vec<String>,
    ports_b: Vec<String>,
}

async fn scenario_create(
    cx: &mut Ctx,
    name: &str,
    concurrency: usize,
    cidr: &str,
    check_dups: bool,
) -> Result<(String, Vec<String>)> {
    let n = cx.args.count;
    eprintln!("[{name}] network + {cidr} subnet, {n} ports at concurrency {concurrency}");
    let tag = format!("{name}-{}", uniq_tag());
    let mut conn = Conn::new(cx.api.clone());
    let (net, _sub) = make_net(&mut conn, &tag, cidr).await?;
    cx.nets.push(net.clone());
    let (net2, tag2) = (net.clone(), tag.clone());
    let (results, elapsed) = run_pool(&cx.api, n, concurrency, move |i, mut c| {
        let (net, tag) = (net2.clone(), tag2.clone());
        async move {
            let body = c.api.body(
                "port",
                attrs(json!({"network_id": net, "name": format!("bench-{tag}-{i}")})),
            );
            let r = c.req("POST", "/ports", Some(&body)).await;
            let info = if r.status == 201 {
                r.json.as_ref().map(|j| port_info(&j["port"]))
            } else {
                None
            };
            (c, (r, info))
        }
    })
    .await;
    let mut stats = Stats::default();
    let mut by_index = Vec::with_capacity(n);
    let mut ports = Vec::new();
    for (r, info) in results.into_iter().flatten() {
        let ok = r.status == 201;
        stats.add(ok, &r);
        by_index.push(if ok { Some(r.dt) } else { None });
        if let Some(p) = info {
            ports.push(p);
        }
    }
    let mut out = attrs(
        json!({"scenario": name, "what": format!("create ports on one /16 network"), "count": n, "concurrency": concurrency}),
    );
    out.extend(stats.summary(Some(elapsed), ""));
    out.extend(decile_p50s(&by_index));
    let all_ips: Vec<&String> = ports.iter().flat_map(|p| p.1.iter()).collect();
    out.insert(
        "ports_without_ip".into(),
        json!(ports.iter().filter(|p| p.1.is_empty()).count()),
    );
    out.insert(
        "ips_outside_subnet".into(),
        json!(all_ips.iter().filter(|ip| !in_cidr(ip, cidr)).count()),
    );
    if check_dups {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for ip in &all_ips {
            *counts.entry(ip.as_str()).or_default() += 1;
        }
        let dup_ips: Vec<&str> = counts
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(ip, _)| *ip)
            .collect();
        let mut mcounts: HashMap<&str, usize> = HashMap::new();
        for p in &ports {
            *mcounts.entry(p.2.as_str()).or_default() += 1;
        }
        out.insert("duplicate_ips".into(), json!(dup_ips.len()));
        out.insert(
            "duplicate_macs".into(),
            json!(mcounts.values().filter(|c| **c > 1).count()),
        );
        if !dup_ips.is_empty() {
            out.insert(
                "duplicate_ip_samples".into(),
                json!(dup_ips.iter().take(5).collect::<Vec<_>>()),
            );
        }
        let r = conn
            .req(
                "GET",
                &format!("/ports?network_id={net}&fields=id&fields=fixed_ips"),
                None,
            )
            .await;
        match (
            r.status,
            r.json.as_ref().and_then(|j| j["ports"].as_array()),
        ) {
            (200, Some(stored)) => {
                let sips: Vec<String> = stored.iter().flat_map(|p| port_info(p).1).collect();
                let uniq: HashSet<&String> = sips.iter().collect();
                out.insert("relist_ports".into(), json!(stored.len()));
                out.insert(
                    "relist_duplicate_ips".into(),
                    json!(sips.len() - uniq.len()),
                );
            }
            _ => {
                out.insert("relist_error".into(), json!(r.err_key()));
            }
        }
    }
    cx.out.emit(out);
    Ok((net, ports.into_iter().map(|p| p.0).collect()))
}

async fn scenario_list(cx: &mut Ctx) {
    let expect: Vec<String> = cx
        .ports_a
        .iter()
        .chain(cx.ports_b.iter())
        .cloned()
        .collect();
    let rep = cx.args.list_repeat;
    eprintln!("[c] GET /v2.0/ports x{rep}");
    let mut conn = Conn::new(cx.api.clone());
    let mut stats = Stats::default();
    let (mut listed, mut nbytes, mut missing) = (None, None, None);
    let t0 = Instant::now();
    for _ in 0..rep {
        let r = conn.req("GET", "/ports", None).await;
        let arr = r.json.as_ref().and_then(|j| j["ports"].as_array());
        let ok = r.status == 200 && arr.is_some();
        stats.add(ok, &r);
        if let (true, Some(arr)) = (ok, arr) {
            listed = Some(arr.len());
            nbytes = Some(r.nbytes);
            let ids: HashSet<&str> = arr.iter().filter_map(|p| p["id"].as_str()).collect();
            missing = Some(expect.iter().filter(|i| !ids.contains(i.as_str())).count());
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let mut out = attrs(
        json!({"scenario": "c", "what": "GET /v2.0/ports (all)", "repeat": rep,
        "ports_expected": expect.len(), "ports_listed": listed, "created_ports_missing": missing, "response_bytes": nbytes}),
    );
    out.extend(stats.summary(None, ""));
    out.insert("elapsed_s".into(), json!(round(elapsed, 3)));
    cx.out.emit(out);
}

async fn delete_ports(api: &Arc<Api>, ids: Vec<String>, concurrency: usize) -> (Stats, f64) {
    let ids = Arc::new(ids);
    let n = ids.len();
    let ids2 = ids.clone();
    let (results, elapsed) = run_pool(api, n, concurrency, move |i, mut c| {
        let ids = ids2.clone();
        async move {
            let r = c.req("DELETE", &format!("/ports/{}", ids[i]), None).await;
            (c, r)
        }
    })
    .await;
    let mut stats = Stats::default();
    for r in results.iter().flatten() {
        stats.add(r.status == 204, r);
    }
    (stats, elapsed)
}

async fn scenario_delete(cx: &mut Ctx) {
    let ids: Vec<String> = cx.ports_a.drain(..).chain(cx.ports_b.drain(..)).collect();
    let conc = cx.args.seq_concurrency;
    eprintln!("[d] delete {} ports at concurrency {conc}", ids.len());
    let n = ids.len();
    let (stats, elapsed) = delete_ports(&cx.api, ids, conc).await;
    let mut out = attrs(
        json!({"scenario": "d", "what": "delete all created ports", "count": n, "concurrency": conc}),
    );
    out.extend(stats.summary(Some(elapsed), ""));
    cx.out.emit(out);
}

async fn scenario_netcycle(cx: &mut Ctx) {
    let n = cx.args.networks;
    let conc = cx.args.seq_concurrency;
    eprintln!("[e] create+delete {n} networks with a subnet at concurrency {conc}");
    let tag = uniq_tag();
    let (results, elapsed) = run_pool(&cx.api, n, conc, move |i, mut c| {
        let tag = tag.clone();
        async move {
            let t0 = Instant::now();
            let mut rs: Vec<(u8, bool, Resp)> = Vec::new();
            let b = c.api.body(
                "network",
                attrs(json!({"name": format!("bench-e-{tag}-{i}")})),
            );
            let r = c.req("POST", "/networks", Some(&b)).await;
            let net = if r.status == 201 {
                r.json
                    .as_ref()
                    .and_then(|j| j["network"]["id"].as_str())
                    .map(str::to_string)
            } else {
                None
            };
            let ok_net = net.is_some();
            rs.push((0, ok_net, r));
            let Some(net) = net else {
                return (c, (rs, None));
            };
            let cidr = format!("10.{}.{}.0/24", 100 + i / 256, i % 256);
            let b = c.api.body(
                "subnet",
                attrs(
                    json!({"network_id": net, "ip_version": 4, "cidr": cidr, "enable_dhcp": false}),
                ),
            );
            let r = c.req("POST", "/subnets", Some(&b)).await;
            let ok_sub = r.status == 201;
            rs.push((1, ok_sub, r));
            let r = c.req("DELETE", &format!("/networks/{net}"), None).await;
            let ok_del = r.status == 204;
            rs.push((2, ok_del, r));
            (
                c,
                (rs, Some((ok_sub && ok_del, t0.elapsed().as_secs_f64()))),
            )
        }
    })
    .await;
    let (mut s_net, mut s_sub, mut s_del, mut s_cycle) = (
        Stats::default(),
        Stats::default(),
        Stats::default(),
        Stats::default(),
    );
    for (rs, cycle) in results.into_iter().flatten() {
        for (kind, ok, r) in &rs {
            match kind {
                0 => s_net.add(*ok, r),
                1 => s_sub.add(*ok, r),
                _ => s_del.add(*ok, r),
            }
        }
        let last = &rs.last().expect("one request at least").2;
        match cycle {
            Some((ok, dt)) => s_cycle.add_dt(
                ok,
                dt,
                rs.iter().find(|x| !x.1).map(|x| &x.2).unwrap_or(last),
            ),
            None => s_cycle.add(false, last),
        }
    }
    let mut out = attrs(
        json!({"scenario": "e", "what": "create network + subnet, delete network", "count": n, "concurrency": conc}),
    );
    out.extend(s_cycle.summary(Some(elapsed), ""));
    out.extend(s_net.summary(None, "net_create_"));
    out.extend(s_sub.summary(None, "subnet_create_"));
    out.extend(s_del.summary(None, "net_delete_"));
    cx.out.emit(out);
}

/// Counts `"key"` occurrences without parsing (the --big listing can be ~100 MB).
fn count_key(hay: &[u8], key: &[u8]) -> usize {
    let Some((&first, _)) = key.split_first() else {
        return 0;
    };
    let mut n = 0;
    let mut i = 0;
    while let Some(off) = hay[i..].iter().position(|b| *b == first) {
        let at = i + off;
        if hay[at..].starts_with(key) {
            n += 1;
            i = at + key.len();
        } else {
            i = at + 1;
        }
    }
    n
}

async fn big_list(cx: &mut Ctx, conn: &mut Conn, have: usize) {
    let rep = cx.args.list_repeat.max(1);
    eprintln!("[big] GET /v2.0/ports x{rep} with {have} ports");
    let mut stats = Stats::default();
    let (mut last_body, mut nbytes) = (None, None);
    let t0 = Instant::now();
    for _ in 0..rep {
        // Not parsed (the listing can be ~100 MB): time the request, count the bytes,
        // and count the ports by their "mac_address" keys.
        let t = Instant::now();
        let r =
            tokio::time::timeout(cx.api.timeout, conn.send("GET", "/ports", Bytes::new())).await;
        let dt = t.elapsed().as_secs_f64();
        match r {
            Ok(Ok((200, body))) => {
                stats.lat.push(dt);
                nbytes = Some(body.len());
                last_body = Some(body);
            }
            Ok(Ok((status, body))) => {
                let json = serde_json::from_slice(&body).ok();
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                stats.add(
                    false,
                    &Resp {
                        status,
                        json,
                        text,
                        nbytes: body.len(),
                        dt,
                    },
                );
            }
            Ok(Err(e)) => {
                conn.sender = None;
                stats.add(
                    false,
                    &Resp {
                        status: 0,
                        json: None,
                        text: format!("{e:#}"),
                        nbytes: 0,
                        dt,
                    },
                );
            }
            Err(_) => {
                conn.sender = None;
                stats.add(
                    false,
                    &Resp {
                        status: 0,
                        json: None,
                        text: "timeout".into(),
                        nbytes: 0,
                        dt,
                    },
                );
            }
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let listed = last_body.map(|b| count_key(&b, b"\"mac_address\""));
    let mut out = attrs(
        json!({"scenario": format!("big-list-{have}"), "what": "GET /v2.0/ports (all)", "repeat": rep,
        "ports_expected": have, "ports_listed": listed, "response_bytes": nbytes}),
    );
    out.extend(stats.summary(None, ""));
    out.insert("elapsed_s".into(), json!(round(elapsed, 3)));
    cx.out.emit(out);
}

async fn run_big(cx: &mut Ctx, n: usize) -> Result<()> {
    let cidr = "10.40.0.0/15";
    if n > 131_000 {
        bail!("--big {n}: at most 131000 ports fit in {cidr}");
    }
    let bulk = cx.args.bulk_size.max(1);
    let conc = cx.args.seq_concurrency;
    let tag = format!("big-{}", uniq_tag());
    let mut conn = Conn::new(cx.api.clone());
    let (net, _) = make_net(&mut conn, &tag, cidr).await?;
    cx.nets.push(net.clone());
    let mut checkpoints: Vec<usize> = cx
        .args
        .list_at
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|c| *c > 0 && *c < n)
        .collect();
    checkpoints.push(n);
    checkpoints.sort_unstable();
    checkpoints.dedup();
    eprintln!(
        "[big] {n} ports on {cidr} in bulk requests of {bulk} at concurrency {conc}, listing at {checkpoints:?}"
    );
    let mut have = 0usize;
    let mut all_ids: Vec<String> = Vec::with_capacity(n);
    for cp in checkpoints {
        let todo = cp - have;
        let nreq = todo.div_ceil(bulk);
        let (net2, tag2, base) = (net.clone(), tag.clone(), have);
        let (results, elapsed) = run_pool(&cx.api, nreq, conc, move |i, mut c| {
            let (net, tag) = (net2.clone(), tag2.clone());
            async move {
                let lo = i * bulk;
                let hi = ((i + 1) * bulk).min(todo);
                let items: Vec<Value> = (lo..hi)
                    .map(|k| {
                        let mut a = attrs(
                            json!({"network_id": net, "name": format!("bench-{tag}-{}", base + k)}),
                        );
                        if let Some(p) = &c.api.project {
                            a.insert("project_id".into(), json!(p));
                        }
                        Value::Object(a)
                    })
                    .collect();
                let r = c
                    .req("POST", "/ports", Some(&json!({"ports": items})))
                    .await;
                let ids: Vec<String> = if r.status == 201 {
                    r.json
                        .as_ref()
                        .and_then(|j| j["ports"].as_array())
                        .map(|a| a.iter().map(|p| port_info(p).0).collect())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                (c, (r, ids, hi - lo))
            }
        })
        .await;
        let mut stats = Stats::default();
        let mut created = 0usize;
        for (mut r, ids, _want) in results.into_iter().flatten() {
            stats.add(r.status == 201, &r);
            created += ids.len();
            all_ids.extend(ids);
            r.json = None;
        }
        let mut out = attrs(
            json!({"scenario": format!("big-create-{cp}"), "what": format!("bulk-create ports ({bulk} per request)"),
            "requests": nreq, "ports_requested": todo, "ports_created": created, "concurrency": conc}),
        );
        out.extend(stats.summary(Some(elapsed), ""));
        // rate_per_s counts ports (not requests), comparable with scenario a/b.
        let rps = out.get("rate_per_s").cloned().unwrap_or(Value::Null);
        out.insert("requests_per_s".into(), rps);
        out.insert(
            "rate_per_s".into(),
            json!(if elapsed > 0.0 {
                round(created as f64 / elapsed, 1)
            } else {
                0.0
            }),
        );
        cx.out.emit(out);
        have = cp;
        big_list(cx, &mut conn, all_ids.len()).await;
    }
    if cx.args.keep {
        cx.nets.clear();
        return Ok(());
    }
    let conc = cx.args.concurrency;
    eprintln!(
        "[big] deleting {} ports at concurrency {conc}",
        all_ids.len()
    );
    let n = all_ids.len();
    let (stats, elapsed) = delete_ports(&cx.api, all_ids, conc).await;
    let mut out = attrs(
        json!({"scenario": "big-delete", "what": "delete the bulk-created ports", "count": n, "concurrency": conc}),
    );
    out.extend(stats.summary(Some(elapsed), ""));
    cx.out.emit(out);
    Ok(())
}

async fn run(cx: &mut Ctx) -> Result<()> {
    if let Some(n) = cx.args.big {
        return run_big(cx, n).await;
    }
    let todo: Vec<String> = cx
        .args
        .scenarios
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for s in &todo {
        if !["a", "b", "c", "d", "e"].contains(&s.as_str()) {
            bail!("unknown scenario {s:?}");
        }
    }
    for s in todo {
        match s.as_str() {
            "a" => {
                let (_, ids) =
                    scenario_create(cx, "a", cx.args.seq_concurrency, "10.10.0.0/16", false)
                        .await?;
                cx.ports_a = ids;
            }
            "b" => {
                let (_, ids) =
                    scenario_create(cx, "b", cx.args.concurrency, "10.20.0.0/16", true).await?;
                cx.ports_b = ids;
            }
            "c" => scenario_list(cx).await,
            "d" => scenario_delete(cx).await,
            "e" => scenario_netcycle(cx).await,
            _ => unreachable!(),
        }
    }
    Ok(())
}

async fn cleanup(cx: &mut Ctx) {
    let left: Vec<String> = cx.ports_a.drain(..).chain(cx.ports_b.drain(..)).collect();
    if !left.is_empty() {
        eprintln!("cleanup: deleting {} ports", left.len());
        delete_ports(&cx.api, left, 8).await;
    }
    let mut conn = Conn::new(cx.api.clone());
    for net in cx.nets.drain(..) {
        let r = conn.req("DELETE", &format!("/networks/{net}"), None).await;
        if r.status != 204 {
            eprintln!(
                "cleanup: DELETE network {net} -> {} {}",
                r.status,
                r.err_msg()
            );
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let api = Arc::new(Api::new(&args)?);
    let mut conn = Conn::new(api.clone());
    let r = conn.req("GET", "/networks?limit=1", None).await;
    if r.status != 200 {
        bail!(
            "endpoint {}{} not usable: GET /networks -> {} {}",
            api.hostport,
            api.base,
            r.status,
            r.err_msg()
        );
    }
    drop(conn);
    let rss = args.server_pid.map(|pid| {
        if read_rss(pid).is_none() {
            eprintln!("warning: cannot read /proc/{pid}/status");
        }
        RssSampler::start(pid)
    });
    let start_rss = args.server_pid.and_then(read_rss);
    let keep = args.keep;
    let mut cx = Ctx {
        args,
        api,
        out: Out {
            t0: now_epoch(),
            rss,
            rows: Vec::new(),
        },
        nets: Vec::new(),
        ports_a: Vec::new(),
        ports_b: Vec::new(),
    };
    let res = run(&mut cx).await;
    if keep {
        cx.nets.clear();
        cx.ports_a.clear();
        cx.ports_b.clear();
    }
    cleanup(&mut cx).await;
    if let Some(pid) = cx.args.server_pid {
        let mut end = attrs(json!({"scenario": "end", "server_pid": pid}));
        if let Some((rss, _)) = start_rss {
            end.insert("server_rss_start_mib".into(), json!(mib(rss)));
        }
        cx.out.emit(end);
    }
    cx.out.table();
    res
}
