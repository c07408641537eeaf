//! `encrypt`, `decrypt`, `inspect`, `rewrap`: streaming, bounded memory (one 1 MiB chunk plus
//! one frame), and no output file left behind by a failed decrypt.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use isec_core::legacy::{self, LegacyDecryptor, LegacyKey, LegacyMetadata, LegacyObject, LegacySidecar};
use isec_core::metadata::{ObjectFormat, classify};
use isec_core::shape::Shape;
use isec_core::{AwsLc, Decryptor, Encryptor, Envelope, Keyring, LayoutRequest, Params, Stream};
use serde_json::json;

use crate::fail::{CliError, Context, Res};
use crate::meta::{self, Meta};
use crate::progress;

const CHUNK: usize = 1 << 20;

/// An input: a file (with its length) or stdin.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn Read>,
    pub len: Option<u64>,
    file: Option<File>,
}

impl Input {
    pub fn open(name: &str) -> Res<Self> {
        if name == "-" {
            return Ok(Self { name: "<stdin>".into(), reader: Box::new(io::stdin().lock()), len: None, file: None });
        }
        let f = File::open(name).map_err(|e| CliError::io(Path::new(name), e))?;
        let len = f.metadata().map_err(|e| CliError::io(Path::new(name), e))?.len();
        let reader = f.try_clone().map_err(|e| CliError::io(Path::new(name), e))?;
        Ok(Self { name: name.into(), reader: Box::new(reader), len: Some(len), file: Some(f) })
    }

    /// The underlying file, for seeking (ranged reads).
    pub fn file(&mut self) -> Res<&mut File> {
        let name = self.name.clone();
        self.file.as_mut().ok_or_else(|| CliError::usage(format!("{name}: a file is needed here, not stdin")))
    }

    /// Reads up to `buf.len()` bytes, retrying short reads until the buffer is full or EOF.
    pub fn fill(&mut self, buf: &mut [u8]) -> Res<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.reader.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CliError::io(Path::new(&self.name), e)),
            }
        }
        Ok(n)
    }
}

/// An output written to a temporary file and renamed into place only on success, or stdout.
pub struct Output {
    name: String,
    target: Option<PathBuf>,
    temp: Option<PathBuf>,
    writer: Box<dyn Write>,
}

impl Output {
    pub fn create(name: &str) -> Res<Self> {
        if name == "-" {
            return Ok(Self {
                name: "<stdout>".into(),
                target: None,
                temp: None,
                writer: Box::new(io::stdout().lock()),
            });
        }
        let target = PathBuf::from(name);
        let temp = PathBuf::from(format!("{name}.isec-partial"));
        let f = File::create(&temp).map_err(|e| CliError::io(&temp, e))?;
        Ok(Self {
            name: name.into(),
            target: Some(target),
            temp: Some(temp),
            writer: Box::new(io::BufWriter::with_capacity(CHUNK, f)),
        })
    }

    pub fn write(&mut self, b: &[u8]) -> Res<()> {
        self.writer.write_all(b).map_err(|e| CliError::io(Path::new(&self.name), e))
    }

