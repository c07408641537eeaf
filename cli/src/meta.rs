//! Object metadata files: a JSON object of S3 user metadata (`{"isec": "...", "isec-kid":
//! "..."}`), kept next to an object as `<object>.meta.json` unless given explicitly.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::fail::{CliError, Res};

/// Metadata as (key, value) pairs.
pub type Meta = Vec<(String, String)>;

/// The default metadata file of an object file.
pub fn default_path(object: &str) -> Option<PathBuf> {
    (object != "-").then(|| PathBuf::from(format!("{object}.meta.json")))
}

/// Reads a metadata file.
pub fn read(path: &Path) -> Res<Meta> {
    let text = fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| CliError::usage(format!("{}: not JSON: {e}", path.display())))?;
    let obj = v.as_object().ok_or_else(|| CliError::usage(format!("{}: not a JSON object", path.display())))?;
    obj.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or_else(|| CliError::usage(format!("{}: value of {k} is not a string", path.display())))
        })
        .collect()
}

/// Writes a metadata file.
pub fn write(path: &Path, meta: &[(String, String)]) -> Res<()> {
    let obj: Map<String, Value> = meta.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let text = serde_json::to_string_pretty(&Value::Object(obj)).unwrap_or_default() + "\n";
    fs::write(path, text).map_err(|e| CliError::io(path, e))
}

/// Borrowed view for core APIs.
pub fn view(meta: &[(String, String)]) -> Vec<(&str, &str)> {
    meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `meta` with `key` set to `value` (replacing, case-insensitively).
pub fn set(meta: &mut Meta, key: &str, value: String) {
    meta.retain(|(k, _)| isec_core::metadata::normalize(k) != key);
    meta.push((key.to_string(), value));
}

/// Parses sizes like `65536`, `64KiB`, `8MiB`, `50MB`, `1.5GB` (and a trailing `/s`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches("/s");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1_048_576.0,
        "g" | "gb" => 1e9,
        "gib" => 1_073_741_824.0,
        other => return Err(format!("unknown unit {other:?} in {s}")),
    };
    let v = n * mult;
    if !(0.0..1.8e19).contains(&v) {
        return Err(format!("size out of range: {s}"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "range checked just above")]
    Ok(v.round() as u64)
}
