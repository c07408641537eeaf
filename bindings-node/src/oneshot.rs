//! One-shot encryption and decryption of whole objects and parts.
//!
//! Sync functions borrow their input (`&[u8]`, no copy) and run on the calling thread.
//! Async functions (`...Async`, wrapped with `AbortSignal` support in lib/index.js) hold a
//! reference to the caller's bytes and run the same Rust functions on the libuv pool. The
//! whole-object paths use core's `*_checked` calls, which look at the cancellation token
//! between steps.

use isec_core::shape::Shape as CoreShape;
use isec_core::{ObjectKey as CoreKey, oneshot};
use napi::Env;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;

use crate::convert::{Bytes, Flag, OwnedBytes, Ref, U64, disjoint};
use crate::error::{Failure, Fallible};
use crate::keys::ObjectKey;
use crate::layout::Shape;
use crate::pool::{Cancel, CancelToken, IntoWork, Work, check, lent, token_of};
use crate::{C, Js};

fn encrypt(key: &CoreKey, pt: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    oneshot::encrypt_checked::<C, Failure>(key, pt, &mut || check(cancel))
}

fn decrypt(key: &CoreKey, ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    oneshot::decrypt_checked::<C, Failure>(key, ct, &mut || check(cancel))
}

fn decrypt_table(key: &CoreKey, table: &[u8], ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    oneshot::decrypt_with_table_checked::<C, Failure>(key, table, ct, &mut || check(cancel))
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
    #[doc = "`encryptSync` on the libuv pool."] encrypt_async => encrypt,
        (key: ObjectKey "ObjectKey"), (), (plaintext)
}

sync_and_async! {
    #[doc = "Decrypts a whole single- or parts-layout object: all or nothing."] decrypt_sync,
    #[doc = "`decryptSync` on the libuv pool."] decrypt_async => decrypt,
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
        let out = lent(&mut output);
        disjoint(&plaintext.0, out)?;
        Ok(oneshot::encrypt_part_into::<C>(&k, n, is_last.0, &plaintext.0, out)?)
    })
}
