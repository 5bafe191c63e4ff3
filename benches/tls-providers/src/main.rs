//! What the crypto provider costs the gateway's TLS path, ring (kafka-edge's) against
//! aws-lc-rs (rustls's default), under the same rustls:
//!
//! - `records`: bulk TLS 1.3 records in memory, 64 KiB writes (16 KiB records), each
//!   suite: the server's encryption (answers to the client) and decryption (requests).
//! - `handshakes`: the server side of a full handshake (ECDSA P-256 certificate as
//!   `examples/gencerts.rs` makes, default key exchange, two TLS 1.3 tickets as rustls sends).
//! - `socket`: TLS 1.3 AES-256-GCM received over a loopback socket with rustls reading the
//!   socket itself, as under tokio-rustls (4 KiB per read), against a 64 KiB read-ahead
//!   buffer under rustls; server thread CPU and socket reads per MiB.
//!
//! Only the measured thread's CPU time counts, so a busy machine slows the run down but moves
//! the figures less; providers alternate and each figure is a median of rounds.
//!
//! `cargo run --release -- [records|handshakes|socket|all] [ROUNDS]`

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rustix::time::{clock_gettime, ClockId};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

const GIB: f64 = (1u64 << 30) as f64;
const CHUNK: usize = 64 * 1024;
const SUITES: [&str; 3] = [
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
];

fn cpu() -> f64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn providers() -> [(&'static str, CryptoProvider); 2] {
    [
        ("ring", rustls::crypto::ring::default_provider()),
        ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider()),
    ]
}

struct Pki {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki() -> Pki {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["edge.bench".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    Pki {
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

/// Server and client configurations on `provider`, limited to `suite` unless it is `None`.
fn configs(
    provider: &CryptoProvider,
    pki: &Pki,
    suite: Option<&str>,
) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let mut provider = provider.clone();
    if let Some(suite) = suite {
        provider
            .cipher_suites
            .retain(|s| format!("{:?}", s.suite()) == suite);
        assert!(!provider.cipher_suites.is_empty(), "no suite {suite}");
    }
    let provider = Arc::new(provider);
    let key = PrivateKeyDer::try_from(pki.key.clone()).expect("key");
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], key)
        .expect("server config");
    let mut roots = RootCertStore::empty();
    roots.add(pki.cert.clone()).expect("root");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// Hands `tls` to a connection, taking the plaintext out as it comes, as the gateway's pump
/// does (rustls holds little plaintext).
fn receive(conn: &mut rustls::ConnectionCommon<impl rustls::SideData>, tls: &[u8]) {
    let mut rd = tls;
    let mut plain = [0u8; 16384];
    while !rd.is_empty() {
        conn.read_tls(&mut rd).expect("read_tls");
        conn.process_new_packets().expect("records");
        while matches!(conn.reader().read(&mut plain), Ok(n) if n > 0) {}
    }
}

/// Client to server; returns the server's CPU.
fn to_server(c: &mut ClientConnection, s: &mut ServerConnection, buf: &mut Vec<u8>) -> f64 {
    buf.clear();
    while c.wants_write() {
        c.write_tls(buf).expect("write_tls");
    }
    let t = cpu();
    receive(s, buf);
    cpu() - t
}

/// Server to client; returns the server's CPU.
fn to_client(s: &mut ServerConnection, c: &mut ClientConnection, buf: &mut Vec<u8>) -> f64 {
    buf.clear();
    let t = cpu();
    while s.wants_write() {
        s.write_tls(buf).expect("write_tls");
    }
    let spent = cpu() - t;
    receive(c, buf);
    spent
}

/// A connected pair, and the server's CPU for the handshake.
fn connect(
    sc: &Arc<ServerConfig>,
    cc: &Arc<ClientConfig>,
    buf: &mut Vec<u8>,
) -> (ServerConnection, ClientConnection, f64) {
    let name = ServerName::try_from("edge.bench").expect("name");
    let mut c = ClientConnection::new(cc.clone(), name).expect("client");
    let t = cpu();
    let mut s = ServerConnection::new(sc.clone()).expect("server");
    let mut spent = cpu() - t;
    while c.is_handshaking() || s.is_handshaking() || s.wants_write() {
        spent += to_server(&mut c, &mut s, buf);
        spent += to_client(&mut s, &mut c, buf);
    }
    (s, c, spent)
}

/// The server encrypts `total` bytes written 64 KiB at a time and decrypts as many from the
/// client: (encrypt, decrypt) CPU-s per GiB.
fn records_once(sc: &Arc<ServerConfig>, cc: &Arc<ClientConfig>, total: usize) -> (f64, f64) {
    let mut buf = Vec::with_capacity(1 << 20);
    let (mut s, mut c, _) = connect(sc, cc, &mut buf);
    let chunk = vec![0x5a; CHUNK];
    let (mut enc, mut dec) = (0.0, 0.0);
    for _ in 0..total / CHUNK {
        let t = cpu();
        s.writer().write_all(&chunk).expect("write");
        enc += cpu() - t + to_client(&mut s, &mut c, &mut buf);
        c.writer().write_all(&chunk).expect("write");
        dec += to_server(&mut c, &mut s, &mut buf);
    }
    let gib = total as f64 / GIB;
    (enc / gib, dec / gib)
}

fn records(pki: &Pki, rounds: usize) {
    for suite in SUITES {
        for (name, p) in providers() {
            let (sc, cc) = configs(&p, pki, Some(suite));
            let (mut enc, mut dec): (Vec<f64>, Vec<f64>) = (0..rounds)
                .map(|_| records_once(&sc, &cc, 256 << 20))
                .unzip();
            println!(
                "records {suite:30} {name:9}  encrypt {:.3}  decrypt {:.3} CPU-s/GiB",
                median(&mut enc),
                median(&mut dec)
            );
        }
    }
}

fn handshakes(pki: &Pki, rounds: usize) {
    const N: usize = 300;
    for (name, p) in providers() {
        let (sc, cc) = configs(&p, pki, None);
        let mut buf = Vec::new();
        let mut per: Vec<f64> = (0..rounds)
            .map(|_| (0..N).map(|_| connect(&sc, &cc, &mut buf).2).sum::<f64>() / N as f64)
            .collect();
        println!(
            "handshake, server side {name:9}  {:.3} ms CPU",
            median(&mut per) * 1e3
        );
    }
}

/// Counts the reads rustls (or the read-ahead buffer) makes on the socket.
struct Counted {
    sock: TcpStream,
    reads: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads += 1;
        self.sock.read(buf)
    }
}

/// Server thread CPU-s per GiB received, and socket reads per MiB.
fn socket_once(
    sc: Arc<ServerConfig>,
    cc: Arc<ClientConfig>,
    total: usize,
    ahead: bool,
) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sender = std::thread::spawn(move || {
        let mut sock = TcpStream::connect(addr).expect("connect");
        let name = ServerName::try_from("edge.bench").expect("name");
        let mut c = ClientConnection::new(cc, name).expect("client");
        let mut tls = rustls::Stream::new(&mut c, &mut sock);
        let chunk = vec![0x5a; CHUNK];
        for _ in 0..total / CHUNK {
            tls.write_all(&chunk).expect("send");
        }
        tls.flush().expect("flush");
        // Read what the server sends (tickets) until it closes: an unread byte would reset
        // the connection under the server's last reads.
        let mut sink = [0u8; 4096];
        while matches!(tls.sock.read(&mut sink), Ok(n) if n > 0) {}
    });
    let (sock, _) = listener.accept().expect("accept");
    let mut out = sock.try_clone().expect("clone");
    let counted = Counted { sock, reads: 0 };
    let mut src: Box<dyn ReadCounted> = if ahead {
        Box::new(BufReader::with_capacity(CHUNK, counted))
    } else {
        Box::new(counted)
    };
    let mut s = ServerConnection::new(sc).expect("server");
    let mut plain = vec![0u8; CHUNK];
    let mut got = 0;
    let mut start = None;
    while got < total {
        s.read_tls(&mut src).expect("read_tls");
        s.process_new_packets().expect("records");
        while s.wants_write() {
            s.write_tls(&mut out).expect("write_tls");
        }
        if s.is_handshaking() {
            continue;
        }
        if start.is_none() {
            start = Some(cpu());
            src.reset();
        }
        while let Ok(n @ 1..) = s.reader().read(&mut plain) {
            got += n;
        }
    }
    let spent = cpu() - start.unwrap_or_else(cpu);
    let reads = src.reads();
    drop((src, out, s));
    sender.join().expect("sender");
    (
        spent / (total as f64 / GIB),
        reads as f64 / (total >> 20) as f64,
    )
}

