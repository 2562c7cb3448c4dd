//! The gateway's reusable libraries in one place, for services that embed
//! them: [`openai_types`] (wire types, stream items and their SSE writer),
//! [`sm_stream`] (SageMaker stream to OpenAI SSE), [`bedrock_converse`]
//! (OpenAI to and from Bedrock's Converse API and embedding models) and
//! [`keyauth`] (API-key auth with a TTL key cache).
//!
//! This root package also holds the workspace's `examples/` and `benches/`.

pub use bedrock_converse;
pub use keyauth;
pub use openai_types;
pub use sm_stream;
