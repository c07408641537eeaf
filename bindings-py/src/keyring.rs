//! The keyring, and external (KMS) wrappers written in Python (SPEC.md §10).

use isec_core::keyring::{KeyInfo, RecipientUnwrap};
use isec_core::limits::KEY_LEN;
use isec_core::recipient::{PrivateKey, PublicKey};
use isec_core::wrap::{Dek, KeyWrap, WrapAlg, WrappedKey};
use isec_core::{Error, Kek, KeyState, Keyring, LayoutRequest, Params};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::In;
use crate::convert::{Int, getters, record};
use crate::envelope::{PyEnvelope, PyObjectKey};
use crate::error::{OrRaise, clear_callback_error, stash_callback_error};
use crate::legacy::{PyLegacyKey, PyLegacyObject};

/// A key wrapper whose `wrap(kid, dek)` and `unwrap(kid, wrapped)` are Python methods (an
/// AWS KMS or Vault transit client). Any exception they raise, or a result that is not
/// bytes-like, becomes core's `external_wrapper_failed`, with the original chained as its
/// `__cause__`.
struct PyKeyWrap {
    kid: String,
    obj: Py<PyAny>,
}

impl PyKeyWrap {
    fn call(&self, method: &str, arg: &[u8]) -> Result<Vec<u8>, Error> {
        Python::attach(|py| {
            let result = self
                .obj
                .bind(py)
                .call_method1(method, (self.kid.as_str(), PyBytes::new(py, arg)))
                .and_then(|r| In::get(&r).map(|b| b.as_slice().to_vec()));
            result.map_err(|e| {
                stash_callback_error(e);
                Error::ExternalWrapperFailed
            })
        })
    }
}

impl KeyWrap for PyKeyWrap {
    fn alg(&self) -> WrapAlg {
        WrapAlg::External
    }

