//! SageMaker event-stream frames to OpenAI SSE bytes, per container dialect.
//!
//! Run: `cargo bench --bench sm_stream` (or `cargo xtask bench`, which runs
//! this and the gateway benchmark). Results, with machine and date, are in
//! BENCHMARKS.md.
//!
//! Each input is 1,000 generated tokens, one record per `PayloadPart` frame,
//! as SageMaker streams them; inputs are built outside the timed loop. The
//! `memcpy` line copies the same wire bytes once: the floor any translator
//! sits on.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sm_stream::frame::encode;
use sm_stream::{DialectKind, OutputShape, SseWriter, Translator, TranslatorConfig};

const TOKENS: usize = 1000;

fn openai_records() -> Vec<String> {
    let mut v = vec![format!(
        "data: {{\"id\":\"chatcmpl-8f3a\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    )];
    for i in 0..TOKENS {
        v.push(format!(
            "data: {{\"id\":\"chatcmpl-8f3a\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" tok{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        ));
    }
    v.push("data: {\"id\":\"chatcmpl-8f3a\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".into());
    v
}

fn tgi_records() -> Vec<String> {
    let mut v: Vec<String> = (0..TOKENS)
        .map(|i| format!("data:{{\"index\":{i},\"token\":{{\"id\":{i},\"text\":\" tok{i}\",\"logprob\":-0.25,\"special\":false}},\"generated_text\":null,\"details\":null}}\n\n"))
        .collect();
    v.push("data:{\"index\":1001,\"token\":{\"id\":2,\"text\":\"</s>\",\"logprob\":0.0,\"special\":true},\"generated_text\":\"...\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":1001,\"seed\":null}}\n\n".into());
    v
}

fn lmi_records() -> Vec<String> {
    let mut v: Vec<String> = (0..TOKENS)
        .map(|i| format!("{{\"token\":{{\"id\":[{i}],\"text\":\" tok{i}\",\"log_prob\":-0.5}}}}\n"))
        .collect();
    v.push("{\"token\":{\"id\":[2],\"text\":\".\",\"log_prob\":-0.1},\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":1001}}\n".into());
    v
}

fn wire(records: &[String]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| encode::payload_part(r.as_bytes()))
        .collect()
}

/// A translator and its SSE writer, as the gateway makes them per stream.
fn translator(dialect: DialectKind) -> (Translator, SseWriter) {
    let t = Translator::new(TranslatorConfig {
        id: "chatcmpl-bench".into(),
        model: "bench-model".into(),
        created: 1_700_000_000,
        dialect,
        include_usage: true,
        ..TranslatorConfig::default()
    });
    let w = t.sse_writer(OutputShape::Chat);
    (t, w)
}

fn translate(wire: &[u8], dialect: DialectKind, out: &mut BytesMut) {
    let (mut t, w) = translator(dialect);
    let mut items = Vec::with_capacity(8);
    // As the gateway reads it: one network read of 4 KiB at a time.
    for piece in wire.chunks(4096) {
        t.push_event_stream(piece, &mut items);
        w.write_all(&items, out);
        items.clear();
    }
    t.finish(&mut items);
    w.write_all(&items, out);
}

/// The SDK path: frames already decoded by `aws-sdk-sagemakerruntime`, one
/// `PayloadPart` a record.
fn translate_parts(parts: &[bytes::Bytes], dialect: DialectKind, out: &mut BytesMut) {
    let (mut t, w) = translator(dialect);
    let mut items = Vec::with_capacity(8);
    for p in parts {
        t.push_payload_bytes(p.clone(), &mut items);
        w.write_all(&items, out);
        items.clear();
    }
    t.finish(&mut items);
    w.write_all(&items, out);
}

fn bench(c: &mut Criterion) {
    {
        let mut g = c.benchmark_group("payload_parts_to_sse/chunks");
        for (name, dialect, records) in [
            ("openai", DialectKind::OpenAiChat, openai_records()),
            ("tgi", DialectKind::Tgi, tgi_records()),
            ("lmi", DialectKind::Lmi, lmi_records()),
        ] {
            let parts: Vec<bytes::Bytes> = records.into_iter().map(bytes::Bytes::from).collect();
            g.throughput(Throughput::Elements(TOKENS as u64));
            let mut out = BytesMut::new();
            g.bench_function(name, |b| {
                b.iter(|| {
                    out.clear();
                    translate_parts(black_box(&parts), dialect, &mut out);
                    black_box(out.len())
                })
            });
        }
        g.finish();
    }
    let inputs = [
        ("openai", DialectKind::OpenAiChat, wire(&openai_records())),
        ("tgi", DialectKind::Tgi, wire(&tgi_records())),
        ("lmi", DialectKind::Lmi, wire(&lmi_records())),
    ];
    for (unit, tp) in [("chunks", false), ("bytes", true)] {
        let mut g = c.benchmark_group(format!("frames_to_sse/{unit}"));
        for (name, dialect, input) in &inputs {
            g.throughput(if tp {
                Throughput::Bytes(input.len() as u64)
            } else {
                Throughput::Elements(TOKENS as u64)
            });
            let mut out = BytesMut::with_capacity(input.len() * 2);
            g.bench_function(*name, |b| {
                b.iter(|| {
                    out.clear();
                    translate(black_box(input), *dialect, &mut out);
                    black_box(out.len())
                })
            });
            let mut copy = Vec::with_capacity(input.len());
            g.bench_function(format!("{name}_memcpy_baseline"), |b| {
                b.iter(|| {
                    copy.clear();
                    copy.extend_from_slice(black_box(input));
                    black_box(copy.len())
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3)).sample_size(30);
    targets = bench
}
criterion_main!(benches);
