//! `encrypt`, `decrypt`, `inspect`, `rewrap`: streaming, bounded memory (one 1 MiB chunk plus
//! one frame), and no output file left behind by a failed decrypt.
//!
//! A local object is self-contained (SPEC.md §17: an `ISEC` header carrying the envelope, then
//! the body) unless its envelope is kept apart from it, detached, in a `.meta.json` file or
//! given as text; [`open_object`] tells the two apart from the file's first bytes.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use isec_core::container::{self, Probe};
use isec_core::legacy::{self, LegacyDecryptor, LegacyKey, LegacyMetadata, LegacyObject, LegacySidecar};
use isec_core::metadata::{ObjectFormat, classify};
use isec_core::range::ByteRange;
use isec_core::shape::Shape;
use isec_core::{AwsLc, Decryptor, Encryptor, Envelope, Error, Keyring, Layout, LayoutRequest, Params, Stream};
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
    /// Permission bits of an input file: outputs get at most these.
    pub mode: Option<u32>,
    file: Option<File>,
    /// Bytes read ahead (to recognise a header) and handed out again by [`Input::fill`].
    pending: Vec<u8>,
}

impl Input {
    pub fn open(name: &str) -> Res<Self> {
        if name == "-" {
            return Ok(Self {
                name: "<stdin>".into(),
                reader: Box::new(io::stdin().lock()),
                len: None,
                mode: None,
                file: None,
                pending: Vec::new(),
            });
        }
        let f = File::open(name).map_err(|e| CliError::io(Path::new(name), e))?;
        let md = f.metadata().map_err(|e| CliError::io(Path::new(name), e))?;
        let reader = f.try_clone().map_err(|e| CliError::io(Path::new(name), e))?;
        Ok(Self {
            name: name.into(),
            reader: Box::new(reader),
            len: Some(md.len()),
            mode: file_mode(&md),
            file: Some(f),
            pending: Vec::new(),
        })
    }

    /// The underlying file, for seeking (ranged reads).
    pub fn file(&mut self) -> Res<&mut File> {
        let name = self.name.clone();
        self.file.as_mut().ok_or_else(|| CliError::usage(format!("{name}: a file is needed here, not stdin")))
    }

    /// Reads up to `buf.len()` bytes, retrying short reads until the buffer is full or EOF.
    pub fn fill(&mut self, buf: &mut [u8]) -> Res<usize> {
        let mut n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
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
    /// An output named `name` (`-`: stdout), with the umask's default permissions.
    pub fn create(name: &str) -> Res<Self> {
        Self::create_with_mode(name, None)
    }

    /// An output named `name` (`-`: stdout); a file gets the permission bits `mode` (those of
    /// the input, so a private input does not become a readable output), narrowed further by
    /// the umask, or the umask's default when there is no input file.
    pub fn create_with_mode(name: &str, mode: Option<u32>) -> Res<Self> {
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
        // A stale partial file keeps its old mode when opened again: start from a new one.
        let _ = fs::remove_file(&temp);
        // Errors name the user's path: the temporary is an implementation detail.
        let f = create_with_mode(&temp, mode).map_err(|e| CliError::io(&target, e))?;
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

/// Permission bits of a file (Unix only).
#[allow(clippy::unnecessary_wraps, reason = "None off Unix")]
fn file_mode(md: &fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(md.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = md;
        None
    }
}

/// Creates `path` with at most the read/write bits of `mode` (never execute bits).
fn create_with_mode(path: &Path, mode: Option<u32>) -> io::Result<File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode.map_or(0o666, |m| m & 0o666));
    }
    #[cfg(not(unix))]
    let _ = mode;
    o.open(path)
}

