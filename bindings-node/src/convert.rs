//! Argument types. Each converts a JS value without copying where it can, and reports a
//! value of the wrong type through the one error mapper (`invalid_parameter`, `TypeError`),
//! so no napi-rs status code ever reaches the caller.

#![allow(unsafe_code)] // Node-API reads of typed arrays and numbers; each block says why it holds.

use std::ptr;

use napi::bindgen_prelude::{FromNapiRef, FromNapiValue, TypeName, Uint8Array, ValidateNapiValue};
use napi::{Status, ValueType, sys};

use crate::error::{Failure, js_error};

fn type_error(env: sys::napi_env, what: &str) -> napi::Error {
    js_error(env, &Failure::Type(format!("expected {what}")))
}

/// Whether `v` is of JS type `t` (`typeof`): checked before napi-rs' own conversion, whose
/// error would be a napi status rather than `invalid_parameter`.
fn is(env: sys::napi_env, v: sys::napi_value, t: sys::napi_valuetype) -> bool {
    let mut got = 0;
    // SAFETY: `env` and `v` come from the current callback.
    (unsafe { sys::napi_typeof(env, v, &mut got) }) == sys::Status::napi_ok && got == t
}

/// napi-rs' own conversion of `v` once its `typeof` is `t`.
///
/// # Safety
/// `env` and `v` come from the current callback.
unsafe fn checked<T: FromNapiValue>(
    env: sys::napi_env,
    v: sys::napi_value,
    t: sys::napi_valuetype,
    what: &str,
) -> napi::Result<T> {
    if !is(env, v, t) {
        return Err(type_error(env, what));
    }
    // SAFETY: `v` is of the type `T` converts from.
    unsafe { T::from_napi_value(env, v) }
}

/// napi-rs wants, besides `FromNapiValue`, a `TypeName` and a `ValidateNapiValue` for every
/// argument type, and they say nothing but the JS name and type: one line a type here.
macro_rules! arg_type {
    ($($ty:ty => $name:literal, $vt:ident;)*) => {$(
        impl TypeName for $ty {
            fn type_name() -> &'static str {
                $name
            }
            fn value_type() -> ValueType {
                ValueType::$vt
            }
        }

        impl ValidateNapiValue for $ty {}
    )*};
}

arg_type! {
    Bytes<'_> => "Uint8Array", Object;
    BytesMut<'_> => "Uint8Array", Object;
    OwnedBytes => "Uint8Array", Object;
    U64 => "number", Number;
    Text => "string", String;
    Flag => "boolean", Boolean;
    TableEntries => "Array<[number, number, Uint8Array]>", Object;
}

/// `(data, len)` of a `Uint8Array` (a `Buffer` is one), or `None` for anything else.
unsafe fn u8_view(env: sys::napi_env, v: sys::napi_value) -> Option<(*mut u8, usize)> {
    let mut is_ta = false;
    // SAFETY: `env` and `v` come from the current callback.
    if unsafe { sys::napi_is_typedarray(env, v, &mut is_ta) } != sys::Status::napi_ok || !is_ta {
        return None;
    }
    let (mut kind, mut len, mut data, mut ab, mut off) = (0, 0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
    // SAFETY: `v` is a typed array (checked above).
    let st = unsafe { sys::napi_get_typedarray_info(env, v, &mut kind, &mut len, &mut data, &mut ab, &mut off) };
    if st != sys::Status::napi_ok || kind != sys::TypedarrayType::uint8_array {
        return None;
    }
    Some((data.cast(), len))
}

/// A borrowed `Uint8Array | Buffer`, for synchronous calls: no copy. Valid for the call.
pub struct Bytes<'a>(pub &'a [u8]);

impl FromNapiValue for Bytes<'_> {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: the view belongs to a JS object the caller holds for the whole call.
        match unsafe { u8_view(env, v) } {
            Some((_, 0)) => Ok(Bytes(&[])),
            Some((p, n)) => Ok(Bytes(unsafe { std::slice::from_raw_parts(p, n) })),
            None => Err(type_error(env, "a Uint8Array or Buffer")),
        }
    }
}

/// A caller's output buffer (`Uint8Array | Buffer`) that a synchronous call writes into.
pub struct BytesMut<'a>(pub &'a mut [u8]);

