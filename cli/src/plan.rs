//! `isec copy-plan` and `isec scan`: decisions from metadata alone.

use std::fs;
use std::path::{Path, PathBuf};

use isec_core::copy::{CopyLimits, CopyRequest, Directive, decide};
use isec_core::metadata::{ObjectFormat, classify, legacy_sidecar_key};
use isec_core::scan::{ScanClass, ScanPlanner};
use isec_core::{Error, Keyring};
use serde_json::json;

use crate::fail::{CliError, Res};
use crate::meta::{self, Meta};

/// Options of `copy-plan`.
pub struct PlanArgs<'a> {
    pub meta: Meta,
    pub size: u64,
    pub sidecar: bool,
    pub replace: bool,
    pub new_meta: Meta,
    pub target_kid: Option<&'a str>,
    pub rotate_dek: bool,
    pub migrate_legacy: bool,
    pub require_encryption: bool,
    pub single_copy_max: Option<u64>,
    pub as_json: bool,
}

/// `isec copy-plan`.
pub fn copy_plan(ring: Option<&Keyring>, a: &PlanArgs<'_>) -> Res<()> {
    let meta = meta::view(&a.meta);
    let new_meta = meta::view(&a.new_meta);
    let mut req = CopyRequest::new(&meta, a.size);
    req.source_sidecar = a.sidecar;
    req.directive = if a.replace { Directive::Replace } else { Directive::Copy };
    req.new_metadata = &new_meta;
    req.target_kid = a.target_kid;
    req.rotate_dek = a.rotate_dek;
    req.migrate_legacy = a.migrate_legacy;
    req.require_encryption = a.require_encryption;
    if let Some(m) = a.single_copy_max {
        req.limits = CopyLimits::default().with_single_copy_max(m);
    }
    let p = decide(&req, ring).map_err(|e| plan_error(e, ring, a))?;
    if a.as_json {
        println!(
            "{}",
            json!({
                "action": p.action.name(), "reason": p.reason.map(|r| r.code()), "rewrapped": p.rewrapped,
                "copy_sidecar": p.copy_sidecar, "requests": p.requests, "client_bytes": p.client_bytes,
                "ranges": p.ranges.iter().map(|(s, e)| json!([s, e])).collect::<Vec<_>>(),
                "metadata": p.metadata.as_ref().map(|m| m.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>()),
            })
        );
    } else {
        println!("action:        {}", p.action.name());
        if let Some(r) = p.reason {
            println!("reason:        {}", r.code());
        }
        println!("requests:      {}", p.requests);
        println!("client bytes:  {}", p.client_bytes);
        println!("rewrapped:     {}", p.rewrapped);
        println!("copy sidecar:  {}", p.copy_sidecar);
        if !p.ranges.is_empty() {
            println!("part ranges:   {} (UploadPartCopy x-amz-copy-source-range, inclusive)", p.ranges.len());
            for (i, (s, e)) in p.ranges.iter().enumerate() {
                println!("  part {:>5}: bytes={}-{}", i + 1, s, e - 1);
            }
        }
        if let Some(m) = &p.metadata {
            println!("metadata (REPLACE / CreateMultipartUpload):");
            for (k, v) in m {
                println!("  x-amz-meta-{k}: {v}");
            }
        }
    }
    Ok(())
}

/// How many objects in `dir` (as `isec scan` sees them) name `kid`.
pub fn objects_under_kid(ring: &Keyring, dir: &Path, kid: &str) -> Res<u64> {
    let planner = scan_dir(ring, dir)?;
    Ok(planner.by_kid().filter(|(k, _, _)| *k == kid).map(|(_, _, t)| t.objects).sum())
}

