//! The objects a re-encryption job reads from: an isec object, or a legacy proxy object being
//! migrated (SPEC.md §11.4). Each says how long it is, what identifies it in a checkpoint,
//! and how to decrypt it from any plaintext offset, which is all the job needs to resume.

use alloc::boxed::Box;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cipher::FrameCipher;
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::kdf::{LABEL_CHECKPOINT_SOURCE, ObjectKey, hmac_sha256};
use crate::keyring::Keyring;
use crate::limits::KEY_LEN;
use crate::shape::Shape;
use crate::stream::{Decryptor, Stream};

/// A decryptor the job can drive: isec's own, or the legacy proxy's. `Send + Sync` so that
/// a job can move between threads and be shared behind a lock.
pub type SourceDecryptor = Box<dyn Stream + Send + Sync>;

/// What a job and its checkpoints know of a source: fixed when the source is opened, so
/// every kind of source answers the same questions from one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFacts {
    /// Plaintext bytes in the object.
    pub plaintext_len: u64,
    /// Stored ciphertext bytes.
    pub ciphertext_len: u64,
    /// A digest that changes if the object (its metadata or size) changes.
    pub identity: [u8; 32],
}

impl SourceFacts {
    /// The facts of a source of these lengths whose identity is the SHA-256 of `described_by`
    /// in order (a label, then what changes when the object does).
    fn new(plaintext_len: u64, ciphertext_len: u64, described_by: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        described_by.iter().for_each(|b| h.update(b));
        Self { plaintext_len, ciphertext_len, identity: h.finalize().into() }
    }
}

/// A source object that can be decrypted from any plaintext offset.
pub trait Source: Send + Sync {
    /// The object's lengths and identity.
    fn facts(&self) -> &SourceFacts;
    /// Plaintext bytes in the object.
    fn plaintext_len(&self) -> u64 {
        self.facts().plaintext_len
    }
    /// Stored ciphertext bytes.
    fn ciphertext_len(&self) -> u64 {
        self.facts().ciphertext_len
    }
    /// A digest that changes if the object (its metadata or size) changes.
    fn identity(&self) -> [u8; 32] {
        self.facts().identity
    }
    /// A secret only a holder of the source's key knows: half of a checkpoint's MAC key, so
    /// that being able to wrap a DEK under some kid of the keyring is not enough to mint a
    /// checkpoint for this source.
    fn checkpoint_key(&self) -> Zeroizing<[u8; KEY_LEN]>;
    /// The ciphertext offset to read from, and a decryptor that releases plaintext from
    /// exactly `pt_offset` to the end when fed the ciphertext from that offset.
    ///
    /// # Errors
    /// Shape or key errors.
    fn open_from(&self, pt_offset: u64) -> Result<(u64, SourceDecryptor)>;
}

/// An isec object as a re-encryption source.
pub struct IsecSource<C> {
    key: ObjectKey,
    shape: Shape,
    facts: SourceFacts,
    _cipher: core::marker::PhantomData<C>,
}

impl<C: FrameCipher + 'static> IsecSource<C> {
    /// Opens `envelope` with `keyring` for an object of `shape` (from its ciphertext length,
    /// or its segment table).
    ///
    /// # Errors
    /// As [`Keyring::open`].
    pub fn new(keyring: &Keyring, envelope: &Envelope, shape: Shape) -> Result<Self> {
        Self::with_key(keyring.open(envelope)?, envelope, shape)
    }

    /// The source from the key of `envelope`, opened beforehand (by a [`crate::KeyTask`]
    /// when the key answers asynchronously).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a key of another header.
    pub fn with_key(key: ObjectKey, envelope: &Envelope, shape: Shape) -> Result<Self> {
        if key.header() != envelope.header() {
            return Err(Error::InvalidParameter);
        }
        let (pt_len, ct_len) = (shape.plaintext_len(), shape.ciphertext_len());
        let facts = SourceFacts::new(pt_len, ct_len, &[b"isec source", &envelope.to_bytes(), &ct_len.to_be_bytes()]);
        Ok(Self { key, shape, facts, _cipher: core::marker::PhantomData })
    }
}

impl<C: FrameCipher + 'static> Source for IsecSource<C> {
    fn checkpoint_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        self.key.mac_key(LABEL_CHECKPOINT_SOURCE)
    }
    fn facts(&self) -> &SourceFacts {
        &self.facts
    }
    fn open_from(&self, pt_offset: u64) -> Result<(u64, SourceDecryptor)> {
        if pt_offset == 0 {
            // The whole object, so that an empty one's single frame is read and verified.
            return Ok((0, Box::new(Decryptor::<C>::with_shape(&self.key, self.shape.clone())?)));
        }
        let plan = self.shape.map_range(pt_offset, self.shape.plaintext_len());
        let dec = Decryptor::<C>::for_range(&self.key, self.shape.clone(), &plan)?;
        Ok((plan.ct_start, Box::new(dec)))
    }
}

/// A legacy proxy object as a re-encryption source: migration to isec (SPEC.md §11.4).
pub struct LegacySource<C> {
    key: crate::legacy::LegacyKey,
    object: crate::legacy::LegacyObject,
    facts: SourceFacts,
    _cipher: core::marker::PhantomData<C>,
}

impl<C: FrameCipher + 'static> LegacySource<C> {
    /// Opens a legacy object with the keyring's legacy key for its kid (`kid` overrides the
    /// object's own, for the oldest objects that recorded none).
    ///
    /// # Errors
    /// [`Error::VersionRefused`] if the keyring refuses legacy objects, key errors, and
    /// [`Error::UnwrapFailed`].
    pub fn new(keyring: &Keyring, object: crate::legacy::LegacyObject, kid: Option<&str>) -> Result<Self> {
        let key = keyring.open_legacy(&object, kid)?;
        let (pt_len, ct_len) = (object.plaintext_len(), object.ciphertext_len());
        let dek = object.wrapped_dek_b64().as_bytes();
        let facts =
            SourceFacts::new(pt_len, ct_len, &[b"legacy source", dek, &ct_len.to_be_bytes(), &pt_len.to_be_bytes()]);
        Ok(Self { key, object, facts, _cipher: core::marker::PhantomData })
    }
}

impl<C: FrameCipher + 'static> Source for LegacySource<C> {
    fn checkpoint_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(hmac_sha256(self.key.dek().expose(), &[LABEL_CHECKPOINT_SOURCE]))
    }
    fn facts(&self) -> &SourceFacts {
        &self.facts
    }
    /// The migration decryptor: seals too long to buffer (the proxy wrote single objects of
    /// up to 32 MiB and early multipart parts of up to 5 GiB as one seal) are decrypted as
    /// they arrive and their tags checked at their ends. Their plaintext only ever reaches
    /// the new object's pending upload, which the job never checkpoints past
    /// [`Stream::verified_pt_end`] and which is abandoned if a tag fails.
    fn open_from(&self, pt_offset: u64) -> Result<(u64, SourceDecryptor)> {
        use crate::legacy::LegacyDecryptor;
        if pt_offset == 0 {
            // The whole object, so that an empty one's single seal is read and verified.
            return Ok((0, Box::new(LegacyDecryptor::<C>::for_migration(&self.key, &self.object, None)?)));
        }
        let range = self.object.plan_range(pt_offset, self.object.plaintext_len())?;
        let dec = LegacyDecryptor::<C>::for_migration(&self.key, &self.object, Some(&range))?;
        Ok((range.ct_start, Box::new(dec)))
    }
}
