//! Rerank in the Cohere/Jina shape (`POST /v1/rerank`), the one LiteLLM
//! and most RAG frameworks send: a query, documents (strings or
//! `{"text": …}`), `top_n`, `return_documents`. Not an OpenAI API; kept
//! here beside the other request types so every backend answers it alike.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Documents one request may rank.
pub const MAX_DOCUMENTS: usize = 1000;

/// A rerank request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankRequest {
    /// The model.
    pub model: String,
    /// What the documents are ranked against.
    pub query: String,
    /// The documents.
    pub documents: Vec<RerankDocument>,
    /// How many results to return (default: all). Honoured as sent:
    /// larger than the documents gives them all, never fewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<usize>,
    /// Whether each result carries its document's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_documents: Option<bool>,
    /// Other fields (`max_chunks_per_doc`, …), passed to upstreams.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A document: a string, or an object with `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RerankDocument {
    /// Plain text.
    Text(String),
    /// `{"text": …}` (other fields kept).
    Object {
        /// Its text.
        text: String,
        /// Other fields.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

impl RerankDocument {
    /// Its text.
    pub fn text(&self) -> &str {
        match self {
            Self::Text(t) | Self::Object { text: t, .. } => t,
        }
    }
}

/// A rerank answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankResponse {
    /// An id.
    pub id: String,
    /// The model.
    #[serde(default)]
    pub model: String,
    /// Results, most relevant first.
    pub results: Vec<RerankResult>,
    /// Usage (`{"total_tokens": …}` or Cohere's `meta`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
}

/// One ranked document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankResult {
    /// The document's position in the request.
    pub index: usize,
    /// Its relevance to the query (higher first).
    pub relevance_score: f64,
    /// `{"text": …}` when `return_documents` asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Value>,
}

/// Why a rerank request is refused: a message and the field.
pub fn validate(r: &RerankRequest) -> Result<(), (String, &'static str)> {
    if r.query.trim().is_empty() {
        return Err(("query must not be empty".into(), "query"));
    }
    if r.documents.is_empty() || r.documents.len() > MAX_DOCUMENTS {
        return Err((
            format!("documents must hold 1 to {MAX_DOCUMENTS} documents"),
            "documents",
        ));
    }
    if r.top_n == Some(0) {
        return Err(("top_n must be at least 1".into(), "top_n"));
    }
    Ok(())
}

/// The answer from each document's score (`(index, score)` pairs in any
/// order): sorted most relevant first, cut to `top_n`, documents attached
/// when asked.
pub fn assemble(
    id: String,
    r: &RerankRequest,
    mut scores: Vec<(usize, f64)>,
    usage: Option<Value>,
) -> RerankResponse {
    scores.retain(|(i, _)| *i < r.documents.len());
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scores.truncate(r.top_n.unwrap_or(usize::MAX));
    let with_docs = r.return_documents.unwrap_or(false);
    RerankResponse {
        id,
        model: r.model.clone(),
        results: scores
            .into_iter()
            .map(|(index, relevance_score)| RerankResult {
                index,
                relevance_score,
                document: with_docs.then(|| serde_json::json!({"text": r.documents[index].text()})),
            })
            .collect(),
        usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> RerankRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn results_are_sorted_cut_to_top_n_and_carry_documents_when_asked() {
        let r = req(serde_json::json!({"model": "m", "query": "q",
            "documents": ["a", {"text": "b", "id": 7}, "c"], "top_n": 2, "return_documents": true}));
        assert_eq!(validate(&r), Ok(()));
        let out = assemble(
            "id".into(),
            &r,
            vec![(0, 0.1), (1, 0.9), (2, 0.5), (9, 1.0)],
            None,
        );
        let got: Vec<(usize, &str)> = out
            .results
            .iter()
            .map(|x| {
                (
                    x.index,
                    x.document.as_ref().unwrap()["text"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, [(1, "b"), (2, "c")]);
        // top_n past the documents: all of them, never an error or fewer.
        let all = req(
            serde_json::json!({"model": "m", "query": "q", "documents": ["a", "b"], "top_n": 50}),
        );
        assert_eq!(
            assemble("id".into(), &all, vec![(0, 0.2), (1, 0.3)], None)
                .results
                .len(),
            2
        );
        assert!(
            validate(&req(
                serde_json::json!({"model": "m", "query": " ", "documents": ["a"]})
            ))
            .is_err()
        );
        assert!(
            validate(&req(
                serde_json::json!({"model": "m", "query": "q", "documents": []})
            ))
            .is_err()
        );
        assert!(
            validate(&req(
                serde_json::json!({"model": "m", "query": "q", "documents": ["a"], "top_n": 0})
            ))
            .is_err()
        );
    }
}
