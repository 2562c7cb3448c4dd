//! `POST /v1/embeddings` through `InvokeModel`: request bodies for each
//! embedding family, and their responses back to OpenAI's shape.

use openai_types::embeddings::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::model::ModelRef;

/// Most texts Cohere Embed takes in one call.
pub const COHERE_BATCH: usize = 96;

/// An embedding model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `amazon.titan-embed-text-v1`: one text a call, 1536 dimensions.
    TitanV1,
    /// `amazon.titan-embed-text-v2:0`: one text a call, 256/512/1024
    /// dimensions, optional normalization.
    TitanV2,
    /// `cohere.embed-english-v3`, `cohere.embed-multilingual-v3`: batches.
    CohereV3,
    /// `cohere.embed-v4:0`: batches, `output_dimension`.
    CohereV4,
    /// `amazon.nova-2-multimodal-embeddings-v1:0`: one text a call.
    Nova,
}

impl Family {
    /// The family of a model id (profile ids and ARNs that name a foundation
    /// model included).
    pub fn detect(model_id: &str) -> Option<Self> {
        let base = ModelRef::parse(model_id).base_model().unwrap_or(model_id);
        if base.starts_with("amazon.titan-embed-text-v1")
            || base.starts_with("amazon.titan-embed-g1")
        {
            Some(Self::TitanV1)
        } else if base.starts_with("amazon.titan-embed-text-v2") {
            Some(Self::TitanV2)
        } else if base.starts_with("cohere.embed-v4") {
            Some(Self::CohereV4)
        } else if base.starts_with("cohere.embed") {
            Some(Self::CohereV3)
        } else if base.starts_with("amazon.nova") && base.contains("embed") {
            Some(Self::Nova)
        } else {
            None
        }
    }

    /// Configuration names: `titan-v1`, `titan-v2`, `cohere-v3`, `cohere-v4`,
    /// `nova`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "titan-v1" => Self::TitanV1,
            "titan-v2" => Self::TitanV2,
            "cohere-v3" => Self::CohereV3,
            "cohere-v4" => Self::CohereV4,
            "nova" => Self::Nova,
            _ => return None,
        })
    }
}

/// The `InvokeModel` calls one embeddings request takes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The family.
    pub family: Family,
    /// One JSON body per call, in input order.
    pub bodies: Vec<Vec<u8>>,
    /// Prompt tokens estimated from the inputs, for families that report
    /// none.
    pub estimated_tokens: u64,
}

fn texts(input: &EmbeddingInput) -> Result<Vec<&str>, Error> {
    let v: Vec<&str> = match input {
        EmbeddingInput::String(s) => vec![s.as_str()],
        EmbeddingInput::Strings(v) => v.iter().map(String::as_str).collect(),
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_) => {
            return Err(Error::invalid(
                "Bedrock embedding models take text: send input as a string or a list of strings, not token ids",
                "input",
            ));
        }
    };
    if v.is_empty() {
        return Err(Error::invalid("input must not be empty", "input"));
    }
    if let Some(i) = v.iter().position(|s| s.is_empty()) {
        return Err(Error::invalid(
            "input strings must not be empty",
            format!("input[{i}]"),
        ));
    }
    Ok(v)
}

fn extra_str<'r>(req: &'r EmbeddingRequest, key: &str) -> Option<&'r str> {
    req.extra.get(key).and_then(Value::as_str)
}

fn dims(req: &EmbeddingRequest, allowed: &[u32]) -> Result<Option<u32>, Error> {
    match req.dimensions {
        None => Ok(None),
        Some(d) if allowed.contains(&d) => Ok(Some(d)),
        Some(d) => Err(Error::invalid(
            format!("dimensions {d} is not supported by this model: use one of {allowed:?}"),
            "dimensions",
        )),
    }
}

/// A Titan body, written straight from the borrowed text (no copy of the
/// text in a JSON tree, no growth of the output: it is sized first). Keys
/// in the order a JSON map sorts them.
#[derive(serde::Serialize)]
struct TitanBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(rename = "inputText")]
    input_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalize: Option<bool>,
}