/// `isec encrypt`: a self-contained file (SPEC.md §17) unless `meta_out` asks for the
/// envelope in a metadata file of its own (detached, as S3 keeps it).
pub fn encrypt(
    input: &str,
    output: &str,
    ring: &Keyring,
    meta_out: Option<PathBuf>,
    frame_size: u64,
    quiet: bool,
) -> Res<()> {
    let mut inp = Input::open(input)?;
    let params = Params::new(LayoutRequest::Single, Some(frame_size), inp.len).ctx(|| "--frame-size".into())?;
    let (env, key) = ring.create_envelope(params).ctx(|| "keyring".into())?;
    let mut enc = Encryptor::<AwsLc>::new(&key).ctx(|| "encryptor".into())?;
    let mut out = Output::create_with_mode(output, inp.mode)?;
    if meta_out.is_none() {
        out.write(&container::header(&env))?;
    }
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
    drop(bar);
    match meta_out {
        Some(p) => meta::write(&p, &envelope_meta(&env)),
        None => Ok(()),
    }
}

/// The metadata pairs that carry `env` (as S3 user metadata).
pub fn envelope_meta(env: &Envelope) -> Meta {
    vec![("isec".into(), env.to_text()), ("isec-kid".into(), env.kid().into())]
}

/// Where the metadata of `object` comes from: `--envelope`, `--meta`, or the default
/// `OBJECT.meta.json`.
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

/// An object opened for reading: its metadata and its input, positioned at the body.
pub struct Opened {
    pub inp: Input,
    pub meta: Meta,
    /// Offset of the body in the file (the self-contained header's length, or 0).
    pub body_offset: u64,
    /// Ciphertext bytes of the body, when the input is a file.
    pub body_len: Option<u64>,
    /// Whether the envelope came from the file's own header.
    pub contained: bool,
    /// Where detached metadata came from, for messages.
    pub meta_source: String,
}

/// Opens an object: a self-contained file carries its envelope; otherwise the metadata is
/// `--envelope`, `--meta` or `OBJECT.meta.json` (detached). Metadata given for a
/// self-contained file must be its own (`metadata_mismatch` otherwise). Reads at most the
/// header's length ahead, so stdin streams.
pub fn open_object(object: &str, meta_file: Option<&Path>, envelope: Option<&str>) -> Res<Opened> {
    let mut inp = Input::open(object)?;
    let name = inp.name.clone();
    let explicit = meta_file.is_some() || envelope.is_some();
    let mut head = vec![0u8; container::PREFIX_LEN];
    let n = inp.fill(&mut head)?;
    head.truncate(n);
    let probed = container::probe(&head);
    if let Ok(Probe::Contained { header_len }) = probed {
        head.resize(header_len, 0);
        let m = inp.fill(&mut head[n..])?;
        head.truncate(n + m);
    }
    let parsed = container::parse(&head);
    if let Ok(Some((env, at))) = parsed {
        let meta = if explicit {
            let given = load_meta(object, meta_file, envelope)?;
            match classify(&meta::view(&given), false) {
                ObjectFormat::Isec(g) => container::check_given(&g, &env).ctx(|| {
                    format!("{name}: the file carries its own envelope, of another object than {}", source(meta_file))
                })?,
                ObjectFormat::Unreadable(e) => return Err(CliError::core(e, source(meta_file))),
                _ => {
                    return Err(CliError::core(
                        Error::MetadataMismatch,
                        format!("{name}: the file carries its own isec envelope, and {} has none", source(meta_file)),
                    ));
                }
            }
            given
        } else {
            envelope_meta(&env)
        };
        let at = at as u64;
        return Ok(Opened {
            body_len: inp.len.map(|l| l.saturating_sub(at)),
            inp,
            meta,
            body_offset: at,
            contained: true,
            meta_source: "its header".into(),
        });
    }
    // Not self-contained: the bytes read ahead belong to the body.
    inp.pending = head;
    if !explicit {
        if let Err(e) = parsed {
            // The magic is there but the header is not valid: say so rather than look for
            // metadata the file was never meant to have.
            return Err(CliError::core(e, format!("{name}: header of a self-contained isec file")));
        }
        match meta::default_path(object) {
            Some(p) if p.exists() => {}
            _ => {
                return Err(CliError::usage(format!(
                    "{name}: not a self-contained isec file (no ISEC header){}; give its metadata with --meta FILE or --envelope TEXT",
                    meta::default_path(object).map(|p| format!(" and there is no {}", p.display())).unwrap_or_default()
                )));
            }
        }
    }
    let meta = load_meta(object, meta_file, envelope)?;
    Ok(Opened {
        body_len: inp.len,
        inp,
        meta,
        body_offset: 0,
        contained: false,
        meta_source: match (meta_file, envelope) {
            (_, Some(_)) => "--envelope".into(),
            (Some(p), _) => p.display().to_string(),
            (None, None) => meta::default_path(object).map(|p| p.display().to_string()).unwrap_or_default(),
        },
    })
}

