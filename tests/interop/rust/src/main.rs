//! The Rust column and row of the interop matrix (scripts/interop.sh, tests/interop/run.mjs).
//!
//! `isec-interop write NAME DIR` writes every object of `DIR/plan.json` to `DIR/NAME/` as the
//! other writers do; `isec-interop read NAME DIR` reads every writer's objects (whole,
//! streamed and over the plan's ranges) and the corrupted copies, and writes
//! `DIR/results/NAME.json`. The format is the one the JavaScript and Python sides share
//! (tests/interop/harness.mjs is the reference description).

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use isec_core::{
    Decryptor, DefaultCipher, Encryptor, Envelope, Error, Kek, KeyState, Keyring, ObjectKey, Params, SegmentTable,
    Shape, Stream, oneshot,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// RustCrypto's AES-GCM: the default frame cipher without the `aws-lc` feature.
type C = DefaultCipher;

/// One object of the plan.
struct Spec {
    name: String,
    layout: String,
    frame_size: u64,
    part_size: Option<u64>,
    declared: bool,
    size: usize,
    api: String,
    parts: Vec<(u32, u64)>,
    ranges: Vec<(u64, u64)>,
}

impl Spec {
    fn parse(v: &Value) -> Result<Self, String> {
        let num = |k: &str| v[k].as_u64().ok_or_else(|| format!("plan: object field {k}"));
        let pairs = |k: &str| -> Vec<(u64, u64)> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?))).collect())
                .unwrap_or_default()
        };
        Ok(Self {
            name: v["name"].as_str().ok_or("plan: object name")?.to_string(),
            layout: v["layout"].as_str().ok_or("plan: layout")?.to_string(),
            frame_size: num("frame_size")?,
            part_size: v["part_size"].as_u64(),
            declared: v["declared"].as_bool().unwrap_or(false),
            size: usize::try_from(num("size")?).map_err(|e| e.to_string())?,
            api: v["api"].as_str().unwrap_or("oneshot").to_string(),
            parts: pairs("parts").into_iter().map(|(n, l)| (u32::try_from(n).unwrap_or(u32::MAX), l)).collect(),
            ranges: pairs("ranges"),
        })
    }
}

/// The plan's deterministic plaintext: xorshift32 from `seed`, four little-endian bytes per
/// step (the same generator as harness.mjs and interop.py).
fn generate(seed: u32, n: usize) -> Vec<u8> {
    let mut x = if seed == 0 { 0x9e37_79b9 } else { seed };
    let mut out = Vec::with_capacity(n + 4);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd hex".into());
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}

fn keyring(plan: &Value) -> Result<Keyring, String> {
    let mut ring = Keyring::new();
    let kek = Kek::from_slice(&unhex(plan["kek"].as_str().ok_or("plan: kek")?)?).map_err(|e| e.code().to_string())?;
    ring.add_kek(plan["kid"].as_str().ok_or("plan: kid")?, kek, KeyState::Active).map_err(|e| e.code().to_string())?;
    Ok(ring)
}

fn chunks(plan: &Value, key: &str) -> Vec<usize> {
    let v: Vec<usize> = plan[key]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_u64().and_then(|c| usize::try_from(c).ok())).collect())
        .unwrap_or_default();
    if v.is_empty() { vec![1000] } else { v }
}

/// Feeds `pt` to `enc` in pieces of the cycled `sizes`.
fn stream_encrypt(mut enc: Encryptor<C>, pt: &[u8], sizes: &[usize]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < pt.len() {
        let n = sizes[i % sizes.len()].max(1).min(pt.len() - at);
        let mut buf = vec![0u8; enc.update_len(n)];
        let w = enc.update(&pt[at..at + n], &mut buf)?;
        out.extend_from_slice(&buf[..w]);
        at += n;
        i += 1;
    }
    let mut buf = vec![0u8; enc.finish_len()];
    let w = enc.finish(&mut buf)?;
    out.extend_from_slice(&buf[..w]);
    Ok(out)
}

fn stream_decrypt(mut dec: Decryptor<C>, ct: &[u8], sizes: &[usize]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < ct.len() {
        let n = sizes[i % sizes.len()].max(1).min(ct.len() - at);
        let mut buf = vec![0u8; dec.update_len(n)];
        let w = dec.update(&ct[at..at + n], &mut buf)?;
        out.extend_from_slice(&buf[..w]);
        at += n;
        i += 1;
    }
    let mut buf = vec![0u8; dec.finish_len()];
    let w = dec.finish(&mut buf)?;
    out.extend_from_slice(&buf[..w]);
    Ok(out)
}

