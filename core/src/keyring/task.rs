//! Keyring operations as resumable tasks, so that a key held by a service the caller reaches
//! asynchronously (a KMS behind a network call) needs neither a blocking wrapper nor a
//! retried operation (the rustls model: core says what it needs, the caller fetches it and
//! feeds it back).
//!
//! A task opens, creates or rewraps one envelope. [`KeyTask::step`] does everything core can
//! do itself, keys with a synchronous wrapper included, and stops at a [`KeyRequest`] for a
//! key the caller answers for; [`KeyTask::answer`] feeds the wrapper's output back. Core
//! keeps every decision (which key, its state, the commitment check) and checks every
//! answer. A create task draws its own DEK, and its wrap answer can only complete that task,
//! so every envelope gets its own DEK.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::mem;

use zeroize::Zeroizing;

use super::{Keyring, Opener, Wrapper};
#[cfg(any(feature = "getrandom", feature = "hazmat"))]
use crate::envelope::Params;
use crate::envelope::{Envelope, Kid};
use crate::error::{Error, Result};
use crate::header::{Header, VERSION};
use crate::kdf::ObjectKey;
use crate::limits::KEY_LEN;
use crate::recipient;
use crate::wrap::{Dek, WrapAlg, WrappedKey};

/// What the caller's wrapper must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    /// Wrap the input (a DEK); answer with the wrapped key.
    Wrap,
    /// Unwrap the input (a wrapped key); answer with the 32-byte DEK.
    Unwrap,
}

impl KeyOp {
    /// Stable name: `wrap` or `unwrap`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Wrap => "wrap",
            Self::Unwrap => "unwrap",
        }
    }
}

/// One wrap or unwrap the caller must do under `kid`. The input of a wrap is a DEK: it is
/// wiped when the request is dropped.
pub struct KeyRequest {
    kid: String,
    op: KeyOp,
    alg: WrapAlg,
    input: Zeroizing<Vec<u8>>,
    info: Vec<u8>,
}

impl KeyRequest {
    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Wrap or unwrap.
    #[must_use]
    pub fn op(&self) -> KeyOp {
        self.op
    }

    /// The DEK to wrap, or the wrapped key to unwrap.
    #[must_use]
    pub fn input(&self) -> &[u8] {
        &self.input
    }

    /// The wrap algorithm: [`WrapAlg::External`] for a KMS key, [`WrapAlg::HpkeX25519`] for
    /// the unwrap of a public-key recipient's envelope by the service holding its private key.
    #[must_use]
    pub fn wrap_alg(&self) -> WrapAlg {
        self.alg
    }

    /// For [`WrapAlg::HpkeX25519`], the HPKE `info` the wrapped DEK opens under (SPEC.md
    /// §3.5); empty otherwise.
    #[must_use]
    pub fn info(&self) -> &[u8] {
        &self.info
    }
}

impl core::fmt::Debug for KeyRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KeyRequest({} under {:?}, {} bytes)", self.op.name(), self.kid, self.input.len())
    }
}

/// Where a task is.
pub enum KeyStep<T> {
    /// Done.
    Ready(T),
    /// Waiting for the caller's answer to this request.
    Need(KeyRequest),
}

/// What a finished task produced.
#[derive(Debug)]
pub enum KeyOutput {
    /// An opened envelope's object key.
    Key(ObjectKey),
    /// A new envelope and its object key.
    Created(Envelope, ObjectKey),
    /// A rewrapped envelope.
    Envelope(Envelope),
}

impl KeyOutput {
    /// The object key of an open task.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another task's output.
    pub fn key(self) -> Result<ObjectKey> {
        match self {
            Self::Key(k) => Ok(k),
            _ => Err(Error::InvalidParameter),
        }
    }

    /// The envelope and key of a create task.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another task's output.
    pub fn created(self) -> Result<(Envelope, ObjectKey)> {
        match self {
            Self::Created(e, k) => Ok((e, k)),
            _ => Err(Error::InvalidParameter),
        }
    }

    /// The envelope of a rewrap task.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another task's output.
    pub fn envelope(self) -> Result<Envelope> {
        match self {
            Self::Envelope(e) => Ok(e),
            _ => Err(Error::InvalidParameter),
        }
    }
}

enum Stage {
    /// Open: unwrap the envelope's DEK.
    Open(Envelope),
    /// Create: wrap the new DEK under `kid`.
    #[cfg_attr(
        not(any(feature = "getrandom", feature = "hazmat")),
        allow(dead_code, reason = "only the creating constructors make it")
    )]
    Create {
        kid: Kid,
        header: Header,
        dek: Dek,
    },
    /// Rewrap, first half: unwrap the DEK with the key the envelope names.
    Unwrap {
        envelope: Envelope,
        to: Kid,
    },
    /// Rewrap, second half: wrap the checked DEK under `to`.
    Wrap {
        envelope: Envelope,
        to: Kid,
        dek: Dek,
    },
    Done(KeyOutput),
    /// Finished or failed: a task runs once.
    Spent,
}

