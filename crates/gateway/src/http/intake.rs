//! Taking a body that may be too large to hold: held whole up to
//! `passthrough_replay_bytes` (so it can be sent again to the next
//! upstream, or parsed), streamed beyond through a bounded channel, with
//! the `model` it names read exactly where the upstream reads it.
//!
//! The model comes from the outermost JSON object's `model` member
//! ([`openai_types::top_level::FieldScan`]) or from the form's `model`
//! field ([`openai_types::form::FormScan`]). The same scanner reads the
//! whole body as it streams through: a second `model` later in the body,
//! or a form's `model` field after the window when the window had none,
//! cuts the upload (the upstream never acts on a body whose model was not
//! the one checked) and the client gets a 400. A JSON object that has not
//! named its model by the end of the window is held further, up to
//! `max_body_bytes` (clients that sort their keys send `input` or
//! `messages` first), and refused beyond.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, web};
use bytes::{Bytes, BytesMut};
use openai_types::form::FormScan;
use openai_types::top_level::{FieldError, FieldScan};

use super::body::Deadline;
use crate::error::ApiError;
use crate::routing::state::AppState;

/// A taken body: held, or streamed through a bounded channel.
pub(crate) use crate::backend::relay::Payload as Body;

/// Why a streamed upload was cut, told by the task that reads it to the
/// request that sends it.
#[derive(Debug)]
pub(crate) struct Cut {
    why: AtomicU8,
    /// The upload limit the body was taken under.
    limit: usize,
}

const LATE: u8 = 1;
const TOO_LARGE: u8 = 2;
const DUPLICATE: u8 = 3;
const MODEL_LATE: u8 = 4;
const BAD_MODEL: u8 = 5;

impl Cut {
    fn set(&self, why: u8) {
        self.why.store(why, Ordering::Relaxed);
    }

    /// The client's error, if the upload was cut.
    pub(crate) fn error(&self) -> Option<ApiError> {
        Some(match self.why.load(Ordering::Relaxed) {
            LATE => ApiError::body_timeout(),
            TOO_LARGE => ApiError::too_large(self.limit),
            DUPLICATE => model_error(FieldError::Duplicate),
            BAD_MODEL => model_error(FieldError::BadString),
            MODEL_LATE => ApiError::invalid(
                "The form's `model` field must come before its file when the body is large",
            )
            .param("model"),
            _ => return None,
        })
    }
}

/// 400 for a body whose `model` cannot be trusted.
pub(crate) fn model_error(e: FieldError) -> ApiError {
    let message = match e {
        FieldError::Duplicate => "The request names `model` more than once",
        FieldError::NotString => "`model` must be a string",
        FieldError::TooLong => "`model` is too long",
        _ => "`model` is not a valid string",
    };
    ApiError::invalid(message).param("model")
}

/// The model reader of one body.
enum Scan {
    Json(FieldScan),
    Form(FormScan),
}

impl Scan {
    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let ctype = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ctype
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"))
        {
            return Ok(Self::Json(FieldScan::new("model")));
        }
        let boundary = FormScan::boundary(ctype)
            .ok_or_else(|| ApiError::invalid("A multipart body needs a boundary"))?;
        Ok(Self::Form(FormScan::new(boundary, "model")))
    }

    fn push(&mut self, b: &[u8]) -> Result<(), FieldError> {
        match self {
            Self::Json(s) => s.push(b),
            Self::Form(s) => s.push(b),
        }
    }

    fn value(&self) -> Option<&str> {
        match self {
            Self::Json(s) => s.value(),
            Self::Form(s) => s.value(),
        }
    }
}

/// A body taken: held or streamed, the model it names, and why a stream
/// was cut.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) body: Body,
    /// The body's `model`.
    pub(crate) model: Option<String>,
    pub(crate) cut: Arc<Cut>,
}

