//! The `kafka-edge` binary: flags, logging, configuration, signals. Everything else lives in
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

use kafka_edge::config::{self, ConfigError, File, Overrides};
use kafka_edge::{Config, Listeners};

#[cfg(feature = "demo")]
mod demo;

/// jemalloc, tuned in .cargo/config.toml to hand freed memory back within a second (see
/// Cargo.toml for why).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a bad configuration (EX_USAGE), so supervisors can tell it from a crash.
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    version,
    about = "A Kafka gateway: one external endpoint, every broker address rewritten"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Log level or filter (as RUST_LOG, which it overrides): info, debug, kafka_edge=trace...
    #[arg(long, value_name = "FILTER", global = true)]
    log_level: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Ask the cluster for its brokers and API versions the way the gateway would, check
    /// each broker can be reached from here, and print the map clients would get. Exits
    /// non-zero when the cluster cannot be read or a broker cannot be served or reached.
    Diagnose(RunArgs),
    /// Start an in-process mock Kafka cluster (librdkafka's) behind the gateway and show a
    /// client producing and consuming through it. Needs nothing else installed.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Print the configuration reference of this version.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Every key, its default, flag and meaning, as Markdown (docs/configuration.md).
    Reference,
    /// The same as a commented TOML file to start from (config/kafka-edge.toml).
    Example,
}

#[derive(Args)]
struct RunArgs {
    /// TOML configuration file; flags override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A bootstrap broker of the upstream cluster (repeatable).
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    bootstrap_servers: Vec<String>,
    /// Where clients bootstrap; broker listeners bind on the same IP.
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// The host name or IP clients are told, for the bootstrap and every broker.
    #[arg(long, value_name = "HOST")]
    advertised_host: Option<String>,
    /// Broker with node id N is served at port PORT + N.
    #[arg(long, value_name = "PORT")]
    broker_port_base: Option<u16>,
    /// Where /livez, /readyz and /metrics are served, or `off`.
    #[arg(long, value_name = "IP:PORT|off")]
    admin_listen: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match &cli.log_level {
        Some(level) => tracing_subscriber::EnvFilter::try_new(level).ok(),
        None => tracing_subscriber::EnvFilter::try_from_default_env().ok(),
    }
    .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    // Accept loops, discovery and the admin endpoint are light; sessions run on the
    // gateway's own worker threads (see workers.rs).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kafka-edge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Diagnose(args)) => match load(args) {
            Ok(config) => runtime.block_on(diagnose(config)),
            Err(e) => {
                eprintln!("kafka-edge: invalid configuration: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => runtime.block_on(demo::run(args)),
        Some(Command::Config(ConfigCommand::Reference)) => {
            print!("{}", config::reference::markdown());
            Ok(())
        }
        Some(Command::Config(ConfigCommand::Example)) => {
            print!("{}", config::reference::example_file());
            Ok(())
        }
        None => match load(cli.run) {
            Ok(config) => runtime.block_on(async {
                let listener = bind(&config).await?;
                serve(listener, config).await
            }),
            Err(e) => {
                eprintln!("kafka-edge: invalid configuration: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka-edge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: RunArgs) -> Result<Config, ConfigError> {
    let file = match &args.config {
        Some(path) => File::load(path)?,
        None => File::default(),
    };
    Config::resolve(
        file,
        Overrides {
            bootstrap_servers: args.bootstrap_servers,
            listen: args.listen,
            advertised_host: args.advertised_host,
            broker_port_base: args.broker_port_base,
            admin_listen: args.admin_listen,
        },
    )
}

/// Prints the diagnosis; fails when anything in it would stop clients.
async fn diagnose(config: Config) -> anyhow::Result<()> {
    let report = kafka_edge::ops::diagnose::diagnose(config)
        .await
        .context("diagnose")?;
    print!("{report}");
    anyhow::ensure!(
        report.healthy(),
        "some brokers cannot be served or reached (see above)"
    );
    Ok(())
}

/// Binds the bootstrap port, so that a bind failure is reported before anything runs.
pub(crate) async fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let bootstrap = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let admin = match config.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the admin endpoint"))?,
        ),
        None => None,
    };
    Ok(Listeners { bootstrap, admin })
}

/// Serves until SIGTERM or SIGINT.
pub(crate) async fn serve(listeners: Listeners, config: Config) -> anyhow::Result<()> {
    tracing::info!(
        listen = %config.listen,
        advertised = %config::advertised_bootstrap(&config),
        upstream = %config.bootstrap_servers.join(","),
        admin = %config.admin_listen.map_or("off".to_owned(), |a| a.to_string()),
        "kafka-edge {} ready",
        env!("CARGO_PKG_VERSION")
    );
    Ok(kafka_edge::run(listeners, config, shutdown_signal()).await?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM ({e}); only SIGINT stops the gateway");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
