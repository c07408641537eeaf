//! Shared by the S3 tests: the server from the environment (scripts/test-cli-s3.sh passes
//! Garage's as AWS_*), the isec command pointed at it, and a raw S3 client to write, tamper
//! with and read objects around it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

pub struct S3 {
    pub rt: tokio::runtime::Runtime,
    pub c: Client,
    pub bucket: String,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    /// This run's key prefix.
    pub prefix: String,
}

/// The server, or `None` (test skipped) when none is configured; under CI a missing server
/// fails the test instead.
pub fn server(name: &str) -> Option<S3> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint.filter(|_| std::env::var("AWS_ACCESS_KEY_ID").is_ok()) else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: AWS_ENDPOINT_URL and credentials must be set");
        eprintln!("skipped: no S3 server (set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
        return None;
    };
    let bucket = std::env::var("ISEC_CLI_S3_BUCKET").unwrap_or_else(|_| "isec-cli".into());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let conf = rt.block_on(aws_config::load_defaults(aws_config::BehaviorVersion::latest()));
    let mut b = aws_sdk_s3::config::Builder::from(&conf).endpoint_url(&endpoint).force_path_style(true);
    if conf.region().is_none() {
        b = b.region(aws_sdk_s3::config::Region::new("us-east-1"));
    }
    let c = Client::from_conf(b.build());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let prefix = format!("{name}-{}-{nanos}/", std::process::id());
    Some(S3 { rt, c, bucket, endpoint, dir: tempfile::tempdir().unwrap(), prefix })
}

impl S3 {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }

    /// The isec command with `--keyring ring` (if any), against the server.
    pub fn isec(&self, ring: Option<&Path>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_isec"));
        if let Some(r) = ring {
            cmd.arg("--keyring").arg(r);
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint).current_dir(self.dir.path());
        cmd
    }

    /// Runs isec with `args`; returns its output.
    pub fn run(&self, ring: Option<&Path>, args: &[&str]) -> Output {
        self.isec(ring).args(args).output().unwrap()
    }

    /// Runs isec and requires success; returns stdout.
    pub fn ok(&self, ring: Option<&Path>, args: &[&str]) -> String {
        let o = self.run(ring, args);
        assert!(o.status.success(), "isec {args:?}: {:?}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    /// A keyring file with `kids` added in order (the last is active, the others decrypt-only).
    pub fn ring(&self, name: &str, kids: &[&str]) -> PathBuf {
        let p = self.path(name);
        for kid in kids {
            self.ok(Some(&p), &["keygen", "--kid", kid]);
        }
        p
    }

    pub fn put_raw(&self, key: &str, body: &[u8], meta: HashMap<String, String>) {
        let k = format!("{}{key}", self.prefix);
        let req = self
            .c
            .put_object()
            .bucket(&self.bucket)
            .key(k)
            .set_metadata(Some(meta))
            .body(ByteStream::from(body.to_vec()));
        self.rt.block_on(req.send()).unwrap();
    }

    /// PUT under `key` as it is (not under this run's prefix): a previous-proxy sidecar.
    pub fn put_abs(&self, key: &str, body: &[u8], meta: HashMap<String, String>) {
        let req = self
            .c
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(Some(meta))
            .body(ByteStream::from(body.to_vec()));
        self.rt.block_on(req.send()).unwrap();
    }

    /// Whether `key` (as it is) exists.
    pub fn exists_abs(&self, key: &str) -> bool {
        self.rt.block_on(self.c.head_object().bucket(&self.bucket).key(key).send()).is_ok()
    }

    pub fn get_raw(&self, key: &str) -> (Vec<u8>, HashMap<String, String>) {
        let k = format!("{}{key}", self.prefix);
        self.rt.block_on(async {
            let r = self.c.get_object().bucket(&self.bucket).key(k).send().await.unwrap();
            let meta = r.metadata().cloned().unwrap_or_default();
            (r.body.collect().await.unwrap().into_bytes().to_vec(), meta)
        })
    }

    pub fn meta(&self, key: &str) -> HashMap<String, String> {
        let k = format!("{}{key}", self.prefix);
        let r = self.rt.block_on(self.c.head_object().bucket(&self.bucket).key(k).send()).unwrap();
        r.metadata().cloned().unwrap_or_default()
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24).to_le_bytes()[0]
        })
        .collect()
}

/// Parses the last line of `out` as JSON.
pub fn last_json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap()
}

/// `report[k]["objects"]`.
pub fn count(report: &serde_json::Value, k: &str) -> u64 {
    report[k]["objects"].as_u64().unwrap_or(0)
}

/// Runs `f(i)` for `0..n` on `threads` threads.
pub fn par(n: usize, threads: usize, f: impl Fn(usize) + Sync) {
    std::thread::scope(|s| {
        for t in 0..threads {
            let f = &f;
            s.spawn(move || {
                let mut i = t;
                while i < n {
                    f(i);
                    i += threads;
                }
            });
        }
    });
}