    fn wrap(&self, dek: &Dek) -> Result<WrappedKey, Error> {
        let wrapped = self.call("wrap", dek.expose())?;
        if wrapped.is_empty() {
            return Err(Error::ExternalWrapperFailed);
        }
        WrappedKey::from_slice(&wrapped)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Dek, Error> {
        let mut dek = self.call("unwrap", wrapped)?;
        let bytes: Result<[u8; KEY_LEN], _> = dek.as_slice().try_into();
        dek.fill(0);
        bytes.map(Dek::from_bytes).map_err(|_| Error::ExternalWrapperFailed)
    }
}

/// A recipient's private key held by a Python object (an HSM client) whose
/// `unwrap(kid, wrapped, info)` returns the DEK; failures become `external_wrapper_failed`
/// with the original chained, like a KMS wrapper's.
struct PyRecipientUnwrap(PyKeyWrap);

impl RecipientUnwrap for PyRecipientUnwrap {
    fn unwrap(&self, wrapped: &[u8], info: &[u8]) -> Result<Dek, Error> {
        let mut dek = Python::attach(|py| {
            let w = &self.0;
            w.obj
                .bind(py)
                .call_method1("unwrap", (w.kid.as_str(), PyBytes::new(py, wrapped), PyBytes::new(py, info)))
                .and_then(|r| In::get(&r).map(|b| b.as_slice().to_vec()))
                .map_err(|e| {
                    stash_callback_error(e);
                    Error::ExternalWrapperFailed
                })
        })?;
        let bytes: Result<[u8; KEY_LEN], _> = dek.as_slice().try_into();
        dek.fill(0);
        bytes.map(Dek::from_bytes).map_err(|_| Error::ExternalWrapperFailed)
    }
}

record! {
    /// One key's public description: `kind` is `kek`, `legacy`, `external`, `public_key`,
    /// `private_key` or `external_private_key`; `public_key` is a recipient's public key text.
    #[derive(Clone, PartialEq)]
    "KeyInfo" PyKeyInfo [eq] {
        kid: String,
        state: String,
        legacy: bool,
        external: bool,
        kind: String,
        public_key: Option<String>,
        created: Option<String>,
    }
    repr(kid, state, kind, public_key, created)
}

impl From<KeyInfo> for PyKeyInfo {
    fn from(k: KeyInfo) -> Self {
        Self {
            kid: k.kid,
            state: k.state.name().to_string(),
            legacy: k.legacy,
            external: k.external,
            kind: k.kind.name().to_string(),
            public_key: k.public_key.map(|p| p.to_text()),
            created: k.created,
        }
    }
}

/// KEKs by key id, their states (`active`, `decrypt_only`, `disabled`) and the one active key.
#[pyclass(module = "isec", name = "Keyring")]
pub(crate) struct PyKeyring {
    pub(crate) inner: Keyring,
}

fn state(name: &str) -> PyResult<KeyState> {
    KeyState::from_name(name).or_raise()
}

getters! { PyKeyring {
    /// The minimum format version.
    min_version: u8 = |s| s.inner.min_version();
    /// The active key id, or None.
    active_kid: Option<String> = |s| s.inner.active_kid().ok().map(str::to_string);
}
    #[new]
    fn new() -> Self {
        Self { inner: Keyring::new() }
    }

    /// Reads a keyring file, the `isec` command's (SPEC.md §10.3: `{"min_version", "keys":
    /// [{"kid", "kek" (hex) | "legacy_secret" | "public_key" | "private_key", "state",
    /// "created"}]}`); its text is wiped once parsed. Raises OSError when it cannot be read
    /// and `invalid_parameter` when it is not a keyring file.
    #[staticmethod]
    fn from_file(path: std::path::PathBuf) -> PyResult<Self> {
        let text = zeroize::Zeroizing::new(std::fs::read(&path)?);
        Ok(Self { inner: Keyring::from_file_text(&text).or_raise()? })
    }

    /// A keyring from the text of a keyring file (see `from_file`).
    #[staticmethod]
    fn from_text(text: In) -> PyResult<Self> {
        Ok(Self { inner: Keyring::from_file_text(text.as_slice()).or_raise()? })
    }

    /// The keyring file's text for this keyring, secrets included (`invalid_parameter` when
    /// a key is held by a service, which a file cannot hold).
    fn to_text(&self) -> PyResult<String> {
        Ok(self.inner.to_file_text().or_raise()?.to_string())
    }

    /// Adds a public-key recipient by its public key text (`isec-x25519-public:...`): it
    /// creates envelopes when active and opens none (`public_key_only`).
    #[pyo3(signature = (kid, public_key, state="active"))]
    fn add_public_key(&mut self, kid: &str, public_key: &str, state: &str) -> PyResult<()> {
        let s = self::state(state)?;
        let pk = PublicKey::from_text(public_key).or_raise()?;
        self.inner.add_public_key(kid, pk, s).or_raise()
    }

    /// Adds a public-key recipient with its private key text (`isec-x25519-private:...`): it
    /// opens and rewraps its envelopes.
    #[pyo3(signature = (kid, private_key, state="active"))]
    fn add_private_key(&mut self, kid: &str, private_key: &str, state: &str) -> PyResult<()> {
        let s = self::state(state)?;
        let sk = PrivateKey::from_text(private_key).or_raise()?;
        self.inner.add_private_key(kid, sk, s).or_raise()
    }

    /// Adds a public-key recipient whose private key a service holds: `opener` has
    /// `unwrap(kid: str, wrapped: bytes, info: bytes) -> bytes` returning the DEK (an HSM
    /// client; `open_wrapped_dek` is what such a service computes).
    #[pyo3(signature = (kid, public_key, opener, state="active"))]
    fn add_external_private_key(
        &mut self,
        kid: &str,
        public_key: &str,
        opener: Bound<'_, PyAny>,
        state: &str,
    ) -> PyResult<()> {
        if !opener.getattr("unwrap").map(|m| m.is_callable()).unwrap_or(false) {
            return Err(PyTypeError::new_err("the opener has no callable 'unwrap' method"));
        }
        let s = self::state(state)?;
        let pk = PublicKey::from_text(public_key).or_raise()?;
        let o = PyRecipientUnwrap(PyKeyWrap { kid: kid.to_string(), obj: opener.unbind() });
        self.inner.add_private_key_external(kid, pk, Box::new(o), s).or_raise()
    }

    /// Adds a raw 32-byte KEK. Adding an active key demotes the previous active key.
    #[pyo3(signature = (kid, kek, state="active"))]
    fn add_kek(&mut self, kid: &str, kek: In, state: &str) -> PyResult<()> {
        let s = self::state(state)?;
        let kek = Kek::from_slice(kek.as_slice()).or_raise()?;
        self.inner.add_kek(kid, kek, s).or_raise()
    }

    /// Adds the legacy proxy's key (SHA-256 of its secret string); always decrypt-only.
    fn add_legacy_secret_string(&mut self, kid: &str, secret: &str) -> PyResult<()> {
        self.inner.add_legacy_secret_string(kid, secret).or_raise()
    }

    /// Adds an external wrapper: an object with `wrap(kid: str, dek: bytes) -> bytes` and
    /// `unwrap(kid: str, wrapped: bytes) -> bytes`.
    #[pyo3(signature = (kid, wrapper, state="active"))]
    fn add_external(&mut self, kid: &str, wrapper: Bound<'_, PyAny>, state: &str) -> PyResult<()> {
        for method in ["wrap", "unwrap"] {
            let callable = wrapper.getattr(method).map(|m| m.is_callable()).unwrap_or(false);
            if !callable {
                return Err(PyTypeError::new_err(format!("the wrapper has no callable '{method}' method")));
            }
        }
        let s = self::state(state)?;
        let w = PyKeyWrap { kid: kid.to_string(), obj: wrapper.unbind() };
        self.inner.add_external(kid, Box::new(w), s).or_raise()
    }

    /// Changes a key's state; activating a key demotes the previous active key.
    fn set_state(&mut self, kid: &str, state: &str) -> PyResult<()> {
        let s = self::state(state)?;
        self.inner.set_state(kid, s).or_raise()
    }

    /// Refuses objects whose format version is below `version` (0: legacy proxy, 1: isec v1).
    fn set_min_version(&mut self, version: Int<u8>) {
        self.inner.set_min_version(version.0);
    }

    /// The keys, in insertion order.
    fn keys(&self) -> Vec<PyKeyInfo> {
        self.inner.keys().into_iter().map(PyKeyInfo::from).collect()
    }

    /// The state of `kid`, or None if the keyring lacks it.
    fn state(&self, kid: &str) -> Option<&'static str> {
        self.inner.state(kid).map(|s| s.name())
    }