/// One keyring operation in progress (see the module documentation).
pub struct KeyTask {
    stage: Stage,
}

impl core::fmt::Debug for KeyTask {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match &self.stage {
            Stage::Open(_) => "open",
            Stage::Create { .. } => "create",
            Stage::Unwrap { .. } | Stage::Wrap { .. } => "rewrap",
            Stage::Done(_) => "done",
            Stage::Spent => "spent",
        };
        write!(f, "KeyTask({s})")
    }
}

fn version_check(keyring: &Keyring) -> Result<()> {
    if VERSION < keyring.min_version() { Err(Error::VersionRefused) } else { Ok(()) }
}

impl KeyTask {
    pub(super) fn open(keyring: &Keyring, envelope: &Envelope) -> Result<Self> {
        version_check(keyring)?;
        Ok(Self { stage: Stage::Open(envelope.clone()) })
    }

    #[cfg(any(feature = "getrandom", feature = "hazmat"))]
    pub(super) fn create(keyring: &Keyring, params: Params, dek: Dek, salt: [u8; KEY_LEN]) -> Result<Self> {
        let kid = keyring.active_kid()?;
        let header = params.header(salt)?;
        Ok(Self { stage: Stage::Create { kid: Kid::new(kid)?, header, dek } })
    }

    pub(super) fn rewrap(keyring: &Keyring, envelope: &Envelope, to: &str) -> Result<Self> {
        version_check(keyring)?;
        keyring.wrapper_for(to)?;
        Ok(Self { stage: Stage::Unwrap { envelope: envelope.clone(), to: Kid::new(to)? } })
    }

    /// Advances as far as core can: keys with a synchronous wrapper are used directly. Stops
    /// at the first request for a key the caller answers for, or when done (the output is
    /// handed over once).
    ///
    /// # Errors
    /// The keyring's errors ([`Error::UnknownKid`], [`Error::KeyDisabled`],
    /// [`Error::KeyNotActive`], [`Error::WrongKeyKind`]), [`Error::UnsupportedSuite`] for an
    /// envelope wrapped by another kind of key, a wrapper's errors, the commitment check;
    /// [`Error::InvalidParameter`] after the task finished or failed.
    pub fn step(&mut self, keyring: &Keyring) -> Result<KeyStep<KeyOutput>> {
        loop {
            let next = match &self.stage {
                Stage::Open(envelope) | Stage::Unwrap { envelope, .. } => match keyring.opener(envelope) {
                    Ok(Opener::Wrap(w)) => Next::Answer(envelope.unwrap_dek(w).map(Answer::Dek)),
                    Ok(Opener::Recipient(r)) => {
                        Next::Answer(r.unwrap(envelope.wrapped(), &recipient::info(envelope.header())).map(Answer::Dek))
                    }
                    Ok(Opener::Caller) => Next::Need(unwrap_request(envelope)),
                    Err(e) => Next::Answer(Err(e)),
                },
                Stage::Create { kid, dek, header } => wrap(keyring, kid, dek, header),
                Stage::Wrap { to, dek, envelope } => wrap(keyring, to, dek, envelope.header()),
                Stage::Done(_) | Stage::Spent => Next::Finish,
            };
            match next {
                Next::Answer(answer) => self.advance(answer)?,
                Next::Need(request) => return Ok(KeyStep::Need(request)),
                Next::Finish => {
                    return match mem::replace(&mut self.stage, Stage::Spent) {
                        Stage::Done(out) => Ok(KeyStep::Ready(out)),
                        _ => Err(Error::InvalidParameter),
                    };
                }
            }
        }
    }

    /// Feeds the caller's answer to the request [`KeyTask::step`] returned: the wrapped key
    /// for a wrap, the 32-byte DEK for an unwrap. Then call [`KeyTask::step`] again.
    ///
    /// # Errors
    /// [`Error::ExternalWrapperFailed`] for an answer of the wrong length (a DEK is 32 bytes,
    /// a wrapped key 1 to 200); the commitment check for an unwrapped DEK;
    /// [`Error::InvalidParameter`] when no request is pending.
    pub fn answer(&mut self, output: &[u8]) -> Result<()> {
        let answer = match &self.stage {
            Stage::Open(_) | Stage::Unwrap { .. } => <[u8; KEY_LEN]>::try_from(output)
                .map(|b| Answer::Dek(Dek::from_bytes(b)))
                .map_err(|_| Error::ExternalWrapperFailed),
            Stage::Create { .. } | Stage::Wrap { .. } => WrappedKey::from_slice(output)
                .map(|k| Answer::Wrapped(WrapAlg::External, k))
                .map_err(|_| Error::ExternalWrapperFailed),
            Stage::Done(_) | Stage::Spent => return Err(Error::InvalidParameter),
        };
        self.advance(answer)
    }

