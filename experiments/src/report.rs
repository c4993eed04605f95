//! Command output: a human summary by default, exactly one JSON object per line with `--json`.

use serde_json::{Map, Value};

/// An ordered set of named values printed as one result.
#[derive(Debug, Default)]
pub struct Report(Map<String, Value>);

impl Report {
    pub fn new() -> Self {
        Report(Map::new())
    }

    /// Adds a field (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// Prints the report: one JSON object on one line, or `key: value` lines for people.
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", Value::Object(self.0.clone()));
            return;
        }
        let width = self.0.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in &self.0 {
            println!("{key:>width$}  {}", human(value));
        }
    }
}

fn human(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(x) if !n.is_i64() && !n.is_u64() => {
                if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
                    format!("{x:.6}")
                } else {
                    format!("{x:.6e}")
                }
            }
            _ => n.to_string(),
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(human).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => s.clone(),
        // A value that does not apply (no gradient file, a fresh run, an undefined p-value):
        // people read a dash; JSON keeps its null.
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}