    /// A new envelope under the active key, and the key that encrypts the object.
    /// `part_size` selects the parts layout, `fit_parts=(size, preferred)` the parts layout
    /// with parts fitted to an object of `size` bytes (see `fit_part_size`), `table=True`
    /// the table layout; they exclude each other.
    #[pyo3(signature = (*, frame_size=None, part_size=None, table=false, declared_size=None, fit_parts=None))]
    fn create_envelope(
        &self,
        frame_size: Option<Int<u64>>,
        part_size: Option<Int<u64>>,
        table: bool,
        declared_size: Option<Int<u64>>,
        fit_parts: Option<(Int<u64>, Int<u64>)>,
    ) -> PyResult<(PyEnvelope, PyObjectKey)> {
        let fit = fit_parts.map(|(s, p)| (s.0, p.0));
        let layout = LayoutRequest::from_options(part_size.map(|p| p.0), fit, table).or_raise()?;
        let params = Params::new(layout, frame_size.map(|f| f.0), declared_size.map(|d| d.0)).or_raise()?;
        clear_callback_error();
        let (env, key) = self.inner.create_envelope(params).or_raise()?;
        Ok((PyEnvelope { inner: env }, PyObjectKey { inner: key }))
    }

    /// Opens an envelope with the key its kid names: the object key.
    fn open(&self, envelope: &PyEnvelope) -> PyResult<PyObjectKey> {
        clear_callback_error();
        Ok(PyObjectKey { inner: self.inner.open(&envelope.inner).or_raise()? })
    }

