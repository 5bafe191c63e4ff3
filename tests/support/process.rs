//! The real `kafka-edge` binary as a child process, its log captured to a file.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const STARTUP: Duration = Duration::from_secs(10);

/// A running gateway binary; killed on drop.
pub struct GatewayProcess {
    pub child: Child,
    pub addr: String,
    log: PathBuf,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A free port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kafka-edge-test-{}-{name}", std::process::id()))
}

impl GatewayProcess {
    /// Starts the binary listening on 127.0.0.1:`port` with extra `args`, and waits until the
    /// bootstrap port accepts connections.
    pub fn start(port: u16, args: &[String]) -> GatewayProcess {
        let log = scratch(&format!("{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("KAFKA_EDGE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the kafka-edge binary runs");
        let gateway = GatewayProcess {
            child,
            addr: format!("127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + STARTUP;
        while std::net::TcpStream::connect(&gateway.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "gateway did not start:\n{}",
                gateway.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        gateway
    }

    /// Starts the binary with a configuration file holding `toml`.
    pub fn with_config(port: u16, toml: &str) -> GatewayProcess {
        let config = scratch(&format!("{port}.toml"));
        std::fs::write(&config, toml).unwrap();
        let gateway =
            GatewayProcess::start(port, &["--config".into(), config.display().to_string()]);
        let _ = std::fs::remove_file(&config);
        gateway
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the log contains `needle`.
    pub fn expect_log(&self, needle: &str) {
        let deadline = Instant::now() + STARTUP;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
