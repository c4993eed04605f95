//! Parsers of option values that clap checks while parsing, so that a bad value is a usage error
//! before any work starts.

/// A count of at least 1 (`--cycles`, `--min-samples`, …).
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
