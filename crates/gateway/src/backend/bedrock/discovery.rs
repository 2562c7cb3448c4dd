//! Model discovery: the account's foundation models and inference
//! profiles, listed in the background and read from memory.

use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A model found by ListFoundationModels or ListInferenceProfiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Model or inference profile id.
    pub id: String,
    /// Provider (`anthropic`, `amazon`…).
    pub owned_by: String,
}

/// Discovered models, refreshed in the background, read on the request path
/// without I/O.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    inner: Arc<RwLock<Vec<Discovered>>>,
}

impl Catalog {
    /// The models found by the last successful refresh.
    pub fn models(&self) -> Vec<Discovered> {
        self.inner
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Whether an id was discovered.
    pub fn contains(&self, id: &str) -> bool {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        g.iter().any(|d| d.id == id)
    }

    /// Lists on-demand text and embedding models and active inference
    /// profiles, replacing the cache on success.
    pub async fn refresh(&self, client: &aws_sdk_bedrock::Client) -> anyhow::Result<usize> {
        use aws_sdk_bedrock::types::{InferenceType, ModelModality};
        let mut out = Vec::new();
        let fm =
            client.list_foundation_models().send().await.map_err(|e| {
                anyhow::anyhow!("{}", aws_sdk_bedrock::error::DisplayErrorContext(e))
            })?;
        for m in fm.model_summaries.unwrap_or_default() {
            let on_demand = m
                .inference_types_supported
                .as_ref()
                .is_some_and(|t| t.contains(&InferenceType::OnDemand));
            let useful = m.output_modalities.as_ref().is_some_and(|o| {
                o.contains(&ModelModality::Text) || o.contains(&ModelModality::Embedding)
            });
            if on_demand && useful {
                out.push(Discovered {
                    owned_by: m
                        .provider_name
                        .clone()
                        .unwrap_or_else(|| "bedrock".into())
                        .to_ascii_lowercase(),
                    id: m.model_id,
                });
            }
        }
        let mut pages = client.list_inference_profiles().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                anyhow::anyhow!("{}", aws_sdk_bedrock::error::DisplayErrorContext(e))
            })?;
            for p in page.inference_profile_summaries.unwrap_or_default() {
                if p.status == aws_sdk_bedrock::types::InferenceProfileStatus::Active {
                    let owned_by = bedrock_converse::ModelRef::parse(&p.inference_profile_id)
                        .provider()
                        .unwrap_or("bedrock")
                        .to_owned();
                    out.push(Discovered {
                        id: p.inference_profile_id,
                        owned_by,
                    });
                }
            }
        }
        let n = out.len();
        match self.inner.write() {
            Ok(mut g) => *g = out,
            Err(p) => *p.into_inner() = out,
        }
        Ok(n)
    }

    /// Refreshes now and then every `ttl`, in the background.
    pub fn spawn_refresh(&self, client: aws_sdk_bedrock::Client, ttl: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match this.refresh(&client).await {
                    Ok(n) => tracing::info!(models = n, "Bedrock models discovered"),
                    Err(e) => tracing::warn!(
                        error = format!("{e:#}"),
                        "Bedrock model discovery failed; keeping the last list"
                    ),
                }
                tokio::time::sleep(ttl).await;
            }
        });
    }
}
