//! The secret formats keys are stored in.

use crate::Error;

/// Keys from a secret's text. Accepted formats:
///
/// * a plain string: one key, or several separated by commas;
/// * a JSON string;
/// * a JSON list of strings;
/// * a JSON object with `api_key` (as bedrock-access-gateway stores it),
///   `bedrock-access-gateway-apikey` (as seed 000 does), `api_keys` or `keys`,
///   each a string (comma-separated allowed) or a list of strings.
pub fn parse_secret(text: &str) -> Result<Vec<String>, Error> {
    let text = text.trim();
    let keys = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => from_value(&v)?,
        Err(_) if text.starts_with('{') || text.starts_with('[') => {
            return Err(Error::BadSecret(
                "secret looks like JSON but does not parse".into(),
            ));
        }
        Err(_) => split(text),
    };
    if keys.is_empty() {
        return Err(Error::BadSecret("no key found".into()));
    }
    Ok(keys)
}

const FIELDS: [&str; 4] = [
    "api_key",
    "bedrock-access-gateway-apikey",
    "api_keys",
    "keys",
];

fn from_value(v: &serde_json::Value) -> Result<Vec<String>, Error> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => split(s),
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                match i {
                    Value::String(s) => out.extend(split(s)),
                    _ => return Err(Error::BadSecret("a key list holds a non-string".into())),
                }
            }
            out
        }
        Value::Object(o) => {
            let mut out = Vec::new();
            for f in FIELDS {
                if let Some(v) = o.get(f) {
                    out.extend(from_value(v)?);
                }
            }
            if out.is_empty() {
                return Err(Error::BadSecret(format!(
                    "JSON secret has none of the fields {}",
                    FIELDS.join(", ")
                )));
            }
            out
        }
        _ => return Err(Error::BadSecret("unsupported JSON value".into())),
    })
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let cases: &[(&str, &[&str])] = &[
            ("sk-1", &["sk-1"]),
            (" sk-1 , sk-2 ,", &["sk-1", "sk-2"]),
            ("\"sk-1\"", &["sk-1"]),
            ("[\"sk-1\", \"sk-2,sk-3\"]", &["sk-1", "sk-2", "sk-3"]),
            ("{\"api_key\": \"sk-1\"}", &["sk-1"]),
            ("{\"bedrock-access-gateway-apikey\": \"sk-9\"}", &["sk-9"]),
            ("{\"api_keys\": [\"a\", \"b\"], \"other\": 1}", &["a", "b"]),
        ];
        for (text, want) in cases {
            assert_eq!(parse_secret(text).unwrap(), *want, "{text}");
        }
    }

    #[test]
    fn bad_secrets() {
        for text in ["", " , ", "{\"password\": \"x\"}", "[1]", "{broken", "[]"] {
            assert!(
                matches!(parse_secret(text), Err(Error::BadSecret(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let e = parse_secret("{\"password\": \"hunter2-secret\"}").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        let e = parse_secret("{\"api_key\": \"hunter2\"").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
