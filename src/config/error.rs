//! `ConfigError`: everything that can be wrong with a config or a target, as one clear line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration or target error. Every variant is a usage/configuration error
/// (CLI exit code 2). `Display` is one line, naming the file (when read from one)
/// and the JSON path: `config /etc/x.json: nodes.MAIN_PACS.port: invalid type: ...`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("config {}: cannot read the file: {error}", .file.display())]
    Io {
        /// The config file.
        file: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },

    /// The text is not JSON.
    #[error("{}malformed JSON at line {line} column {column}: {message}", Origin(.file.as_deref()))]
    Syntax {
        /// The config file, if the text came from one.
        file: Option<PathBuf>,
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// What the JSON parser said.
        message: String,
    },

    /// The JSON does not fit the schema (unknown field, wrong type, missing field)
    /// or a value is invalid (AE title, range, unknown pool, ...). `path` is the
    /// JSON path (`nodes.MAIN_PACS.port`), empty for the top level; `location` is
    /// the `(line, column)` where the parser noticed it, for schema errors.
    #[error("{}{}{message}{}", Origin(.file.as_deref()), PathPrefix(.path), Location(.location))]
    Invalid {
        /// The config file, if the text came from one.
        file: Option<PathBuf>,
        /// JSON path of the bad value (empty for the top level).
        path: String,
        /// What is wrong.
        message: String,
        /// `(line, column)` where the parser noticed it, for schema errors.
        location: Option<(usize, usize)>,
    },

    /// An ad-hoc target that is not `AET@HOST:PORT`.
    #[error("invalid target {input:?}: {reason} (expected AET@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242)")]
    Target {
        /// The target as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A target that is neither a node of the config nor `AET@HOST:PORT`.
    #[error("unknown node `{name}` ({})", KnownNodes(.known))]
    UnknownNode {
        /// The name given.
        name: String,
        /// The nodes of the config.
        known: Vec<String>,
    },
}

impl ConfigError {
    /// The JSON path the error is about (`nodes.MAIN_PACS.port`), where there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { path, .. } if !path.is_empty() => Some(path),
            _ => None,
        }
    }

    /// The file the config was read from, where there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            ConfigError::Io { file, .. } => Some(file),
            ConfigError::Syntax { file, .. } | ConfigError::Invalid { file, .. } => file.as_deref(),
            ConfigError::Target { .. } | ConfigError::UnknownNode { .. } => None,
        }
    }

    /// A validation error at `path`.
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: None,
            path: path.into(),
            message: message.into(),
            location: None,
        }
    }

    /// The same error, saying which file it is about.
    pub(crate) fn in_file(mut self, name: &Path) -> ConfigError {
        if let ConfigError::Syntax { file, .. } | ConfigError::Invalid { file, .. } = &mut self {
            *file = Some(name.to_path_buf());
        }
        self
    }
}

/// `config FILE: ` or `config: `.
struct Origin<'a>(Option<&'a Path>);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(file) => write!(f, "config {}: ", file.display()),
            None => f.write_str("config: "),
        }
    }
}

/// `PATH: `, or nothing for the top level.
struct PathPrefix<'a>(&'a str);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

/// ` (line L column C)`, or nothing.
struct Location<'a>(&'a Option<(usize, usize)>);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Some((line, column)) => write!(f, " (line {line} column {column})"),
            None => Ok(()),
        }
    }
}

/// `known nodes: A, B`, or none and how to name an ad-hoc target.
struct KnownNodes<'a>(&'a [String]);

impl fmt::Display for KnownNodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("no nodes are configured; use AET@HOST:PORT for an ad-hoc target")
        } else {
            write!(f, "known nodes: {}", self.0.join(", "))
        }
    }
}
