//! The fake Bedrock's guardrails: a guardrail blocks texts that hold one of
//! its words, on the way in (the prompt) and on the way out (the answer),
//! as Bedrock's content and word filters do. It acts on `Converse` and
//! `ConverseStream` calls that name it in `guardrailConfig` (the answer
//! replaced by the guardrail's message, `stopReason:
//! "guardrail_intervened"`, a trace when asked) and on `ApplyGuardrail`.

use serde_json::{Value, json};

/// A guardrail the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGuardrail {
    /// Words it blocks (matched case-insensitively).
    pub blocked_words: Vec<String>,
    /// What it answers when the prompt is blocked.
    pub input_message: String,
    /// What it answers when the answer is blocked.
    pub output_message: String,
}

impl FakeGuardrail {
    /// A guardrail blocking `words`, with Bedrock's default messages.
    pub fn blocking(words: &[&str]) -> Self {
        Self {
            blocked_words: words.iter().map(|w| w.to_lowercase()).collect(),
            input_message: "Sorry, the model cannot answer this question.".into(),
            output_message: "Sorry, the model cannot answer this question.".into(),
        }
    }

    /// The first blocked word `text` holds.
    pub(crate) fn hit(&self, text: &str) -> Option<&str> {
        let t = text.to_lowercase();
        self.blocked_words
            .iter()
            .find(|w| t.contains(w.as_str()))
            .map(String::as_str)
    }

    /// A trace of an intervention, in Bedrock's shape (word policy).
    pub(crate) fn trace(word: &str, source: &str) -> Value {
        let assessment = json!({"wordPolicy": {"customWords": [
            {"match": word, "action": "BLOCKED", "detected": true}]}});
        match source {
            "INPUT" => json!({"guardrail": {"inputAssessment": {"fake": assessment}}}),
            _ => json!({"guardrail": {"outputAssessments": {"fake": [assessment]}}}),
        }
    }

    /// `ApplyGuardrail`'s answer for a body (`source`, `content`).
    pub(crate) fn apply(&self, body: &Value) -> Value {
        let source = body["source"].as_str().unwrap_or("INPUT");
        let text: String = body["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["text"]["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let units = text.chars().count().div_ceil(1000).max(1);
        let usage = json!({"topicPolicyUnits": 0, "contentPolicyUnits": units,
            "wordPolicyUnits": units, "sensitiveInformationPolicyUnits": 0,
            "sensitiveInformationPolicyFreeUnits": 0, "contextualGroundingPolicyUnits": 0});
        match self.hit(&text) {
            Some(word) => {
                let message = if source == "OUTPUT" {
                    &self.output_message
                } else {
                    &self.input_message
                };
                json!({
                    "usage": usage,
                    "action": "GUARDRAIL_INTERVENED",
                    "actionReason": format!("Guardrail blocked the word {word}"),
                    "outputs": [{"text": message}],
                    "assessments": [{"wordPolicy": {"customWords": [
                        {"match": word, "action": "BLOCKED", "detected": true}]}}],
                })
            }
            None => json!({"usage": usage, "action": "NONE", "outputs": [], "assessments": []}),
        }
    }
}