impl FromNapiValue for BytesMut<'_> {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: as for `Bytes`; overlap with an input is refused by `disjoint`.
        match unsafe { u8_view(env, v) } {
            Some((_, 0)) => Ok(BytesMut(&mut [])),
            Some((p, n)) => Ok(BytesMut(unsafe { std::slice::from_raw_parts_mut(p, n) })),
            None => Err(type_error(env, "a Uint8Array or Buffer")),
        }
    }
}

/// Refuses an output buffer that overlaps the input (the two would alias).
pub fn disjoint(input: &[u8], out: &[u8]) -> crate::error::Fallible<()> {
    let (a, b) = (input.as_ptr() as usize, out.as_ptr() as usize);
    if input.is_empty() || out.is_empty() || a + input.len() <= b || b + out.len() <= a {
        Ok(())
    } else {
        Err(Failure::Detail(isec_core::Error::InvalidParameter, "output buffer overlaps the input".into()))
    }
}

/// An owned reference to a `Uint8Array | Buffer`, for async tasks: the bytes stay in JS
/// memory (no copy) and the caller must not change them until the promise settles.
pub struct OwnedBytes(pub Uint8Array);

impl FromNapiValue for OwnedBytes {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: checked to be a Uint8Array before napi-rs takes a reference to it.
        if unsafe { u8_view(env, v) }.is_none() {
            return Err(type_error(env, "a Uint8Array or Buffer"));
        }
        Ok(OwnedBytes(unsafe { Uint8Array::from_napi_value(env, v) }?))
    }
}

/// A non-negative integer up to 2^53 given as a JS number (`Infinity` reads as "no bound").
#[derive(Debug, Clone, Copy)]
pub struct U64(pub u64);

impl FromNapiValue for U64 {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        if !is(env, v, sys::ValueType::napi_number) {
            return Err(type_error(env, "a number"));
        }
        let mut d = 0f64;
        // SAFETY: `v` is a number.
        unsafe { sys::napi_get_value_double(env, v, &mut d) };
        if d == f64::INFINITY {
            return Ok(U64(u64::MAX));
        }
        if !(d.is_finite() && d >= 0.0 && d.fract() == 0.0 && d <= 9_007_199_254_740_992.0) {
            return Err(js_error(
                env,
                &Failure::Detail(isec_core::Error::InvalidParameter, format!("{d} is not a non-negative integer")),
            ));
        }
        // In range and integral (checked above).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(U64(d as u64))
    }
}

impl U64 {
    /// As a `u32`, or `invalid_parameter`.
    pub fn u32(self) -> crate::error::Fallible<u32> {
        u32::try_from(self.0).map_err(|_| Failure::Core(isec_core::Error::InvalidParameter))
    }
    /// As a `usize`, or `invalid_parameter`.
    pub fn usize(self) -> crate::error::Fallible<usize> {
        usize::try_from(self.0).map_err(|_| Failure::Core(isec_core::Error::InvalidParameter))
    }
}

/// A JS string.
pub struct Text(pub String);

impl FromNapiValue for Text {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: `v` comes from the current callback.
        unsafe { checked(env, v, sys::ValueType::napi_string, "a string") }.map(Text)
    }
}

/// A JS boolean.
#[derive(Debug, Clone, Copy)]
pub struct Flag(pub bool);

impl FromNapiValue for Flag {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: `v` comes from the current callback.
        unsafe { checked(env, v, sys::ValueType::napi_boolean, "a boolean") }.map(Flag)
    }
}

/// An instance of one of this addon's classes (or of a JS subclass of it).
pub struct Ref<T: 'static>(pub &'static T);

impl<T: FromNapiRef + 'static> FromNapiValue for Ref<T>
where
    &'static T: ValidateNapiValue,
{
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        if !is(env, v, sys::ValueType::napi_object) {
            return Err(type_error(env, "an isec object"));
        }
        // `from_napi_ref` alone unwraps any class's instance: check the class first.
        // SAFETY: as above.
        if unsafe { <&'static T as ValidateNapiValue>::validate(env, v) }.is_err() {
            return Err(type_error(env, "an isec object of another class"));
        }
        match unsafe { T::from_napi_ref(env, v) } {
            Ok(r) => Ok(Ref(r)),
            Err(_) => Err(type_error(env, "an isec object of another class")),
        }
    }
}

impl<T: 'static> TypeName for Ref<T> {
    fn type_name() -> &'static str {
        "object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T: FromNapiRef + 'static> ValidateNapiValue for Ref<T> where &'static T: ValidateNapiValue {}

impl<T: 'static> std::ops::Deref for Ref<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0
    }
}

