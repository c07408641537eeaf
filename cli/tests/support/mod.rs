//! Running the `isec` command in the local tests: success with its stdout, or failure with
//! an exact exit code and a message that says what it is about.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::process::Command;

/// Runs `c` and requires success; returns stdout.
pub fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `c` and requires exit `code` with `needle` in stderr; returns stderr.
pub fn fails(c: &mut Command, code: i32, needle: &str) -> String {
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{c:?}: {err}");
    assert!(err.contains(needle), "stderr of {c:?} lacks {needle:?}: {err}");
    err
}
