//! Response fixtures: a Converse response in, the `chat.completion` out,
//! checked against the OpenAI contract.

use bedrock_converse::wire::ConverseResponse;
use bedrock_converse::{ReasoningOutput, ResponseMeta, to_chat_completion};
use openai_types::contract::check_chat_completion;

use crate::support::{expect_json, fixtures};

#[test]
fn every_response_fixture_translates_as_recorded() {
    for (name, f) in fixtures("response") {
        let r: ConverseResponse =
            serde_json::from_value(f["converse"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reasoning = match f["reasoning"].as_str() {
            None | Some("field") => ReasoningOutput::Field,
            Some("inline") => ReasoningOutput::InlineThink,
            Some(_) => ReasoningOutput::Drop,
        };
        let meta = ResponseMeta {
            answer_tool: f["answer_tool"].as_str().map(str::to_owned),
            id: "chatcmpl-test".into(),
            model: "claude".into(),
            created: 1_700_000_000,
        };
        let out = serde_json::to_value(to_chat_completion(r, meta, reasoning)).unwrap();
        check_chat_completion(&out);
        expect_json("response", &name, &f, "openai", out);
    }
}
