//! What a client is told when a request fails: S3's own error codes, so that every client
//! knows which failures to retry.

use http::StatusCode;
use isec_core::{Error, ErrorFamily};
use s3s::{S3Error, S3ErrorCode};

use crate::s3::client::Fail;

/// An S3 error with its code and message.
pub fn s3(code: S3ErrorCode, msg: impl Into<String>) -> S3Error {
    S3Error::with_message(code, msg.into())
}

/// An error code of isec's own, with its HTTP status.
fn custom(code: &str, status: StatusCode, msg: String) -> S3Error {
    let mut e =
        S3Error::with_message(S3ErrorCode::from_bytes(code.as_bytes()).unwrap_or(S3ErrorCode::InternalError), msg);
    e.set_status_code(status);
    e
}

/// A core error as the client sees it. Authentication failures of stored data are the
/// server's problem (500, never the plaintext); a key the gateway lacks is a 403.
pub fn core(error: Error, context: &str) -> S3Error {
    let msg = format!("isec {}: {context}", error.code());
    match error {
        Error::NotEncrypted => s3(S3ErrorCode::AccessDenied, msg),
        Error::RangeNotSatisfiable => s3(S3ErrorCode::InvalidRange, msg),
        Error::InvalidParameter | Error::InvalidFrameSize | Error::LimitExceeded => {
            s3(S3ErrorCode::InvalidArgument, msg)
        }
        e if e.family() == ErrorFamily::Key => custom("IsecKeyUnavailable", StatusCode::FORBIDDEN, msg),
        _ => custom("IsecIntegrityError", StatusCode::INTERNAL_SERVER_ERROR, msg),
    }
}

/// A failure of a backend request or of isec, as the client sees it.
pub fn from_fail(f: Fail) -> S3Error {
    match f {
        Fail::Changed(m) => {
            custom("SlowDown", StatusCode::SERVICE_UNAVAILABLE, format!("the object changed while read: {m}"))
        }
        Fail::Core { error, context } => core(error, &context),
        Fail::S3 { code, msg, .. } => backend(&code, msg),
        Fail::Cli(e) => s3(S3ErrorCode::InternalError, e.to_string()),
    }
}

/// A backend error code passed on (S3's codes keep their statuses); a lost connection to
/// the backend is a 503 the client retries.
pub fn backend(code: &str, msg: String) -> S3Error {
    let code = match code {
        "NotFound" => "NoSuchKey",
        "ConnectionError" | "ClientError" => return custom("SlowDown", StatusCode::SERVICE_UNAVAILABLE, msg),
        c => c,
    };
    match S3ErrorCode::from_bytes(code.as_bytes()) {
        Some(c) if c.status_code().is_some() => s3(c, msg),
        _ => custom(code, StatusCode::BAD_GATEWAY, msg),
    }
}
