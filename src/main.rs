//! The `imgcdn` command line. Only argument handling lives here; everything else is the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use imgcdn::config::{Config, LogFormat, Overrides, Settings};
use imgcdn::logwriter::BatchedLog;
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
    /// Fill the cache: request every path listed (and every variant asked for below) from a
    /// running server, or with --offline straight into the configured cache directory.
    Warm(WarmArgs),
}

#[derive(clap::Args)]
struct WarmArgs {
    /// One path (`/img/...`) or whole URL per line; `-` reads standard input.
    file: Option<PathBuf>,
    /// The server to warm, e.g. `http://127.0.0.1:8000` (not with --offline).
    #[arg(long, value_name = "URL", required_unless_present = "offline")]
    server: Option<String>,
    /// Answer in-process with the configured source, pipeline and cache (no server needed);
    /// a server started afterwards on the same cache directory serves these from its cache.
    #[arg(long, conflicts_with = "server")]
    offline: bool,
    /// A sitemap whose `<image:loc>` (or `<loc>`) URLs are sources to make variants of.
    #[arg(long, value_name = "FILE")]
    sitemap: Option<PathBuf>,
    /// A source to make variants of (repeatable).
    #[arg(long = "source", value_name = "URL")]
    sources: Vec<String>,
    /// One variant per width for every source, e.g. `320,640,1280`.
    #[arg(long, value_delimiter = ',', value_name = "W,W,...")]
    srcset_widths: Vec<u32>,
    /// Options added to every source variant, e.g. `f_auto,q_70`.
    #[arg(long, default_value = "_")]
    options: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// `Accept` sent with every request (decides which `f_auto` variant is warmed).
    #[arg(long, default_value = "image/avif,image/webp,*/*")]
    accept: String,
    /// Sign every path with the first configured signing key.
    #[arg(long)]
    sign: bool,
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
    // Log lines are batched and written by a thread of their own (`logwriter`), so a slow
    // stderr never stalls a reactor thread and a line costs no syscall. The guard flushes
    // what is pending when main returns.
    let (writer, _flush_on_exit) = match BatchedLog::start(std::io::stderr()) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("imgcdn: cannot start the log writer: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        Command::Warm(args) => warm(cli.config, args),
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
    let served = runtime.block_on(async move {
        let listen = settings.listen;
        let state = Arc::new(AppState::new(settings).context("building the origin client")?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(%listen, workers = state.pool.workers(), "imgcdn listening");
        server::run(listener, state, shutdown_signal()).await?;
        tracing::info!("imgcdn stopped");
        Ok(())
    });
    // `run` has already spent the grace period on the requests in flight; renders still
    // running on blocking threads are not waited for (dropping the runtime would join them).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    served
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

fn warm(file: Option<PathBuf>, args: WarmArgs) -> anyhow::Result<()> {
    use std::io::Read as _;
    let config = Config::load(file.as_deref(), &Overrides::default())?;
    let settings = Settings::try_from(config)?;
    let lines = match args.file.as_deref() {
        None => String::new(),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            text
        }
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
    };
    let mut sources = args.sources.clone();
    if let Some(sitemap) = &args.sitemap {
        let xml = std::fs::read_to_string(sitemap)
            .with_context(|| format!("reading {}", sitemap.display()))?;
        sources.extend(imgcdn::warm::sitemap_sources(&xml));
    }
    let expand = imgcdn::warm::Expand {
        sources,
        widths: args.srcset_widths.clone(),
        options: args.options.clone(),
    };
    let mut targets = imgcdn::warm::targets(&lines, &expand);
    anyhow::ensure!(
        !targets.is_empty(),
        "nothing to warm: give a FILE, --sitemap or --source"
    );
    if args.sign {
        let key = settings
            .signing_keys
            .first()
            .context("--sign needs security.signing_keys")?
            .clone();
        targets = targets
            .iter()
            .map(|t| imgcdn::warm::sign(t, &key))
            .collect();
    }
    let show = std::io::stderr().is_terminal();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        if args.offline {
            let state = Arc::new(AppState::new(settings).context("building the origin client")?);
            let summary =
                imgcdn::warm::offline(state, targets, args.concurrency, &args.accept, show).await;
            anyhow::Ok(summary)
        } else {
            let server = args.server.as_deref().context("--server URL is required")?;
            imgcdn::warm::online(server, targets, args.concurrency, &args.accept, show)
                .await
                .context("building the HTTP client")
        }
    })?;
    println!("warm: {summary}");
    anyhow::ensure!(
        summary.failures() == 0,
        "{} requests failed",
        summary.failures()
    );
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
