//! Shared fixtures for the isec benchmarks: the object keys, the 64 MiB buffers, the raw
//! AES-256-GCM calls of each backend (in place, and out of place on aws-lc), and the framed
//! encrypt and decrypt, both through the copying streaming API (`update`) and through the
//! in-place frame API (`seal_frame_in_place` / `open_frame_in_place`).
//!
//! Every variant works on buffers allocated and touched once, then reused: fresh memory
//! costs a page fault per 4 KiB, which would halve the measured throughput and hide the
//! difference being measured.
//!
//! The bench targets (`benches/frames.rs` for criterion, `benches/ratios.rs` for the
//! framed/raw table) only time the methods here.

// A benchmark that cannot set up its fixtures has nothing to report: failing loudly is right.
#![allow(clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use isec_core::limits::{FRAME_OVERHEAD, NONCE_LEN};
use isec_core::{AwsLc, Decryptor, Dek, Encryptor, Envelope, FrameCipher, Kek, ObjectKey, Params, RustCrypto, Stream};

/// Plaintext processed per measured iteration: 64 MiB, far larger than L1/L2 (on the
/// 2-core bench VM the shared L3 is 260 MiB, so results are partly L3-bound and noisy).
pub const TOTAL: usize = 64 << 20;

/// The frame sizes compared: 4 KiB (minimum), 64 KiB (default), 1 MiB.
pub const FRAME_SIZES: [usize; 3] = [4 << 10, 64 << 10, 1 << 20];

/// GCM tag length.
pub const TAG_LEN: usize = 16;

/// Human label of a frame size: `4KiB`, `64KiB`, `1MiB`.
#[must_use]
pub fn frame_label(fs: usize) -> String {
    if fs >= 1 << 20 { format!("{}MiB", fs >> 20) } else { format!("{}KiB", fs >> 10) }
}

/// The object key every framed variant uses: fixed KEK, DEK and salt (hazmat constructors).
#[must_use]
pub fn object_key(fs: usize) -> ObjectKey {
    let params = Params::default().with_frame_size(fs as u64).expect("frame size");
    let (_, key) =
        Envelope::create_with(&Kek::from_bytes([1; 32]), "bench", params, &Dek::from_bytes([2; 32]), [3; 32])
            .expect("envelope");
    key
}

/// A deterministic, non-constant plaintext of `len` bytes (touches every page).
#[must_use]
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..=250u8).cycle().take(len).collect()
}

/// A 96-bit GCM nonce that differs per chunk, as a real caller's would.
fn chunk_nonce(i: usize) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&(i as u64).to_be_bytes());
    n
}

/// One backend's raw AES-256-GCM, keyed once: in-place seal and open of one chunk with
/// empty AAD and a detached tag. This is the floor the framed format is measured against.
pub trait RawAead {
    /// Backend name, matching [`FrameCipher::NAME`].
    const NAME: &'static str;
    /// Keys the backend.
    fn new(key: &[u8; 32]) -> Self;
    /// Encrypts `buf` in place, returning the tag.
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; TAG_LEN];
    /// Verifies `tag` and decrypts `buf` in place; panics on failure (the fixture is valid).
    fn open(&self, nonce: [u8; 12], buf: &mut [u8], tag: &[u8; TAG_LEN]);
}

/// aws-lc-rs `LessSafeKey`, the primitive under [`AwsLc`].
pub struct RawAwsLc(LessSafeKey);

impl RawAead for RawAwsLc {
    const NAME: &'static str = AwsLc::NAME;

    fn new(key: &[u8; 32]) -> Self {
        Self(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("aws-lc key")))
    }

    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), buf)
            .expect("aws-lc seal");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn open(&self, nonce: [u8; 12], buf: &mut [u8], tag: &[u8; TAG_LEN]) {
        self.0
            .open_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), tag, buf)
            .expect("aws-lc open");
    }
}

