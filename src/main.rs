//! The `kafka-edge` binary: flags, logging, configuration, signals. Everything else lives in
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use kafka_edge::config::{self, ConfigError, File, Overrides};
use kafka_edge::{Config, Listeners, Reloads};

#[cfg(feature = "demo")]
mod demo;

/// jemalloc, tuned in .cargo/config.toml to hand freed memory back within a second (see
/// Cargo.toml for why).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a bad configuration (EX_USAGE), so supervisors can tell it from a crash.
const EXIT_CONFIG: u8 = 64;

/// How often the configuration file is looked at for a change. A Kubernetes ConfigMap
/// reaches the pod within the kubelet's sync period (a minute or so): two seconds more is
/// nothing next to it, and a stat every two seconds costs nothing.
const CONFIG_CHECK: Duration = Duration::from_secs(2);

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
    /// Log level or filter, over `[log] level` and RUST_LOG: info, debug, kafka_edge=trace...
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
    /// Manage the credential file of client logins at the gateway ([client_auth]).
    Credentials(kafka_edge::edge::auth::cli::CredentialsArgs),
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

#[derive(Args, Clone)]
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
    /// Where /livez, /readyz, /metrics and /connections are served, or `off`.
    #[arg(long, value_name = "IP:PORT|off")]
    admin_listen: Option<String>,
}

/// The log filter, which a reload may change.
#[derive(Clone)]
struct LogFilter {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `--log-level`, which wins over the file.
    flag: Option<String>,
}

impl LogFilter {
    /// Logs to stderr with the flag's filter, else `RUST_LOG`'s, else `info`, until the
    /// configuration says otherwise.
    fn init(format: LogFormat, flag: Option<String>) -> LogFilter {
        let (filter, handle) = reload::Layer::new(filter(flag.as_deref()));
        let logs = tracing_subscriber::registry().with(filter);
        let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        match format {
            LogFormat::Text => logs.with(layer).init(),
            LogFormat::Json => logs.with(layer.json().flatten_event(true)).init(),
        }
        LogFilter { handle, flag }
    }

    /// Follows the configuration's `[log] level`, unless the flag set one.
    fn apply(&self, config: &Config) {
        let level = self.flag.as_deref().or(config.log_level.as_deref());
        if let Err(e) = self.handle.reload(filter(level)) {
            tracing::warn!("cannot change the log filter: {e}");
        }
    }
}

/// `level` (checked by the configuration, or a flag), else `RUST_LOG`, else `info`.
fn filter(level: Option<&str>) -> EnvFilter {
    match level {
        Some(level) => EnvFilter::try_new(level).ok(),
        None => EnvFilter::try_from_default_env().ok(),
    }
    .unwrap_or_else(|| EnvFilter::new("info"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = LogFilter::init(cli.log_format, cli.log_level.clone());
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
        Some(Command::Diagnose(args)) => match load(&args) {
            Ok(config) => {
                logs.apply(&config);
                runtime.block_on(diagnose(config))
            }
            Err(e) => {
                eprintln!("kafka-edge: invalid configuration: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => runtime.block_on(demo::run(args)),
        Some(Command::Credentials(args)) => kafka_edge::edge::auth::cli::run(args),
        Some(Command::Config(ConfigCommand::Reference)) => {
            print!("{}", config::reference::markdown());
            Ok(())
        }
        Some(Command::Config(ConfigCommand::Example)) => {
            print!("{}", config::reference::example_file());
            Ok(())
        }
        None => match load(&cli.run) {
            Ok(config) => runtime.block_on(async {
                logs.apply(&config);
                let listener = bind(&config).await?;
                serve_reloading(listener, config, cli.run, logs).await
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
            eprintln!("kafka-edge: {}", causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once. Our errors name their cause in their own
/// message, so anyhow's `{:#}` would print each cause twice ("cannot start client TLS:
/// cannot read X: I/O error: cannot read X: I/O error").
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn load(args: &RunArgs) -> Result<Config, ConfigError> {
    let file = match &args.config {
        Some(path) => File::load(path)?,
        None => File::default(),
    };
    Config::resolve(
        file,
        Overrides {
            bootstrap_servers: args.bootstrap_servers.clone(),
            listen: args.listen.clone(),
            advertised_host: args.advertised_host.clone(),
            broker_port_base: args.broker_port_base,
            admin_listen: args.admin_listen.clone(),
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

/// Serves until SIGTERM or SIGINT, with the configuration it was given (the demo's).
#[cfg(feature = "demo")]
pub(crate) async fn serve(listeners: Listeners, config: Config) -> anyhow::Result<()> {
    ready(&config);
    Ok(kafka_edge::run(listeners, config, shutdown_signal()).await?)
}

/// [`serve`], reading the configuration again (the file and the same flags) on SIGHUP and
/// when the file changes.
async fn serve_reloading(
    listeners: Listeners,
    config: Config,
    args: RunArgs,
    logs: LogFilter,
) -> anyhow::Result<()> {
    let asked = Arc::new(Notify::new());
    // Taken over before the gateway says it is ready: SIGHUP's default ends the process.
    hangups(asked.clone())?;
    let reloads = Reloads {
        watch: args.config.clone(),
        load: Box::new(move || load(&args)),
        check_every: CONFIG_CHECK,
        asked,
        apply: Box::new(move |config| logs.apply(config)),
    };
    ready(&config);
    Ok(kafka_edge::run_reloading(listeners, config, reloads, shutdown_signal()).await?)
}

fn ready(config: &Config) {
    tracing::info!(
        listen = %config.listen,
        advertised = %config::advertised_bootstrap(config),
        upstream = %config.bootstrap_servers.join(","),
        admin = %config.admin_listen.map_or("off".to_owned(), |a| a.to_string()),
        "kafka-edge {} ready",
        env!("CARGO_PKG_VERSION")
    );
}

/// Turns every SIGHUP into a request to reload.
#[cfg(unix)]
fn hangups(asked: Arc<Notify>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            asked.notify_one();
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn hangups(_: Arc<Notify>) -> anyhow::Result<()> {
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read ca.crt: {0}")]
    struct Read(#[from] std::io::Error);

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::from(Read(io)).context("diagnose");
        assert_eq!(causes(&e), "diagnose: cannot read ca.crt: no such file");
        // Causes a message does not name are kept.
        let e = anyhow::anyhow!("refused").context("cannot listen on 127.0.0.1:9092");
        assert_eq!(causes(&e), "cannot listen on 127.0.0.1:9092: refused");
    }
}