/// A copy-decision error that says which argument it is about: a size the metadata rules
/// out, or the key id that is missing.
fn plan_error(e: Error, ring: Option<&Keyring>, a: &PlanArgs<'_>) -> CliError {
    let source = classify(&meta::view(&a.meta), a.sidecar);
    match e {
        Error::Truncated | Error::TrailingData | Error::BadFrameLength => {
            let declared = match &source {
                ObjectFormat::Isec(env) => env
                    .header()
                    .declared_size
                    .map_or_else(String::new, |d| format!(" (the metadata declares {d} plaintext bytes)")),
                _ => String::new(),
            };
            CliError::core(
                Error::MetadataMismatch,
                format!("copy decision: --size {} does not fit this metadata{declared}", a.size),
            )
        }
        Error::UnknownKid => {
            let target_missing = a.target_kid.filter(|t| ring.is_some_and(|r| r.state(t).is_none()));
            let what = match (target_missing, source.kid()) {
                (Some(t), _) => format!("--target-kid {t:?} is not in the keyring"),
                (None, Some(k)) => format!("the source's key {k:?} is not in the keyring"),
                (None, None) => "a key is not in the keyring".into(),
            };
            CliError::core(e, format!("copy decision: {what}"))
        }
        _ => CliError::core(e, "copy decision".into()),
    }
}

/// `isec scan DIR`: objects are files, self-contained (their header holds the envelope) or
/// with `<object>.meta.json` beside them holding their metadata; legacy sidecars live under
/// `DIR/.s3proxy-internal/`.
pub fn scan(ring: &Keyring, dir: &Path, as_json: bool) -> Res<()> {
    let planner = scan_dir(ring, dir)?;
    report(&planner, as_json)
}

/// Every object file in `dir` (with its `.meta.json` and sidecar) added to a scan planner.
fn scan_dir(ring: &Keyring, dir: &Path) -> Res<ScanPlanner> {
    let mut planner = ScanPlanner::new(ring);
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    for path in files {
        let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if rel.ends_with(".meta.json") {
            continue;
        }
        let size = fs::metadata(&path).map_err(|e| CliError::io(&path, e))?.len();
        let meta_path = PathBuf::from(format!("{}.meta.json", path.display()));
        let (meta, size) = if meta_path.exists() {
            (meta::read(&meta_path)?, size)
        } else {
            contained_meta(&path)?.unwrap_or((Vec::new(), size))
        };
        let sidecar = dir.join(legacy_sidecar_key(&rel)).exists();
        planner.add(&rel, &meta::view(&meta), size, sidecar);
    }
    Ok(planner)
}

fn report(planner: &ScanPlanner, as_json: bool) -> Res<()> {
    let left = planner.remaining();
    if as_json {
        let classes: serde_json::Map<_, _> = ScanClass::ALL
            .iter()
            .map(|c| {
                (c.name().to_string(), json!({"objects": planner.tally(*c).objects, "bytes": planner.tally(*c).bytes}))
            })
            .collect();
        let kids: Vec<_> = planner
            .by_kid()
            .map(|(k, c, t)| json!({"kid": k, "class": c.name(), "objects": t.objects, "bytes": t.bytes}))
            .collect();
        println!(
            "{}",
            json!({"classes": classes, "by_kid": kids, "remaining": {"objects": left.objects, "bytes": left.bytes}})
        );
    } else {
        println!("{:<16} {:>10} {:>16}", "class", "objects", "bytes");
        for c in ScanClass::ALL {
            let t = planner.tally(c);
            println!("{:<16} {:>10} {:>16}", c.name(), t.objects, t.bytes);
        }
        println!("\n{:<24} {:<16} {:>10} {:>16}", "kid", "class", "objects", "bytes");
        for (k, c, t) in planner.by_kid() {
            println!("{:<24} {:<16} {:>10} {:>16}", k, c.name(), t.objects, t.bytes);
        }
        println!("\nleft to rotate: {} objects, {} bytes", left.objects, left.bytes);
    }
    Ok(())
}

/// The envelope and body size of a self-contained file, `None` for any other file.
fn contained_meta(path: &Path) -> Res<Option<(Meta, u64)>> {
    let mut head = vec![0u8; isec_core::container::MAX_HEADER_LEN];
    let mut f = fs::File::open(path).map_err(|e| CliError::io(path, e))?;
    let n = crate::crypt::read_full(&mut f, &mut head).map_err(|e| CliError::io(path, e))?;
    let size = f.metadata().map_err(|e| CliError::io(path, e))?.len();
    Ok(match isec_core::container::parse(&head[..n]) {
        Ok(Some((env, at))) => Some((crate::crypt::envelope_meta(&env), size - at as u64)),
        _ => None,
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Res<()> {
    for entry in fs::read_dir(dir).map_err(|e| CliError::io(dir, e))? {
        let entry = entry.map_err(|e| CliError::io(dir, e))?;
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}