fn source(meta_file: Option<&Path>) -> String {
    meta_file.map_or_else(|| "--envelope".into(), |p| p.display().to_string())
}

/// The geometry of an isec body of `len` bytes: for detached metadata a length it rules out
/// is `metadata_mismatch`; for a self-contained file, whose envelope is its own, the stream
/// error (`truncated`, `trailing_data`, `bad_frame_length`). `None` for the table layout.
pub fn body_shape(o: &Opened, env: &Envelope, len: u64) -> Res<Option<Shape>> {
    let name = &o.inp.name;
    if o.contained {
        if env.header().layout == Layout::Table {
            return Ok(None);
        }
        return Shape::from_ciphertext_len(env.header(), len).map(Some).ctx(|| format!("{name}: {len} bytes of body"));
    }
    container::detached_shape(env, len).map_err(|e| {
        let declared = env.header().declared_size.map_or_else(String::new, |d| format!(" declares {d} plaintext bytes and"));
        CliError::core(
            e,
            format!(
                "{name}: its metadata ({}){declared} does not fit the object's {len} bytes (or the object was cut or extended)",
                o.meta_source
            ),
        )
    })
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
    let key = ring.open_legacy(&object, Some(kid)).ctx(|| format!("{name}: key {kid:?}"))?;
    Ok(LegacyOpen { object, key })
}

/// Context for a key error: names the key id the object asks for.
pub fn key_context(name: &str, kid: &str) -> String {
    format!("{name}: its envelope names key {kid:?}")
}

/// `range` as the user wrote it.
fn range_text(r: ByteRange) -> String {
    match r {
        ByteRange::Closed { first, last } => format!("{first}-{last}"),
        ByteRange::From(a) => format!("{a}-"),
        ByteRange::Suffix(n) => format!("-{n}"),
    }
}

/// `range` within an object of `len` plaintext bytes, as `[start, end)`.
fn resolve_range(name: &str, range: ByteRange, len: u64) -> Res<(u64, u64)> {
    range.resolve(len).ctx(|| format!("{name}: --range {} (the object has {len} bytes)", range_text(range)))
}

