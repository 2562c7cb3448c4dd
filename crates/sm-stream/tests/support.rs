//! Shared helpers: run a fixture through the translator in any pieces.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use sm_stream::{
    DialectKind, OutputShape, ReasoningMode, StreamItem, Translator, TranslatorConfig,
};

pub(crate) fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Options {
    #[serde(default)]
    pub include_usage: bool,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub shape: Option<String>,
    #[serde(default)]
    pub dialect: Option<String>,
}

impl Options {
    pub(crate) fn for_fixture(name: &str) -> Self {
        let all: std::collections::BTreeMap<String, Options> =
            serde_json::from_slice(&std::fs::read(test_data().join("options.json")).unwrap())
                .unwrap();
        all.get(name).cloned().unwrap_or_default()
    }

    pub(crate) fn config(&self) -> TranslatorConfig {
        TranslatorConfig {
            id: "chatcmpl-test".into(),
            model: "test-model".into(),
            created: 1_700_000_000,
            dialect: self
                .dialect
                .as_deref()
                .map(|d| d.parse().unwrap())
                .unwrap_or(DialectKind::Auto),
            reasoning: match self.reasoning.as_deref() {
                None => ReasoningMode::Off,
                Some("tags") => ReasoningMode::Tags,
                Some("start_in_reasoning") => ReasoningMode::TagsStartInReasoning,
                Some(o) => panic!("bad reasoning option {o}"),
            },
            include_usage: self.include_usage,
            prompt_tokens_estimate: 5,
            ..TranslatorConfig::default()
        }
    }

    pub(crate) fn shape(&self) -> OutputShape {
        match self.shape.as_deref() {
            Some("completion") => OutputShape::Completion,
            _ => OutputShape::Chat,
        }
    }
}

/// How the pieces are fed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Feed {
    /// As `PayloadPart` bytes (the AWS SDK decoded the frames).
    Payload,
    /// As raw event-stream bytes.
    EventStream,
}

/// Runs pieces through a fresh translator and returns the SSE text and items.
pub(crate) fn run_pieces<'a>(
    opts: &Options,
    feed: Feed,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (String, Vec<StreamItem>) {
    let mut t = Translator::new(opts.config());
    let w = t.sse_writer(opts.shape());
    let mut items = Vec::new();
    for p in pieces {
        match feed {
            Feed::Payload => t.push_payload(p, &mut items),
            Feed::EventStream => t.push_event_stream(p, &mut items),
        }
    }
    t.finish(&mut items);
    let mut out = BytesMut::new();
    w.write_all(&items, &mut out);
    (String::from_utf8(out.to_vec()).unwrap(), items)
}

/// Payload bytes cut into parts of `part` bytes, each wrapped in a frame.
pub(crate) fn frames(payload: &[u8], part: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payload.chunks(part.max(1)) {
        out.extend(sm_stream::frame::encode::payload_part(p));
    }
    out
}

/// All fixtures: (name, payload bytes).
pub(crate) fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(test_data())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "payload").then(|| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
        })
        .collect();
    v.sort();
    assert!(v.len() >= 10, "fixtures missing");
    v
}