impl RawAwsLc {
    /// Out-of-place seal (`seal_out_of_place_scatter`): what a copy-free framed encrypt on
    /// aws-lc could cost, as opposed to copy-then-seal-in-place.
    pub fn seal_to(&self, nonce: [u8; 12], pt: &[u8], ct: &mut [u8]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        self.0
            .seal_out_of_place_scatter(Nonce::assume_unique_for_key(nonce), Aad::empty(), pt, ct, &[], &mut tag)
            .expect("aws-lc seal out of place");
        tag
    }

    /// Out-of-place open (`open_separate_gather`), the call [`AwsLc`] makes for framed
    /// decryption.
    pub fn open_to(&self, nonce: [u8; 12], ct: &[u8], tag: &[u8; TAG_LEN], pt: &mut [u8]) {
        self.0
            .open_separate_gather(Nonce::assume_unique_for_key(nonce), Aad::empty(), ct, tag, pt)
            .expect("aws-lc open out of place");
    }
}

/// RustCrypto `Aes256Gcm`, the primitive under [`RustCrypto`].
pub struct RawRustCrypto(Aes256Gcm);

impl RawAead for RawRustCrypto {
    const NAME: &'static str = RustCrypto::NAME;

    fn new(key: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; TAG_LEN] {
        self.0.encrypt_in_place_detached(&nonce.into(), &[], buf).expect("rustcrypto seal").into()
    }

    fn open(&self, nonce: [u8; 12], buf: &mut [u8], tag: &[u8; TAG_LEN]) {
        self.0.decrypt_in_place_detached(&nonce.into(), &[], buf, tag.into()).expect("rustcrypto open");
    }
}

/// Raw fixture: the backend, a 64 MiB working buffer, and the ciphertext (with its chunk
/// tags) that [`Raw::prepare_open`] restores before each in-place open.
///
/// Seals overwrite `work` and `seal_tags` with whatever they produce (repeated seals
/// re-encrypt ciphertext); opens only ever read `ciphertext` and `open_tags`, which stay
/// valid, so the variants can run in any order and any number of times.
pub struct Raw<A> {
    aead: A,
    fs: usize,
    work: Vec<u8>,
    seal_tags: Vec<[u8; TAG_LEN]>,
    ciphertext: Vec<u8>,
    open_tags: Vec<[u8; TAG_LEN]>,
    /// Output of the out-of-place variants.
    out: Vec<u8>,
}

impl<A: RawAead> Raw<A> {
    /// Keys the backend and fills the buffers; `ciphertext` holds the sealed plaintext.
    #[must_use]
    pub fn new(fs: usize) -> Self {
        let mut r = Self {
            aead: A::new(&[5; 32]),
            fs,
            work: plaintext(TOTAL),
            seal_tags: vec![[0u8; TAG_LEN]; TOTAL.div_ceil(fs)],
            ciphertext: Vec::new(),
            open_tags: Vec::new(),
            out: vec![0u8; TOTAL],
        };
        r.seal_all();
        r.ciphertext = r.work.clone();
        r.open_tags = r.seal_tags.clone();
        r.prepare_open();
        r.open_all();
        assert_eq!(r.work, plaintext(TOTAL), "raw {} round trip", A::NAME);
        r
    }

    /// Seals every frame-sized chunk of the working buffer in place (timed).
    pub fn seal_all(&mut self) {
        for (i, (chunk, tag)) in self.work.chunks_mut(self.fs).zip(self.seal_tags.iter_mut()).enumerate() {
            *tag = self.aead.seal(chunk_nonce(i), chunk);
        }
        black_box(&self.seal_tags);
    }

    /// Puts the ciphertext back into the working buffer (untimed setup for
    /// [`Raw::open_all`], which destroys it).
    pub fn prepare_open(&mut self) {
        self.work.copy_from_slice(&self.ciphertext);
    }

