//! JS values to Rust values and back: numbers, option objects, metadata pairs, byte
//! chunks and promises. Each refuses a value of the wrong type with `invalid_parameter`
//! (a `TypeError`) through the one error mapper.

use isec_core::Error as CoreError;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error::{Failure, Fallible, to_js};

/// The largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A JS number as a byte count or offset: a non-negative integer (`Infinity` only where
/// `open_end`).
pub(crate) fn to_u64(x: f64, what: &str, open_end: bool) -> Fallible<u64> {
    if open_end && x == f64::INFINITY {
        return Ok(u64::MAX);
    }
    if !(0.0..=MAX_SAFE).contains(&x) || x.fract() != 0.0 {
        return Err(Failure::Type(format!("{what} must be a non-negative integer, not {x}")));
    }
    // Checked above: an integer in 0..=2^53-1.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(x as u64)
}

/// A plaintext range `[start, end)` as the JS API takes it (`end` may be `Infinity`).
pub(crate) fn to_range(start: f64, end: f64) -> Fallible<(u64, u64)> {
    Ok((to_u64(start, "start", false)?, to_u64(end, "end", true)?))
}

/// A part number (1..=10000 is core's check).
pub(crate) fn to_part_number(n: f64) -> Fallible<u32> {
    u32::try_from(to_u64(n, "partNumber", false)?).map_err(|_| Failure::Core(CoreError::InvalidParameter))
}

/// A length or offset as a JS typed-array index (they are 32-bit).
pub(crate) fn u32_of<T: TryInto<u32>>(x: T) -> Fallible<u32> {
    x.try_into().map_err(|_| Failure::Core(CoreError::LimitExceeded))
}

/// A byte count as a JS number. Sizes stay below 2^44 (SPEC.md §8): exact in a double.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn num(x: u64) -> f64 {
    x as f64
}

/// Sets `obj[key] = value` on a plain object the binding just made (cannot fail).
pub(crate) fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

/// `obj[key]`, treating a missing object as `undefined`.
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() { Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED) } else { JsValue::UNDEFINED }
}

/// `options[key]` converted by `f` (`what`: the type it must have), or `None` when absent.
fn opt<T>(options: &JsValue, key: &str, what: &str, f: impl FnOnce(&JsValue) -> Option<T>) -> Fallible<Option<T>> {
    let v = get(options, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    f(&v).map(Some).ok_or_else(|| Failure::Type(format!("{key} must be {what}")))
}

/// `options[key]` as an optional non-negative integer.
pub(crate) fn opt_u64(options: &JsValue, key: &str) -> Fallible<Option<u64>> {
    opt(options, key, "a number", JsValue::as_f64)?.map(|x| to_u64(x, key, false)).transpose()
}

/// `options[key]` as an optional boolean.
pub(crate) fn opt_bool(options: &JsValue, key: &str) -> Fallible<Option<bool>> {
    opt(options, key, "a boolean", JsValue::as_bool)
}

/// `options[key]` as an optional string.
pub(crate) fn opt_str(options: &JsValue, key: &str) -> Fallible<Option<String>> {
    opt(options, key, "a string", JsValue::as_string)
}

/// Metadata given as `[[name, value], ...]` or `{ name: value }`.
pub(crate) fn pairs(v: &JsValue, what: &str) -> Fallible<Vec<(String, String)>> {
    if v.is_undefined() || v.is_null() {
        return Ok(Vec::new());
    }
    let bad = || Failure::Type(format!("{what} must be [[name, value], ...] or {{ name: value }}"));
    let entries: Array = if Array::is_array(v) {
        v.clone().unchecked_into()
    } else if v.is_object() {
        Object::entries(v.unchecked_ref())
    } else {
        return Err(bad());
    };
    entries
        .iter()
        .map(|p| {
            let p: Array = p.dyn_into().map_err(|_| bad())?;
            match (p.get(0).as_string(), p.get(1).as_string()) {
                (Some(k), Some(v)) if p.length() == 2 => Ok((k, v)),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Pairs as a JS array of `[name, value]`.
pub(crate) fn pairs_to_js(p: &[(String, String)]) -> Array {
    p.iter().map(|(k, v)| JsValue::from(Array::of2(&k.into(), &v.into()))).collect()
}

/// `Uint8Array | Uint8Array[]` as a list of arrays.
pub(crate) fn chunks_of(v: &JsValue) -> Fallible<Vec<Uint8Array>> {
    let bad = || Failure::Type("update takes a Uint8Array or an array of them".into());
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(vec![a.clone()]);
    }
    if Array::is_array(v) {
        let a: &Array = v.unchecked_ref();
        return a.iter().map(|c| c.dyn_into::<Uint8Array>().map_err(|_| bad())).collect();
    }
    Err(bad())
}

/// Bytes in `chunks`.
pub(crate) fn total_len(chunks: &[Uint8Array]) -> usize {
    chunks.iter().map(|c| c.length() as usize).sum()
}

/// The chunks' bytes in wasm memory, for the wasm backend.
pub(crate) fn joined(chunks: &[Uint8Array]) -> Vec<u8> {
    let mut v = vec![0u8; total_len(chunks)];
    let mut at = 0;
    for c in chunks {
        let n = c.length() as usize;
        c.copy_to(&mut v[at..at + n]);
        at += n;
    }
    v
}

/// Bytes as a new JS array; the Rust copy (plaintext, on decryption) is zeroed.
pub(crate) fn to_uint8(mut v: Vec<u8>) -> Uint8Array {
    let a = Uint8Array::from(&v[..]);
    v.fill(0);
    a
}

/// A settled promise for a synchronous outcome.
pub(crate) fn settle(r: Fallible<JsValue>) -> Promise {
    match r {
        Ok(v) => Promise::resolve(&v),
        Err(e) => Promise::reject(&to_js(&e)),
    }
}