trait ReadCounted: Read {
    fn reads(&self) -> u64;
    fn reset(&mut self);
}

impl ReadCounted for Counted {
    fn reads(&self) -> u64 {
        self.reads
    }
    fn reset(&mut self) {
        self.reads = 0;
    }
}

impl ReadCounted for BufReader<Counted> {
    fn reads(&self) -> u64 {
        self.get_ref().reads
    }
    fn reset(&mut self) {
        self.get_mut().reads = 0;
    }
}

fn socket(pki: &Pki, rounds: usize) {
    for (name, p) in providers() {
        let (sc, cc) = configs(&p, pki, Some(SUITES[0]));
        let mut runs = [vec![], vec![]];
        let mut reads = [0.0; 2];
        for _ in 0..rounds {
            for (i, ahead) in [false, true].into_iter().enumerate() {
                let (spent, per_mib) = socket_once(sc.clone(), cc.clone(), 512 << 20, ahead);
                runs[i].push(spent);
                reads[i] = per_mib;
            }
        }
        for (i, how) in ["rustls reads the socket", "64 KiB read-ahead"]
            .iter()
            .enumerate()
        {
            println!(
                "socket  AES-256-GCM receive {name:9}  {how:24} {:.3} CPU-s/GiB, {:.1} reads per MiB",
                median(&mut runs[i]),
                reads[i]
            );
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "all".into());
    let rounds = args.next().and_then(|r| r.parse().ok()).unwrap_or(7);
    let pki = pki();
    if matches!(what.as_str(), "records" | "all") {
        records(&pki, rounds);
    }
    if matches!(what.as_str(), "handshakes" | "all") {
        handshakes(&pki, rounds);
    }
    if matches!(what.as_str(), "socket" | "all") {
        socket(&pki, rounds);
    }
}
