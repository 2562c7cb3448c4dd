//! Layer 3: container dialects. One implementation per payload format, all
//! writing the same normalized events to an [`Emitter`].

mod lmi;
mod openai;
mod tgi;

use std::borrow::Cow;

use serde::Deserialize;

use crate::Error;
use crate::emit::Emitter;
use crate::record::Framing;

pub(crate) use lmi::Lmi;
pub(crate) use openai::OpenAiChat;
pub(crate) use tgi::Tgi;

/// The payload formats of SageMaker LLM containers.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DialectKind {
    /// Detect from the first record.
    #[default]
    Auto,
    /// OpenAI `chat.completion.chunk`s, as SSE (TGI Messages API, vLLM, LMI
    /// with the OpenAI schema) or as JSON lines (LMI).
    #[serde(rename = "openai_chat", alias = "openai")]
    OpenAiChat,
    /// TGI `generate_stream`: `data:{"token":{…},"generated_text":…,"details":…}`.
    Tgi,
    /// LMI / DJL rolling batch JSON lines: `{"token":{"text":…}}` with
    /// `details` last, or `{"outputs":[…]}` lines.
    Lmi,
}

impl std::str::FromStr for DialectKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "openai" | "openai_chat" => Ok(Self::OpenAiChat),
            "tgi" => Ok(Self::Tgi),
            "lmi" => Ok(Self::Lmi),
            other => Err(format!(
                "unknown dialect '{other}' (expected auto, openai_chat, tgi or lmi)"
            )),
        }
    }
}

