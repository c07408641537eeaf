//! One-shot encryption and decryption of whole objects and parts.
//!
//! Sync functions borrow their input (`&[u8]`, no copy) and run on the calling thread.
//! Async functions (`...Async`, wrapped with `AbortSignal` support in lib/index.js) hold a
//! reference to the caller's bytes and run the same Rust functions on the libuv pool. The
//! whole-object paths drive core's streaming contexts in 4 MiB steps so that a cancellation
//! is seen between steps; the bytes and errors are those of core's `oneshot` calls (the
//! corpus runs both paths); core's `oneshot` functions have no cancellation hook.

use isec_core::Stream as _;
use isec_core::envelope::Layout;
use isec_core::shape::Shape as CoreShape;
use isec_core::{Error as CoreError, ObjectKey as CoreKey, SegmentTable as CoreTable, oneshot};
use napi::Env;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;

use crate::convert::{Bytes, Flag, OwnedBytes, Ref, U64, disjoint};
use crate::error::{Failure, Fallible};
use crate::keys::ObjectKey;
use crate::layout::Shape;
use crate::pool::{Cancel, CancelToken, IntoWork, Work, check, lent, token_of};
use crate::{C, Js};

/// Input consumed between two cancellation checks.
const STEP: usize = 4 << 20;

fn usize_of(x: u64) -> Fallible<usize> {
    usize::try_from(x).map_err(|_| Failure::Core(CoreError::LimitExceeded))
}

/// One part into `out`: the bytes of `oneshot::encrypt_part` (a fresh nonce prefix).
fn encrypt_part_into(key: &CoreKey, part_number: u32, is_last: bool, pt: &[u8], out: &mut [u8]) -> Fallible<usize> {
    disjoint(pt, out)?;
    let mut enc = isec_core::Encryptor::<C>::for_part(key, part_number, is_last)?;
    let w = enc.update(pt, out)?;
    let rest = out.get_mut(w..).ok_or(CoreError::InvalidState)?;
    Ok(w + enc.finish(rest)?)
}

/// A whole single- or parts-layout object, checking `cancel` between steps.
pub(crate) fn encrypt_steps(key: &CoreKey, pt: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    // The shape gives the exact output length and the same errors as `oneshot::encrypt`.
    let shape = CoreShape::from_plaintext_len(key.header(), pt.len() as u64)?;
    let mut out = vec![0u8; usize_of(shape.ciphertext_len())?];
    let mut w = 0;
    for ordinal in 0..shape.segment_count() {
        check(cancel)?;
        let seg = shape.segment(ordinal).ok_or(CoreError::InvalidState)?;
        let body = &pt[usize_of(seg.pt_start)?..usize_of(seg.pt_start + seg.pt_len)?];
        let mut enc = match key.header().layout {
            Layout::Single => isec_core::Encryptor::<C>::new(key)?,
            _ => isec_core::Encryptor::<C>::for_part(key, seg.number, seg.is_last)?,
        };
        for chunk in body.chunks(STEP) {
            check(cancel)?;
            w += enc.update(chunk, &mut out[w..])?;
        }
        w += enc.finish(&mut out[w..])?;
    }
    out.truncate(w);
    Ok(out)
}

/// Runs a decryptor over a whole ciphertext in steps; all or nothing, as `oneshot`.
fn decrypt_steps(mut dec: isec_core::Decryptor<C>, ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    let mut out = vec![0u8; dec.update_len(ct.len())];
    let mut w = 0;
    let r = (|| {
        for chunk in ct.chunks(STEP) {
            check(cancel)?;
            w += dec.update(chunk, &mut out[w..])?;
        }
        w += dec.finish(&mut out[w..])?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            out.truncate(w);
            Ok(out)
        }
        Err(e) => {
            out.fill(0);
            Err(e)
        }
    }
}

pub(crate) fn decrypt_whole(key: &CoreKey, ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    decrypt_steps(isec_core::Decryptor::<C>::new(key)?, ct, cancel)
}

pub(crate) fn decrypt_table(key: &CoreKey, table: &[u8], ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    let table = CoreTable::decode(table, key)?;
    let shape = CoreShape::from_table(key.header(), table, ct.len() as u64)?;
    decrypt_steps(isec_core::Decryptor::<C>::with_shape(key, shape)?, ct, cancel)
}

fn encrypt_part(key: &CoreKey, part_number: U64, is_last: Flag, pt: &[u8], _: &Cancel) -> Fallible<Vec<u8>> {
    Ok(oneshot::encrypt_part::<C>(key, part_number.u32()?, is_last.0, pt)?)
}

/// `fetched`: the ciphertext `shape.mapRange(start, end)` names (core checks its length).
fn decrypt_range(
    key: &CoreKey,
    shape: &CoreShape,
    start: U64,
    end: U64,
    fetched: &[u8],
    _: &Cancel,
) -> Fallible<Vec<u8>> {
    Ok(oneshot::decrypt_fetched::<C>(key, shape.clone(), start.0, end.0, fetched)?)
}

