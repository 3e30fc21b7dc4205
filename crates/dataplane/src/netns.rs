//! Named network namespaces, made the way iproute2 makes them so that
//! `ip netns exec NAME` works on ours: an nsfs bind mount on /run/netns/NAME.
//!
//! All namespace switching happens on dedicated threads: `setns` changes only
//! the calling thread, and a tokio worker must never end up in another
//! namespace.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

pub const NETNS_RUN_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("invalid namespace name {0:?}")]
    InvalidName(String),
    #[error("namespace {0} already exists")]
    Exists(String),
    #[error("namespace {0} does not exist")]
    NotFound(String),
    #[error("{what} {name}: {source}")]
    Sys {
        what: &'static str,
        name: String,
        source: Errno,
    },
    #[error("{what} {name}: {source}")]
    Io {
        what: &'static str,
        name: String,
        source: io::Error,
    },
    #[error("namespace thread panicked")]
    ThreadPanicked,
}

pub type Result<T, E = NetnsError> = std::result::Result<T, E>;

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_RUN_DIR).join(name)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 || name.contains('/') || name == "." || name == ".." {
        return Err(NetnsError::InvalidName(name.into()));
    }
    Ok(())
}

fn sys(what: &'static str, name: &str) -> impl FnOnce(Errno) -> NetnsError {
    let name = name.to_owned();
    move |source| NetnsError::Sys { what, name, source }
}

fn io_err(what: &'static str, name: &str) -> impl FnOnce(io::Error) -> NetnsError {
    let name = name.to_owned();
    move |source| NetnsError::Io { what, name, source }
}

/// Make /run/netns a shared mount point (as iproute2 does), so mounts made
/// below it propagate into mount namespaces created later (e.g. by
/// `ip netns exec`) and can be unmounted from everywhere.
fn ensure_run_dir() -> Result<()> {
    fs::create_dir_all(NETNS_RUN_DIR).map_err(io_err("mkdir", NETNS_RUN_DIR))?;
    let shared = || {
        mount(
            Some("none"),
            NETNS_RUN_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself, then mark it shared.
        Err(Errno::EINVAL) => {
            mount(
                Some(NETNS_RUN_DIR),
                NETNS_RUN_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(sys("bind mount", NETNS_RUN_DIR))?;
            shared().map_err(sys("make shared", NETNS_RUN_DIR))
        }
        Err(e) => Err(sys("make shared", NETNS_RUN_DIR)(e)),
    }
}

/// Create a new, empty named namespace. Fails with `Exists` if the name is
/// taken.
pub fn create(name: &str) -> Result<()> {
    check_name(name)?;
    ensure_run_dir()?;
    let p = path(name);
    match OpenOptions::new().write(true).create_new(true).open(&p) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists(name.into()));
        }
        Err(e) => return Err(io_err("create", name)(e)),
    }
    let target = p.clone();
    let res = std::thread::scope(|s| {
        s.spawn(move || -> Result<()> {
            // This thread alone moves into the new namespace and dies after.
            unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare", name))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys("bind mount", name))
        })
        .join()
        .map_err(|_| NetnsError::ThreadPanicked)?
    });
    if res.is_err() {
        let _ = fs::remove_file(&p);
    }
    res
}

/// Delete a named namespace (unmount and unlink). Its links are destroyed by
/// the kernel once nothing else holds it. Missing is not an error.
pub fn delete(name: &str) -> Result<()> {
    check_name(name)?;
    let p = path(name);
    if !p.exists() {
        return Ok(());
    }
    match umount2(&p, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys("umount", name)(e)),
    }
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("unlink", name)(e)),
    }
}

/// Names under /run/netns, sorted.
pub fn list() -> Result<Vec<String>> {
    let rd = match fs::read_dir(NETNS_RUN_DIR) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", NETNS_RUN_DIR)(e)),
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Open a handle on a named namespace (e.g. for `IFLA_NET_NS_FD`).
pub fn open(name: &str) -> Result<File> {
    check_name(name)?;
    File::open(path(name)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => NetnsError::NotFound(name.into()),
        _ => io_err("open", name)(e),
    })
}

/// Run `f` on a fresh thread that has joined the namespace: sockets it opens
/// (netlink included) belong to that namespace.
pub fn run_in<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let ns = open(name)?;
    std::thread::scope(|s| {
        s.spawn(move || -> Result<T> {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(sys("setns", name))?;
            drop(ns);
            Ok(f())
        })
        .join()
        // A panic in `f` is the caller's panic: let it through.
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Moves the calling thread into a named namespace for good. Call it first
/// thing in `main`, before any other thread exists: threads started later
/// inherit it. This is how one machine plays several hosts (tests, demos)
/// without `ip netns exec`, whose private mount namespace would hide the
/// namespaces the agent creates from everyone else.
pub fn enter(name: &str) -> Result<()> {
    let ns = open(name)?;
    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(sys("setns", name))
}
