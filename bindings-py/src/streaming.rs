//! What every streaming context of the package shares: `update` / `update_into` /
//! `finalize` / `finalize_into` over core's sans-IO contexts, the GIL released on large
//! inputs, and locking after any error (SPEC.md §5.3: a context refuses further use).

use isec_core::legacy::LegacyDecryptor;
use isec_core::{AwsLc, Decryptor, Encryptor, Error};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::{In, Out, disjoint, maybe_detach, wipe};
use crate::error::{OrRaise, to_py};

/// A core streaming context, seen uniformly.
pub(crate) trait Context: Send + Sized {
    /// Whether `update_len` is exact (the encryptor) rather than an upper bound.
    const EXACT: bool;
    fn update_len(&self, input_len: usize) -> usize;
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, Error>;
    fn finish_len(&self) -> usize;
    fn finish(self, out: &mut [u8]) -> Result<usize, Error>;
}

impl Context for Encryptor<AwsLc> {
    const EXACT: bool = true;
    fn update_len(&self, input_len: usize) -> usize {
        Encryptor::update_len(self, input_len)
    }
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        Encryptor::update(self, input, out)
    }
    fn finish_len(&self) -> usize {
        Encryptor::finish_len(self)
    }
    fn finish(self, out: &mut [u8]) -> Result<usize, Error> {
        Encryptor::finish(self, out)
    }
}

impl Context for Decryptor<AwsLc> {
    const EXACT: bool = false;
    fn update_len(&self, input_len: usize) -> usize {
        Decryptor::update_len(self, input_len)
    }
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        Decryptor::update(self, input, out)
    }
    fn finish_len(&self) -> usize {
        Decryptor::finish_len(self)
    }
    fn finish(self, out: &mut [u8]) -> Result<usize, Error> {
        Decryptor::finish(self, out)
    }
}

impl Context for LegacyDecryptor<AwsLc> {
    const EXACT: bool = false;
    fn update_len(&self, input_len: usize) -> usize {
        LegacyDecryptor::update_len(self, input_len)
    }
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        LegacyDecryptor::update(self, input, out)
    }
    fn finish_len(&self) -> usize {
        LegacyDecryptor::finish_len(self)
    }
    fn finish(self, out: &mut [u8]) -> Result<usize, Error> {
        LegacyDecryptor::finish(self, out)
    }
}

/// Reused output memory above this size is given back after the call instead of kept.
pub(crate) const SCRATCH_KEEP: usize = 16 << 20;

/// A context that locks (becomes `None`) after any error or after finalizing.
pub(crate) struct Stream<C: Context> {
    ctx: Option<C>,
    /// Output memory reused between `update` calls of contexts whose output length is only
    /// bounded: fresh memory costs page faults on every call.
    scratch: Vec<u8>,
}

impl<C: Context> Stream<C> {
    pub(crate) fn new(ctx: C) -> Self {
        Self { ctx: Some(ctx), scratch: Vec::new() }
    }

    /// The live context, or `invalid_state` once locked.
    pub(crate) fn ctx(&self) -> PyResult<&C> {
        self.ctx.as_ref().ok_or_else(|| to_py(Error::InvalidState))
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.ctx.is_none()
    }

    /// Runs `f` on the context; any error locks it.
    pub(crate) fn run<T>(&mut self, f: impl FnOnce(&mut C, &mut Vec<u8>) -> PyResult<T>) -> PyResult<T> {
        let ctx = self.ctx.as_mut().ok_or_else(|| to_py(Error::InvalidState))?;
        let r = f(ctx, &mut self.scratch);
        if r.is_err() {
            self.ctx = None;
            self.scratch.fill(0);
        }
        if self.scratch.len() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        r
    }

    pub(crate) fn update<'py>(&mut self, py: Python<'py>, data: &In) -> PyResult<Bound<'py, PyBytes>> {
        let input = data.as_slice();
        self.run(|ctx, scratch| {
            let need = ctx.update_len(input.len());
            if C::EXACT {
                PyBytes::new_with(py, need, |out| {
                    let n = maybe_detach(py, input.len(), || ctx.update(input, out)).or_raise()?;
                    if n == need { Ok(()) } else { Err(to_py(Error::InvalidState)) }
                })
            } else {
                if scratch.len() < need {
                    scratch.resize(need, 0);
                }
                let out = &mut scratch[..need];
                let n = maybe_detach(py, input.len(), || ctx.update(input, out)).or_raise()?;
                Ok(PyBytes::new(py, &scratch[..n]))
            }
        })
    }

    pub(crate) fn update_into(&mut self, py: Python<'_>, data: &In, out: &mut Out) -> PyResult<usize> {
        self.run(|ctx, _| {
            let (input, out) = disjoint(data, out);
            let r = maybe_detach(py, input.len(), || ctx.update(&input, out));
            wipe(input);
            r.or_raise()
        })
    }

    /// Takes the context out for a consuming call; the stream is locked afterwards.
    pub(crate) fn take(&mut self) -> PyResult<C> {
        self.scratch = Vec::new();
        self.ctx.take().ok_or_else(|| to_py(Error::InvalidState))
    }

    pub(crate) fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let ctx = self.ctx.take().ok_or_else(|| to_py(Error::InvalidState))?;
        self.scratch = Vec::new();
        let need = ctx.finish_len();
        let mut out = vec![0u8; need];
        let n = ctx.finish(&mut out).or_raise()?;
        Ok(PyBytes::new(py, &out[..n]))
    }

    pub(crate) fn finalize_into(&mut self, out: &mut Out) -> PyResult<usize> {
        let ctx = self.ctx.take().ok_or_else(|| to_py(Error::InvalidState))?;
        self.scratch = Vec::new();
        ctx.finish(out.as_mut_slice()).or_raise()
    }
}
