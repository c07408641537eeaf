//! The wasm baseline of `benches/wasm`: RustCrypto's `aes-gcm`, the crate and version
//! isec-core's wasm backend uses, with nothing around it. One AES-256-GCM call per frame,
//! measured two ways: over a buffer already in wasm memory (the cipher alone), and called
//! from JS per frame with the bytes copied in and out (what any wasm-bindgen API costs).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use wasm_bindgen::prelude::*;

/// A key and a buffer of frames in wasm memory.
#[wasm_bindgen]
pub struct Gcm {
    cipher: Aes256Gcm,
    data: Vec<u8>,
    tags: Vec<u8>,
}

fn nonce(i: usize) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&(i as u64).to_be_bytes());
    n
}

#[wasm_bindgen]
impl Gcm {
    /// `key`: 32 bytes; `data`: the plaintext, copied into wasm memory once.
    #[wasm_bindgen(constructor)]
    pub fn new(key: &[u8], data: &[u8]) -> Result<Gcm, JsError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| JsError::new("key length"))?;
        Ok(Gcm { cipher, data: data.to_vec(), tags: Vec::new() })
    }

    /// Seals the buffer in place, frame by frame (`frame` bytes each, one nonce per frame).
    #[wasm_bindgen(js_name = sealAll)]
    pub fn seal_all(&mut self, frame: usize) -> Result<(), JsError> {
        self.tags.clear();
        for (i, f) in self.data.chunks_mut(frame.max(1)).enumerate() {
            let tag = self.cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce(i)), b"", f).map_err(|_| JsError::new("seal"))?;
            self.tags.extend_from_slice(&tag);
        }
        Ok(())
    }

    /// Opens what `sealAll` sealed, in place.
    #[wasm_bindgen(js_name = openAll)]
    pub fn open_all(&mut self, frame: usize) -> Result<(), JsError> {
        for (i, f) in self.data.chunks_mut(frame.max(1)).enumerate() {
            let tag = Tag::clone_from_slice(&self.tags[16 * i..16 * i + 16]);
            self.cipher.decrypt_in_place_detached(Nonce::from_slice(&nonce(i)), b"", f, &tag).map_err(|_| JsError::new("open"))?;
        }
        Ok(())
    }

    /// One frame from JS: `ciphertext || tag` of `plaintext` under frame number `i`.
    pub fn seal(&self, i: usize, plaintext: &[u8]) -> Result<Vec<u8>, JsError> {
        let mut out = Vec::with_capacity(plaintext.len() + 16);
        out.extend_from_slice(plaintext);
        let tag = self.cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce(i)), b"", &mut out).map_err(|_| JsError::new("seal"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// One frame from JS: the plaintext of `seal`'s output.
    pub fn open(&self, i: usize, sealed: &[u8]) -> Result<Vec<u8>, JsError> {
        let n = sealed.len().checked_sub(16).ok_or_else(|| JsError::new("short"))?;
        let mut out = sealed[..n].to_vec();
        let tag = Tag::clone_from_slice(&sealed[n..]);
        self.cipher.decrypt_in_place_detached(Nonce::from_slice(&nonce(i)), b"", &mut out, &tag).map_err(|_| JsError::new("open"))?;
        Ok(out)
    }
}