    /// Flushes and moves the file into place.
    pub fn commit(mut self) -> Res<()> {
        self.writer.flush().map_err(|e| CliError::io(Path::new(&self.name), e))?;
        if let (Some(t), Some(tmp)) = (self.target.take(), self.temp.take()) {
            fs::rename(&tmp, &t).map_err(|e| CliError::io(&t, e))?;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // Not committed: remove the partial file.
        if let Some(tmp) = self.temp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// `isec encrypt`.
pub fn encrypt(
    input: &str,
    output: &str,
    ring: &Keyring,
    meta_out: Option<PathBuf>,
    frame_size: u64,
    quiet: bool,
) -> Res<()> {
    let meta_path = meta_out
        .or_else(|| meta::default_path(output))
        .ok_or_else(|| CliError::usage("writing to stdout needs --meta FILE for the envelope".into()))?;
    let mut inp = Input::open(input)?;
    let params = Params::new(LayoutRequest::Single, Some(frame_size), inp.len).ctx(|| "--frame-size".into())?;
    let (env, key) = ring.create_envelope(params).ctx(|| "keyring".into())?;
    let mut enc = Encryptor::<AwsLc>::new(&key).ctx(|| "encryptor".into())?;
    let mut out = Output::create(output)?;
    let bar = progress::bar(inp.len, quiet, "encrypt");
    let mut chunk = vec![0u8; CHUNK];
    let mut buf = Vec::new();
    loop {
        let n = inp.fill(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.resize(enc.update_len(n), 0);
        let w = enc.update(&chunk[..n], &mut buf).ctx(|| inp.name.clone())?;
        out.write(&buf[..w])?;
        bar.inc(n as u64);
    }
    buf.resize(enc.finish_len(), 0);
    let w = enc.finish(&mut buf).ctx(|| inp.name.clone())?;
    out.write(&buf[..w])?;
    out.commit()?;
    bar.finish_and_clear();
    meta::write(&meta_path, &[("isec".into(), env.to_text()), ("isec-kid".into(), env.kid().into())])
}

/// Where the metadata of `object` comes from.
pub fn load_meta(object: &str, meta_file: Option<&Path>, envelope: Option<&str>) -> Res<Meta> {
    if let Some(text) = envelope {
        return Ok(vec![("isec".into(), text.to_string())]);
    }
    let path = meta_file
        .map(Path::to_path_buf)
        .or_else(|| meta::default_path(object))
        .ok_or_else(|| CliError::usage("reading from stdin needs --meta FILE or --envelope TEXT".into()))?;
    meta::read(&path)
}

/// A legacy object opened for reading.
pub struct LegacyOpen {
    pub object: LegacyObject,
    pub key: LegacyKey,
}

/// Opens a legacy object from its metadata, optional sidecar file and body length.
pub fn open_legacy(ring: &Keyring, meta: &Meta, sidecar: Option<&Path>, ct_len: u64, name: &str) -> Res<LegacyOpen> {
    let m = LegacyMetadata::from_pairs(meta).ctx(|| format!("{name}: metadata"))?;
    let side = match sidecar {
        Some(p) => {
            let body = fs::read(p).map_err(|e| CliError::io(p, e))?;
            Some(LegacySidecar::parse(&body, legacy::DEFAULT_SIDECAR_CAP).ctx(|| p.display().to_string())?)
        }
        None => None,
    };
    let object = LegacyObject::new(&m, side.as_ref(), ct_len).ctx(|| name.to_string())?;
    let kid = ring.legacy_kid_for(&object, None).map_err(|_| {
        CliError::usage(format!("{name}: legacy object names no kid and the keyring has no default legacy key"))
    })?;
    let key = ring.open_legacy(&object, Some(kid)).ctx(|| format!("{name}: key {kid}"))?;
    Ok(LegacyOpen { object, key })
}

/// `isec decrypt`. `range` is inclusive, as in HTTP: `a-b`.
#[allow(clippy::too_many_arguments, reason = "one per command-line option")]
pub fn decrypt(
    input: &str,
    output: &str,
    ring: &Keyring,
    meta_file: Option<&Path>,
    envelope: Option<&str>,
    sidecar: Option<&Path>,
    range: Option<(u64, u64)>,
    quiet: bool,
) -> Res<()> {
    let meta = load_meta(input, meta_file, envelope)?;
    let mut inp = Input::open(input)?;
    let name = inp.name.clone();
    match classify(&meta::view(&meta), sidecar.is_some()) {
        ObjectFormat::Isec(env) => {
            let key = ring.open(&env).ctx(|| format!("{name}: envelope"))?;
            let (dec, fetch) = match range {
                None => (Decryptor::<AwsLc>::new(&key).ctx(|| name.clone())?, None),
                Some((a, b)) => {
                    let len = inp.len.ok_or_else(|| CliError::usage("--range needs a file input".into()))?;
                    let shape = Shape::from_ciphertext_len(env.header(), len).ctx(|| name.clone())?;
                    let plan = shape.map_range(a, b.saturating_add(1));
                    let dec = Decryptor::<AwsLc>::for_range(&key, shape, &plan).ctx(|| name.clone())?;
                    (dec, Some((plan.ct_start, plan.ct_end)))
                }
            };
            run_decrypt(&mut inp, output, fetch, quiet, Box::new(dec))
        }
        ObjectFormat::Legacy { .. } => {
            let len =
                inp.len.ok_or_else(|| CliError::usage("legacy objects are read from a file, not stdin".into()))?;
            let lo = open_legacy(ring, &meta, sidecar, len, &name)?;
            let (dec, fetch) = match range {
                None => (LegacyDecryptor::<AwsLc>::new(&lo.key, &lo.object).ctx(|| name.clone())?, None),
                Some((a, b)) => {
                    let plan = lo.object.plan_range(a, b.saturating_add(1)).ctx(|| name.clone())?;
                    let dec = LegacyDecryptor::<AwsLc>::for_range(&lo.key, &lo.object, &plan).ctx(|| name.clone())?;
                    (dec, Some((plan.ct_start, plan.ct_end)))
                }
            };
            run_decrypt(&mut inp, output, fetch, quiet, Box::new(dec))
        }
        ObjectFormat::Plaintext => Err(CliError::usage(format!("{name}: metadata has no isec envelope"))),
        ObjectFormat::Unreadable(e) => Err(CliError::core(e, format!("{name}: metadata"))),
    }
}

fn run_decrypt(
    inp: &mut Input,
    output: &str,
    fetch: Option<(u64, u64)>,
    quiet: bool,
    mut dec: Box<dyn Stream>,
) -> Res<()> {
    let name = inp.name.clone();
    let mut remaining = match fetch {
        Some((s, e)) => {
            inp.file()?.seek(SeekFrom::Start(s)).map_err(|e| CliError::io(Path::new(&name), e))?;
            Some(e - s)
        }
        None => None,
    };
    let mut out = Output::create(output)?;
    let bar = progress::bar(remaining.or(inp.len), quiet, "decrypt");
    let mut chunk = vec![0u8; CHUNK];
    let mut buf = Vec::new();
    loop {
        let want = remaining.map_or(CHUNK, |r| usize::try_from(r).unwrap_or(CHUNK).min(CHUNK));
        if want == 0 {
            break;
        }
        let n = if remaining.is_some() {
            let f = inp.file()?;
            read_full(f, &mut chunk[..want]).map_err(|e| CliError::io(Path::new(&name), e))?
        } else {
            inp.fill(&mut chunk)?
        };
        if n == 0 {
            break;
        }
        if let Some(r) = remaining.as_mut() {
            *r -= n as u64;
        }
        buf.resize(dec.update_len(n), 0);
        let w = dec.update(&chunk[..n], &mut buf).ctx(|| name.clone())?;
        out.write(&buf[..w])?;
        bar.inc(n as u64);
    }
    buf.resize(dec.finish_len(), 0);
    let w = dec.finish(&mut buf).ctx(|| name.clone())?;
    out.write(&buf[..w])?;
    bar.finish_and_clear();
    out.commit()
}

pub(crate) fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// `isec inspect`: key-free.
pub fn inspect(
    object: Option<&str>,
    meta_file: Option<&Path>,
    envelope: Option<&str>,
    size: Option<u64>,
    sidecar: Option<&Path>,
    as_json: bool,
) -> Res<()> {
    let meta = load_meta(object.unwrap_or("-"), meta_file, envelope)?;
    let size = match (size, object) {
        (Some(s), _) => Some(s),
        (None, Some(o)) if o != "-" => Some(fs::metadata(o).map_err(|e| CliError::io(Path::new(o), e))?.len()),
        _ => None,
    };
    let format = classify(&meta::view(&meta), sidecar.is_some());
    let mut report = json!({"format": format.name(), "kid": format.kid()});
    match &format {
        ObjectFormat::Isec(env) => {
            let i = env.info();
            report["version"] = json!(i.version);
            report["suite"] = json!(i.suite);
            report["wrap_alg"] = json!(i.wrap_alg.name());
            report["frame_size"] = json!(i.frame_size);
            report["layout"] = json!(i.layout.name());
            report["part_size"] = json!(i.part_size);
            report["declared_size"] = json!(i.declared_size);
            report["envelope_len"] = json!(i.envelope_len);
            if let Some(len) = size {
                report["ciphertext_len"] = json!(len);
                match Shape::from_ciphertext_len(env.header(), len) {
                    Ok(s) => {
                        report["plaintext_len"] = json!(s.plaintext_len());
                        report["frames"] = json!(s.frame_count());
                        report["segments"] = json!(s.segment_count());
                    }
                    Err(e) => report["size_error"] = json!(e.code()),
                }
            }
        }
        ObjectFormat::Legacy { kind, .. } => {
            report["legacy_kind"] = json!(format!("{kind:?}"));
            if let Some(len) = size {
                let m = LegacyMetadata::from_pairs(&meta).ctx(|| "metadata".into())?;
                let side = match sidecar {
                    Some(p) => Some(
                        LegacySidecar::parse(
                            &fs::read(p).map_err(|e| CliError::io(p, e))?,
                            legacy::DEFAULT_SIDECAR_CAP,
                        )
                        .ctx(|| p.display().to_string())?,
                    ),
                    None => None,
                };
                match LegacyObject::new(&m, side.as_ref(), len) {
                    Ok(o) => {
                        report["layout"] = json!(format!("{:?}", o.layout()).to_lowercase());
                        report["plaintext_len"] = json!(o.plaintext_len());
                        report["ciphertext_len"] = json!(o.ciphertext_len());
                        report["seals"] = json!(o.seal_count());
                    }
                    Err(e) => report["size_error"] = json!(e.code()),
                }
            }
        }
        ObjectFormat::Unreadable(e) => report["error"] = json!(e.code()),
        ObjectFormat::Plaintext => {}
    }
    print_report(&report, as_json);
    Ok(())
}

/// A report as one JSON line, or one aligned `name: value` line per field that is set.
pub fn print_report(report: &serde_json::Value, as_json: bool) {
    if as_json {
        println!("{report}");
    } else if let Some(obj) = report.as_object() {
        for (k, v) in obj {
            if !v.is_null() {
                println!("{k:>15}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_string));
            }
        }
    }
}

/// `isec rewrap`: a new envelope under the active key; the object body is not read.
pub fn rewrap(ring: &Keyring, meta_file: &Path, out: Option<&Path>, as_json: bool) -> Res<()> {
    let mut meta = meta::read(meta_file)?;
    let text = isec_core::metadata::get(&meta::view(&meta), "isec")
        .ok_or_else(|| CliError::usage(format!("{}: no isec envelope", meta_file.display())))?
        .to_string();
    let env = Envelope::decode_text(&text).ctx(|| meta_file.display().to_string())?;
    let new = ring.rewrap(&env).ctx(|| meta_file.display().to_string())?;
    meta::set(&mut meta, "isec", new.to_text());
    meta::set(&mut meta, "isec-kid", new.kid().to_string());
    meta::write(out.unwrap_or(meta_file), &meta)?;
    if as_json {
        println!("{}", json!({"from_kid": env.kid(), "to_kid": new.kid()}));
    } else {
        println!("rewrapped {}: {} -> {}", meta_file.display(), env.kid(), new.kid());
    }
    Ok(())
}
