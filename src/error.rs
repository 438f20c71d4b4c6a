//! The one error type of the core. Every error names the file it came from
//! and, for parse errors, the line the parser choked on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong while turning a kernel file's text into values.
/// Parsers know nothing about paths; readers attach the path with [`Error::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number, 0 when the whole text is at fault (for example empty).
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

#[derive(Debug)]
pub enum Error {
    /// The file could not be opened or read.
    Io { path: PathBuf, source: io::Error },
    /// The file was read but its text is not what the kernel prints.
    Parse { path: PathBuf, source: ParseError },
    /// The path names something that is not read on purpose: a FIFO, a
    /// device, a socket or a directory in place of a kernel file, or a path
    /// that leads outside the root.
    Refused { path: PathBuf, reason: String },
    /// Reading or parsing the file hit a bug in oomguard (a caught panic).
    Bug {
        path: PathBuf,
        panic: crate::guard::Panic,
    },
}

impl Error {
    pub fn io(path: &Path, source: io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn parse(path: &Path, source: ParseError) -> Self {
        Error::Parse {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn refused(path: &Path, reason: impl Into<String>) -> Self {
        Error::Refused {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Parse { path, .. }
            | Error::Refused { path, .. }
            | Error::Bug { path, .. } => path,
        }
    }

    /// True when the file simply is not there (an absent controller file, not a fault).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Parse { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Refused { path, reason } => {
                write!(f, "{}: refused: {}", path.display(), reason)
            }
            Error::Bug { path, panic } => write!(f, "{}: {}", path.display(), panic),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
