//! An operator's test of one candidate: an upstream answers its model list,
//! a SageMaker or Bedrock model a one-token chat. The answer's status, or
//! the error the request path would have seen.

use actix_web::http::StatusCode;

use crate::backend::{Caller, ChatCall, Deadlines};
use crate::error::ApiError;
use crate::routing::state::{AppState, Handle};

/// Tests candidate `name` (`models/<name>` or an upstream's name): `Err`
/// when there is no such candidate, else the test's own result.
pub(super) async fn probe(
    state: &AppState,
    handle: &Handle,
    name: &str,
) -> Result<Result<u16, ApiError>, ApiError> {
    let caller = Caller {
        auth: None,
        request_id: crate::ids::new_id("probe"),
        deadlines: Deadlines {
            request: std::time::Duration::from_secs(10),
        },
    };
    if let Some(model) = name.strip_prefix("models/") {
        let m = state
            .models
            .get(model)
            .filter(|m| m.served_by().is_none())
            .ok_or_else(|| missing(name))?;
        let req = serde_json::from_value(serde_json::json!({
            "model": m.cfg.name, "max_tokens": 1,
            "messages": [{"role": "user", "content": "ping"}]
        }))
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let call = ChatCall {
            req,
            id: crate::ids::new_id("chatcmpl"),
            created: crate::ids::now(),
            prompt_estimate: 1,
            client_auth: caller,
            max_choices: 1,
            images: Default::default(),
            key_guardrail: None,
        };
        return Ok(handle.backends.chat(m, call).await.map(|_| 200));
    }
    let up = state
        .upstreams
        .iter()
        .find(|u| u.cfg.name == name)
        .ok_or_else(|| missing(name))?;
    Ok(up.probe(&caller).await)
}

fn missing(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        format!("No upstream or model named '{name}'"),
    )
    .code("upstream_not_found")
}
