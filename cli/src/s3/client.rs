//! The S3 client (the official AWS SDK: the standard credential chain, SigV4, retries with
//! backoff) and what its errors mean to a command and to a bucket job.

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use isec_core::job::Outcome;

use crate::fail::CliError;

/// Where and as whom to connect.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Conn {
    /// Shared config/credentials profile (default: AWS_PROFILE, else `default`).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// S3 endpoint, e.g. http://127.0.0.1:3900 (also AWS_ENDPOINT_URL); path-style addressing.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Region (default: the environment or profile, else us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
}

/// A client from the SDK's default chain (environment, shared files, profile, instance
/// metadata) and the options. An explicit endpoint (a non-AWS server) gets path-style
/// addressing, which such servers need for bucket names that are not DNS labels.
pub async fn connect(conn: &Conn) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &conn.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &conn.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared)
        // Checksums only where S3 requires them: other servers may not know the newer ones.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if shared.region().is_none() {
        b = b.region(Region::new("us-east-1"));
    }
    if let Some(url) = conn.endpoint_url.as_deref().or(shared.endpoint_url()) {
        b = b.endpoint_url(url).force_path_style(true);
    }
    Client::from_conf(b.build())
}

/// Why an S3 operation did not complete.
#[derive(Debug)]
pub enum Fail {
    /// The object is not the version the operation was pinned to (412), or is gone (404).
    Changed(String),
    /// The server or the connection refused.
    S3 { code: String, retryable: bool, msg: String },
    /// isec refused (format, key, authentication).
    Core { error: isec_core::Error, context: String },
    /// Anything else the command reports as it is (a local file, usage).
    Cli(CliError),
}

pub type S3Res<T> = Result<T, Fail>;

impl Fail {
    pub fn core(error: isec_core::Error, context: impl Into<String>) -> Self {
        Self::Core { error, context: context.into() }
    }

    /// A bucket job's answer for a task that ended this way.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::Changed(_) => Outcome::Changed,
            Self::S3 { code, retryable, .. } => Outcome::Failed { code, retryable },
            Self::Core { error, .. } => Outcome::Failed { code: error.code().into(), retryable: false },
            Self::Cli(e) => Outcome::Failed { code: cli_code(&e).into(), retryable: false },
        }
    }

    /// The code and whether a retry may succeed (for HEAD and listing answers).
    pub fn code(&self) -> (String, bool) {
        match self {
            Self::Changed(_) => ("PreconditionFailed".into(), false),
            Self::S3 { code, retryable, .. } => (code.clone(), *retryable),
            Self::Core { error, .. } => (error.code().into(), false),
            Self::Cli(e) => (cli_code(e).into(), false),
        }
    }
}

fn cli_code(e: &CliError) -> &'static str {
    match e {
        CliError::Io(_) => "io_error",
        CliError::Interrupted(_) => "interrupted",
        CliError::OpenKeyring(_) => "open_keyring",
        CliError::Usage(_) | CliError::Core { .. } | CliError::Failed(_) | CliError::KeyInUse(_) => "invalid_parameter",
    }
}

impl From<Fail> for CliError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Changed(m) => CliError::Io(m),
            Fail::S3 { msg, .. } => CliError::Io(msg),
            Fail::Core { error, context } => CliError::core(error, context),
            Fail::Cli(e) => e,
        }
    }
}

impl From<CliError> for Fail {
    fn from(e: CliError) -> Self {
        Self::Cli(e)
    }
}

/// Attaches a context to a core error.
pub trait CoreCtx<T> {
    fn at(self, what: &str) -> S3Res<T>;
}

impl<T> CoreCtx<T> for Result<T, isec_core::Error> {
    fn at(self, what: &str) -> S3Res<T> {
        self.map_err(|e| Fail::core(e, what))
    }
}

/// Classifies an SDK error: 412 and 404 are [`Fail::Changed`] when `pinned` (the request
/// named a version, or the object is the task's), throttling, 5xx, timeouts and lost
/// connections are retryable, other 4xx are not.
pub fn sdk<E>(e: SdkError<E, HttpResponse>, what: &str, pinned: bool) -> Fail
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_string);
    let transport = matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_));
    let code = code.unwrap_or_else(|| match (status, transport) {
        (Some(412), _) => "PreconditionFailed".into(),
        (Some(404), _) => "NotFound".into(),
        (Some(s), _) => format!("http_{s}"),
        (None, true) => "ConnectionError".into(),
        (None, false) => "ClientError".into(),
    });
    let detail = e.message().map(str::to_string).unwrap_or_else(|| chain(&e));
    let msg = format!("{what}: {code}: {detail}");
    if pinned && matches!(status, Some(412 | 404)) {
        return Fail::Changed(msg);
    }
    let retryable = transport
        || matches!(status, Some(s) if s >= 500 || s == 408 || s == 429)
        || matches!(code.as_str(), "SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout");
    Fail::S3 { code, retryable, msg }
}

/// The error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Whether an error is S3's 404 (a missing object or sidecar).
pub fn is_not_found<E>(e: &SdkError<E, HttpResponse>) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
}
