//! Shared helpers for the process-level integration tests: spawn the real `neutrino`
//! binary on a temp data dir and a free loopback port, wait until `GET /` answers, kill
//! it by PID on drop (even when the test panics), and a tiny hyper 1 HTTP/1.1 client
//! (one keep-alive connection per `Client`).
#![allow(dead_code)]

use std::fs::File;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// Upper bound for the server to become ready (not an assertion on speed: only a guard
/// against hanging forever).
pub const READY_LIMIT: Duration = Duration::from_secs(90);
/// Upper bound for one HTTP request (same purpose).
pub const REQUEST_LIMIT: Duration = Duration::from_secs(120);

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A running `neutrino server`. Killed (SIGKILL) and reaped on drop.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

/// Writes `<dir>/neutrino-<port>.toml` (noauth, unlimited quotas) and returns its path.
pub fn write_config(dir: &Path, data_dir: &Path, port: u16) -> PathBuf {
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[identity]\nmode = \"noauth\"\n\n\
         [quotas]\nport = -1\nnetwork = -1\nsubnet = -1\n",
        data_dir.display()
    );
    let path = dir.join(format!("neutrino-{port}.toml"));
    std::fs::write(&path, cfg).expect("write config");
    path
}

impl Server {
    /// Spawns the binary with `data_dir` (created if missing) on `port`; its stdout and
    /// stderr are appended to `<data_dir>/../server-<port>.log` (`log_dir`).
    pub fn spawn(log_dir: &Path, data_dir: &Path, port: u16) -> Server {
        std::fs::create_dir_all(data_dir).expect("create data dir");
        let config = write_config(log_dir, data_dir, port);
        let log = log_dir.join(format!("server-{port}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open log");
        let err = out.try_clone().expect("clone log fd");
        // NEUTRINO_BIN overrides the binary under test (e.g. a release build).
        let bin = std::env::var_os("NEUTRINO_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_neutrino")));
        let child = Command::new(bin)
            .arg("server")
            .arg("--config")
            .arg(&config)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn neutrino");
        Server {
            child: Some(child),
            port,
            data_dir: data_dir.to_path_buf(),
            log,
        }
    }

    /// Spawns and waits until `GET /` returns 200.
    pub async fn start(log_dir: &Path, data_dir: &Path, port: u16) -> Server {
        let mut s = Server::spawn(log_dir, data_dir, port);
        s.wait_ready().await;
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.addr())
    }

    /// The last `max` bytes of the server log.
    pub fn log_tail(&self, max: usize) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let start = s.len().saturating_sub(max);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }

    /// Polls `GET /` until 200; panics (with the log) if the process exits or the limit passes.
    pub async fn wait_ready(&mut self) {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self
                .child
                .as_mut()
                .expect("running")
                .try_wait()
                .expect("try_wait")
            {
                panic!(
                    "neutrino exited before being ready: {st}\n--- server log ---\n{}",
                    self.log_tail(8000)
                );
            }
            let mut c = self.client();
            if let Ok((200, _)) = tokio::time::timeout(Duration::from_secs(2), c.get_raw("/"))
                .await
                .unwrap_or(Err("timeout".into()))
            {
                return;
            }
            if t0.elapsed() > READY_LIMIT {
                panic!(
                    "neutrino not ready after {READY_LIMIT:?}\n--- server log ---\n{}",
                    self.log_tail(8000)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL (std's Child::kill) and reap.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = c.kill();
        c.wait().expect("wait")
    }

    /// SIGTERM via `kill -TERM <pid>` and wait (bounded by `limit`; SIGKILL after it).
    /// Returns None if it had to be SIGKILLed.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take().expect("running");
        let pid = c.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let t0 = Instant::now();
        loop {
            if let Some(st) = c.try_wait().expect("try_wait") {
                return Some(st);
            }
            if t0.elapsed() > limit {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- server log ({}) ---\n{}",
                self.log.display(),
                self.log_tail(6000)
            );
        }
    }
}

/// Transport failure (no HTTP response): connection refused/reset, timeout...
pub type TransportError = String;

/// One keep-alive HTTP/1.1 connection, opened lazily and reopened after a failure.
pub struct Client {
    addr: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            sender: None,
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected");
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let mut rb = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.addr)
            .header("accept", "application/json");
        if !body.is_empty() {
            rb = rb.header("content-type", "application/json");
        }
        let req = rb.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, bytes))
    }

    /// Raw request; Err on transport failure (connection dropped on the next call).
    pub async fn request_raw(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Bytes), TransportError> {
        let payload = body
            .map(|b| Bytes::from(serde_json::to_vec(b).expect("json")))
            .unwrap_or_default();
        let r = match tokio::time::timeout(REQUEST_LIMIT, self.send(method, path, payload)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no response within {REQUEST_LIMIT:?}")),
        };
        if r.is_err() {
            self.sender = None;
        }
        r
    }

    /// Request with the body parsed as JSON (Value::Null if empty, a string if not JSON).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), TransportError> {
        let (st, bytes) = self.request_raw(method, path, body).await?;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((st, v))
    }

    pub async fn get_raw(&mut self, path: &str) -> Result<(u16, Bytes), TransportError> {
        self.request_raw("GET", path, None).await
    }

    pub async fn get(&mut self, path: &str) -> Result<(u16, Value), TransportError> {
        self.request("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: &Value) -> Result<(u16, Value), TransportError> {
        self.request("POST", path, Some(body)).await
    }

    pub async fn delete(&mut self, path: &str) -> Result<(u16, Value), TransportError> {
        self.request("DELETE", path, None).await
    }

    /// POST expecting `expect`; panics with the request and response otherwise.
    pub async fn post_ok(&mut self, path: &str, body: &Value, expect: u16) -> Value {
        match self.post(path, body).await {
            Ok((st, v)) if st == expect => v,
            other => panic!("POST {path} {body} -> {other:?} (expected {expect})"),
        }
    }

    pub async fn get_ok(&mut self, path: &str) -> Value {
        match self.get(path).await {
            Ok((200, v)) => v,
            other => panic!("GET {path} -> {other:?} (expected 200)"),
        }
    }
}

/// Creates a network and an IPv4 subnet on it; returns (network_id, subnet object).
pub async fn make_network(c: &mut Client, name: &str, cidr: &str) -> (String, Value) {
    let net = c
        .post_ok(
            "/v2.0/networks",
            &serde_json::json!({"network": {"name": name}}),
            201,
        )
        .await;
    let net_id = net["network"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no network id in {net}"))
        .to_string();
    let sub = c
        .post_ok(
            "/v2.0/subnets",
            &serde_json::json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": cidr, "name": format!("{name}-v4")}}),
            201,
        )
        .await;
    (net_id, sub["subnet"].clone())
}

/// NeutronError type of an error body, if any.
pub fn neutron_error_type(v: &Value) -> Option<&str> {
    v.get("NeutronError")
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
}

/// (id, [ip_address...]) of a port object.
pub fn port_ips(p: &Value) -> (String, Vec<String>) {
    let id = p["id"].as_str().unwrap_or_default().to_string();
    let ips = p["fixed_ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["ip_address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (id, ips)
}

pub fn ipv4(s: &str) -> u32 {
    u32::from(
        s.parse::<std::net::Ipv4Addr>()
            .unwrap_or_else(|_| panic!("not an IPv4 address: {s:?}")),
    )
}
