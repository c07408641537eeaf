//! Errors and exit codes: usage 2, authentication 3, I/O 4, key 5, keyring file readable by
//! others 6, other format or stream errors 1, interrupted 130. Messages name the file and the
//! core's error code.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use isec_core::{Error, ErrorFamily};

/// What went wrong, and where.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or input files that are not what they should be.
    Usage(String),
    /// Reading or writing a file failed.
    Io(String),
    /// isec refused the input.
    Core { error: Error, context: String },
    /// Ctrl-C: a checkpoint was written.
    Interrupted(String),
    /// A bucket job ended with some objects failed (its report says which).
    Failed(String),
    /// A key that objects still need was not disabled.
    KeyInUse(String),
    /// The keyring file is open to group or others.
    OpenKeyring(String),
}

/// Result alias.
pub type Res<T> = Result<T, CliError>;

impl CliError {
    pub fn usage(msg: String) -> Self {
        Self::Usage(msg)
    }

    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Self::Io(format!("{}: {e}", path.display()))
    }

    pub fn core(error: Error, context: String) -> Self {
        Self::Core { error, context }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Usage(_) => 2,
            Self::Io(_) => 4,
            Self::Interrupted(_) => 130,
            Self::Failed(_) => 1,
            Self::KeyInUse(_) => 5,
            Self::OpenKeyring(_) => 6,
            Self::Core { error, .. } => match error.family() {
                ErrorFamily::Authentication => 3,
                ErrorFamily::Key => 5,
                ErrorFamily::Usage
                    if matches!(error, Error::InvalidParameter | Error::DuplicateKid | Error::RangeNotSatisfiable) =>
                {
                    2
                }
                _ => 1,
            },
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m)
            | Self::Io(m)
            | Self::Interrupted(m)
            | Self::Failed(m)
            | Self::KeyInUse(m)
            | Self::OpenKeyring(m) => f.write_str(m),
            Self::Core { error, context } => write!(f, "{context}: {error} [code {}]", error.code()),
        }
    }
}

/// Attaches a context (usually a file name) to a core error.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Res<T>;
}

impl<T> Context<T> for Result<T, Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Res<T> {
        self.map_err(|e| CliError::core(e, what()))
    }
}