impl Incoming {
    /// The whole body, read to its end if it was being streamed: 413 above
    /// `limit`, 408 past the body's deadline.
    pub(crate) async fn whole(self, limit: usize) -> Result<Bytes, ApiError> {
        let mut rx = match self.body {
            Body::Held(b) if b.len() <= limit => return Ok(b),
            Body::Held(_) => return Err(ApiError::too_large(limit)),
            Body::Streamed(rx) => rx,
        };
        let mut out = BytesMut::new();
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.map_err(|e| {
                self.cut.error().unwrap_or_else(|| {
                    ApiError::invalid(format!("the request body could not be read: {e}"))
                })
            })?;
            if out.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// Takes a body: whole if it fits `hold` bytes, else the first `hold`
/// bytes and the rest streamed, its model read all the way through.
pub(crate) async fn take(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
    hold: usize,
) -> Result<Incoming, ApiError> {
    let cfg = &state.config;
    let limit = cfg.max_passthrough_body_bytes;
    if super::body::declared_len(req).is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut scan = Scan::of(req)?;
    let deadline = Deadline::new(cfg);
    let hold = hold.min(limit);
    let mut prefix = BytesMut::new();
    let cut = Arc::new(Cut {
        why: AtomicU8::new(0),
        limit,
    });
    loop {
        let Some(chunk) = deadline.next(&mut payload, prefix.len()).await? else {
            let model = scan.value().map(str::to_owned);
            let body = Body::Held(prefix.freeze());
            return Ok(Incoming { body, model, cut });
        };
        if prefix.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        scan.push(&chunk).map_err(model_error)?;
        prefix.extend_from_slice(&chunk);
        if prefix.len() > hold {
            // A JSON object must name its model before it streams on
            // (clients that sort their keys put `input` or `messages`
            // first): held further, up to `max_body_bytes`.
            let unnamed = matches!(&scan, Scan::Json(s) if s.is_object()) && scan.value().is_none();
            if !unnamed {
                break;
            }
            let most = cfg.max_body_bytes.max(hold);
            if prefix.len() > most {
                return Err(ApiError::invalid(format!(
                    "A request body must name its `model` within its first {most} bytes"
                ))
                .param("model"));
            }
        }
    }
    let model = scan.value().map(str::to_owned);
    let rx = pump(
        payload,
        prefix.freeze(),
        limit,
        deadline,
        scan,
        Arc::clone(&cut),
    );
    Ok(Incoming {
        body: Body::Streamed(rx),
        model,
        cut,
    })
}

/// Reads the rest of `payload` into a channel from a task on this worker, so
/// the upstream request can stream it (the payload is not `Send`). A body
/// over `limit`, past its deadline or naming a model it did not name in
/// its window ends the upload with an error, and `cut` says which.
fn pump(
    mut payload: web::Payload,
    first: Bytes,
    limit: usize,
    deadline: Deadline,
    mut scan: Scan,
    cut: Arc<Cut>,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let had_model = scan.value().is_some();
    actix_web::rt::spawn(async move {
        let mut sent = first.len();
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        loop {
            let item = match deadline.next(&mut payload, sent).await {
                Ok(None) => return,
                Ok(Some(b)) => {
                    sent += b.len();
                    let why = if sent > limit {
                        Some(TOO_LARGE)
                    } else {
                        match scan.push(&b) {
                            Err(FieldError::Duplicate) => Some(DUPLICATE),
                            Err(_) => Some(BAD_MODEL),
                            Ok(()) if !had_model && scan.value().is_some() => Some(MODEL_LATE),
                            Ok(()) => None,
                        }
                    };
                    match why {
                        Some(why) => {
                            cut.set(why);
                            Err(std::io::Error::other("the request body was refused"))
                        }
                        None => Ok(b),
                    }
                }
                Err(e) => {
                    if e.status == StatusCode::REQUEST_TIMEOUT {
                        cut.set(LATE);
                    }
                    Err(std::io::Error::other(e.body.error.message))
                }
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    rx
}