/// `isec decrypt`. `range` is as in HTTP: `a-b` inclusive, `a-` to the end, `-n` the last
/// `n` bytes.
#[allow(clippy::too_many_arguments, reason = "one per command-line option")]
pub fn decrypt(
    input: &str,
    output: &str,
    ring: &Keyring,
    meta_file: Option<&Path>,
    envelope: Option<&str>,
    sidecar: Option<&Path>,
    range: Option<ByteRange>,
    quiet: bool,
) -> Res<()> {
    let mut o = open_object(input, meta_file, envelope)?;
    let name = o.inp.name.clone();
    match classify(&meta::view(&o.meta), sidecar.is_some()) {
        ObjectFormat::Isec(env) => {
            let shape = match o.body_len {
                Some(len) => body_shape(&o, &env, len)?,
                None => None,
            };
            let key = ring.open(&env).ctx(|| key_context(&name, env.kid()))?;
            let (dec, fetch, expect) = match range {
                None => {
                    // On a pipe the body's length is known only at its end: the declared
                    // size says whether it ended early.
                    let expect = match o.body_len {
                        Some(_) => None,
                        None => container::expected_ciphertext_len(&env).ctx(|| name.clone())?,
                    };
                    (Decryptor::<AwsLc>::new(&key).ctx(|| name.clone())?, None, expect)
                }
                Some(r) => {
                    let shape = shape.ok_or_else(|| {
                        CliError::usage(if o.body_len.is_none() {
                            "--range needs a file input".into()
                        } else {
                            format!("{name}: --range is not available for the table layout from a local file")
                        })
                    })?;
                    let (a, b) = resolve_range(&name, r, shape.plaintext_len())?;
                    let plan = shape.map_range(a, b);
                    let dec = Decryptor::<AwsLc>::for_range(&key, shape, &plan).ctx(|| name.clone())?;
                    (dec, Some((plan.ct_start, plan.ct_end)), None)
                }
            };
            let short = if o.contained { Error::Truncated } else { Error::MetadataMismatch };
            let mode = o.inp.mode;
            run_decrypt(&mut o, output, fetch, expect.map(|e| (e, short)), quiet, mode, Box::new(dec))
        }
        ObjectFormat::Legacy { .. } => {
            let len =
                o.body_len.ok_or_else(|| CliError::usage("legacy objects are read from a file, not stdin".into()))?;
            let lo = open_legacy(ring, &o.meta, sidecar, len, &name)?;
            let (dec, fetch) = match range {
                None => (LegacyDecryptor::<AwsLc>::new(&lo.key, &lo.object).ctx(|| name.clone())?, None),
                Some(r) => {
                    let (a, b) = resolve_range(&name, r, lo.object.plaintext_len())?;
                    let plan = lo.object.plan_range(a, b).ctx(|| name.clone())?;
                    let dec = LegacyDecryptor::<AwsLc>::for_range(&lo.key, &lo.object, &plan).ctx(|| name.clone())?;
                    (dec, Some((plan.ct_start, plan.ct_end)))
                }
            };
            let mode = o.inp.mode;
            run_decrypt(&mut o, output, fetch, None, quiet, mode, Box::new(dec))
        }
        ObjectFormat::Plaintext => Err(CliError::usage(format!("{name}: metadata has no isec envelope"))),
        ObjectFormat::Unreadable(e) => Err(CliError::core(e, format!("{name}: metadata"))),
    }
}

/// Streams the body (or the `fetch` range of it) through `dec` into `output`. `expect` is
/// the body length the envelope declares, for a pipe, and the error to report if the input
/// ends before it.
fn run_decrypt(
    o: &mut Opened,
    output: &str,
    fetch: Option<(u64, u64)>,
    expect: Option<(u64, Error)>,
    quiet: bool,
    mode: Option<u32>,
    mut dec: Box<dyn Stream>,
) -> Res<()> {
    let inp = &mut o.inp;
    let name = inp.name.clone();
    let mut remaining = match fetch {
        Some((s, e)) => {
            inp.file()?.seek(SeekFrom::Start(o.body_offset + s)).map_err(|e| CliError::io(Path::new(&name), e))?;
            Some(e - s)
        }
        None => None,
    };
    let mut out = Output::create_with_mode(output, mode)?;
    let bar = progress::bar(remaining.or(o.body_len), quiet, "decrypt");
    let mut chunk = vec![0u8; CHUNK];
    let mut buf = Vec::new();
    let mut read = 0u64;
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
        read += n as u64;
        if let Some(r) = remaining.as_mut() {
            *r -= n as u64;
        }
        buf.resize(dec.update_len(n), 0);
        let w = dec.update(&chunk[..n], &mut buf).ctx(|| name.clone())?;
        out.write(&buf[..w])?;
        bar.inc(n as u64);
    }
    if let Some((want, short)) = expect
        && read < want
    {
        return Err(CliError::core(short, format!("{name}: the input ended after {read} of {want} bytes of body")));
    }
    buf.resize(dec.finish_len(), 0);
    let w = dec.finish(&mut buf).ctx(|| name.clone())?;
    out.write(&buf[..w])?;
    drop(bar);
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

