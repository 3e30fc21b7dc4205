//! `neutrino`: the one binary. `neutrino server` runs the API server on its
//! embedded SQLite default; `neutrino hash-password` makes password hashes
//! for `[[identity.users]]`.

mod bootstrap;
mod config;
mod demo;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "neutrino",
    version,
    about = "An OpenStack Networking API v2.0 server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server.
    Server {
        /// TOML configuration file (see neutrino.example.toml).
        #[arg(long, env = "NEUTRINO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Read a password on standard input and print its hash for `password_hash`.
    HashPassword,
    /// Run the host agent (L2 and DHCP), or show what a running one manages.
    Agent {
        /// Agent TOML file (see docs/agent.md).
        #[arg(long, env = "NEUTRINO_AGENT_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<AgentAction>,
    },
    /// A server, an agent and two instances that get DHCP and ping each other (as root).
    Demo {
        #[command(subcommand)]
        action: DemoAction,
        /// Where the demo keeps its configs, database and logs.
        #[arg(long, default_value = "neutrino-demo", global = true)]
        dir: PathBuf,
    },
    /// Play the hypervisor: plug an instance NIC (a veth into a namespace) for a port.
    Vif {
        #[command(subcommand)]
        action: VifAction,
    },
}

#[derive(Subcommand)]
enum DemoAction {
    /// Start it all and show the instances pinging each other.
    Up {
        /// API port (the agent's metrics take the next one).
        #[arg(long, default_value_t = 9696)]
        port: u16,
    },
    /// Remove everything `demo up` made.
    Down,
}

#[derive(Subcommand)]
enum AgentAction {
    /// Print what the running agent manages (from its /status).
    Status,
}

#[derive(Subcommand)]
enum VifAction {
    /// Bind the port to this host and plug it into an instance namespace.
    Plug {
        #[arg(long)]
        port: String,
        /// The instance's network namespace (created if missing).
        #[arg(long)]
        netns: String,
        /// Interface name inside the namespace.
        #[arg(long, default_value = "eth0")]
        ifname: String,
        #[arg(long, default_value_t = 1500)]
        mtu: u32,
        /// Agent TOML file: the server, the secret and this host's name.
        #[arg(long, env = "NEUTRINO_AGENT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Remove the port's veth pair.
    Unplug {
        #[arg(long)]
        port: String,
        #[arg(long, env = "NEUTRINO_AGENT_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server { config } => run_server(config),
        Command::HashPassword => hash_password(),
        Command::Agent {
            config,
            action: None,
        } => run_agent(config),
        Command::Agent {
            config,
            action: Some(AgentAction::Status),
        } => agent_status(config),
        Command::Vif { action } => vif(action),
        Command::Demo { action, dir } => {
            init_logs("warn");
            runtime().and_then(|rt| {
                rt.block_on(async {
                    match action {
                        DemoAction::Up { port } => demo::up(&dir, port).await,
                        DemoAction::Down => demo::down(&dir).await,
                    }
                })
            })
        }
    };
    if let Err(e) = result {
        eprintln!("neutrino: {e:#}");
        std::process::exit(1);
    }
}

fn hash_password() -> anyhow::Result<()> {
    let mut pw = String::new();
    std::io::stdin().read_to_string(&mut pw)?;
    let pw = pw.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    println!("{}", neutrino_identity::hash_password(pw));
    Ok(())
}

fn init_logs(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_agent(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = neutrino_agent::config::AgentConfig::load(config.as_deref())?;
    cfg.enter_host_netns()?;
    init_logs("info");
    runtime()?.block_on(neutrino_agent::reconcile::run(cfg, shutdown_signal()))
}

fn agent_status(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = neutrino_agent::config::AgentConfig::load(config.as_deref())?;
    cfg.enter_host_netns()?;
    let text = runtime()?.block_on(neutrino_agent::status::fetch(&cfg))?;
    print!("{text}");
    Ok(())
}

fn vif(action: VifAction) -> anyhow::Result<()> {
    init_logs("warn");
    // The host's namespace must be entered before the runtime starts threads.
    let cfg = match &action {
        VifAction::Plug { config, .. } | VifAction::Unplug { config, .. } => {
            neutrino_agent::config::AgentConfig::load(config.as_deref())?
        }
    };
    cfg.enter_host_netns()?;
    let rt = runtime()?;
    match action {
        VifAction::Plug {
            port,
            netns,
            ifname,
            mtu,
            ..
        } => {
            let tap = rt.block_on(neutrino_agent::vif::plug(&cfg, &port, &netns, &ifname, mtu))?;
            println!("plugged port {port}: {tap} on this host, {ifname} in namespace {netns}");
        }
        VifAction::Unplug { port, .. } => {
            let tap = rt.block_on(neutrino_agent::vif::unplug_port(&port))?;
            println!("unplugged port {port} ({tap})");
        }
    }
    Ok(())
}

fn run_server(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = config::Config::load(config_path.as_deref())?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.server.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(cfg))
}

async fn serve(cfg: config::Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("server.listen: cannot listen on {}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    std::fs::create_dir_all(&cfg.server.data_dir).with_context(|| {
        format!(
            "server.data_dir: cannot create {}",
            cfg.server.data_dir.display()
        )
    })?;
    let store = neutrino_store::SqliteStore::open(&cfg.server.data_dir.join("neutrino.db"))
        .context("cannot open the database")?;
    let engine = neutrino_engine::Engine::start(Box::new(store), cfg.engine_config()?)?;
    let identity = bootstrap::identity(&cfg, addr).await?;
    let secret = bootstrap::agent_secret(&cfg.server.data_dir)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = Arc::new(neutrino_api::AppState {
        engine: engine.clone(),
        identity,
        max_body_bytes: cfg.api.max_body_bytes,
        metrics: Default::default(),
        agents: neutrino_api::agents::AgentRegistry::new(
            secret,
            std::time::Duration::from_secs(cfg.agents.down_time_secs),
        ),
        metadata: neutrino_api::metadata::MetadataService::new(cfg.metadata_backend()),
        shutdown: stopped,
    });
    tokio::spawn(neutrino_api::agents::watch_liveness(state.clone()));
    let app = neutrino_api::router(state);
    tracing::info!(%addr, data_dir = %cfg.server.data_dir.display(), mode = %cfg.identity.mode, "neutrino server listening");
    println!("neutrino server listening on http://{addr}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Agents' long polls return now instead of holding the drain.
            let _ = stop.send(true);
        })
        .await?;
    // In-flight requests have drained; make sure their commits are done.
    let _ = engine.flush().await;
    tracing::info!("neutrino server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
