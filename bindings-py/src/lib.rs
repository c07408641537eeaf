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
mod keyring;
mod layout;
mod legacy;
mod reencrypt;
mod s3;
mod stream;

use pyo3::prelude::*;

/// The native module. The typed public API is the `isec` package, which re-exports it.
#[pymodule]
fn _isec(m: &Bound<'_, PyModule>) -> PyResult<()> {
    error::register(m)?;

    m.add_class::<envelope::PyEnvelope>()?;
    m.add_class::<envelope::PyEnvelopeInfo>()?;
    m.add_class::<envelope::PyObjectKey>()?;
    m.add_class::<envelope::PyNonce>()?;
    m.add_class::<envelope::PyFramePosition>()?;

    m.add_class::<keyring::PyKeyring>()?;
    m.add_class::<keyring::PyKeyInfo>()?;
    m.add_function(wrap_pyfunction!(keyring::generate_kek, m)?)?;
    m.add_function(wrap_pyfunction!(keyring::legacy_kek_from_secret, m)?)?;

    m.add_class::<layout::PyShape>()?;
    m.add_class::<layout::PyRangePlan>()?;
    m.add_class::<layout::PySegment>()?;
    m.add_class::<layout::PySegmentTable>()?;
    m.add_function(wrap_pyfunction!(layout::shape_for, m)?)?;
    m.add_function(wrap_pyfunction!(layout::fit_part_size, m)?)?;

    m.add_class::<stream::PyEncryptor>()?;
    m.add_class::<stream::PyDecryptor>()?;
    m.add_function(wrap_pyfunction!(stream::encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(stream::decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(stream::encrypt_part, m)?)?;
    m.add_function(wrap_pyfunction!(stream::decrypt_with_table, m)?)?;
    m.add_function(wrap_pyfunction!(stream::decrypt_range, m)?)?;

    m.add_class::<decisions::PyObjectFormat>()?;
    m.add_class::<decisions::PyCopyLimits>()?;
    m.add_class::<decisions::PyCopyPlan>()?;
    m.add_class::<decisions::PyTally>()?;
    m.add_class::<decisions::PyScanPlanner>()?;
    m.add_function(wrap_pyfunction!(decisions::classify, m)?)?;
    m.add_function(wrap_pyfunction!(decisions::decide_copy, m)?)?;
    m.add_function(wrap_pyfunction!(decisions::legacy_sidecar_key, m)?)?;
    m.add_function(wrap_pyfunction!(decisions::table_sidecar_key, m)?)?;
    m.add_function(wrap_pyfunction!(decisions::table_source, m)?)?;
    m.add_function(wrap_pyfunction!(decisions::object_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(decisions::user_metadata, m)?)?;

    m.add_class::<s3::PyObjectOpen>()?;
    m.add_class::<s3::PyOpenStep>()?;
    m.add_class::<s3::PyOpened>()?;
    m.add_class::<s3::PyS3Request>()?;
    m.add_class::<s3::PyCopyStep>()?;
    m.add_class::<s3::PyWholeRead>()?;
    m.add_function(wrap_pyfunction!(s3::first_part_number, m)?)?;
    m.add_function(wrap_pyfunction!(s3::copy_steps, m)?)?;
    m.add_function(wrap_pyfunction!(s3::migrate_steps, m)?)?;
    m.add_class::<s3::PyMigration>()?;

    m.add_class::<reencrypt::PyIsecSource>()?;
    m.add_class::<reencrypt::PyLegacySource>()?;
    m.add_class::<reencrypt::PyReencryption>()?;
    m.add_class::<reencrypt::PyProgress>()?;
    m.add_class::<reencrypt::PyStep>()?;
    m.add_class::<reencrypt::PyCheckpoint>()?;

    m.add_class::<legacy::PyLegacyMetadata>()?;
    m.add_class::<legacy::PyLegacySidecar>()?;
    m.add_class::<legacy::PyLegacyObject>()?;
    m.add_class::<legacy::PyLegacySeal>()?;
    m.add_class::<legacy::PyLegacySegment>()?;
    m.add_class::<legacy::PyLegacyRange>()?;
    m.add_class::<legacy::PyLegacyKey>()?;
    m.add_class::<legacy::PyLegacyDecryptor>()?;
    m.add_function(wrap_pyfunction!(legacy::legacy_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(legacy::legacy_decrypt_range, m)?)?;
    m.add_function(wrap_pyfunction!(legacy::legacy_part_nonce, m)?)?;
    m.add_function(wrap_pyfunction!(legacy::legacy_frame_nonce, m)?)?;
    m.add_function(wrap_pyfunction!(legacy::legacy_generation_for, m)?)?;
    m.add_function(wrap_pyfunction!(legacy::legacy_split_seals, m)?)?;

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
    m.add("GIL_RELEASE_THRESHOLD", buffers::DETACH_THRESHOLD)?;
    Ok(())
}
