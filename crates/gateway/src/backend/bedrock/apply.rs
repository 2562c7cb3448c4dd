//! Bedrock's `ApplyGuardrail`: a text screened by a guardrail on its own,
//! for models Bedrock does not serve (see `backend::guard`).

use super::{Bedrock, map_sdk_error};
use crate::config::GuardrailSettings;
use crate::error::ApiError;

impl Bedrock {
    /// Screens `text` with a guardrail through `ApplyGuardrail` (`output`:
    /// an answer, else a prompt): the guardrail's replacement text when it
    /// intervened.
    pub async fn apply_guardrail(
        &self,
        g: &GuardrailSettings,
        output: bool,
        text: String,
    ) -> Result<Option<String>, ApiError> {
        use aws_sdk_bedrockruntime::types::{
            GuardrailAction, GuardrailContentBlock, GuardrailContentSource, GuardrailTextBlock,
        };
        let block = GuardrailTextBlock::builder()
            .text(text)
            .build()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let out = self
            .client
            .get()
            .apply_guardrail()
            .guardrail_identifier(&g.id)
            .guardrail_version(&g.version)
            .source(if output {
                GuardrailContentSource::Output
            } else {
                GuardrailContentSource::Input
            })
            .content(GuardrailContentBlock::Text(block))
            .send()
            .await
            .map_err(|e| map_sdk_error(&e))?;
        if out.action != GuardrailAction::GuardrailIntervened {
            return Ok(None);
        }
        let said: String = out.outputs.iter().filter_map(|o| o.text()).collect();
        Ok(Some(if said.is_empty() {
            "Sorry, the model cannot answer this question.".into()
        } else {
            said
        }))
    }
}
