//! Bedrock model identifiers: foundation model ids, cross-region inference
//! profile ids and ARNs.

/// The geography prefixes of system-defined cross-region inference profiles.
pub const PROFILE_PREFIXES: &[&str] = &["us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"];

/// What a model identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRef<'a> {
    /// A foundation model id (`anthropic.claude-3-5-haiku-20241022-v1:0`).
    Foundation(&'a str),
    /// A cross-region inference profile id (`us.anthropic.claude-…`).
    Profile {
        /// `us`, `eu`, `apac`, `global`, …
        geo: &'a str,
        /// The foundation model it routes to.
        model: &'a str,
    },
    /// An ARN (foundation model, inference profile or application inference
    /// profile).
    Arn {
        /// `foundation-model`, `inference-profile`,
        /// `application-inference-profile`, …
        kind: &'a str,
        /// The part after the resource type.
        resource: &'a str,
    },
}

impl<'a> ModelRef<'a> {
    /// Reads an identifier.
    pub fn parse(id: &'a str) -> Self {
        if let Some(rest) = id.strip_prefix("arn:") {
            // arn:partition:bedrock:region:account:kind/resource
            let res = rest.splitn(5, ':').nth(4).unwrap_or("");
            let (kind, resource) = res.split_once('/').unwrap_or((res, ""));
            return Self::Arn { kind, resource };
        }
        if let Some((geo, model)) = id.split_once('.')
            && PROFILE_PREFIXES.contains(&geo)
            && model.contains('.')
        {
            return Self::Profile { geo, model };
        }
        Self::Foundation(id)
    }

    /// The foundation model id behind it, where the identifier tells
    /// (an application inference profile's ARN does not).
    pub fn base_model(&self) -> Option<&'a str> {
        match *self {
            Self::Foundation(m) | Self::Profile { model: m, .. } => Some(m),
            Self::Arn {
                kind: "foundation-model",
                resource,
            } => Some(resource),
            Self::Arn {
                kind: "inference-profile",
                resource,
            } => Some(Self::parse(resource).base_model().unwrap_or(resource)),
            Self::Arn { .. } => None,
        }
    }

    /// The model's provider (`anthropic`, `amazon`, `meta`…), where known.
    pub fn provider(&self) -> Option<&'a str> {
        self.base_model().and_then(|m| m.split('.').next())
    }
}

/// Whether a Bedrock error message refuses a bare model id for on-demand
/// throughput (the model is served only through an inference profile):
/// "Invocation of model ID … with on-demand throughput isn't supported.
/// Retry your request with the ID or ARN of an inference profile that
/// contains this model."
pub fn needs_inference_profile(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("on-demand throughput") && m.contains("inference profile")
}

/// The system-defined inference profiles to try, in order, for a bare
/// foundation model id called from `region`: the region's geography
/// (`us.` for `us-*`, `us-gov.`, `eu.`, `apac.` and then `jp.`/`au.` for the
/// Tokyo and Sydney regions, `ca.` then `us.` for Canada), then `global.`.
/// Empty for an id that is already a profile or an ARN.
pub fn inference_profile_ids(model_id: &str, region: &str) -> Vec<String> {
    if !matches!(ModelRef::parse(model_id), ModelRef::Foundation(_)) {
        return Vec::new();
    }
    let geos: &[&str] = if region.starts_with("us-gov-") {
        &["us-gov"]
    } else if region.starts_with("us-") {
        &["us"]
    } else if region.starts_with("eu-") {
        &["eu"]
    } else if region == "ap-northeast-1" {
        &["apac", "jp"]
    } else if region == "ap-southeast-2" {
        &["apac", "au"]
    } else if region.starts_with("ap-") {
        &["apac"]
    } else if region.starts_with("ca-") {
        &["ca", "us"]
    } else {
        &[]
    };
    geos.iter()
        .chain(&["global"])
        .map(|g| format!("{g}.{model_id}"))
        .collect()
}