    /// Names the previous-proxy key for objects that record no kid (`wrong_key_kind` unless
    /// `kid` is a previous-proxy secret, `unknown_kid` if the keyring lacks it).
    fn set_default_legacy(&mut self, kid: &str) -> PyResult<()> {
        self.inner.set_default_legacy(kid).or_raise()
    }

    /// Opens a legacy proxy object's DEK with the legacy key of `kid`, else of the kid the
    /// object records, else of the default set with `set_default_legacy` (`unknown_kid` if
    /// none names a key).
    #[pyo3(signature = (object, kid=None))]
    fn open_legacy(&self, object: &PyLegacyObject, kid: Option<&str>) -> PyResult<PyLegacyKey> {
        Ok(PyLegacyKey { inner: self.inner.open_legacy(&object.inner, kid).or_raise()? })
    }

    /// The same object's envelope under the active key (metadata only; the body is untouched).
    fn rewrap(&self, envelope: &PyEnvelope) -> PyResult<PyEnvelope> {
        clear_callback_error();
        Ok(PyEnvelope { inner: self.inner.rewrap(&envelope.inner).or_raise()? })
    }

    /// `rewrap` to a named key, which must be the active key.
    fn rewrap_to(&self, envelope: &PyEnvelope, kid: &str) -> PyResult<PyEnvelope> {
        clear_callback_error();
        Ok(PyEnvelope { inner: self.inner.rewrap_to(&envelope.inner, kid).or_raise()? })
    }

    fn __len__(&self) -> usize {
        self.inner.keys().len()
    }

    fn __repr__(&self) -> String {
        format!("Keyring({:?})", self.inner)
    }
}

/// A fresh recipient key pair: `(private_key, public_key)` texts (SPEC.md §3.5).
#[pyfunction]
pub(crate) fn generate_recipient() -> PyResult<(String, String)> {
    let sk = PrivateKey::generate().or_raise()?;
    Ok((sk.to_text().to_string(), sk.public_key().to_text()))
}

/// The public key text of a recipient's private key text.
#[pyfunction]
pub(crate) fn recipient_public_key(private_key: &str) -> PyResult<String> {
    Ok(PrivateKey::from_text(private_key).or_raise()?.public_key().to_text())
}

/// What a service holding a recipient's private key computes for `add_external_private_key`:
/// the DEK sealed in `wrapped` under `info` (`unwrap_failed` when it does not open).
#[pyfunction]
pub(crate) fn open_wrapped_dek<'py>(
    py: Python<'py>,
    private_key: &str,
    wrapped: In,
    info: In,
) -> PyResult<Bound<'py, PyBytes>> {
    let sk = PrivateKey::from_text(private_key).or_raise()?;
    let dek = sk.unwrap(wrapped.as_slice(), info.as_slice()).or_raise()?;
    Ok(PyBytes::new(py, dek.expose()))
}

/// A fresh random 32-byte KEK.
#[pyfunction]
pub(crate) fn generate_kek(py: Python<'_>) -> PyResult<Bound<'_, PyBytes>> {
    let kek = Kek::generate().or_raise()?;
    Ok(PyBytes::new(py, kek.expose_secret()))
}

/// The legacy proxy's KEK for a secret string: SHA-256 of it (SPEC.md §11).
#[pyfunction]
pub(crate) fn legacy_kek_from_secret<'py>(py: Python<'py>, secret: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, Kek::legacy_from_secret_string(secret).expose_secret())
}
