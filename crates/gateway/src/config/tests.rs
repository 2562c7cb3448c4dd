use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn seed_variables_work_unchanged() {
    let cfg = Config::load(
        None,
        &env_of(&[
            ("SAGEMAKER_ENDPOINT_NAME", "deepseek-r1-distill"),
            ("AUTH_SECRET_ID", "prod/api-key"),
            ("API_KEY_CACHE_TTL", "600"),
            ("AWS_REGION", "cn-north-1"),
            ("PORT", "9000"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.listen, "0.0.0.0:9000");
    assert_eq!(cfg.models[0].endpoint_name(), "deepseek-r1-distill");
    assert_eq!(cfg.default_model.as_deref(), Some("deepseek-r1-distill"));
    assert_eq!(cfg.auth.secret_id.as_deref(), Some("prod/api-key"));
    assert_eq!(cfg.auth.cache_ttl_secs, 600);
    assert_eq!(cfg.aws.region.as_deref(), Some("cn-north-1"));
}

#[test]
fn bad_values_name_their_key() {
    let e = Config::load(
        None,
        &env_of(&[
            ("SAGEMAKER_ENDPOINT_NAME", "x"),
            ("API_KEY", "k"),
            ("API_KEY_CACHE_TTL", "1h"),
        ]),
    )
    .unwrap_err();
    assert_eq!(e.key, "API_KEY_CACHE_TTL");
    let e = Config::from_toml("[[models]]\nname = \"a\"\ndialectt = \"tgi\"\n").unwrap_err();
    assert!(e.key.starts_with("models[0]"), "{e}");
    assert!(e.reason.contains("dialectt"), "{e}");
    let e = Config::from_toml("[[models]]\nname = \"a\"\ndialect = \"vllm\"\n").unwrap_err();
    assert_eq!(e.key, "models[0].dialect", "{e}");
    let e = Config::load(None, &env_of(&[("SAGEMAKER_ENDPOINT_NAME", "x")])).unwrap_err();
    assert_eq!(e.key, "auth");
    let e = Config::load(None, &env_of(&[("API_KEY", "k")])).unwrap_err();
    assert_eq!(e.key, "models");
}

#[test]
fn bedrock_models_from_env_and_file() {
    let cfg = Config::load(
        None,
        &env_of(&[
            (
                "BEDROCK_MODELS",
                "us.anthropic.claude-3-7-sonnet-20250219-v1:0, amazon.titan-embed-text-v2:0",
            ),
            ("BEDROCK_IMAGE_FETCH", "true"),
            ("API_KEY", "k"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.models.len(), 2);
    assert!(cfg.models.iter().all(|m| m.backend == Backend::Bedrock));
    assert_eq!(cfg.models[0].owner(), "anthropic");
    assert!(cfg.models[0].embedding_family().is_none());
    assert!(cfg.models[1].embedding_family().is_some());
    assert!(cfg.bedrock.image_fetch.enabled);
    // Discovery alone is a valid setup.
    Config::load(
        None,
        &env_of(&[("BEDROCK_DISCOVER_MODELS", "1"), ("API_KEY", "k")]),
    )
    .unwrap();
    let cfg = Config::from_toml(
        "[[models]]\nname = \"x\"\nbackend = \"bedrock\"\nmodel_id = \"arn:aws:bedrock:us-east-1:1:application-inference-profile/p\"\nembedding_family = \"cohere-v3\"\nreasoning_output = \"inline_think\"\n",
    )
    .unwrap();
    assert!(cfg.models[0].embedding_family().is_some());
    assert_eq!(cfg.models[0].owner(), "bedrock");
    let e = Config::from_toml(
        "[[models]]\nname = \"x\"\nbackend = \"bedrock\"\nreasoning_output = \"loud\"\n",
    )
    .unwrap_err();
    assert_eq!(e.key, "models[0].reasoning_output", "{e}");
    let mut cfg = Config::from_toml(
        "[auth]\nkeys = [\"k\"]\n[[models]]\nname = \"x\"\nbackend = \"bedrock\"\nembedding_family = \"bert\"\n",
    )
    .unwrap();
    assert_eq!(
        cfg.validate().unwrap_err().key,
        "models[0].embedding_family"
    );
    cfg.models.clear();
    assert_eq!(cfg.validate().unwrap_err().key, "models");
}

#[test]
fn secrets_do_not_print() {
    let mut cfg = Config::default();
    cfg.auth.keys.push(Secret("sk-canary-123".into()));
    assert!(!format!("{cfg:?}").contains("canary"));
}

#[test]
fn config_errors_never_quote_the_file() {
    for (text, key) in [
        // A syntax error on a line holding a key.
        ("[auth]\nkeys = [\"sk-canary-1\" \"x\"]\n", "config file"),
        ("[auth]\nkeys = [\"sk-canary-2\n", "config file"),
        ("metrics_token = sk-canary-3\n", "config file"),
        // A key where a number, a flag or a variant belongs.
        ("max_body_bytes = \"sk-canary-4\"\n", "max_body_bytes"),
        ("[auth]\ndisabled = \"sk-canary-5\"\n", "auth.disabled"),
        ("log_format = \"sk-canary-6\"\n", "log_format"),
    ] {
        let e = Config::from_toml(text).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("canary"), "{text:?} -> {shown}");
        assert_eq!(e.key, key, "{shown}");
    }
    let e = Config::from_toml("listen = \"x\"\n[auth]\nkeys = [\"sk-canary\" 1]\n").unwrap_err();
    assert!(e.reason.contains("line 3"), "{e}");
}

#[test]
fn redaction_keeps_names_and_hides_values() {
    assert_eq!(
        redact_values("invalid type: string \"sk-1\", expected u64"),
        "invalid type: string \"*****\", expected u64"
    );
    assert_eq!(
        redact_values("unknown variant `sk-2`, expected one of `json`, `text`"),
        "unknown variant `*****`, expected one of `json`, `text`"
    );
    assert_eq!(
        redact_values("invalid type: string \"cut"),
        "invalid type: string \"*****"
    );
    assert_eq!(redact_values("missing field `key`"), "missing field `key`");
}

#[test]
fn the_cloudformation_templates_variables() {
    let cfg = Config::load(
        None,
        &env_of(&[
            ("SAGEMAKER_ENDPOINTS", "llm-a, llm-b,"),
            ("BEDROCK_MODELS", ""),
            ("SHUTDOWN_TIMEOUT_SECS", "50"),
            ("AWS_SAGEMAKER_CLIENT", "SDK"),
            ("API_KEY", "k"),
        ]),
    )
    .unwrap();
    let names: Vec<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["llm-a", "llm-b"]);
    assert_eq!(cfg.models[1].endpoint_name(), "llm-b");
    assert_eq!(cfg.shutdown_timeout_secs, 50);
    assert_eq!(cfg.aws.sagemaker_client, SageMakerClient::Sdk);
    let e = Config::load(
        None,
        &env_of(&[
            ("SAGEMAKER_ENDPOINTS", "a"),
            ("API_KEY", "k"),
            ("AWS_SAGEMAKER_CLIENT", "fast"),
        ]),
    )
    .unwrap_err();
    assert_eq!(e.key, "AWS_SAGEMAKER_CLIENT");
}

#[test]
fn sagemaker_names_cannot_reach_the_path() {
    for (field, bad) in [
        ("endpoint", "../admin"),
        ("endpoint", "a/b"),
        ("endpoint", "a%2fb"),
        ("endpoint", "-a"),
        ("inference_component", "ic 1"),
        ("target_variant", "v\\n1"),
    ] {
        let toml =
            format!("[[models]]\nname = \"m\"\n{field} = \"{bad}\"\n[auth]\nkeys = [\"k\"]\n");
        let e = Config::from_toml(&toml)
            .and_then(|c| c.validate())
            .unwrap_err();
        assert_eq!(e.key, format!("models[0].{field}"), "{bad}: {e}");
    }
    let ok = "[[models]]\nname = \"m\"\nendpoint = \"llm-a1\"\ninference_component = \"ic-1\"\n[auth]\nkeys = [\"k\"]\n";
    Config::from_toml(ok).and_then(|c| c.validate()).unwrap();
}

#[test]
fn aws_is_needed_only_by_aws_backends_key_sources_and_discovery() {
    let upstreams = r#"
[auth]
keys = ["k"]
[[upstreams]]
name = "u"
base_url = "http://127.0.0.1:9/v1"
"#;
    let only = Config::from_toml(upstreams).unwrap();
    assert!(!only.needs_aws());
    let with = |extra: &str| Config::from_toml(&format!("{upstreams}{extra}")).unwrap();
    let sagemaker = with("[[models]]\nname = \"m\"\nendpoint = \"e\"\n");
    assert!(sagemaker.needs_aws());
    assert!(with("[[models]]\nname = \"b\"\nbackend = \"bedrock\"\nmodel_id = \"amazon.nova-lite-v1:0\"\n").needs_aws());
    assert!(
        Config::from_toml(&upstreams.replace("keys = [\"k\"]", "secret_id = \"s\""))
            .unwrap()
            .needs_aws()
    );
    // A reload that brings the first AWS model says it takes a restart.
    assert!(only.restart_only_changes(&sagemaker).contains(&"aws"));
    assert!(!sagemaker.restart_only_changes(&only).contains(&"aws"));
}

/// The key a bad file's error names is the path a parser tracking every
/// field finds (`serde_path_to_error`: the configuration's parser wrapped
/// in it was 0.64 MB of the binary).
#[test]
fn a_bad_key_is_named_as_a_tracking_parser_names_it() {
    for text in [
        "max_body_bytes = \"x\"\n",
        "[auth]\ndisabled = 3\n",
        "[auth]\nkeys = [\"a\", 3]\n",
        "[[models]]\nname = \"a\"\ndialect = \"vllm\"\n",
        "[[models]]\nname = \"a\"\n[[models]]\nname = \"b\"\nendpoint = 5\n",
        "[[models]]\nname = \"a\"\n[[models]]\nendpoint = \"e\"\n",
        "[[upstreams]]\nname = \"u\"\nbase_url = \"http://x\"\nmodels_allow = \"m\"\n",
        "upstreams = [{ name = \"u\", base_url = 7 }]\n",
        "[server]\nlisten = 80\n",
        "log_format = \"xml\"\n",
        "[admin]\nkey = [1]\n",
        // Through `#[serde(flatten)]` (its fields are buffered first).
        "[[prices]]\nmodel = \"a\"\nprompt = 1.0\ncompletion = 2.0\n[[prices]]\nmodel = \"b\"\nprompt = \"x\"\ncompletion = 1.0\n",
        "[[prices]]\nmodel = \"a\"\nprompt = 1.0\n",
        // Inline tables and arrays of them.
        "[[upstreams]]\nname = \"u\"\nbase_url = \"http://x\"\nheaders = { a = 1 }\n",
        "[[models]]\nname = \"a\"\nendpoint = \"e\"\nunknown = { b = [1, 2] }\n",
    ] {
        let tracked =
            serde_path_to_error::deserialize::<_, Config>(toml::Deserializer::parse(text).unwrap())
                .map(|_| ())
                .unwrap_err()
                .path()
                .to_string();
        let e = Config::from_toml(text).unwrap_err();
        assert_eq!(e.key, tracked, "{text:?}: {e}");
    }
}