/// `isec inspect`: key-free. An object file (or `-`) is recognised as self-contained or
/// detached as by `decrypt`; without one, `--meta` or `--envelope` describe it.
pub fn inspect(
    object: Option<&str>,
    meta_file: Option<&Path>,
    envelope: Option<&str>,
    size: Option<u64>,
    sidecar: Option<&Path>,
    as_json: bool,
) -> Res<()> {
    let (meta, size, form, opened) = match object {
        Some(o) => {
            let opened = open_object(o, meta_file, envelope)?;
            let form = if opened.contained { "self-contained" } else { "detached" };
            (opened.meta.clone(), size.or(opened.body_len), Some(form), Some(opened))
        }
        None => (load_meta("-", meta_file, envelope)?, size, None, None),
    };
    let format = classify(&meta::view(&meta), sidecar.is_some());
    let mut report = json!({"format": format.name(), "kid": format.kid()});
    if let Some(f) = form {
        report["form"] = json!(f);
    }
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
                let shape = match &opened {
                    Some(o) if o.contained => Shape::from_ciphertext_len(env.header(), len),
                    _ => container::detached_shape(env, len).and_then(|s| s.ok_or(Error::InvalidParameter)),
                };
                match shape {
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

/// `isec rewrap`: a new envelope under the active key. For a metadata file the object body
/// is not read; a self-contained file is rewritten with the new header and the same body.
pub fn rewrap(ring: &Keyring, meta_file: &Path, out: Option<&Path>, as_json: bool) -> Res<()> {
    let mut first = [0u8; 4];
    let n = File::open(meta_file)
        .and_then(|mut f| read_full(&mut f, &mut first))
        .map_err(|e| CliError::io(meta_file, e))?;
    let (env, new) = if first[..n] == container::MAGIC {
        rewrap_contained(ring, meta_file, out)?
    } else {
        let mut meta = meta::read(meta_file)?;
        let text = isec_core::metadata::get(&meta::view(&meta), "isec")
            .ok_or_else(|| CliError::usage(format!("{}: no isec envelope", meta_file.display())))?
            .to_string();
        let env = Envelope::decode_text(&text).ctx(|| meta_file.display().to_string())?;
        let new = ring.rewrap(&env).ctx(|| key_context(&meta_file.display().to_string(), env.kid()))?;
        meta::set(&mut meta, "isec", new.to_text());
        meta::set(&mut meta, "isec-kid", new.kid().to_string());
        meta::write(out.unwrap_or(meta_file), &meta)?;
        (env, new)
    };
    if as_json {
        println!("{}", json!({"from_kid": env.kid(), "to_kid": new.kid()}));
    } else {
        println!("rewrapped {}: {} -> {}", meta_file.display(), env.kid(), new.kid());
    }
    Ok(())
}

/// Rewraps a self-contained file: the new header, then the body copied as it is.
fn rewrap_contained(ring: &Keyring, path: &Path, out: Option<&Path>) -> Res<(Envelope, Envelope)> {
    let name = path.display().to_string();
    let mut o = open_object(&name, None, None)?;
    let ObjectFormat::Isec(env) = classify(&meta::view(&o.meta), false) else {
        return Err(CliError::usage(format!("{name}: no isec envelope")));
    };
    let new = ring.rewrap(&env).ctx(|| key_context(&name, env.kid()))?;
    let target = out.map_or_else(|| name.clone(), |p| p.display().to_string());
    let mut w = Output::create_with_mode(&target, o.inp.mode)?;
    w.write(&container::header(&new))?;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = o.inp.fill(&mut chunk)?;
        if n == 0 {
            break;
        }
        w.write(&chunk[..n])?;
    }
    w.commit()?;
    Ok((*env, new))
}