    /// Verifies and decrypts every chunk in place (timed). Call [`Raw::prepare_open`] first.
    pub fn open_all(&mut self) {
        for (i, (chunk, tag)) in self.work.chunks_mut(self.fs).zip(self.open_tags.iter()).enumerate() {
            self.aead.open(chunk_nonce(i), chunk, tag);
        }
        black_box(&self.work);
    }
}

/// A backend's raw out-of-place variant, where it has one: `(fixture, encrypt)` runs
/// [`Raw::seal_all_out_of_place`] or [`Raw::open_all_out_of_place`].
pub type OutOfPlace<A> = fn(&mut Raw<A>, bool);

impl Raw<RawAwsLc> {
    /// The [`OutOfPlace`] variant of aws-lc (timed).
    pub fn out_of_place(&mut self, encrypt: bool) {
        if encrypt { self.seal_all_out_of_place() } else { self.open_all_out_of_place() }
    }

    /// Seals every chunk of the working buffer into a separate output buffer, no copy.
    pub fn seal_all_out_of_place(&mut self) {
        let pt = &self.work;
        for (i, ((src, dst), tag)) in
            pt.chunks(self.fs).zip(self.out.chunks_mut(self.fs)).zip(self.seal_tags.iter_mut()).enumerate()
        {
            *tag = self.aead.seal_to(chunk_nonce(i), src, dst);
        }
        black_box(&self.out);
    }

    /// Opens every chunk of the ciphertext into the output buffer, no copy.
    pub fn open_all_out_of_place(&mut self) {
        for (i, ((src, dst), tag)) in
            self.ciphertext.chunks(self.fs).zip(self.out.chunks_mut(self.fs)).zip(self.open_tags.iter()).enumerate()
        {
            self.aead.open_to(chunk_nonce(i), src, tag, dst);
        }
        black_box(&self.out);
    }
}

/// Framed fixture: an object key, the plaintext, its isec ciphertext, a reused output
/// buffer large enough for either direction (streaming API), and a reused buffer of frame
/// slots (in-place API).
///
/// The slots buffer has the ciphertext's layout: `TOTAL / fs` slots of `fs + 28` bytes,
/// each `[12-byte nonce][fs bytes][16-byte tag]` (64 MiB divides evenly, so the final frame
/// is full too). In-place encryption seals whatever the slots hold (after construction the
/// plaintext sits at offset 12 of each; later rounds re-seal ciphertext, at the same cost,
/// as the raw in-place fixture does); in-place decryption needs the ciphertext restored
/// first with [`Framed::prepare_decrypt_in_place`], untimed.
pub struct Framed<C> {
    key: ObjectKey,
    fs: usize,
    pt: Vec<u8>,
    ct: Vec<u8>,
    out: Vec<u8>,
    slots: Vec<u8>,
    _cipher: core::marker::PhantomData<C>,
}

impl<C: FrameCipher> Framed<C> {
    /// Builds the key and buffers and checks one round trip through each API; the in-place
    /// ciphertext must equal the streamed one byte for byte.
    #[must_use]
    pub fn new(fs: usize) -> Self {
        let frames = TOTAL.div_ceil(fs).max(1);
        let ct_len = TOTAL + frames * FRAME_OVERHEAD;
        let mut f = Self {
            key: object_key(fs),
            fs,
            pt: plaintext(TOTAL),
            ct: vec![0u8; ct_len],
            out: vec![0u8; ct_len],
            slots: vec![0u8; ct_len],
            _cipher: core::marker::PhantomData,
        };
        let n = f.encrypt();
        assert_eq!(n, ct_len);
        f.ct.copy_from_slice(&f.out[..n]);
        let m = f.decrypt();
        assert_eq!(m, TOTAL);
        assert!(f.out[..m] == f.pt[..], "framed {} round trip", C::NAME);

        f.place_plaintext();
        f.encrypt_in_place();
        assert!(f.slots == f.ct, "framed {} in-place ciphertext differs from the streamed one", C::NAME);
        f.prepare_decrypt_in_place();
        assert_eq!(f.decrypt_in_place(), TOTAL);
        let slot = fs + FRAME_OVERHEAD;
        for (frame, chunk) in f.slots.chunks(slot).zip(f.pt.chunks(fs)) {
            assert!(frame[NONCE_LEN..NONCE_LEN + chunk.len()] == *chunk, "framed {} in-place round trip", C::NAME);
        }
        f
    }

