//! Embeddings: `POST /v1/embeddings`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::Extra;
use crate::tag::fixed_tag;

fixed_tag!(
    /// `"embedding"`.
    EmbeddingObject = "embedding"
);

/// The input to embed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
