//! JSON schemas a client sends (`response_format.json_schema.schema`, a
//! function tool's `parameters`), read under a budget.
//!
//! A schema is held as a `serde_json::Value` tree, which costs ten times or
//! more its JSON text (a map node per object, an allocation per string). A
//! client could send a few megabytes of schema and make the gateway hold
//! tens of times that. [`bounded`] builds the tree while counting, and
//! refuses a schema past [`MAX_VALUES`] values, [`MAX_DEPTH`] levels or
//! [`MAX_STRING_BYTES`] of names and strings, before it is built whole.
//! The limits sit above what OpenAI itself accepts for structured outputs
//! (5,000 properties, 10 levels of nesting, 120,000 characters of names and
//! enum values): a schema of 5,000 properties of a few values each fits.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! struct F {
//!     #[serde(default, deserialize_with = "openai_types::schema::bounded")]
//!     schema: Option<serde_json::Value>,
//! }
//! let ok: F = serde_json::from_str(r#"{"schema":{"type":"object"}}"#).unwrap();
//! assert!(ok.schema.is_some());
//! let deep = format!(r#"{{"schema":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
//! assert!(serde_json::from_str::<F>(&deep).is_err());
//! ```

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The most JSON values in one schema.
pub const MAX_VALUES: usize = 20_000;
/// The deepest nesting of one schema.
pub const MAX_DEPTH: usize = 64;
/// The most bytes of keys and strings in one schema.
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

struct Budget {
    values: usize,
    bytes: usize,
}

impl Budget {
    fn take<E: de::Error>(&mut self, bytes: usize) -> Result<(), E> {
        self.values = self
            .values
            .checked_sub(1)
            .ok_or_else(|| E::custom(format!("the schema holds more than {MAX_VALUES} values")))?;
        self.bytes = self.bytes.checked_sub(bytes).ok_or_else(|| {
            E::custom(format!(
                "the schema holds more than {MAX_STRING_BYTES} bytes of names and strings"
            ))
        })?;
        Ok(())
    }
}

struct Seed<'a> {
    budget: &'a mut Budget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON schema")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.take(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.take(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed {
            budget: &mut *self.budget,
            depth,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            self.budget.bytes = self.budget.bytes.checked_sub(k.len()).ok_or_else(|| {
                de::Error::custom(format!(
                    "the schema holds more than {MAX_STRING_BYTES} bytes of names and strings"
                ))
            })?;
            let v = map.next_value_seed(Seed {
                budget: &mut *self.budget,
                depth,
            })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

impl Seed<'_> {
    /// Counts a container and returns its children's depth.
    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        self.budget.take(0)?;
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "the schema is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(self.depth + 1)
    }
}

struct Optional {
    values: usize,
    bytes: usize,
}

impl<'de> Visitor<'de> for Optional {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON schema or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut budget = Budget {
            values: self.values,
            bytes: self.bytes,
        };
        Seed {
            budget: &mut budget,
            depth: 0,
        }
        .deserialize(d)
        .map(Some)
    }
}

/// Deserializes an optional schema under the budget (for
/// `#[serde(deserialize_with = "…")]`).
pub fn bounded<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    d.deserialize_option(Optional {
        values: MAX_VALUES,
        bytes: MAX_STRING_BYTES,
    })
}

/// The most JSON values in a request's free-form input (the Responses
/// API's `input` items): its text is not counted (a string costs what it
/// weighs), its structure is.
pub const MAX_INPUT_VALUES: usize = 200_000;

/// Deserializes free-form input under [`MAX_INPUT_VALUES`] and
/// [`MAX_DEPTH`].
pub fn bounded_input<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    d.deserialize_option(Optional {
        values: MAX_INPUT_VALUES,
        bytes: usize::MAX,
    })
}

/// Deserializes an optional list (of tools, say) under the schema budget.
pub fn bounded_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
    match bounded(d)? {
        None => Ok(None),
        Some(Value::Array(v)) => Ok(Some(v)),
        Some(_) => Err(de::Error::custom("expected a list")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct F {
        #[serde(default, deserialize_with = "bounded")]
        schema: Option<Value>,
    }

    #[test]
    fn schemas_within_the_budget_read_as_values_and_others_are_refused() {
        let s = r#"{"schema":{"type":"object","properties":{"a":{"type":"string","enum":["x",1,2.5,true,null]}}}}"#;
        let f: F = serde_json::from_str(s).unwrap();
        let want: Value = serde_json::from_str(s).unwrap();
        assert_eq!(f.schema.as_ref(), Some(&want["schema"]));
        assert!(
            serde_json::from_str::<F>(r#"{"schema":null}"#)
                .unwrap()
                .schema
                .is_none()
        );
        assert!(serde_json::from_str::<F>("{}").unwrap().schema.is_none());
        let many = format!(r#"{{"schema":[{}0]}}"#, "0,".repeat(MAX_VALUES));
        let e = serde_json::from_str::<F>(&many).unwrap_err().to_string();
        assert!(e.contains("more than 20000 values"), "{e}");
        let long = format!(
            r#"{{"schema":{{"description":"{}"}}}}"#,
            "x".repeat(MAX_STRING_BYTES + 1)
        );
        assert!(serde_json::from_str::<F>(&long).is_err());
        let deep = format!(
            r#"{{"schema":{}{}}}"#,
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let e = serde_json::from_str::<F>(&deep.replace("{}", "1"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested") || e.contains("recursion"), "{e}");
    }
}
