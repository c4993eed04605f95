//! Typed state stored as JSON beside a format number (run states, hook states in
//! checkpoints), so that a state of another layout is refused by name rather than misread.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The stored form: the state's fields and its format number.
#[derive(Serialize, Deserialize)]
struct Stored<S> {
    #[serde(default = "unnumbered")]
    format: u32,
    #[serde(flatten)]
    state: S,
}

/// States written before they carried a number are format 1.
fn unnumbered() -> u32 {
    1
}

/// `state` with its `format` number.
pub fn to_json<S: Serialize>(state: &S, format: u32) -> serde_json::Value {
    serde_json::to_value(Stored { format, state }).expect("states serialise")
}

/// The state stored in `value`, which must be of `format`; errors name the state as `what`.
pub fn from_json<S: DeserializeOwned>(
    value: &serde_json::Value,
    format: u32,
    what: &str,
) -> Result<S, String> {
    let stored: Stored<S> =
        serde_json::from_value(value.clone()).map_err(|e| format!("unreadable {what}: {e}"))?;
    if stored.format != format {
        return Err(format!(
            "{what} of format {}, this version of whichgan reads format {format} (written by \
             another version)",
            stored.format
        ));
    }
    Ok(stored.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct State {
        p: f64,
    }

    #[test]
    fn round_trip_unnumbered_and_other_formats() {
        let value = to_json(&State { p: 0.5 }, 2);
        assert_eq!(value, serde_json::json!({ "format": 2, "p": 0.5 }));
        assert_eq!(
            from_json::<State>(&value, 2, "x").unwrap(),
            State { p: 0.5 }
        );
        let err = from_json::<State>(&value, 3, "x state").unwrap_err();
        assert!(err.starts_with("x state of format 2, this version of whichgan reads format 3"));
        let old = serde_json::json!({ "p": 0.25 });
        assert_eq!(from_json::<State>(&old, 1, "x").unwrap(), State { p: 0.25 });
        let err = from_json::<State>(&serde_json::json!({ "q": 1 }), 1, "x state").unwrap_err();
        assert!(
            err.contains("unreadable x state") && err.contains("missing field `p`"),
            "{err}"
        );
    }
}