/// A one-shot call in its two forms: `$sync` borrows the caller's bytes and runs `$run` on
/// the calling thread; `$async` holds them and runs the same `$run` on the libuv pool with
/// the call's cancellation token. `$run` takes the classes' core values, the numbers as
/// passed, the bytes and the token, in the JS argument order (classes, numbers, bytes).
/// Docs are `#[doc = "…"]` for the reason `crate::getters` gives.
macro_rules! sync_and_async {
    (
        $(#[doc = $sdoc:tt])* $sync:ident, $(#[doc = $adoc:tt])* $async:ident => $run:path,
        ($($r:ident: $rc:ident $rts:tt),*), ($($n:ident: $nt:ident $nts:tt),*), ($($b:ident),*)
    ) => {
        $(#[doc = $sdoc])*
        #[napi]
        pub fn $sync(
            env: Env,
            $(#[napi(ts_arg_type = $rts)] $r: Ref<$rc>,)*
            $(#[napi(ts_arg_type = $nts)] $n: $nt,)*
            $(#[napi(ts_arg_type = "Uint8Array")] $b: Bytes,)*
        ) -> napi::Result<Buffer> {
            $run($(&$r.inner,)* $($n,)* $($b.0,)* &None).map(Buffer::from).js(&env)
        }

        $(#[doc = $adoc])*
        #[napi(ts_return_type = "Promise<Buffer>")]
        pub fn $async(
            $(#[napi(ts_arg_type = $rts)] $r: Ref<$rc>,)*
            $(#[napi(ts_arg_type = $nts)] $n: $nt,)*
            $(#[napi(ts_arg_type = "Uint8Array")] $b: OwnedBytes,)*
            #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
        ) -> AsyncTask<Work> {
            $(let $r = $r.inner.clone();)*
            let c = token_of(token);
            Work::new(c.clone(), move || $run($(&$r,)* $($n,)* $(&$b.0,)* &c))
        }
    };
}
pub(crate) use sync_and_async;

sync_and_async! {
    #[doc = "Encrypts a whole single- or parts-layout object (fresh nonce prefixes)."] encrypt_sync,
    #[doc = "`encryptSync` on the libuv pool."] encrypt_async => encrypt_steps,
        (key: ObjectKey "ObjectKey"), (), (plaintext)
}

sync_and_async! {
    #[doc = "Decrypts a whole single- or parts-layout object: all or nothing."] decrypt_sync,
    #[doc = "`decryptSync` on the libuv pool."] decrypt_async => decrypt_whole,
        (key: ObjectKey "ObjectKey"), (), (ciphertext)
}

sync_and_async! {
    #[doc = "Encrypts part `partNumber` (1..=10000) of a parts- or table-layout object."] encrypt_part_sync,
    #[doc = "`encryptPartSync` on the libuv pool."] encrypt_part_async => encrypt_part,
        (key: ObjectKey "ObjectKey"), (part_number: U64 "number", is_last: Flag "boolean"), (plaintext)
}

sync_and_async! {
    #[doc = "Decrypts a whole table-layout object with its encoded segment table."] decrypt_with_table_sync,
    #[doc = "`decryptWithTableSync` on the libuv pool."] decrypt_with_table_async => decrypt_table,
        (key: ObjectKey "ObjectKey"), (), (table, ciphertext)
}

sync_and_async! {
    #[doc = "Decrypts the plaintext range `[start, end)` from `fetched`, the ciphertext bytes"]
    #[doc = "`shape.mapRange(start, end)` said to fetch."] decrypt_range_sync,
    #[doc = "`decryptRangeSync` on the libuv pool."] decrypt_range_async => decrypt_range,
        (key: ObjectKey "ObjectKey", shape: Shape "Shape"), (start: U64 "number", end: U64 "number"), (fetched)
}

/// `encryptPartAsync` writing into `output` (at least the part's ciphertext length:
/// `Shape.forPlaintext` gives it), for a caller that reuses its buffers; resolves to the
/// bytes written. Every call draws a fresh nonce prefix. Neither buffer may be read or
/// changed until the promise settles.
#[napi(ts_return_type = "Promise<number>")]
pub fn encrypt_part_into_async(
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "number")] part_number: U64,
    #[napi(ts_arg_type = "boolean")] is_last: Flag,
    #[napi(ts_arg_type = "Uint8Array")] plaintext: OwnedBytes,
    #[napi(ts_arg_type = "Uint8Array")] output: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
) -> AsyncTask<IntoWork> {
    let k = key.inner.clone();
    let mut output = output;
    IntoWork::new(token_of(token), move || {
        let n = part_number.u32()?;
        encrypt_part_into(&k, n, is_last.0, &plaintext.0, lent(&mut output))
    })
}