/// An options or request object (`#[napi(object)]` input). napi-rs' own conversion reports a
/// missing field or a value that is no object with its own status codes (or a pending V8
/// exception); this reports them as `invalid_parameter` `TypeError`s like every other
/// argument, and passes the errors of fields converted by this module's types through.
pub struct Obj<T>(pub T);

impl<T: FromNapiValue> FromNapiValue for Obj<T> {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        if !is(env, v, sys::ValueType::napi_object) {
            return Err(type_error(env, &format!("an object ({})", input_name::<T>())));
        }
        // SAFETY: `v` is an object of the current callback.
        match unsafe { T::from_napi_value(env, v) } {
            Ok(x) => Ok(Obj(x)),
            // Built by `js_error` (a field of this module's types): already typed.
            Err(e) if e.status == Status::GenericFailure => Err(e),
            Err(e) => {
                if e.status == Status::PendingException {
                    let mut pending = ptr::null_mut();
                    // SAFETY: clears the exception V8 raised during the conversion, replaced below.
                    unsafe { sys::napi_get_and_clear_last_exception(env, &mut pending) };
                }
                Err(js_error(env, &Failure::Type(format!("{} in {}", e.reason, input_name::<T>()))))
            }
        }
    }
}

/// The JS-facing name of an input object (its Rust and TypeScript names agree), for messages.
fn input_name<T>() -> &'static str {
    std::any::type_name::<T>().rsplit("::").next().unwrap_or("options")
}

impl<T> TypeName for Obj<T> {
    fn type_name() -> &'static str {
        "object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T: FromNapiValue> ValidateNapiValue for Obj<T> {}

impl<T> std::ops::Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Element `i` of a JS array (or array-like object).
pub(crate) unsafe fn element(env: sys::napi_env, arr: sys::napi_value, i: u32) -> Option<sys::napi_value> {
    let mut v = ptr::null_mut();
    // SAFETY: `arr` is an object of the current callback.
    (unsafe { sys::napi_get_element(env, arr, i, &mut v) } == sys::Status::napi_ok).then_some(v)
}

/// The length of a JS array, or `None` for anything else.
pub(crate) unsafe fn array_length(env: sys::napi_env, v: sys::napi_value) -> Option<u32> {
    let mut is_array = false;
    // SAFETY: `v` comes from the current callback.
    if unsafe { sys::napi_is_array(env, v, &mut is_array) } != sys::Status::napi_ok || !is_array {
        return None;
    }
    let mut n = 0;
    // SAFETY: `v` is an array.
    (unsafe { sys::napi_get_array_length(env, v, &mut n) } == sys::Status::napi_ok).then_some(n)
}

/// `Array<[number, number, Uint8Array]>`: a segment table's `[partNumber, plaintextLength,
/// prefix]` entries. An entry of another shape, or a prefix that is not a `Uint8Array`, is a
/// `TypeError`; a prefix of another length than 7 bytes is `invalid_parameter`.
pub struct TableEntries(pub Vec<(U64, U64, [u8; 7])>);

impl FromNapiValue for TableEntries {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        let expected = || type_error(env, "Array<[number, number, Uint8Array]>");
        // SAFETY: every value read below belongs to the current callback.
        unsafe {
            let n = array_length(env, v).ok_or_else(expected)?;
            let mut out = Vec::with_capacity(n.min(10_001) as usize);
            for i in 0..n {
                let entry = element(env, v, i).ok_or_else(expected)?;
                if array_length(env, entry) != Some(3) {
                    return Err(expected());
                }
                let a = U64::from_napi_value(env, element(env, entry, 0).ok_or_else(expected)?)?;
                let b = U64::from_napi_value(env, element(env, entry, 1).ok_or_else(expected)?)?;
                let p = element(env, entry, 2).ok_or_else(expected)?;
                let Some((data, len)) = u8_view(env, p) else {
                    return Err(type_error(env, "a table entry's prefix as a Uint8Array"));
                };
                if len != 7 {
                    return Err(js_error(
                        env,
                        &Failure::Detail(
                            isec_core::Error::InvalidParameter,
                            format!("a table entry's prefix is 7 bytes, not {len} (Encryptor.prefix)"),
                        ),
                    ));
                }
                let mut prefix = [0u8; 7];
                // SAFETY: `data` points to the `len` (= 7) bytes of a live Uint8Array.
                prefix.copy_from_slice(std::slice::from_raw_parts(data, len));
                out.push((a, b, prefix));
            }
            Ok(TableEntries(out))
        }
    }
}
