//! Embedding inputs sent as token ids, decoded to text for backends that
//! take text (Bedrock's embedding models). LangChain's `OpenAIEmbeddings`
//! sends `cl100k_base` ids by default; `o200k_base` is used when the
//! request's model name is one tiktoken maps to it. The vocabularies load on
//! first use, so a gateway that never sees token ids never holds them.

use openai_types::embeddings::{EmbeddingInput, EmbeddingRequest};
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use crate::error::ApiError;

/// Token arrays a request may carry (OpenAI's own limit).
const MAX_ARRAYS: usize = 2048;

/// Replaces token-id input with the text it encodes; text input is left as
/// it is. An id outside the vocabulary is a 400 naming the input. The
/// decoding (and the vocabulary's first load, 100 to 400 ms) runs on
/// tokio's blocking pool, never on the worker serving other requests.
pub(crate) async fn decode_input(req: &mut EmbeddingRequest) -> Result<(), ApiError> {
    if matches!(
        req.input,
        EmbeddingInput::String(_) | EmbeddingInput::Strings(_)
    ) {
        return Ok(());
    }
    let mut owned = EmbeddingRequest {
        model: req.model.clone(),
        input: std::mem::replace(&mut req.input, EmbeddingInput::Strings(Vec::new())),
        encoding_format: None,
        dimensions: None,
        user: None,
        extra: Default::default(),
    };
    let (owned, result) = tokio::task::spawn_blocking(move || {
        let r = decode_now(&mut owned);
        (owned, r)
    })
    .await
    .map_err(|e| ApiError::internal(format!("token-id decoding stopped: {e}")))?;
    req.input = owned.input;
    result
}

/// [`decode_input`], on the calling thread.
fn decode_now(req: &mut EmbeddingRequest) -> Result<(), ApiError> {
    let lists = match &req.input {
        EmbeddingInput::String(_) | EmbeddingInput::Strings(_) => return Ok(()),
        EmbeddingInput::Tokens(t) => vec![t.as_slice()],
        EmbeddingInput::TokenLists(l) => l.iter().map(Vec::as_slice).collect(),
    };
    if lists.len() > MAX_ARRAYS {
        return Err(
            ApiError::invalid(format!("'input' takes at most {MAX_ARRAYS} token arrays"))
                .param("input"),
        );
    }
    let bpe = vocabulary(&req.model);
    let texts = lists
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            if ids.is_empty() {
                return Err(ApiError::invalid("a token array must not be empty")
                    .param(format!("input[{i}]")));
            }
            bpe.decode_bytes(ids)
                .map(|b| {
                    String::from_utf8(b)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                })
                .map_err(|e| {
                    ApiError::invalid(format!(
                        "token id {} is not in the {} vocabulary",
                        e.token,
                        name(&req.model)
                    ))
                    .param(format!("input[{i}]"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    req.input = match &req.input {
        EmbeddingInput::Tokens(_) => EmbeddingInput::String(texts.concat()),
        _ => EmbeddingInput::Strings(texts),
    };
    Ok(())
}

fn uses_o200k(model: &str) -> bool {
    matches!(
        get_tokenizer(model),
        Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony)
    )
}

fn name(model: &str) -> &'static str {
    if uses_o200k(model) {
        "o200k_base"
    } else {
        "cl100k_base"
    }
}

fn vocabulary(model: &str) -> &'static CoreBPE {
    if uses_o200k(model) {
        tiktoken_rs::o200k_base_singleton()
    } else {
        tiktoken_rs::cl100k_base_singleton()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(model: &str, input: EmbeddingInput) -> EmbeddingRequest {
        serde_json::from_value(serde_json::json!({"model": model, "input": input})).unwrap()
    }

    #[test]
    fn token_ids_decode_with_the_models_vocabulary() {
        let text = "Hello, 世界! Embeddings.";
        for (model, bpe) in [
            (
                "text-embedding-3-small",
                tiktoken_rs::cl100k_base_singleton(),
            ),
            ("my-own-embedder", tiktoken_rs::cl100k_base_singleton()),
            ("gpt-4o", tiktoken_rs::o200k_base_singleton()),
        ] {
            let ids = bpe.encode_ordinary(text);
            let mut r = req(model, EmbeddingInput::TokenLists(vec![ids.clone(), ids]));
            decode_now(&mut r).unwrap();
            assert_eq!(
                r.input,
                EmbeddingInput::Strings(vec![text.into(), text.into()]),
                "{model}"
            );
        }
        let mut r = req("m", EmbeddingInput::Tokens(vec![9906]));
        decode_now(&mut r).unwrap();
        assert_eq!(r.input, EmbeddingInput::String("Hello".into()));
    }

    #[test]
    fn text_passes_and_unknown_ids_are_refused() {
        let mut r = req("m", EmbeddingInput::String("x".into()));
        decode_now(&mut r).unwrap();
        assert_eq!(r.input, EmbeddingInput::String("x".into()));
        let mut r = req("m", EmbeddingInput::Tokens(vec![u32::MAX]));
        let e = decode_now(&mut r).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.body.error.message.contains("cl100k_base"), "{e:?}");
        let mut r = req("m", EmbeddingInput::TokenLists(vec![vec![]]));
        assert_eq!(decode_now(&mut r).unwrap_err().status, 400);
    }
}
