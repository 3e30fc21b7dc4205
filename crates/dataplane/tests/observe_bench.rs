//! Cost of `Host::observe` on a host with 10,000 links (root, ignored by
//! default). Figures are printed, never asserted:
//!
//! cargo test --release -p neutrino-dataplane --test observe_bench -- --ignored --nocapture

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use neutrino_dataplane::{Host, Ownership};
use nix::sched::{CloneFlags, unshare};

const LINKS: usize = 10_000;
const BRIDGES: usize = 10;
const REMOTE_MACS: usize = 2_000;
const RUNS: u32 = 10;

/// Feed a batch to `ip -batch -` / `bridge -batch -` (one process, fast).
fn batch(tool: &str, script: &str) {
    let mut child = Command::new(tool)
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "{tool} -batch failed");
}

/// Bridges (one with an owned vxlan and remote MACs) and LINKS persistent taps
/// spread over them, all up: roughly an agent host.
fn populate() {
    let mut ip = String::new();
    for b in 0..BRIDGES {
        writeln!(ip, "link add brq{b} type bridge").unwrap();
        writeln!(ip, "link set brq{b} up").unwrap();
    }
    writeln!(
        ip,
        "link add vxlan-100 type vxlan id 100 local 10.0.0.1 dstport 4789 nolearning"
    )
    .unwrap();
    writeln!(ip, "link set vxlan-100 master brq0 up").unwrap();
    for i in 0..LINKS {
        writeln!(ip, "tuntap add mode tap name tap{i:05}").unwrap();
        writeln!(ip, "link set tap{i:05} master brq{} up", i % BRIDGES).unwrap();
    }
    batch("ip", &ip);

    let mut br = String::new();
    for v in 2..12 {
        writeln!(
            br,
            "fdb append 00:00:00:00:00:00 dev vxlan-100 dst 10.0.0.{v} self permanent"
        )
        .unwrap();
    }
    for m in 0..REMOTE_MACS {
        writeln!(
            br,
            "fdb add fa:16:3e:00:{:02x}:{:02x} dev vxlan-100 dst 10.0.0.{} self permanent",
            m >> 8,
            m & 0xff,
            2 + m % 10
        )
        .unwrap();
    }
    batch("bridge", &br);
}

/// CPU time of the calling thread (ns), precise unlike rusage ticks.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(s.split_whitespace().next().unwrap().parse().unwrap())
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
#[ignore]
fn observe_10k_links() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: needs root (network namespaces)");
        return;
    }
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let t = Instant::now();
    populate();
    eprintln!("populate: {:?}", t.elapsed());

    let host = Host::new();
    let own = Ownership {
        namespace_prefix: format!("ndpb-{}-", std::process::id()),
    };
    // Reset the peak RSS so VmHWM covers the first pass only (later passes
    // reuse memory the allocator kept).
    let rss0 = status_kib("VmRSS:");
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let obs = host.observe(&own).expect("observe");
    let peak = status_kib("VmHWM:");
    let fdb: usize = obs.fdb.values().map(|s| s.len()).sum();
    eprintln!(
        "links {}  owned fdb entries {fdb}  RSS before {rss0} KiB  peak during observe {peak} KiB (+{} KiB)",
        obs.links.len(),
        peak - rss0
    );
    drop(obs);

    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    for _ in 0..RUNS {
        drop(host.observe(&own).expect("observe"));
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
    eprintln!(
        "observe x{RUNS}: cpu {:?}/pass  wall {:?}/pass  VmHWM {} KiB",
        cpu / RUNS,
        wall / RUNS,
        status_kib("VmHWM:")
    );
}
