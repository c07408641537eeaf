//! `isec gateway`: an S3 endpoint that encrypts (SPEC.md §18). Any S3 client (the AWS CLI,
//! rclone, s3cmd, the SDKs) points at it and reads and writes plaintext; the backend bucket
//! holds only isec objects, the same ones `isec s3` and the Python and Node helpers write.
//!
//! s3s parses requests, checks their signatures (SigV4 and SigV2, presigned URLs, aws-chunked
//! bodies) and writes the answers; core decides everything about the format (what a key is,
//! what a listing shows, how parts complete into a segment table, which copies stay on the
//! server); this module moves the bytes between them.

mod body;
mod copy;
mod error;
mod list;
mod read;
mod service;
mod uploads;
mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use isec_core::Keyring;
use s3s::auth::{SecretKey, SimpleAuth};
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::fail::{CliError, Res};
use crate::s3::Conn;
use crate::s3::client;

pub use service::Gateway;

/// Serve an S3 endpoint that encrypts every object on its way to the backend bucket and
/// decrypts it on the way back.
///
/// Clients sign their requests with the gateway's own credentials (ISEC_GATEWAY_ACCESS_KEY and
/// ISEC_GATEWAY_SECRET_KEY, or --credentials FILE with one "ACCESS_KEY SECRET_KEY" pair per
/// line); the gateway reaches the backend with the AWS SDK's default chain (AWS_ACCESS_KEY_ID,
/// profiles, ...) and --endpoint-url. Path-style addressing.
///
/// Example: isec --keyring ring.json gateway --listen 127.0.0.1:9000 --endpoint-url http://127.0.0.1:3900
#[derive(Args)]
pub struct GatewayCmd {
    #[command(flatten)]
    conn: Conn,
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Client credentials: one "ACCESS_KEY SECRET_KEY" pair per line (`#` starts a comment).
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Frame size of new objects: a power of two from 4KiB to 8MiB. Listings compute sizes
    /// from it, so keep one value per bucket.
    #[arg(long, default_value = "64KiB", value_parser = crate::meta::parse_size)]
    frame_size: u64,
    /// Client connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
    /// Serve objects that are not encrypted at all as they are (refused by default).
    #[arg(long)]
    serve_plaintext: bool,
    /// Serve HTTPS with this PEM certificate chain (and --tls-key); plain HTTP otherwise,
    /// which suits only a gateway its clients reach on loopback.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// The TLS acceptor for --tls-cert/--tls-key.
fn tls(cert: &PathBuf, key: &PathBuf) -> Res<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |p: &PathBuf, e: &dyn std::fmt::Display| CliError::usage(format!("{}: {e}", p.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad(cert, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The client credentials: the file's pairs, else the environment's one pair.
fn credentials(path: Option<&PathBuf>) -> Res<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    if let Some(p) = path {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(p).map_err(|e| CliError::Io(format!("{}: {e}", p.display())))?,
        );
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let mut it = line.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some(a), Some(s), None) => pairs.push((a.to_string(), s.to_string())),
                _ => return Err(CliError::usage(format!("{}: expected ACCESS_KEY SECRET_KEY per line", p.display()))),
            }
        }
    } else if let (Ok(a), Ok(s)) = (std::env::var("ISEC_GATEWAY_ACCESS_KEY"), std::env::var("ISEC_GATEWAY_SECRET_KEY"))
    {
        pairs.push((a, s));
    }
    if pairs.is_empty() {
        return Err(CliError::usage(
            "the gateway needs client credentials: --credentials FILE, or ISEC_GATEWAY_ACCESS_KEY and ISEC_GATEWAY_SECRET_KEY"
                .into(),
        ));
    }
    Ok(pairs)
}

/// Runs the gateway until SIGTERM or Ctrl-C: then it stops accepting and lets the requests
/// in flight finish (up to 30 s). Multipart uploads still open stay open: their records are
/// in the bucket, so a restarted gateway (or another one) completes them.
pub fn run(cmd: GatewayCmd, ring: Keyring) -> Res<()> {
    isec_core::Params::default()
        .with_frame_size(cmd.frame_size)
        .map_err(|e| CliError::core(e, "--frame-size".into()))?;
    let pairs = credentials(cmd.credentials.as_ref())?;
    let acceptor = match (&cmd.tls_cert, &cmd.tls_key) {
        (Some(c), Some(k)) => Some(tls(c, k)?),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("async runtime: {e}")))?;
    rt.block_on(async move {
        let c = client::connect(&cmd.conn).await;
        let gateway = Arc::new(Gateway::new(c, Arc::new(ring), cmd.frame_size, cmd.serve_plaintext));
        let mut auth = SimpleAuth::new();
        for (a, s) in pairs {
            auth.register(a, SecretKey::from(s));
        }
        let mut b = S3ServiceBuilder::new(service::Shared(gateway.clone()));
        b.set_auth(auth);
        let service = b.build();
        let listener =
            TcpListener::bind(cmd.listen).await.map_err(|e| CliError::Io(format!("listen on {}: {e}", cmd.listen)))?;
        let addr = listener.local_addr().map_err(|e| CliError::Io(e.to_string()))?;
        println!("isec gateway on {}://{addr}", if acceptor.is_some() { "https" } else { "http" });
        let _ = std::io::Write::flush(&mut std::io::stdout());
        serve(listener, service, acceptor, cmd.max_connections.max(1)).await;
        eprintln!("isec gateway: stopped ({} bytes of objects written to the backend)", gateway.moved_total());
        Ok(())
    })
}

async fn serve(
    listener: TcpListener,
    service: s3s::service::S3Service,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    max: usize,
) {
    let conns = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max));
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("isec gateway: no SIGTERM handler: {e}");
            return;
        }
    };
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let sock = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => { eprintln!("isec gateway: accept: {e}"); continue; }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        match &acceptor {
            None => {
                let conn = graceful.watch(conns.serve_connection(TokioIo::new(sock), service.clone()).into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task, so a slow client holds no one up.
                let (acceptor, conns, service, watcher) =
                    (acceptor.clone(), conns.clone(), service.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await
                    else {
                        return;
                    };
                    let conn = watcher.watch(conns.serve_connection(TokioIo::new(stream), service).into_owned());
                    let _ = conn.await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    eprintln!("isec gateway: stopping; letting requests in flight finish");
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        eprintln!("isec gateway: requests still running after 30 s were cut");
    }
}