/// How a model family takes `reasoning_effort`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningStyle {
    /// Detect from the model id.
    #[default]
    Auto,
    /// Anthropic Claude: `thinking: {type: enabled, budget_tokens}`.
    ClaudeThinking,
    /// DeepSeek: `reasoning_config: <effort>`.
    ReasoningConfig,
    /// OpenAI open-weight models (gpt-oss): `reasoning_effort: <effort>`.
    ReasoningEffort,
    /// `reasoning_effort` is not passed on.
    None,
}

/// The style in effect for a model (`Auto` resolved).
pub fn reasoning_style(configured: ReasoningStyle, model_id: &str) -> ReasoningStyle {
    if configured != ReasoningStyle::Auto {
        return configured;
    }
    let base = ModelRef::parse(model_id).base_model().unwrap_or(model_id);
    if base.starts_with("anthropic.claude") {
        ReasoningStyle::ClaudeThinking
    } else if base.starts_with("deepseek.") {
        ReasoningStyle::ReasoningConfig
    } else if base.starts_with("openai.") {
        ReasoningStyle::ReasoningEffort
    } else {
        ReasoningStyle::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_follow_the_region_and_end_global() {
        let m = "anthropic.claude-sonnet-4-20250514-v1:0";
        assert_eq!(
            inference_profile_ids(m, "us-west-2"),
            [format!("us.{m}"), format!("global.{m}")]
        );
        assert_eq!(
            inference_profile_ids(m, "ap-northeast-1")[1],
            format!("jp.{m}")
        );
        assert_eq!(
            inference_profile_ids(m, "eu-central-1")[0],
            format!("eu.{m}")
        );
        assert_eq!(
            inference_profile_ids(m, "me-south-1"),
            [format!("global.{m}")]
        );
        assert!(inference_profile_ids(&format!("us.{m}"), "us-east-1").is_empty());
        // Bedrock's own words (with its typographic apostrophe).
        assert!(needs_inference_profile(&format!(
            "Invocation of model ID {m} with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile that contains this model."
        )));
        assert!(!needs_inference_profile(
            "The provided model identifier is invalid."
        ));
    }

    #[test]
    fn identifiers_are_read() {
        let f = ModelRef::parse("anthropic.claude-3-5-haiku-20241022-v1:0");
        assert_eq!(f.provider(), Some("anthropic"));
        for geo in ["us", "eu", "apac", "global"] {
            let id = format!("{geo}.anthropic.claude-sonnet-4-20250514-v1:0");
            let p = ModelRef::parse(&id);
            assert!(matches!(p, ModelRef::Profile { geo: g, .. } if g == geo));
            assert_eq!(
                p.base_model(),
                Some("anthropic.claude-sonnet-4-20250514-v1:0")
            );
        }
        let arn = ModelRef::parse(
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
        );
        assert_eq!(
            arn,
            ModelRef::Arn {
                kind: "application-inference-profile",
                resource: "a1b2c3"
            }
        );
        assert_eq!(arn.base_model(), None);
        let arn = ModelRef::parse(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-3-70b-instruct-v1:0",
        );
        assert_eq!(arn.base_model(), Some("meta.llama3-3-70b-instruct-v1:0"));
        // A model id with a dot in its first segment is not a profile.
        assert!(matches!(
            ModelRef::parse("cohere.embed-english-v3"),
            ModelRef::Foundation(_)
        ));
    }

    #[test]
    fn reasoning_styles_are_detected() {
        let s = |id| reasoning_style(ReasoningStyle::Auto, id);
        assert_eq!(
            s("us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
            ReasoningStyle::ClaudeThinking
        );
        assert_eq!(s("us.deepseek.r1-v1:0"), ReasoningStyle::ReasoningConfig);
        assert_eq!(
            s("openai.gpt-oss-120b-1:0"),
            ReasoningStyle::ReasoningEffort
        );
        assert_eq!(s("amazon.nova-pro-v1:0"), ReasoningStyle::None);
        assert_eq!(
            reasoning_style(ReasoningStyle::None, "anthropic.claude-x"),
            ReasoningStyle::None
        );
    }
}
