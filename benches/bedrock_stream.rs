//! Bedrock ConverseStream events to OpenAI SSE bytes.
//!
//! Run: `cargo bench --bench bedrock_stream` (or `cargo xtask bench`).
//! Results, with machine and date, are in BENCHMARKS.md.
//!
//! Each input is 1,000 text deltas between `messageStart` and
//! `messageStop`/`metadata`, framed exactly as Bedrock frames them (with its
//! `p` padding field); inputs are built outside the timed loop. Two paths:
//! `events` starts from decoded events (the gateway's path: the AWS SDK
//! decodes the frames and the gateway maps its types to these events), and
//! `frames` from the raw wire (frame decoding and JSON parsing included).

use std::hint::black_box;

use bedrock_converse::event::encode;
use bedrock_converse::wire::{BlockDelta, Role, StreamEvent, TokenUsage};
use bedrock_converse::{StreamConfig, StreamTranslator};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

const TOKENS: usize = 1000;

fn config() -> StreamConfig {
    StreamConfig {
        id: "chatcmpl-bench".into(),
        model: "bench-model".into(),
        created: 1_700_000_000,
        include_usage: true,
        ..StreamConfig::default()
    }
}

fn events() -> Vec<StreamEvent> {
    let mut v = vec![StreamEvent::MessageStart {
        role: Role::Assistant,
    }];
    v.extend((0..TOKENS).map(|i| StreamEvent::ContentBlockDelta {
        index: 0,
        delta: BlockDelta::Text(format!(" tok{i}")),
    }));
    v.push(StreamEvent::ContentBlockStop { index: 0 });
    v.push(StreamEvent::MessageStop {
        stop_reason: "end_turn".into(),
    });
    v.push(StreamEvent::Metadata {
        usage: Some(TokenUsage {
            input_tokens: 20,
            output_tokens: TOKENS as u64,
            total_tokens: 20 + TOKENS as u64,
            ..TokenUsage::default()
        }),
    });
    v
}

fn wire() -> Vec<u8> {
    let mut w = encode::event(
        "messageStart",
        &json!({"role": "assistant", "p": "abcdefghijklmnopqrstu"}),
    );
    for i in 0..TOKENS {
        w.extend(encode::event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": format!(" tok{i}")}, "p": "abcdefghijklmnopq"}),
        ));
    }
    w.extend(encode::event(
        "contentBlockStop",
        &json!({"contentBlockIndex": 0, "p": "abcd"}),
    ));
    w.extend(encode::event(
        "messageStop",
        &json!({"stopReason": "end_turn", "p": "abcd"}),
    ));
    w.extend(encode::event(
        "metadata",
        &json!({"usage": {"inputTokens": 20, "outputTokens": TOKENS, "totalTokens": 1020}, "metrics": {"latencyMs": 900}, "p": "ab"}),
    ));
    w
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("converse_stream_to_sse/chunks");
    g.throughput(Throughput::Elements(TOKENS as u64));
    let evs = events();
    let mut out = BytesMut::new();
    g.bench_function("events", |b| {
        b.iter(|| {
            out.clear();
            let mut t = StreamTranslator::new(config());
            let w = t.sse_writer();
            let mut items = Vec::with_capacity(4);
            for e in black_box(&evs) {
                t.push_event(e.clone(), &mut items);
                w.write_all(&items, &mut out);
                items.clear();
            }
            t.finish(&mut items);
            w.write_all(&items, &mut out);
            black_box(out.len())
        })
    });
    let wire = wire();
    g.bench_function("frames", |b| {
        b.iter(|| {
            out.clear();
            let mut t = StreamTranslator::new(config());
            let w = t.sse_writer();
            let mut items = Vec::with_capacity(8);
            // As read from the network: 4 KiB at a time.
            for piece in black_box(&wire).chunks(4096) {
                t.push_bytes(piece, &mut items);
                w.write_all(&items, &mut out);
                items.clear();
            }
            t.finish(&mut items);
            w.write_all(&items, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