    /// [`KeyTask::step`] for a task held behind a handle (a binding's object): the next
    /// request, or `None` when done, the output then waiting for [`KeyTask::finish`].
    ///
    /// # Errors
    /// As [`KeyTask::step`].
    pub fn next_request(&mut self, keyring: &Keyring) -> Result<Option<KeyRequest>> {
        match self.step(keyring)? {
            KeyStep::Ready(out) => {
                self.stage = Stage::Done(out);
                Ok(None)
            }
            KeyStep::Need(request) => Ok(Some(request)),
        }
    }

    /// The output of a task [`KeyTask::next_request`] finished, handed over once.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] before the task is done, or after the output was taken.
    pub fn finish(&mut self) -> Result<KeyOutput> {
        match mem::replace(&mut self.stage, Stage::Spent) {
            Stage::Done(out) => Ok(out),
            other => {
                self.stage = other;
                Err(Error::InvalidParameter)
            }
        }
    }

    /// Runs the task with the keyring's synchronous wrappers only.
    ///
    /// # Errors
    /// As [`KeyTask::step`]; [`Error::ExternalWrapperFailed`] when a key needs the caller's
    /// answer.
    pub fn run(mut self, keyring: &Keyring) -> Result<KeyOutput> {
        match self.step(keyring)? {
            KeyStep::Ready(out) => Ok(out),
            KeyStep::Need(_) => Err(Error::ExternalWrapperFailed),
        }
    }

    /// The next stage after a wrap or unwrap. A failure spends the task.
    fn advance(&mut self, answer: Result<Answer>) -> Result<()> {
        let stage = mem::replace(&mut self.stage, Stage::Spent);
        self.stage = match (stage, answer?) {
            (Stage::Open(envelope), Answer::Dek(dek)) => Stage::Done(KeyOutput::Key(envelope.open_dek(&dek)?)),
            (Stage::Unwrap { envelope, to }, Answer::Dek(dek)) => {
                envelope.open_dek(&dek)?;
                Stage::Wrap { envelope, to, dek }
            }
            (Stage::Create { kid, header, dek }, Answer::Wrapped(alg, wrapped)) => {
                let (envelope, key) = Envelope::assemble(header, kid, alg, wrapped, &dek);
                Stage::Done(KeyOutput::Created(envelope, key))
            }
            (Stage::Wrap { envelope, to, .. }, Answer::Wrapped(alg, wrapped)) => {
                Stage::Done(KeyOutput::Envelope(envelope.rewrapped(to, alg, wrapped)))
            }
            _ => return Err(Error::InvalidParameter),
        };
        Ok(())
    }
}

/// A wrapper's result, from core's own wrapper or the caller's answer.
enum Answer {
    Dek(Dek),
    Wrapped(WrapAlg, WrappedKey),
}

/// What a step does next.
enum Next {
    /// Advance with core's own wrap or unwrap (or its error).
    Answer(Result<Answer>),
    /// Stop for the caller.
    Need(KeyRequest),
    /// Hand the output over.
    Finish,
}

/// Wraps `dek` under `kid` for an envelope with `header`, or asks the caller to.
fn wrap(keyring: &Keyring, kid: &Kid, dek: &Dek, header: &Header) -> Next {
    match keyring.wrapper_for(kid.as_str()) {
        Ok(Wrapper::Wrap(w)) => Next::Answer(w.wrap(dek).map(|k| Answer::Wrapped(w.alg(), k))),
        Ok(Wrapper::Recipient(pk)) => Next::Answer(seal(pk, dek, header)),
        Ok(Wrapper::Caller) => Next::Need(KeyRequest {
            kid: kid.as_str().to_string(),
            op: KeyOp::Wrap,
            alg: WrapAlg::External,
            input: Zeroizing::new(dek.expose().to_vec()),
            info: Vec::new(),
        }),
        Err(e) => Next::Answer(Err(e)),
    }
}

/// A recipient's wrap draws a fresh ephemeral key; a keyring built without a randomness
/// source (no `getrandom`) cannot make one.
fn seal(pk: &crate::recipient::PublicKey, dek: &Dek, header: &Header) -> Result<Answer> {
    #[cfg(feature = "getrandom")]
    let wrapped = pk.wrap(dek, header);
    #[cfg(not(feature = "getrandom"))]
    let wrapped = {
        let _ = (pk, dek, header);
        Err(Error::RandomnessUnavailable)
    };
    wrapped.map(|k| Answer::Wrapped(WrapAlg::HpkeX25519, k))
}

fn unwrap_request(envelope: &Envelope) -> KeyRequest {
    let alg = envelope.wrap_alg();
    KeyRequest {
        kid: envelope.kid().to_string(),
        op: KeyOp::Unwrap,
        alg,
        input: Zeroizing::new(envelope.wrapped().to_vec()),
        info: if alg == WrapAlg::HpkeX25519 { recipient::info(envelope.header()).to_vec() } else { Vec::new() },
    }
}
