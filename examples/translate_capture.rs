//! Feeds a captured SageMaker stream through the translator and prints the
//! OpenAI SSE a client would receive.
//!
//! ```text
//! cargo run --example translate_capture -- crates/sm-stream/test_data/valid_tgi_generate_stream.payload
//! cargo run --example translate_capture -- capture.eventstream --reasoning
//! ```
//!
//! A file ending in `.eventstream` is read as raw
//! `application/vnd.amazon.eventstream` frames (what
//! `InvokeEndpointWithResponseStream` sends on the wire); anything else as the
//! concatenated `PayloadPart` bytes. The file is fed in 7-byte pieces to show
//! that cuts anywhere change nothing.

use std::io::Write;

use bytes::BytesMut;
use sm_stream::{OutputShape, ReasoningMode, Translator, TranslatorConfig};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: translate_capture FILE [--reasoning] [--usage]");
        std::process::exit(2);
    };
    let data = std::fs::read(path)?;
    let mut t = Translator::new(TranslatorConfig {
        id: "chatcmpl-example".into(),
        model: "captured-endpoint".into(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        reasoning: if args.iter().any(|a| a == "--reasoning") {
            ReasoningMode::Tags
        } else {
            ReasoningMode::Off
        },
        include_usage: args.iter().any(|a| a == "--usage"),
        ..TranslatorConfig::default()
    });
    let framed = path.ends_with(".eventstream");
    let sse = t.sse_writer(OutputShape::Chat);
    let mut items = Vec::new();
    let mut out = BytesMut::new();
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    for piece in data.chunks(7) {
        if framed {
            t.push_event_stream(piece, &mut items);
        } else {
            t.push_payload(piece, &mut items);
        }
        sse.write_all(&items, &mut out);
        items.clear();
        stdout.write_all(&out)?;
        out.clear();
    }
    t.finish(&mut items);
    sse.write_all(&items, &mut out);
    stdout.write_all(&out)?;
    eprintln!("dialect: {:?}, usage: {:?}", t.dialect(), t.usage());
    Ok(())
}
