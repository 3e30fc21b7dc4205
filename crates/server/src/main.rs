//! `neutrino`: the one binary. `neutrino server` runs the API server on its
//! embedded SQLite default; `neutrino hash-password` makes password hashes
//! for `[[identity.users]]`.

mod bootstrap;
mod config;

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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server { config } => run_server(config),
        Command::HashPassword => hash_password(),
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
