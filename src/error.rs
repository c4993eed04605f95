//! The one error type of the library: every message names what was wrong and where.

use std::path::Path;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A user-facing error. `Display` gives one line, ready for `error: …` on stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something wrong with the contents of a file, located as precisely as possible
    /// (`path`, `path:line`, or `path:line:column`).
    #[error("{location}: {message}")]
    Input { location: String, message: String },
    /// The operating system refused a file operation.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Inputs that are individually fine but cannot be used together (e.g. dimensions differ).
    #[error("{0}")]
    Invalid(String),
    /// A setting that cannot be used, named as the library calls it (`snap_kimg`); a front end
    /// names it its own way (the CLI: by its flag, see [`Error::setting_name`]).
    #[error("{}: {message}", Error::setting_name(setting, value.as_deref(), |s| s.to_owned()))]
    Setting {
        setting: &'static str,
        /// The value given, when it helps to repeat it.
        value: Option<String>,
        message: String,
    },
    /// A tensor operation failed (shape or device mismatch inside a model).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// A message on one line: line breaks (which a file's own text can bring into a message) are
/// written as `\n` and `\r`.
fn one_line(message: impl Into<String>) -> String {
    let message = message.into();
    if message.contains(['\n', '\r']) {
        message.replace('\n', "\\n").replace('\r', "\\r")
    } else {
        message
    }
}

impl Error {
    /// An error located in a file.
    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        Error::Input {
            location: one_line(path.display().to_string()),
            message: one_line(message),
        }
    }

    /// This error located in `path`, unless its message already starts with that file (so
    /// that it does not read `X.pt: X.pt: …`).
    pub fn located_in(self, path: &Path) -> Self {
        let message = self.to_string();
        if message.starts_with(&path.display().to_string()) {
            self
        } else {
            Error::in_file(path, message)
        }
    }

    /// An error located at a line (1-based) and optionally a column (1-based) of a file.
    pub fn at(path: &Path, line: u64, column: Option<usize>, message: impl Into<String>) -> Self {
        let location = match column {
            Some(c) => format!("{}:{line}:{c}", path.display()),
            None => format!("{}:{line}", path.display()),
        };
        Error::Input {
            location: one_line(location),
            message: one_line(message),
        }
    }

    /// An operating-system error while accessing `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: one_line(path.display().to_string()),
            source,
        }
    }

    /// Inputs that cannot be used together.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(one_line(message))
    }

    /// A setting that cannot be used; `value` is the value given, when worth repeating.
    pub fn setting(
        setting: &'static str,
        value: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Setting {
            setting,
            value: value.map(one_line),
            message: one_line(message),
        }
    }

    /// How a setting error names its setting: `name(setting)`, then the value given, if any.
    pub fn setting_name(
        setting: &str,
        value: Option<&str>,
        name: impl Fn(&str) -> String,
    ) -> String {
        match value {
            Some(v) => format!("{} {v}", name(setting)),
            None => name(setting),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_located_in_a_file_once() {
        let path = Path::new("model.pt");
        let lines = Error::in_file(path, "bad shape '(5\n, 3)'").to_string();
        assert_eq!(lines, "model.pt: bad shape '(5\\n, 3)'");
        let named = Error::in_file(path, "missing tensor 'b'").located_in(path);
        assert_eq!(named.to_string(), "model.pt: missing tensor 'b'");
        let unnamed = Error::invalid("shapes differ").located_in(path);
        assert_eq!(unnamed.to_string(), "model.pt: shapes differ");
    }
}
