//! JSON text → raw structs, turning serde errors into `ConfigError`s that name the JSON path.

use serde_json::error::Category;

use super::error::ConfigError;
use super::raw::{RawConfig, DUPLICATE_KEY};

/// Parses the text into the raw structs (no validation beyond the schema).
pub(crate) fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let typed = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        convert(&path, error.into_inner())
    });
    if let Err(error @ ConfigError::Syntax { .. }) = typed {
        return Err(error);
    }
    if typed.is_ok() {
        // Trailing characters after the top-level object.
        deserializer.end().map_err(|error| convert("", error))?;
    }
    // serde's derived structs also accept a JSON array (fields by position):
    // `"timeouts": [1, 2, 3]` would pass. Nothing in the config is an array, so
    // any array is the error to report (and it explains a failed array-as-struct
    // better than serde's "invalid length").
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(path) = first_array(&value, "") {
            return Err(ConfigError::invalid(
                path,
                "invalid type: array; no setting in the config is a list",
            ));
        }
    }
    typed
}

/// The JSON path of the first array in `value`, if any.
fn first_array(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::Array(_) => Some(path.to_string()),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, value)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            first_array(value, &path)
        }),
        _ => None,
    }
}

/// serde messages whose subject is a field (or key) of an object; the path we
/// report includes the field: `nodes.MAIN_PACS.prot`, not `nodes.MAIN_PACS`.
const FIELD_MESSAGES: [(&str, &str); 4] = [
    ("unknown field `", "unknown field"),
    ("missing field `", "missing field (required)"),
    ("duplicate field `", "field given twice"),
    (DUPLICATE_KEY, "defined twice"),
];

fn convert(path: &str, error: serde_json::Error) -> ConfigError {
    let (line, column) = (error.line(), error.column());
    let message = strip_position(&error);
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ConfigError::Syntax {
            file: None,
            line,
            column,
            message,
        },
        Category::Data => {
            // serde_path_to_error spells the top level ".".
            let mut path = if path == "." { String::new() } else { path.to_string() };
            let mut message = message;
            if let Some((field, rest)) = field_subject(&message) {
                // serde_path_to_error (0.1.20) already ends the path of an
                // unknown field with the field: it captures the key before the
                // field visitor fails. Not so for a missing or repeated field.
                let unknown = message.starts_with(FIELD_MESSAGES[0].0);
                let has_field = path == field || path.ends_with(&format!(".{field}"));
                if !(unknown && has_field) {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&field);
                }
                message = rest;
            }
            ConfigError::Invalid {
                file: None,
                path,
                message,
                location: (line != 0).then_some((line, column)),
            }
        }
    }
}

/// serde_json's message without its ` at line L column C` suffix (kept apart).
fn strip_position(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_string(),
        None => full,
    }
}

/// For "unknown field `prot`, expected one of `a`, `b`": `("prot", "unknown field; expected one of `a`, `b`")`.
fn field_subject(message: &str) -> Option<(String, String)> {
    FIELD_MESSAGES.iter().find_map(|(prefix, label)| {
        let rest = message.strip_prefix(prefix)?;
        // The name ends at the backtick that closes it: before ", " or at the end.
        let (name, tail) = match rest.find("`, ") {
            Some(end) => (&rest[..end], &rest[end + 3..]),
            None => (rest.strip_suffix('`')?, ""),
        };
        let tail = tail.trim();
        let text = if tail.is_empty() {
            (*label).to_string()
        } else {
            format!("{label}; {tail}")
        };
        Some((name.to_string(), text))
    })
}
