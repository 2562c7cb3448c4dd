//! `POST /v1/rerank` through `InvokeModel` on Bedrock's rerank models
//! (`cohere.rerank-v3-5:0`, `amazon.rerank-v1:0`): the request body and the
//! scores back.

use openai_types::rerank::RerankRequest;
use serde::Deserialize;
use serde_json::json;

use crate::Error;
use crate::model::ModelRef;

/// Whether a model id names one of Bedrock's rerank models.
pub fn is_rerank_model(model_id: &str) -> bool {
    let base = ModelRef::parse(model_id).base_model().unwrap_or(model_id);
    base.contains(".rerank-")
}

/// The `InvokeModel` body: the query, the documents' texts, `top_n` as
/// asked (at most the documents' count, which Bedrock requires; the answer
/// is the same), `api_version` 2 for Cohere.
pub fn body(model_id: &str, r: &RerankRequest) -> Vec<u8> {
    let docs: Vec<&str> = r.documents.iter().map(|d| d.text()).collect();
    let top_n = r.top_n.unwrap_or(docs.len()).min(docs.len());
    let base = ModelRef::parse(model_id).base_model().unwrap_or(model_id);
    let v = if base.starts_with("cohere.") {
        json!({"query": r.query, "documents": docs, "top_n": top_n, "api_version": 2})
    } else {
        json!({"query": r.query, "documents": docs, "top_n": top_n})
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

#[derive(Deserialize)]
struct Out {
    results: Vec<Scored>,
}

#[derive(Deserialize)]
struct Scored {
    index: usize,
    relevance_score: f64,
}

/// The `(index, score)` pairs of an answer.
pub fn parse(body: &[u8]) -> Result<Vec<(usize, f64)>, Error> {
    let o: Out = serde_json::from_slice(body)
        .map_err(|e| Error::BadResponse(format!("rerank response: {e}")))?;
    Ok(o.results
        .into_iter()
        .map(|s| (s.index, s.relevance_score))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_per_family_and_scores_back() {
        let r: RerankRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 10}))
        .unwrap();
        assert!(is_rerank_model("cohere.rerank-v3-5:0") && is_rerank_model("amazon.rerank-v1:0"));
        assert!(!is_rerank_model("anthropic.claude-3-haiku-20240307-v1:0"));
        let c: serde_json::Value =
            serde_json::from_slice(&body("cohere.rerank-v3-5:0", &r)).unwrap();
        assert_eq!(
            c,
            json!({"query": "q", "documents": ["a", "b"], "top_n": 2, "api_version": 2})
        );
        let a: serde_json::Value = serde_json::from_slice(&body("amazon.rerank-v1:0", &r)).unwrap();
        assert_eq!(
            a,
            json!({"query": "q", "documents": ["a", "b"], "top_n": 2})
        );
        let s = parse(
            br#"{"results":[{"index":1,"relevance_score":0.9},{"index":0,"relevance_score":0.1}]}"#,
        )
        .unwrap();
        assert_eq!(s, [(1, 0.9), (0, 0.1)]);
        assert!(parse(b"[]").is_err());
    }
}
