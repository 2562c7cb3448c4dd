//! Embedding inputs sent as token ids, decoded to text for backends that
//! take text (Bedrock's embedding models, SageMaker's). LangChain's
//! `OpenAIEmbeddings` sends `cl100k_base` ids by default; `o200k_base` is
//! used when the request's model name is one tiktoken maps to it.
//!
//! Decoding needs only each id's bytes, not tiktoken's encoder: the build
//! script writes both vocabularies as tables (a length byte per id, then
//! the bytes), deflated, which the binary carries (1.4 MB, where tiktoken's
//! base64 text was 5.3 MB). The first use of a vocabulary inflates it and
//! computes its offsets (4 bytes an id; a few milliseconds, once); a
//! gateway that never sees token ids never touches the tables' pages.

use std::sync::OnceLock;

use openai_types::embeddings::{EmbeddingInput, EmbeddingRequest};
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use crate::error::ApiError;

/// Token arrays a request may carry (OpenAI's own limit).
const MAX_ARRAYS: usize = 2048;

/// Tokens a request may carry in all (OpenAI's own limit: "the maximum
/// number of tokens summed across all inputs in a single request is
/// 300,000"). It bounds the decoded text: a token is at most 128 bytes, so
/// 38 MB at worst where a 5 MB body of ids could have asked for 90 MB.
const MAX_TOKENS: usize = 300_000;