fn usize_of(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

/// Encrypts one object as the plan says; returns the ciphertext and, for the table layout,
/// the encoded segment table.
fn encrypt_object(
    spec: &Spec,
    key: &ObjectKey,
    pt: &[u8],
    sizes: &[usize],
) -> Result<(Vec<u8>, Option<Vec<u8>>), Error> {
    let stream = spec.api == "stream";
    match spec.layout.as_str() {
        "single" if stream => Ok((stream_encrypt(Encryptor::<C>::new(key)?, pt, sizes)?, None)),
        "single" => Ok((oneshot::encrypt::<C>(key, pt)?, None)),
        "parts" => {
            let p = usize_of(spec.part_size.ok_or(Error::InvalidParameter)?);
            let count = pt.len().div_ceil(p).max(1);
            let mut pieces = vec![Vec::new(); count];
            // One-shot parts go in reverse order: a part needs only its number and lastness.
            let order: Vec<usize> = if stream { (1..=count).collect() } else { (1..=count).rev().collect() };
            for n in order {
                let body = &pt[(n - 1) * p..(n * p).min(pt.len())];
                let number = u32::try_from(n).map_err(|_| Error::InvalidParameter)?;
                let last = n == count;
                pieces[n - 1] = if stream {
                    stream_encrypt(Encryptor::<C>::for_part(key, number, last)?, body, sizes)?
                } else {
                    oneshot::encrypt_part::<C>(key, number, last, body)?
                };
            }
            Ok((pieces.concat(), None))
        }
        "table" => {
            let mut ct = Vec::new();
            let mut entries = Vec::with_capacity(spec.parts.len());
            let mut at = 0usize;
            for (i, &(number, len)) in spec.parts.iter().enumerate() {
                let body = &pt[at..at + usize_of(len)];
                at += usize_of(len);
                // Relays do not know which part is last; the table records where the object
                // ends, and the nonce prefix of each part's encryption (the encryptor's, or
                // the part's first 7 bytes).
                let prefix = if i % 2 == 1 {
                    let enc = Encryptor::<C>::for_part(key, number, false)?;
                    let prefix = enc.prefix();
                    ct.extend(stream_encrypt(enc, body, sizes)?);
                    prefix
                } else {
                    let part = oneshot::encrypt_part::<C>(key, number, false, body)?;
                    let prefix = part.get(..7).and_then(|p| p.try_into().ok()).ok_or(Error::InvalidState)?;
                    ct.extend(part);
                    prefix
                };
                entries.push((number, len, prefix));
            }
            let table = SegmentTable::new(entries)?.encode(key);
            Ok((ct, Some(table)))
        }
        _ => Err(Error::InvalidParameter),
    }
}

fn write(name: &str, dir: &Path, plan: &Value) -> Result<(), String> {
    let ring = keyring(plan)?;
    let sizes = chunks(plan, "chunks");
    let out = dir.join(name);
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = Map::new();
    for obj in plan["objects"].as_array().ok_or("plan: objects")? {
        let spec = Spec::parse(obj)?;
        let seed = plan["seeds"][name][&spec.name].as_u64().ok_or("plan: seed")?;
        let pt = generate(u32::try_from(seed).map_err(|e| e.to_string())?, spec.size);
        let fail = |e: Error| format!("{}: {}", spec.name, e.code());
        let mut params = Params::default().with_frame_size(spec.frame_size).map_err(fail)?;
        params = match spec.layout.as_str() {
            "parts" => params.with_part_size(spec.part_size.unwrap_or(0)).map_err(fail)?,
            "table" => params.with_table(),
            _ => params,
        };
        if spec.declared {
            params.declared_size = Some(spec.size as u64);
        }
        let (env, key) = ring.create_envelope(params).map_err(fail)?;
        let (ct, table) = encrypt_object(&spec, &key, &pt, &sizes).map_err(fail)?;
        let io = |e: std::io::Error| format!("{}: {e}", spec.name);
        fs::write(out.join(format!("{}.bin", spec.name)), &ct).map_err(io)?;
        let meta = json!({"isec": env.to_text(), "isec-kid": env.kid()});
        fs::write(out.join(format!("{}.meta.json", spec.name)), meta.to_string()).map_err(io)?;
        if let Some(t) = table {
            fs::write(out.join(format!("{}.isec-table", spec.name)), t).map_err(io)?;
        }
        written.insert(spec.name.clone(), json!({"sha256": sha256_hex(&pt), "ciphertext_len": ct.len()}));
    }
    // Written last: its presence says the writer finished.
    let doc = json!({"writer": name, "objects": written});
    fs::write(out.join("written.json"), doc.to_string()).map_err(|e| e.to_string())
}

/// One object as stored by a writer.
struct Stored {
    ct: Vec<u8>,
    text: String,
    meta_kid: Option<String>,
    table: Option<Vec<u8>>,
}

fn load(wdir: &Path, name: &str, table: bool) -> Result<Stored, String> {
    let ct = fs::read(wdir.join(format!("{name}.bin"))).map_err(|e| format!("{name}.bin: {e}"))?;
    let meta_text = fs::read_to_string(wdir.join(format!("{name}.meta.json"))).map_err(|e| format!("meta: {e}"))?;
    let meta: Value = serde_json::from_str(&meta_text).map_err(|e| format!("meta: {e}"))?;
    let text = meta["isec"].as_str().ok_or("meta: no isec")?.to_string();
    let table = if table {
        Some(fs::read(wdir.join(format!("{name}.isec-table"))).map_err(|e| format!("table: {e}"))?)
    } else {
        None
    };
    Ok(Stored { ct, text, meta_kid: meta["isec-kid"].as_str().map(str::to_string), table })
}

fn shape_of(key: &ObjectKey, env: &Envelope, s: &Stored) -> Result<Shape, Error> {
    match &s.table {
        Some(t) => Shape::from_table(key.header(), SegmentTable::decode(t, key)?, s.ct.len() as u64),
        None => Shape::from_ciphertext_len(env.header(), s.ct.len() as u64),
    }
}

fn full(key: &ObjectKey, s: &Stored) -> Result<Vec<u8>, Error> {
    match &s.table {
        Some(t) => oneshot::decrypt_with_table::<C>(key, t, &s.ct),
        None => oneshot::decrypt::<C>(key, &s.ct),
    }
}

fn streamed(key: &ObjectKey, env: &Envelope, s: &Stored, sizes: &[usize]) -> Result<Vec<u8>, Error> {
    let dec = match &s.table {
        Some(_) => Decryptor::<C>::with_shape(key, shape_of(key, env, s)?)?,
        None => Decryptor::<C>::new(key)?,
    };
    stream_decrypt(dec, &s.ct, sizes)
}

/// A ranged read as over HTTP: map the range, take exactly the planned ciphertext bytes.
fn ranged(key: &ObjectKey, env: &Envelope, s: &Stored, a: u64, b: u64) -> Result<Vec<u8>, Error> {
    let shape = shape_of(key, env, s)?;
    let plan = shape.map_range(a, b);
    let fetched = s.ct.get(usize_of(plan.ct_start)..usize_of(plan.ct_end)).ok_or(Error::Truncated)?;
    oneshot::decrypt_fetched::<C>(key, shape, a, b, fetched)
}

#[derive(Default)]
struct Cell {
    total: usize,
    passed: usize,
    failures: Vec<String>,
    negatives: BTreeMap<String, Value>,
}

impl Cell {
    /// Runs one check; a panic is caught and reported as a failure of that check.
    fn check(&mut self, what: String, f: impl FnOnce() -> Result<(), String>) {
        self.total += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(())) => self.passed += 1,
            Ok(Err(e)) => self.failures.push(format!("{what}: {e}")),
            Err(_) => self.failures.push(format!("{what}: PANIC")),
        }
    }
}