/// What every dialect does with a record.
pub(crate) trait Dialect {
    /// Translates one whole record.
    fn record(&mut self, bytes: &[u8], em: &mut Emitter<'_>) -> Result<(), Error>;

    /// End of input before `[DONE]`: a dialect whose format has no finish
    /// marker finishes its choices here.
    fn on_end(&mut self, _em: &mut Emitter<'_>) {}
}

/// The dialect of one stream, detected or configured.
#[derive(Debug, Default)]
pub(crate) enum DialectState {
    #[default]
    Undetected,
    OpenAiChat(OpenAiChat),
    Tgi(Tgi),
    Lmi(Lmi),
}

/// Just enough of a record to tell the dialects apart.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(default)]
    choices: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    token: Option<ProbeToken>,
    #[serde(default)]
    outputs: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    details: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ProbeToken {
    #[serde(default)]
    special: Option<bool>,
    #[serde(default)]
    log_prob: Option<serde::de::IgnoredAny>,
}

impl DialectState {
    pub(crate) fn new(kind: DialectKind) -> Self {
        match kind {
            DialectKind::Auto => Self::Undetected,
            DialectKind::OpenAiChat => Self::OpenAiChat(OpenAiChat),
            DialectKind::Tgi => Self::Tgi(Tgi),
            DialectKind::Lmi => Self::Lmi(Lmi::default()),
        }
    }

    pub(crate) fn kind(&self) -> DialectKind {
        match self {
            Self::Undetected => DialectKind::Auto,
            Self::OpenAiChat(_) => DialectKind::OpenAiChat,
            Self::Tgi(_) => DialectKind::Tgi,
            Self::Lmi(_) => DialectKind::Lmi,
        }
    }

    pub(crate) fn record(
        &mut self,
        bytes: &[u8],
        framing: Framing,
        event: Option<&[u8]>,
        em: &mut Emitter<'_>,
    ) -> Result<(), Error> {
        if event == Some(b"error".as_slice()) {
            return Err(error_record(bytes));
        }
        if let Self::Undetected = self {
            match detect(bytes, framing)? {
                Some(kind) => *self = Self::new(kind),
                // An error record before anything else.
                None => return Err(error_record(bytes)),
            }
        }
        match self {
            Self::Undetected => Ok(()),
            Self::OpenAiChat(d) => d.record(bytes, em),
            Self::Tgi(d) => d.record(bytes, em),
            Self::Lmi(d) => d.record(bytes, em),
        }
    }

    pub(crate) fn on_end(&mut self, em: &mut Emitter<'_>) {
        match self {
            Self::Undetected => {}
            Self::OpenAiChat(d) => d.on_end(em),
            Self::Tgi(d) => d.on_end(em),
            Self::Lmi(d) => d.on_end(em),
        }
    }
}

/// Detects the dialect; `Ok(None)` for an error record.
fn detect(bytes: &[u8], framing: Framing) -> Result<Option<DialectKind>, Error> {
    let p: Probe<'_> = serde_json::from_slice(bytes).map_err(|e| invalid(e, bytes))?;
    if p.choices.is_some() || p.object.as_deref() == Some("chat.completion.chunk") {
        return Ok(Some(DialectKind::OpenAiChat));
    }
    if p.object.as_deref() == Some("error") {
        return Ok(None);
    }
    if let Some(t) = p.token {
        if t.special.is_some() && t.log_prob.is_none() {
            return Ok(Some(DialectKind::Tgi));
        }
        if t.log_prob.is_some() {
            return Ok(Some(DialectKind::Lmi));
        }
        return Ok(Some(match framing {
            Framing::Sse => DialectKind::Tgi,
            Framing::JsonLine => DialectKind::Lmi,
        }));
    }
    if p.outputs.is_some() || p.details.is_some() {
        return Ok(Some(DialectKind::Lmi));
    }
    if error_value(bytes).is_some() {
        return Ok(None);
    }
    Err(unreadable(
        "no known stream format (OpenAI chunks, TGI generate_stream, LMI JSON lines) reads the container's record",
        bytes,
    ))
}

/// A record that is not JSON.
pub(crate) fn invalid(e: serde_json::Error, bytes: &[u8]) -> Error {
    unreadable(e, bytes)
}

/// A record the translator cannot read: why, and the record's first 200
/// bytes, so the error says what the container sent.
pub(crate) fn unreadable(why: impl std::fmt::Display, bytes: &[u8]) -> Error {
    let mut end = bytes.len().min(200);
    // Whole characters only (a cut one would show as U+FFFD).
    while end < bytes.len() && end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    Error::InvalidRecord(format!(
        "{why}; the record began: {}",
        String::from_utf8_lossy(&bytes[..end])
    ))
}

/// The error an error record stands for, if it is one. Understands OpenAI's
/// `{"error":{…}}`, vLLM's `{"object":"error","message":…}` and TGI's
/// `{"error":"…","error_type":"…"}`.
pub(crate) fn error_value(bytes: &[u8]) -> Option<Error> {
    #[derive(Deserialize)]
    struct E {
        #[serde(default)]
        error: Option<serde_json::Value>,
        #[serde(default)]
        error_type: Option<String>,
        #[serde(default)]
        object: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default, rename = "type")]
        kind: Option<String>,
    }
    // Only an object can be an error (serde would read a list as a struct).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let e: E = serde_json::from_slice(bytes).ok()?;
    let code_str = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match (e.error, e.object.as_deref()) {
        (Some(serde_json::Value::String(msg)), _) => Some(Error::Upstream {
            kind: "model_error".into(),
            message: msg,
            code: e.error_type,
        }),
        (Some(serde_json::Value::Object(o)), _) => Some(Error::Upstream {
            kind: "model_error".into(),
            message: o
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("upstream error")
                .to_owned(),
            code: o
                .get("code")
                .and_then(code_str)
                .or_else(|| o.get("type").and_then(|t| t.as_str()).map(str::to_owned)),
        }),
        (None, Some("error")) => Some(Error::Upstream {
            kind: "model_error".into(),
            message: e.message.unwrap_or_else(|| "upstream error".into()),
            code: e.code.as_ref().and_then(code_str).or(e.kind),
        }),
        _ => None,
    }
}

fn error_record(bytes: &[u8]) -> Error {
    error_value(bytes).unwrap_or_else(|| Error::Upstream {
        kind: "model_error".into(),
        message: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
        code: None,
    })
}