impl TitanBody<'_> {
    fn bytes(&self) -> Vec<u8> {
        // Room for the text, its escapes in the common case, and the rest.
        let mut out = Vec::with_capacity(self.input_text.len() + self.input_text.len() / 16 + 96);
        // A struct of plain fields always serializes.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

/// Plans the calls for a request to a model of `family`.
pub fn plan(req: &EmbeddingRequest, family: Family) -> Result<Plan, Error> {
    let inputs = texts(&req.input)?;
    let mut counter = openai_types::tokens::TokenCounter::default();
    inputs.iter().for_each(|s| counter.add(s));
    let estimated_tokens = counter.tokens();
    let body = |v: Value| v.to_string().into_bytes();
    let bodies = match family {
        Family::TitanV1 => {
            dims(req, &[1536])?;
            inputs
                .iter()
                .map(|t| {
                    TitanBody {
                        dimensions: None,
                        input_text: t,
                        normalize: None,
                    }
                    .bytes()
                })
                .collect()
        }
        Family::TitanV2 => {
            let d = dims(req, &[256, 512, 1024])?;
            let normalize = req
                .extra
                .get("normalize")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            inputs
                .iter()
                .map(|t| {
                    TitanBody {
                        dimensions: d,
                        input_text: t,
                        normalize: Some(normalize),
                    }
                    .bytes()
                })
                .collect()
        }
        Family::CohereV3 | Family::CohereV4 => {
            let d = if family == Family::CohereV4 {
                dims(req, &[256, 512, 1024, 1536])?
            } else {
                dims(req, &[1024])?;
                None
            };
            let input_type = extra_str(req, "input_type").unwrap_or("search_document");
            inputs
                .chunks(COHERE_BATCH)
                .map(|batch| {
                    let mut v = json!({
                        "texts": batch,
                        "input_type": input_type,
                        "embedding_types": ["float"],
                    });
                    if let Some(t) = extra_str(req, "truncate") {
                        v["truncate"] = t.into();
                    }
                    if let Some(d) = d {
                        v["output_dimension"] = d.into();
                    }
                    body(v)
                })
                .collect()
        }
        Family::Nova => {
            let d = dims(req, &[256, 384, 1024, 3072])?.unwrap_or(3072);
            let purpose = extra_str(req, "embedding_purpose").unwrap_or("GENERIC_INDEX");
            inputs
                .iter()
                .map(|t| {
                    body(json!({
                        "taskType": "SINGLE_EMBEDDING",
                        "singleEmbeddingParams": {
                            "embeddingPurpose": purpose,
                            "embeddingDimension": d,
                            "text": { "truncationMode": "END", "value": t },
                        },
                    }))
                })
                .collect()
        }
    };
    Ok(Plan {
        family,
        bodies,
        estimated_tokens,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanOut {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    ByType { float: Vec<Vec<f32>> },
    Floats(Vec<Vec<f32>>),
}

#[derive(Deserialize)]
struct CohereOut {
    embeddings: CohereEmbeddings,
}

#[derive(Deserialize)]
struct NovaOut {
    embeddings: Vec<NovaEmbedding>,
}

#[derive(Deserialize)]
struct NovaEmbedding {
    embedding: Vec<f32>,
}

/// The vectors (and token count, where the family reports one) of one
/// call's response body.
pub fn parse(family: Family, body: &[u8]) -> Result<(Vec<Vec<f32>>, Option<u64>), Error> {
    let bad = |e: serde_json::Error| Error::BadResponse(format!("embedding response: {e}"));
    Ok(match family {
        Family::TitanV1 | Family::TitanV2 => {
            let o: TitanOut = serde_json::from_slice(body).map_err(bad)?;
            (vec![o.embedding], o.input_text_token_count)
        }
        Family::CohereV3 | Family::CohereV4 => {
            let o: CohereOut = serde_json::from_slice(body).map_err(bad)?;
            match o.embeddings {
                CohereEmbeddings::ByType { float } | CohereEmbeddings::Floats(float) => {
                    (float, None)
                }
            }
        }
        Family::Nova => {
            let o: NovaOut = serde_json::from_slice(body).map_err(bad)?;
            (
                o.embeddings.into_iter().map(|e| e.embedding).collect(),
                None,
            )
        }
    })
}

/// The OpenAI response. `prompt_tokens` is the families' own count where
/// every call reported one, else the estimate of `openai_types::tokens::estimate_tokens`.
pub fn assemble(
    model: String,
    vectors: Vec<Vec<f32>>,
    tokens: Option<u64>,
    plan: &Plan,
    format: openai_types::embeddings::EncodingFormat,
) -> EmbeddingResponse {
    let prompt = tokens.unwrap_or(plan.estimated_tokens);
    EmbeddingResponse {
        object: Default::default(),
        data: vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| Embedding {
                index: i as u32,
                embedding: EmbeddingVector::encode(v, format),
                object: Default::default(),
            })
            .collect(),
        model,
        usage: EmbeddingUsage {
            prompt_tokens: prompt,
            total_tokens: prompt,
        },
    }
}