fn same(got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        Err(format!("plaintext differs: {} bytes, want {}, first difference at {at}", got.len(), want.len()))
    }
}

fn code(e: Error) -> String {
    e.code().to_string()
}

fn read_writer(plan: &Value, dir: &Path, writer: &str, ring: &Keyring, specs: &[Spec]) -> Cell {
    let mut cell = Cell::default();
    let wdir = dir.join(writer);
    let sizes = chunks(plan, "read_chunks");
    let kid = plan["kid"].as_str().unwrap_or_default();
    let written: Value = match fs::read_to_string(wdir.join("written.json")) {
        Ok(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
        Err(_) => {
            cell.total += 1;
            cell.failures.push("no objects: the writer did not finish".into());
            return cell;
        }
    };
    for spec in specs {
        let seed = plan["seeds"][writer][&spec.name].as_u64().unwrap_or(0);
        let pt = generate(u32::try_from(seed).unwrap_or(0), spec.size);
        let n = spec.size as u64;
        let stored = load(&wdir, &spec.name, spec.layout == "table");
        let opened: Result<(Envelope, ObjectKey), String> = stored.as_ref().map_err(Clone::clone).and_then(|s| {
            let env = Envelope::decode_text(&s.text).map_err(code)?;
            let key = ring.open(&env).map_err(code)?;
            Ok((env, key))
        });
        let name = &spec.name;
        cell.check(format!("{name} plaintext hash"), || {
            let want = sha256_hex(&pt);
            let got = written["objects"][name]["sha256"].as_str().unwrap_or("missing");
            if got == want { Ok(()) } else { Err(format!("writer recorded {got}, plan gives {want}")) }
        });
        cell.check(format!("{name} envelope"), || {
            let s = stored.as_ref().map_err(Clone::clone)?;
            let (env, _) = opened.as_ref().map_err(Clone::clone)?;
            let i = env.info();
            let declared = spec.declared.then_some(n);
            let mut bad = Vec::new();
            if i.kid != kid || s.meta_kid.as_deref() != Some(kid) {
                bad.push(format!("kid {} / isec-kid {:?}", i.kid, s.meta_kid));
            }
            if i.layout.name() != spec.layout {
                bad.push(format!("layout {}", i.layout.name()));
            }
            if i.frame_size != spec.frame_size {
                bad.push(format!("frame size {}", i.frame_size));
            }
            if i.part_size != spec.part_size {
                bad.push(format!("part size {:?}", i.part_size));
            }
            if i.declared_size != declared {
                bad.push(format!("declared size {:?}", i.declared_size));
            }
            if s.table.is_none() {
                match Shape::from_ciphertext_len(env.header(), s.ct.len() as u64) {
                    Ok(sh) if sh.plaintext_len() == n => {}
                    Ok(sh) => bad.push(format!("plaintext length {}", sh.plaintext_len())),
                    Err(e) => bad.push(format!("shape: {}", e.code())),
                }
            }
            if bad.is_empty() { Ok(()) } else { Err(bad.join(", ")) }
        });
        cell.check(format!("{name} whole"), || {
            let s = stored.as_ref().map_err(Clone::clone)?;
            let (_, key) = opened.as_ref().map_err(Clone::clone)?;
            same(&full(key, s).map_err(code)?, &pt)
        });
        cell.check(format!("{name} stream"), || {
            let s = stored.as_ref().map_err(Clone::clone)?;
            let (env, key) = opened.as_ref().map_err(Clone::clone)?;
            same(&streamed(key, env, s, &sizes).map_err(code)?, &pt)
        });
        for &(a, b) in &spec.ranges {
            cell.check(format!("{name} range [{a},{b})"), || {
                let s = stored.as_ref().map_err(Clone::clone)?;
                let (env, key) = opened.as_ref().map_err(Clone::clone)?;
                let want = &pt[usize_of(a.min(n))..usize_of(b.min(n).max(a.min(n)))];
                same(&ranged(key, env, s, a, b).map_err(code)?, want)
            });
        }
    }
    for neg in plan["negatives"].as_array().into_iter().flatten() {
        let neg_name = neg["name"].as_str().unwrap_or_default();
        let Some(base) = specs.iter().find(|s| Some(s.name.as_str()) == neg["base"].as_str()) else { continue };
        let mut codes = Map::new();
        for mode in ["oneshot", "stream", "range"] {
            let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<u8>, String> {
                let s = load(&wdir, neg_name, base.layout == "table")?;
                let env = Envelope::decode_text(&s.text).map_err(code)?;
                let key = ring.open(&env).map_err(code)?;
                match mode {
                    "oneshot" => full(&key, &s).map_err(code),
                    "stream" => streamed(&key, &env, &s, &sizes).map_err(code),
                    _ => ranged(&key, &env, &s, 0, base.size as u64).map_err(code),
                }
            }));
            let got = match outcome {
                Ok(Ok(_)) => "succeeded".to_string(),
                Ok(Err(e)) => e,
                Err(_) => "PANIC".to_string(),
            };
            codes.insert(mode.into(), json!(got));
        }
        cell.negatives.insert(neg_name.to_string(), Value::Object(codes));
    }
    cell
}

