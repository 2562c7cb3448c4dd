//! Embeddings: `POST /v1/embeddings`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::tag::fixed_tag;

fixed_tag!(
    /// `"embedding"`.
    EmbeddingObject = "embedding"
);

/// The input to embed. Read element by element (an untagged enum would
/// first buffer every token id in serde's own tree, several times its
/// size).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    String(String),
    /// Several texts.
    Strings(Vec<String>),
    /// One token array.
    Tokens(Vec<u32>),
    /// Several token arrays.
    TokenLists(Vec<Vec<u32>>),
}

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(InputVisitor)
    }
}

struct InputVisitor;

const EXPECTED: &str =
    "a string, a list of strings, a list of token ids or a list of token-id lists";

impl<'de> serde::de::Visitor<'de> for InputVisitor {
    type Value = EmbeddingInput;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(EmbeddingInput::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(EmbeddingInput::String(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = match seq.next_element::<Item>()? {
            None => return Ok(EmbeddingInput::Strings(Vec::new())),
            Some(Item::Text(t)) => EmbeddingInput::Strings(vec![t]),
            Some(Item::Id(i)) => EmbeddingInput::Tokens(vec![i]),
            Some(Item::Ids(ids)) => EmbeddingInput::TokenLists(vec![ids]),
        };
        let mixed = || serde::de::Error::custom(format!("expected {EXPECTED}, not a mix"));
        while let Some(item) = seq.next_element::<Item>()? {
            match (&mut out, item) {
                (EmbeddingInput::Strings(v), Item::Text(t)) => v.push(t),
                (EmbeddingInput::Tokens(v), Item::Id(i)) => v.push(i),
                (EmbeddingInput::TokenLists(v), Item::Ids(ids)) => v.push(ids),
                _ => return Err(mixed()),
            }
        }
        Ok(out)
    }
}

/// One element of an input list.
enum Item {
    Text(String),
    Id(u32),
    Ids(Vec<u32>),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Item;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a token id or a list of token ids")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Item, E> {
                Ok(Item::Text(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Item, E> {
                Ok(Item::Text(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Item, E> {
                u32::try_from(v)
                    .map(Item::Id)
                    .map_err(|_| E::custom("a token id is at most 4294967295"))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Item, E> {
                u32::try_from(v)
                    .map(Item::Id)
                    .map_err(|_| E::custom("a token id is a number from 0 to 4294967295"))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                let mut ids = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(i) = seq.next_element::<u32>()? {
                    ids.push(i);
                }
                Ok(Item::Ids(ids))
            }
        }
        d.deserialize_any(V)
    }
}

/// `float` (default) or `base64` (little-endian float32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// JSON numbers.
    #[default]
    Float,
    /// Base64 of little-endian `f32`s.
    Base64,
}

/// `POST /v1/embeddings` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// Input.
    pub input: EmbeddingInput,
    /// Model id.
    pub model: String,
    /// Output encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    /// Output dimensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One vector, as floats or as base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `[0.1, …]`.
    Float(Vec<f32>),
    /// Base64 of little-endian `f32`s.
    Base64(String),
}

impl EmbeddingVector {
    /// Encodes `values` in the requested format.
    pub fn encode(values: Vec<f32>, format: EncodingFormat) -> Self {
        match format {
            EncodingFormat::Float => Self::Float(values),
            EncodingFormat::Base64 => {
                let mut bytes = Vec::with_capacity(values.len() * 4);
                for v in &values {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                Self::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }

    /// The floats, decoding base64 if need be. `None` for bad base64 or a
    /// length that is not a multiple of four.
    pub fn to_floats(&self) -> Option<Vec<f32>> {
        match self {
            Self::Float(v) => Some(v.clone()),
            Self::Base64(s) => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
                if bytes.len() % 4 != 0 {
                    return None;
                }
                Some(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
        }
    }
}

/// One embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// Position in the input.
    pub index: u32,
    /// The vector.
    pub embedding: EmbeddingVector,
    /// Always `"embedding"`.
    pub object: EmbeddingObject,
}

/// Token usage of an embeddings call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Same as `prompt_tokens`.
    pub total_tokens: u64,
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    /// Always `"list"`.
    pub object: crate::models::ListObject,
    /// The embeddings.
    pub data: Vec<Embedding>,
    /// Model.
    pub model: String,
    /// Usage.
    pub usage: EmbeddingUsage,
}
