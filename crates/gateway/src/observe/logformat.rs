//! The JSON log line, rendered in one pass: the event's fields written as
//! JSON straight into the line, a span's fields rendered once when the span
//! is made and copied into each line logged inside it (tracing-subscriber's
//! JSON formatter goes through `serde_json` maps and parses a span's
//! fields back for every line). The shape is the same:
//! `{"timestamp","level",<fields, "message" first>,"target","span":{…,"name"}}`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `LOG_FORMAT=json`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLine;

/// The field formatter of `LOG_FORMAT=json`: `"name":value` pairs,
/// comma-separated (a span's fields, kept rendered).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonFields;

/// Writes a JSON string's contents, escaped, as they are formatted.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if esc.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(esc)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

/// Writes fields as `"name":value` pairs.
struct Pairs<'a, 'w> {
    w: &'a mut Writer<'w>,
    /// Whether a pair was written before (a comma goes first).
    comma: bool,
    result: fmt::Result,
}

impl Pairs<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        if self.comma {
            self.w.write_char(',')?;
        }
        self.comma = true;
        self.w.write_char('"')?;
        Escaped(self.w).write_str(field.name())?;
        self.w.write_str("\":")
    }

    fn raw(&mut self, field: &Field, v: fmt::Arguments<'_>) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| self.w.write_fmt(v));
        }
    }

    fn string(&mut self, field: &Field, v: fmt::Arguments<'_>) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| {
                self.w.write_char('"')?;
                Escaped(self.w).write_fmt(v)?;
                self.w.write_char('"')
            });
        }
    }
}

impl Visit for Pairs<'_, '_> {
    fn record_f64(&mut self, field: &Field, v: f64) {
        if v.is_finite() {
            self.raw(field, format_args!("{v}"));
        } else {
            self.raw(field, format_args!("null"));
        }
    }
    fn record_i64(&mut self, field: &Field, v: i64) {
        self.raw(field, format_args!("{v}"));
    }
    fn record_u64(&mut self, field: &Field, v: u64) {
        self.raw(field, format_args!("{v}"));
    }
    fn record_bool(&mut self, field: &Field, v: bool) {
        self.raw(field, format_args!("{v}"));
    }
    fn record_str(&mut self, field: &Field, v: &str) {
        self.string(field, format_args!("{v}"));
    }
    fn record_error(&mut self, field: &Field, v: &(dyn std::error::Error + 'static)) {
        self.string(field, format_args!("{v}"));
    }
    fn record_debug(&mut self, field: &Field, v: &dyn fmt::Debug) {
        self.string(field, format_args!("{v:?}"));
    }
}

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut p = Pairs {
            w: &mut writer,
            comma: false,
            result: Ok(()),
        };
        fields.record(&mut p);
        p.result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let comma = !current.fields.is_empty();
        let mut w = current.as_writer();
        let mut p = Pairs {
            w: &mut w,
            comma,
            result: Ok(()),
        };
        fields.record(&mut p);
        p.result
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        write!(w, "\",\"level\":\"{}\"", meta.level())?;
        let mut p = Pairs {
            w: &mut w,
            comma: true,
            result: Ok(()),
        };
        event.record(&mut p);
        p.result?;
        w.write_str(",\"target\":\"")?;
        Escaped(&mut w).write_str(meta.target())?;
        w.write_char('"')?;
        if let Some(span) = ctx.lookup_current() {
            let ext = span.extensions();
            w.write_str(",\"span\":{")?;
            if let Some(f) = ext.get::<FormattedFields<N>>()
                && !f.fields.is_empty()
            {
                w.write_str(&f.fields)?;
                w.write_char(',')?;
            }
            w.write_str("\"name\":\"")?;
            Escaped(&mut w).write_str(span.name())?;
            w.write_str("\"}")?;
        }
        w.write_str("}\n")
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::observe::logwriter::TestSink as Sink;

    #[test]
    fn every_line_is_one_json_object_with_its_span() {
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLine)
                .fmt_fields(JsonFields)
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("http", request_id = "req-1", late = tracing::field::Empty);
            let _in = span.enter();
            span.record("late", 7u64);
            tracing::info!(
                n = 3u64,
                neg = -2i64,
                ok = true,
                ratio = 0.5f64,
                inf = f64::INFINITY,
                text = "a \"quoted\"\nline\u{1}",
                shown = %"display",
                dbg = ?Some(1),
                "hello {}", "world"
            );
            drop(_in);
            tracing::warn!("outside");
        });
        let text = sink.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let a = &lines[0];
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["message"], "hello world");
        assert_eq!(a["n"], 3);
        assert_eq!(a["neg"], -2);
        assert_eq!(a["ok"], true);
        assert_eq!(a["ratio"], 0.5);
        assert!(a["inf"].is_null());
        assert_eq!(a["text"], "a \"quoted\"\nline\u{1}");
        assert_eq!(a["shown"], "display");
        assert_eq!(a["dbg"], "Some(1)");
        assert_eq!(a["target"], module_path!());
        assert_eq!(a["span"]["request_id"], "req-1");
        assert_eq!(a["span"]["late"], 7);
        assert_eq!(a["span"]["name"], "http");
        assert!(a["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["message"], "outside");
        assert!(lines[1].get("span").is_none());
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
    }
}
