//! `isec._isec`: the native module behind the `isec` Python package.
//!
//! Every byte of the format and every decision stays in `isec-core`; this crate converts
//! types, borrows Python buffers, releases the GIL around crypto on large inputs, and maps
//! core's errors to one exception hierarchy (`error.rs`). Frames use the AWS-LC backend.

mod buffers;
mod convert;
mod decisions;
mod envelope;
mod error;
mod job;
mod keyring;
mod layout;
mod legacy;
mod reencrypt;
mod s3;
mod stream;

/// The native module. The typed public API is the `isec` package, which re-exports it.
/// Declared as a module of `use` lists so each class or function is named once, not added
/// by one call each.
#[pyo3::pymodule]
mod _isec {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::decisions::{
        PyCopyLimits, PyCopyPlan, PyObjectFormat, PyScanPlanner, PyTally, classify, decide_copy, legacy_sidecar_key,
        object_metadata, table_sidecar_key, table_source, user_metadata,
    };
    #[pymodule_export]
    use crate::envelope::{PyEnvelope, PyEnvelopeInfo, PyFramePosition, PyNonce, PyObjectKey};
    #[pymodule_export]
    use crate::job::{PyBucketJob, PyJobAction};
    #[pymodule_export]
    use crate::keyring::{
        PyKeyInfo, PyKeyring, generate_kek, generate_recipient, legacy_kek_from_secret, open_wrapped_dek,
        recipient_public_key,
    };
    #[pymodule_export]
    use crate::layout::{PyRangePlan, PySegment, PySegmentTable, PyShape, fit_part_size, shape_for};
    #[pymodule_export]
    use crate::legacy::{
        PyLegacyDecryptor, PyLegacyKey, PyLegacyMetadata, PyLegacyObject, PyLegacyRange, PyLegacySeal, PyLegacySegment,
        PyLegacySidecar, legacy_decrypt, legacy_decrypt_range, legacy_frame_nonce, legacy_generation_for,
        legacy_part_nonce, legacy_split_seals,
    };
    #[pymodule_export]
    use crate::reencrypt::{PyCheckpoint, PyIsecSource, PyLegacySource, PyProgress, PyReencryption, PyStep};
    #[pymodule_export]
    use crate::s3::{
        PyCopyStep, PyMigration, PyObjectOpen, PyOpenStep, PyOpened, PyS3Request, PyWholeRead, copy_steps,
        first_part_number, migrate_steps,
    };
    #[pymodule_export]
    use crate::stream::{PyDecryptor, PyEncryptor, decrypt, decrypt_range, decrypt_with_table, encrypt, encrypt_part};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::error::register(m)?;
        // Names core defines, re-exported as they are (no spec constant is defined here).
        m.add("META_ENVELOPE", isec_core::envelope::META_ENVELOPE)?;
        m.add("META_KID", isec_core::envelope::META_KID)?;
        m.add("META_TABLE", isec_core::metadata::META_TABLE)?;
        m.add("FORMAT_VERSION", isec_core::envelope::VERSION)?;
        m.add("FRAME_OVERHEAD", isec_core::limits::FRAME_OVERHEAD)?;
        m.add("MIN_FRAME_SIZE", isec_core::limits::frame_size(isec_core::limits::MIN_FRAME_EXP))?;
        m.add("MAX_FRAME_SIZE", isec_core::limits::frame_size(isec_core::limits::MAX_FRAME_EXP))?;
        m.add("DEFAULT_FRAME_SIZE", isec_core::limits::frame_size(isec_core::limits::DEFAULT_FRAME_EXP))?;
        m.add("MAX_PARTS", isec_core::limits::MAX_PARTS)?;
        m.add("CARRIED_HEADERS", pyo3::types::PyTuple::new(m.py(), isec_core::s3::CARRIED_HEADERS)?)?;
        m.add("MAX_TABLE_LEN", isec_core::s3::MAX_TABLE_LEN)?;
        m.add("FIRST_PART", isec_core::s3::FIRST_PART)?;
        m.add("EMPTY_OBJECT_STATUS", isec_core::s3::EMPTY_OBJECT_STATUS)?;
        m.add("LEGACY_SIDECAR_CAP", isec_core::legacy::DEFAULT_SIDECAR_CAP)?;
        m.add("GIL_RELEASE_THRESHOLD", crate::buffers::DETACH_THRESHOLD)?;
        Ok(())
    }
}