    /// Ciphertext length of the whole object.
    #[must_use]
    pub fn ciphertext_len(&self) -> usize {
        self.ct.len()
    }

    /// `Encryptor::with_prefix` + one `update` of the whole plaintext + `finish`, into the
    /// reused output buffer (timed). Returns the ciphertext length.
    pub fn encrypt(&mut self) -> usize {
        let mut enc =
            Encryptor::<C>::with_prefix(&self.key, None, true, isec_core::Prefix::from([4; 7])).expect("encryptor");
        let n = enc.update(&self.pt, &mut self.out).expect("update");
        let m = enc.finish(&mut self.out[n..]).expect("finish");
        black_box(&self.out);
        n + m
    }

    /// `Decryptor::new` + one `update` of the whole ciphertext + `finish`, into the reused
    /// output buffer (timed). Returns the plaintext length.
    pub fn decrypt(&mut self) -> usize {
        let mut dec = Decryptor::<C>::new(&self.key).expect("decryptor");
        let n = dec.update(&self.ct, &mut self.out).expect("update");
        let m = dec.finish(&mut self.out[n..]).expect("finish");
        black_box(&self.out);
        n + m
    }

    /// Copies the plaintext to offset 12 of every frame slot (untimed setup; optional for
    /// [`Framed::encrypt_in_place`], whose cost does not depend on the content).
    pub fn place_plaintext(&mut self) {
        let slot = self.fs + FRAME_OVERHEAD;
        for (frame, chunk) in self.slots.chunks_mut(slot).zip(self.pt.chunks(self.fs)) {
            frame[NONCE_LEN..NONCE_LEN + chunk.len()].copy_from_slice(chunk);
        }
    }

    /// `Encryptor::with_prefix` + `seal_frame_in_place` on every slot but the last +
    /// `finish_in_place` on the last (timed): the caller read its plaintext straight into
    /// the frame slots, so nothing is copied.
    pub fn encrypt_in_place(&mut self) {
        let slot = self.fs + FRAME_OVERHEAD;
        let mut enc =
            Encryptor::<C>::with_prefix(&self.key, None, true, isec_core::Prefix::from([4; 7])).expect("encryptor");
        let frames = self.slots.len().div_ceil(slot);
        let (body, last) = self.slots.split_at_mut((frames - 1) * slot);
        for frame in body.chunks_exact_mut(slot) {
            enc.seal_frame_in_place(frame).expect("seal frame in place");
        }
        enc.finish_in_place(last).expect("finish in place");
        black_box(&self.slots);
    }

    /// Puts the ciphertext back into the frame slots (untimed setup for
    /// [`Framed::decrypt_in_place`], which turns it into plaintext).
    pub fn prepare_decrypt_in_place(&mut self) {
        self.slots.copy_from_slice(&self.ct);
    }

    /// `Decryptor::new` + `open_frame_in_place` on every slot + `finish(&mut [])` (timed).
    /// Call [`Framed::prepare_decrypt_in_place`] first. Returns the plaintext length.
    pub fn decrypt_in_place(&mut self) -> usize {
        let mut dec = Decryptor::<C>::new(&self.key).expect("decryptor");
        let mut n = 0;
        for frame in self.slots.chunks_mut(self.fs + FRAME_OVERHEAD) {
            n += dec.open_frame_in_place(frame).expect("open frame in place").len();
        }
        assert_eq!(dec.finish(&mut []).expect("finish"), 0);
        black_box(&self.slots);
        n
    }
}
