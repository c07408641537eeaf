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

/// The previous proxy's objects of every layout (../shared/vectors/s3proxy), stored as that
/// proxy stored them: body, metadata and sidecar.
pub struct Legacy {
    pub suffix: String,
    pub body: Vec<u8>,
    pub meta: std::collections::HashMap<String, String>,
    pub sidecar: Option<(String, Vec<u8>)>,
    pub sha256: String,
    pub kid: String,
    pub secret: String,
}

pub fn shared_vectors() -> Option<std::path::PathBuf> {
    let dir = std::env::var("ISEC_SHARED_VECTORS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    let d = if dir.join("s3proxy").is_dir() { dir.join("s3proxy") } else { dir };
    if d.join("single_put.json").is_file() {
        return Some(d);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI: the previous proxy's vectors must be beside the repository"
    );
    eprintln!("NOT CHECKED: isec s3 migrate: no ../shared/vectors/s3proxy");
    None
}

pub fn legacy_vectors(d: &std::path::Path, prefix: &str) -> Vec<Legacy> {
    use serde_json::Value;
    let load = |f: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(d.join(f)).unwrap()).unwrap() };
    let meta_of = |v: &Value| -> std::collections::HashMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !k.starts_with('_'))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let single = load("single_put.json");
    let case = single["cases"].as_array().unwrap().iter().find(|c| c["case"] == "single_put_1048583").unwrap();
    out.push(Legacy {
        suffix: "legacy/single".into(),
        body: std::fs::read(d.join(case["ciphertext"]["bin_file"].as_str().unwrap())).unwrap(),
        meta: meta_of(&case["object_metadata"]["pr107_07bca1bf"]),
        sidecar: None,
        sha256: case["plaintext"]["sha256"].as_str().unwrap().into(),
        kid: case["kek"]["kid"].as_str().unwrap().into(),
        secret: case["kek"]["kek_secret"].as_str().unwrap().into(),
    });
    for (layout, file) in [
        ("streamed", "streaming_put_v2.json"),
        ("framed", "multipart_v2_framed.json"),
        ("staged", "multipart_v3_staged.json"),
    ] {
        let v = load(file);
        let (side, text) = if layout == "streamed" {
            let sc = &v["sidecars"]["pr107-07bca1bf"];
            (
                sc["sidecar_key"].as_str().unwrap().to_string(),
                sc["sidecar"]["body_base64_text"].as_str().unwrap().to_string(),
            )
        } else {
            (
                v["sidecar_key"].as_str().unwrap().to_string(),
                v["sidecar"]["body_base64_text"].as_str().unwrap().to_string(),
            )
        };
        let suffix = format!("legacy/{layout}");
        // An object-keyed sidecar goes where the proxy puts it for the key used here.
        let side = if layout == "staged" {
            side
        } else {
            isec_core::metadata::legacy_sidecar_key(&format!("{prefix}{suffix}"))
        };
        out.push(Legacy {
            suffix,
            body: std::fs::read(d.join(v["object_ciphertext"]["bin_file"].as_str().unwrap())).unwrap(),
            meta: meta_of(&v["object_metadata"]),
            sidecar: Some((side, text.into_bytes())),
            sha256: v["plaintext"]["sha256"].as_str().unwrap().into(),
            kid: v["kek"]["kid"].as_str().unwrap().into(),
            secret: v["kek"]["kek_secret"].as_str().unwrap().into(),
        });
    }
    out
}

/// Stores `vectors` under this run's prefix as the previous proxy stored them; returns a
/// keyring file with an active KEK `k1` and each vector's legacy secret.
pub fn store_legacy(s: &S3, vectors: &[Legacy]) -> PathBuf {
    let mut keys = vec![serde_json::json!({"kid": "k1", "kek": hex::encode(bytes(9, 32)), "state": "active"})];
    for v in vectors {
        if !keys.iter().any(|k| k["kid"] == v.kid.as_str()) {
            keys.push(serde_json::json!({"kid": v.kid, "legacy_secret": v.secret}));
        }
        if let Some((side, body)) = &v.sidecar {
            s.put_abs(side, body, HashMap::default());
        }
        s.put_raw(&v.suffix, &v.body, v.meta.clone());
    }
    let ring = s.path("ring.json");
    std::fs::write(&ring, serde_json::json!({ "keys": keys }).to_string()).unwrap();
    // A keyring file must not be open to others (the isec command refuses it otherwise).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ring
}
