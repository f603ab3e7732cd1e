//! The `imgcdn` command line. Only argument handling lives here; everything else is the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use imgcdn::config::{Config, LogFormat, Overrides, Settings};
use imgcdn::server::{self, AppState};

#[derive(Parser)]
#[command(
    version,
    about = "On-the-fly image CDN proxy: fetch, resize, re-encode, serve."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (default: config/default.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on; overrides `server.listen`.
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Print PATH (`/img/<options>/<source>`) signed with the first configured signing key.
    Sign {
        /// The path to sign, e.g. `/img/w_300/https://a.com/cat.jpg`.
        path: String,
    },
}

/// jemalloc gives freed memory back to the OS after a storm (RSS 45 MB idle against glibc's
/// 85-120 MB, same peak and speed; `bench/alloc/`). The C codecs keep glibc's malloc, which
/// maps their big buffers separately and unmaps them on free.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Background threads purge dirty pages (after 10 s) even while the server is idle.
    #[cfg(not(target_env = "msvc"))]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("imgcdn: jemalloc background threads not enabled: {e}");
    }
    let cli = Cli::parse();
    // Log lines are written by a dedicated thread, so a slow stderr (a pipe to a log
    // collector) never stalls a reactor thread; past 128k pending lines new ones are dropped
    // rather than waited for. The guard flushes what is pending when main returns.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking(std::io::stderr());
    // The log format comes from the config; a broken config is reported by the command below.
    let log_format = Config::load(cli.config.as_deref(), &Overrides::default())
        .map(|c| c.log.format)
        .unwrap_or_default();
    let logger = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(writer);
    match log_format {
        LogFormat::Json => logger.json().init(),
        LogFormat::Text => logger.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config, Overrides { listen: cli.listen }),
        Command::Sign { path } => sign(cli.config, &path),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imgcdn: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(file: Option<PathBuf>, overrides: Overrides) -> anyhow::Result<()> {
    let config = Config::load(file.as_deref(), &overrides)?;
    let settings = Settings::try_from(config)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listen = settings.listen;
        let state = Arc::new(AppState::new(settings).context("building the origin client")?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(%listen, workers = state.pool.workers(), "imgcdn listening");
        server::run(listener, state, shutdown_signal()).await?;
        tracing::info!("imgcdn stopped");
        Ok(())
    })
}

fn sign(file: Option<PathBuf>, path: &str) -> anyhow::Result<()> {
    let config = Config::load(file.as_deref(), &Overrides::default())?;
    let settings = Settings::try_from(config)?;
    let key = settings
        .signing_keys
        .first()
        .context("no signing key configured: set security.signing_keys")?;
    println!("{}", imgcdn::signature::sign_path(key, path));
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
