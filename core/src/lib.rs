//! # isec-core
//!
//! Client-side envelope encryption for object storage. Each object gets a random DEK,
//! wrapped under a key-encryption key named by a key id; the body is a sequence of
//! AES-256-GCM frames whose nonces carry their position, so reordering, truncation and
//! extension are detected without binding the ciphertext to the object's name: a byte copy
//! of an object still decrypts, which is what lets copies stay server-side.
//!
//! `SPEC.md` at the repository root is the normative description of every byte; modules
//! cite its sections. The crate is `no_std`; `alloc` adds the streaming contexts and one-shot
//! helpers, `getrandom` fresh keys and prefixes, `aws-lc` the fast native frame cipher.
//!
//! Modules import only modules below them, never each other, so each can be read (and
//! tested) with just what sits underneath. From the bottom:
//! `error` and `limits`; then `random`, `nonce`, `cipher`, `header`; `wrap` and `frame`;
//! `kdf`; `envelope` and `segment_table`; `shape` (an object's geometry) and `range`;
//! `container` (the self-contained local file); `stream`;
//! `oneshot` and `legacy`; `keyring` and `metadata`; `copy` and `scan`; `reencrypt` and `s3`; `job` (bucket jobs) on top.
//!
//! ```
//! # #[cfg(all(feature = "getrandom", feature = "alloc"))] {
//! use isec_core::{Envelope, Kek, Params, oneshot, DefaultCipher};
//!
//! let kek = Kek::generate()?;
//! let (envelope, key) = Envelope::create(&kek, "kek-2026", Params::default())?;
//! let ciphertext = oneshot::encrypt::<DefaultCipher>(&key, b"hello")?;
//!
//! // Later, elsewhere: the envelope text travels in S3 metadata.
//! let text = envelope.to_text();
//! let key = Envelope::decode_text(&text)?.open(&kek)?;
//! assert_eq!(oneshot::decrypt::<DefaultCipher>(&key, &ciphertext)?, b"hello");
//! # }
//! # Ok::<(), isec_core::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
#[allow(unused_macros, reason = "some users are behind features")]
mod accessors;

pub mod cipher;
pub mod container;
pub mod envelope;
pub(crate) mod error;
pub mod frame;
pub(crate) mod header;
pub mod kdf;
pub mod limits;
pub mod nonce;
pub mod range;
pub mod shape;
pub mod wrap;

#[cfg(feature = "getrandom")]
pub(crate) mod random;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "alloc")]
pub mod copy;
#[cfg(feature = "alloc")]
pub mod job;
#[cfg(feature = "alloc")]
pub mod keyring;
#[cfg(feature = "alloc")]
pub mod legacy;
#[cfg(feature = "alloc")]
pub mod metadata;
#[cfg(feature = "alloc")]
pub mod oneshot;
#[cfg(feature = "alloc")]
pub mod probe;
#[cfg(feature = "alloc")]
pub mod recipient;
#[cfg(feature = "alloc")]
pub mod reencrypt;
#[cfg(feature = "alloc")]
pub mod s3;
#[cfg(feature = "alloc")]
pub mod scan;
#[cfg(feature = "alloc")]
pub mod segment_table;
#[cfg(feature = "alloc")]
pub mod stream;

#[cfg(feature = "aws-lc")]
pub use cipher::AwsLc;
pub use cipher::{DefaultCipher, FrameCipher, RustCrypto};
pub use envelope::{Envelope, EnvelopeInfo, Header, Layout, LayoutRequest, Params};
pub use error::{Error, ErrorFamily, Result};
pub use kdf::ObjectKey;
#[cfg(feature = "alloc")]
pub use keyring::{KeyInfo, KeyOp, KeyOutput, KeyRequest, KeyState, KeyStep, KeyTask, Keyring};
pub use nonce::{FramePosition, Nonce, Prefix};
#[cfg(feature = "alloc")]
pub use segment_table::SegmentTable;
pub use shape::{FrameSpec, RangePlan, Segment, Shape};
#[cfg(feature = "alloc")]
pub use stream::{Decryptor, Encryptor, Stream};
pub use wrap::{Dek, Kek, KeyWrap, WrapAlg, WrappedKey};
