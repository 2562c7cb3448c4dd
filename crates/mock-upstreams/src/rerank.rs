//! The fakes' retrieval answers: a rerank score every fake gives alike (so
//! tests can predict the order), Text Embeddings Inference's `/rerank`
//! answer, and an embedding container's vectors.

use serde_json::{Value, json};

/// The fakes' rerank score: the share of the query's words a text holds
/// (lower case), so tests can predict the order.
pub(crate) fn relevance(query: &str, text: &str) -> f64 {
    let t = text.to_lowercase();
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return 0.0;
    }
    words.iter().filter(|w| t.contains(w.as_str())).count() as f64 / words.len() as f64
}

/// TEI's `/rerank`: `[{index, score}]`, most relevant first; a 422 for a
/// body without `query` and `texts`.
pub(crate) fn tei(body: &Value) -> (u16, Value) {
    let (Some(q), Some(texts)) = (body["query"].as_str(), body["texts"].as_array()) else {
        return (
            422,
            json!({"error": "missing field `query` or `texts`", "error_type": "Validation"}),
        );
    };
    let mut scored: Vec<(usize, f64)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (i, relevance(q, t.as_str().unwrap_or_default())))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    (
        200,
        Value::Array(
            scored
                .into_iter()
                .map(|(i, s)| json!({"index": i, "score": s}))
                .collect(),
        ),
    )
}

/// An embedding container's answer to `{"inputs": [texts]}`: a vector a
/// text (`[chars, position, 0.5]`, TEI) or, `per_token`, a vector a word
/// (`[word chars, position]`, the toolkit's feature extraction).
pub(crate) fn embeddings(body: &Value, per_token: bool) -> Value {
    let texts: Vec<String> = match &body["inputs"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    Value::Array(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if per_token {
                    json!(
                        t.split_whitespace()
                            .map(|w| json!([w.chars().count(), i]))
                            .collect::<Vec<_>>()
                    )
                } else {
                    json!([t.chars().count(), i, 0.5])
                }
            })
            .collect(),
    )
}