fn read(name: &str, dir: &Path, plan: &Value) -> Result<(), String> {
    let start = Instant::now();
    let ring = keyring(plan)?;
    let specs =
        plan["objects"].as_array().ok_or("plan: objects")?.iter().map(Spec::parse).collect::<Result<Vec<_>, _>>()?;
    let mut cells = Map::new();
    for writer in plan["writers"].as_array().ok_or("plan: writers")? {
        let w = writer.as_str().ok_or("plan: writer")?;
        let c = read_writer(plan, dir, w, &ring, &specs);
        cells.insert(
            w.into(),
            json!({"total": c.total, "passed": c.passed, "failures": c.failures, "negatives": c.negatives}),
        );
    }
    let doc =
        json!({"reader": name, "ms": u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX), "cells": cells});
    let out = dir.join("results");
    fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    fs::write(out.join(format!("{name}.json")), doc.to_string()).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, name, dir] = args.as_slice() else {
        eprintln!("usage: isec-interop write|read NAME DIR");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let run = || -> Result<(), String> {
        let plan: Value = serde_json::from_str(&fs::read_to_string(dir.join("plan.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        match mode.as_str() {
            "write" => write(name, dir, &plan),
            "read" => read(name, dir, &plan),
            _ => Err(format!("unknown mode {mode}")),
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isec-interop {mode} {name}: {e}");
            ExitCode::FAILURE
        }
    }
}
