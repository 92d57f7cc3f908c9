//! A load error as one line that names the key as written in YAML, the way
//! ripgrep reports a bad flag: `pools[0]: unknown key "client_id" (did you
//! mean "client_ids"?)`. figment's own rendering repeats the key in its
//! wording (`for key "default.pools.0.client_id"`) and chains every error it
//! met, so one typo read as a paragraph.

use figment::error::{Actual, Kind};

use super::{ConfigError, ENV_PREFIX};

/// Longest problem text printed: a value from the file is echoed in it.
const MAX_PROBLEM_CHARS: usize = 240;

/// The first problem figment met, as one [`ConfigError`].
pub(super) fn one_line(error: figment::Error) -> ConfigError {
    let mut path = error.path.as_slice();
    // An unknown key is reported at its parent, where the fix is made.
    if let (Kind::UnknownField(field, _), Some((last, parent))) = (&error.kind, path.split_last())
        && last == field
    {
        path = parent;
    }
    let key = key_of(path);
    let problem = match &error.kind {
        Kind::UnknownField(field, expected) => {
            format!("unknown key {field:?}{}", suggestion(field, expected))
        }
        Kind::UnknownVariant(value, expected) => {
            format!("unknown value {value:?}{}", suggestion(value, expected))
        }
        Kind::MissingField(field) => format!("missing key {field:?}"),
        Kind::DuplicateField(field) => format!("key {field:?} is given twice"),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("expected {}, found {}", plain(expected), found(actual))
        }
        Kind::InvalidLength(length, expected) => {
            format!("expected {expected}, found {length} items")
        }
        Kind::USizeOutOfRange(value) => format!("{value} is out of range"),
        Kind::ISizeOutOfRange(value) => format!("{value} is out of range"),
        other => other.to_string(),
    };
    let key = match source_of(&error, &key) {
        Some(source) if key.is_empty() => source,
        Some(source) => format!("{key} (from {source})"),
        None => key,
    };
    ConfigError::Invalid {
        key,
        problem: crate::text::bounded(&problem, MAX_PROBLEM_CHARS),
    }
}

/// `["pools", "0", "client_ids"]` as `pools[0].client_ids`; figment's path
/// names the key whose value is wrong (or, for an unknown key, its parent).
fn key_of(path: &[String]) -> String {
    let mut key = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    key
}

/// Where a value came from, when it is not the YAML file: the environment
/// variable, named as the operator wrote it. A syntax error names the file.
fn source_of(error: &figment::Error, key: &str) -> Option<String> {
    let metadata = error.metadata.as_ref()?;
    if metadata.name.contains("environment") {
        let var = error
            .path
            .iter()
            .map(|part| part.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join("__");
        return Some(format!("{ENV_PREFIX}{var}"));
    }
    match (&metadata.source, key.is_empty()) {
        (Some(figment::Source::File(path)), true) => Some(path.display().to_string()),
        _ => None,
    }
}

/// ` (did you mean "client_ids"?)` when one expected name is close to `given`.
fn suggestion(given: &str, expected: &[&str]) -> String {
    let closest = expected
        .iter()
        .map(|name| (strsim::jaro_winkler(given, name), name))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, name)) => format!(" (did you mean {name:?}?)"),
        None if expected.is_empty() => String::new(),
        None => format!(
            " (expected one of: {})",
            expected
                .iter()
                .map(|name| format!("{name:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// serde's names for what it wanted, in the words of a config file.
fn plain(expected: &str) -> &str {
    match expected {
        "u64" | "u32" | "usize" => "a whole number >= 0",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "a list",
        "a string" | "string" => "text",
        other if other.starts_with("struct ") => "a mapping of keys",
        other => other,
    }
}

fn found(actual: &Actual) -> String {
    match actual {
        Actual::Signed(value) => format!("{value}"),
        Actual::Unsigned(value) => format!("{value}"),
        Actual::Float(value) => format!("{value}"),
        Actual::Str(value) => format!("{value:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_yaml_keys() {
        let path = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            key_of(&path(&["pools", "0", "client_ids"])),
            "pools[0].client_ids"
        );
        assert_eq!(key_of(&path(&["pools", "1"])), "pools[1]");
        assert_eq!(key_of(&path(&["jwks"])), "jwks");
        assert_eq!(key_of(&[]), "");
    }

    #[test]
    fn a_close_name_is_suggested_and_a_far_one_lists_the_keys() {
        let keys = &["name", "region", "client_ids", "allow_any_client"];
        assert_eq!(
            suggestion("client_id", keys),
            " (did you mean \"client_ids\"?)"
        );
        assert!(suggestion("zzz", keys).starts_with(" (expected one of: \"name\""));
    }
}
