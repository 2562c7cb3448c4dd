//! `POST /v1/embeddings` on SageMaker embedding containers: Text
//! Embeddings Inference and the Hugging Face inference toolkit both take
//! `{"inputs": [texts]}`; TEI answers one vector a text, the toolkit one
//! vector a text (sentence-transformers models) or one a token
//! (feature-extraction models: mean-pooled here), or `{"embeddings": …}`.
//! Texts go in batches of [`BATCH`] (TEI's default `max_client_batch_size`),
//! a few calls at a time. Rerank on TEI containers is here too.

use futures_util::StreamExt;
use openai_types::embeddings::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
};
use serde_json::Value;

use super::SageMaker;
use crate::config::ModelConfig;
use crate::error::ApiError;

/// Texts a call carries at most.
const BATCH: usize = 32;

/// Texts one request may carry (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

/// Calls of one request under way at once.
const CONCURRENCY: usize = 4;

impl SageMaker {
    /// The embeddings of `req`'s texts from `cfg`'s endpoint.
    pub(crate) async fn embed(
        &self,
        cfg: &ModelConfig,
        mut req: EmbeddingRequest,
        limit: std::time::Duration,
    ) -> Result<EmbeddingResponse, ApiError> {
        if req.dimensions.is_some() {
            return Err(ApiError::invalid(
                "dimensions is not supported by SageMaker embedding endpoints: their model's size is the size",
            )
            .param("dimensions"));
        }
        crate::backend::token_ids::decode_input(&mut req)?;
        let texts = match std::mem::replace(&mut req.input, EmbeddingInput::Strings(Vec::new())) {
            EmbeddingInput::String(s) => vec![s],
            EmbeddingInput::Strings(v) => v,
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_) => {
                return Err(ApiError::internal("token ids were not decoded"));
            }
        };
        if texts.is_empty() || texts.len() > MAX_INPUTS {
            return Err(
                ApiError::invalid(format!("'input' takes 1 to {MAX_INPUTS} items")).param("input"),
            );
        }
        let estimated: u64 = texts.iter().map(|t| t.len().div_ceil(4) as u64).sum();
        let calls: Vec<_> = texts
            .chunks(BATCH)
            .map(|batch| {
                let body = serde_json::to_vec(&serde_json::json!({
                    "inputs": batch, "normalize": true, "truncate": true,
                }));
                let n = batch.len();
                async move {
                    let body = body.map_err(|e| ApiError::internal(e.to_string()))?;
                    let out = self.invoke(cfg, body, limit).await?;
                    vectors(&out, n)
                }
            })
            .collect();
        let results: Vec<Result<Vec<Vec<f32>>, ApiError>> = futures_util::stream::iter(calls)
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let format = req.encoding_format.unwrap_or_default();
        let mut data = Vec::with_capacity(texts.len());
        for batch in results {
            for v in batch? {
                data.push(Embedding {
                    index: data.len() as u32,
                    embedding: EmbeddingVector::encode(v, format),
                    object: Default::default(),
                });
            }
        }
        Ok(EmbeddingResponse {
            object: Default::default(),
            data,
            model: req.model,
            usage: EmbeddingUsage {
                prompt_tokens: estimated,
                total_tokens: estimated,
            },
        })
    }
}

impl SageMaker {
    /// Rerank on a Text Embeddings Inference container: its `/rerank` body
    /// (`query`, `texts`) through `InvokeEndpoint`, its `[{index, score}]`
    /// answer back.
    pub(crate) async fn rerank_tei(
        &self,
        cfg: &ModelConfig,
        call: crate::backend::provider::RerankCall,
    ) -> Result<openai_types::rerank::RerankResponse, ApiError> {
        let texts: Vec<&str> = call.req.documents.iter().map(|d| d.text()).collect();
        let body = serde_json::to_vec(&serde_json::json!({
            "query": call.req.query, "texts": texts, "raw_scores": false, "truncate": true,
        }))
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let out = self
            .invoke(cfg, body, call.caller.deadlines.request)
            .await?;
        #[derive(serde::Deserialize)]
        struct Scored {
            index: usize,
            score: f64,
        }
        let scored: Vec<Scored> = serde_json::from_slice(&out).map_err(|e| {
            ApiError::upstream(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "bad_upstream_response",
                format!("the endpoint's rerank answer is not TEI's [{{index, score}}]: {e}"),
            )
            .code("bad_upstream_response")
        })?;
        let scores = scored.into_iter().map(|s| (s.index, s.score)).collect();
        Ok(openai_types::rerank::assemble(
            call.id, &call.req, scores, None,
        ))
    }
}

/// The vectors of an answer for `n` texts: `[[f32]]`, `[[[f32]]]` (a
/// vector a token, mean-pooled) or `{"embeddings": …}`.
pub(crate) fn vectors(body: &[u8], n: usize) -> Result<Vec<Vec<f32>>, ApiError> {
    let bad = |why: &str| {
        ApiError::upstream(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "bad_upstream_response",
            format!("the endpoint's embeddings answer {why}"),
        )
        .code("bad_upstream_response")
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    let list = match v {
        Value::Object(mut o) => o.remove("embeddings").unwrap_or(Value::Null),
        other => other,
    };
    let rows = list
        .as_array()
        .ok_or_else(|| bad("is not a list of vectors"))?;
    if rows.len() != n {
        return Err(bad(&format!("has {} vectors for {n} texts", rows.len())));
    }
    rows.iter()
        .map(|row| {
            let items = row
                .as_array()
                .ok_or_else(|| bad("holds a row that is not a list"))?;
            if items.first().is_some_and(Value::is_array) {
                // A vector a token: their mean.
                let tokens: Vec<Vec<f32>> = items
                    .iter()
                    .map(floats)
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("holds a token vector that is not numbers"))?;
                let dim = tokens.first().map_or(0, Vec::len);
                if dim == 0 || tokens.iter().any(|t| t.len() != dim) {
                    return Err(bad("holds token vectors of different sizes"));
                }
                let mut mean = vec![0f32; dim];
                for t in &tokens {
                    for (m, x) in mean.iter_mut().zip(t) {
                        *m += x;
                    }
                }
                let k = tokens.len() as f32;
                Ok(mean.into_iter().map(|m| m / k).collect())
            } else {
                floats(row).ok_or_else(|| bad("holds a vector that is not numbers"))
            }
        })
        .collect()
}

fn floats(v: &Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_token_and_wrapped_answers() {
        assert_eq!(
            vectors(b"[[1,2],[3,4]]", 2).unwrap(),
            [[1.0, 2.0], [3.0, 4.0]]
        );
        assert_eq!(
            vectors(b"[[[1,2],[3,4]]]", 1).unwrap(),
            [[2.0, 3.0]],
            "token vectors mean-pooled"
        );
        assert_eq!(vectors(br#"{"embeddings":[[0.5]]}"#, 1).unwrap(), [[0.5]]);
        for (body, n) in [
            (&b"[[1]]"[..], 2),
            (b"{}", 1),
            (b"[[\"x\"]]", 1),
            (b"[[[1],[1,2]]]", 1),
        ] {
            assert!(
                vectors(body, n).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