/// Replaces token-id input with the text it encodes; text input is left as
/// it is. An id outside the vocabulary is a 400 naming the input. Cheap
/// enough for the worker (lookups in a table read in place; 300,000 tokens
/// at most), so it runs there.
pub(crate) fn decode_input(req: &mut EmbeddingRequest) -> Result<(), ApiError> {
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
    let tokens: usize = lists.iter().map(|ids| ids.len()).sum();
    if tokens > MAX_TOKENS {
        return Err(ApiError::invalid(format!(
            "'input' carries {tokens} tokens; a request takes at most {MAX_TOKENS} in all"
        ))
        .param("input"));
    }
    let vocab = vocabulary(&req.model);
    let texts = lists
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            if ids.is_empty() {
                return Err(ApiError::invalid("a token array must not be empty")
                    .param(format!("input[{i}]")));
            }
            vocab
                .decode(ids)
                .map(|b| {
                    String::from_utf8(b)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                })
                .map_err(|id| {
                    ApiError::invalid(format!(
                        "token id {id} is not in the {} vocabulary",
                        vocab.name
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

/// A vocabulary as `build.rs` wrote it: `[ids: u32 LE][a length byte per
/// id, 0 = no such id][the ids' bytes, in id order]`, deflated.
#[derive(Debug)]
struct Vocab {
    name: &'static str,
    /// Where each id's bytes start in `table`, and one past the last.
    offsets: Vec<u32>,
    /// The table, inflated.
    table: Vec<u8>,
}

impl Vocab {
    fn read(name: &'static str, deflated: &'static [u8]) -> Self {
        use std::io::Read as _;
        let mut table = Vec::with_capacity(deflated.len() * 2);
        if let Err(e) = flate2::read::DeflateDecoder::new(deflated).read_to_end(&mut table) {
            // The build wrote it: only a damaged binary gets here, and
            // then every id is refused (a 400 naming it), not guessed.
            tracing::error!(vocabulary = name, error = %e, "the token vocabulary could not be inflated");
            table.clear();
        }
        let ids = table
            .first_chunk::<4>()
            .map_or(0, |n| u32::from_le_bytes(*n) as usize);
        let lens = table
            .get(4..)
            .and_then(|rest| rest.get(..ids))
            .unwrap_or(&[]);
        // The ids' bytes follow the lengths in the same table.
        let mut offsets = Vec::with_capacity(lens.len() + 1);
        let mut at = u32::try_from(4 + lens.len()).unwrap_or(u32::MAX);
        offsets.push(at);
        for &n in lens {
            at += u32::from(n);
            offsets.push(at);
        }
        Self {
            name,
            offsets,
            table,
        }
    }

    /// The bytes `ids` encode, or the first id that is not in the
    /// vocabulary.
    fn decode(&self, ids: &[u32]) -> Result<Vec<u8>, u32> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let i = id as usize;
            let token = match (self.offsets.get(i), self.offsets.get(i + 1)) {
                (Some(&a), Some(&b)) if b > a => self.table.get(a as usize..b as usize),
                _ => None,
            };
            out.extend_from_slice(token.ok_or(id)?);
        }
        Ok(out)
    }
}

fn uses_o200k(model: &str) -> bool {
    matches!(
        get_tokenizer(model),
        Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony)
    )
}

fn vocabulary(model: &str) -> &'static Vocab {
    static CL100K: OnceLock<Vocab> = OnceLock::new();
    static O200K: OnceLock<Vocab> = OnceLock::new();
    if uses_o200k(model) {
        O200K.get_or_init(|| {
            Vocab::read(
                "o200k_base",
                include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.vocab.deflate")),
            )
        })
    } else {
        CL100K.get_or_init(|| {
            Vocab::read(
                "cl100k_base",
                include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.vocab.deflate")),
            )
        })
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
            decode_input(&mut r).unwrap();
            assert_eq!(
                r.input,
                EmbeddingInput::Strings(vec![text.into(), text.into()]),
                "{model}"
            );
        }
        let mut r = req("m", EmbeddingInput::Tokens(vec![9906]));
        decode_input(&mut r).unwrap();
        assert_eq!(r.input, EmbeddingInput::String("Hello".into()));
    }

    #[test]
    fn text_passes_and_unknown_ids_are_refused() {
        let mut r = req("m", EmbeddingInput::String("x".into()));
        decode_input(&mut r).unwrap();
        assert_eq!(r.input, EmbeddingInput::String("x".into()));
        let mut r = req("m", EmbeddingInput::Tokens(vec![u32::MAX]));
        let e = decode_input(&mut r).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.body.error.message.contains("cl100k_base"), "{e:?}");
        // Between the ordinary tokens and the special ones: no such id.
        let mut r = req("gpt-4o", EmbeddingInput::Tokens(vec![9906, 199_998]));
        let e = decode_input(&mut r).unwrap_err();
        assert!(
            e.body
                .error
                .message
                .contains("199998 is not in the o200k_base"),
            "{e:?}"
        );
        let mut r = req("m", EmbeddingInput::TokenLists(vec![vec![]]));
        assert_eq!(decode_input(&mut r).unwrap_err().status, 400);
        // OpenAI's bound on the tokens of a request, summed over its inputs.
        let mut r = req(
            "m",
            EmbeddingInput::TokenLists(vec![vec![9906; 150_000], vec![9906; 150_000]]),
        );
        decode_input(&mut r).unwrap();
        let mut r = req(
            "m",
            EmbeddingInput::TokenLists(vec![vec![9906; 150_000], vec![9906; 150_001]]),
        );
        let e = decode_input(&mut r).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.body.error.param.as_deref(), Some("input"));
        assert!(e.body.error.message.contains("300001 tokens"), "{e:?}");
    }

    /// Every id of both tables decodes to tiktoken's own bytes, special
    /// tokens included, and an id tiktoken does not know is refused.
    #[test]
    fn the_tables_decode_every_id_as_tiktoken_does() {
        for (model, bpe, ids) in [
            ("m", tiktoken_rs::cl100k_base_singleton(), 100_277u32),
            ("gpt-4o", tiktoken_rs::o200k_base_singleton(), 200_019),
        ] {
            let v = vocabulary(model);
            let mut known = 0;
            for id in 0..ids + 10 {
                let ours = v.decode(&[id]).ok();
                assert_eq!(ours, bpe.decode_bytes(&[id]).ok(), "{model} id {id}");
                known += usize::from(ours.is_some());
            }
            assert!(known > 100_000, "{model}: {known}");
        }
    }
}
