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

/// Whether any of the 8 bytes of `x` must be escaped in a JSON string: a
/// control byte (below 0x20), `"` or `\\`. Bytes of 0x80 and above (UTF-8)
/// never are.
fn any_escaped(x: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // A zero byte of `v` sets its high bit here (a borrow into a byte that
    // is zero only where a lower byte already matched: no false miss).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    (below_space | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')))) != 0
}

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        // Eight bytes at a time while none needs escaping (most text).
        let mut i = 0;
        while let Some(chunk) = bytes.get(i..i + 8) {
            let x = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
            if any_escaped(x) {
                break;
            }
            i += 8;
        }
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate().skip(i) {
            let esc: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
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

/// The line's timestamp as tracing-subscriber's `SystemTime` writes it
/// (RFC 3339, UTC, microseconds: `2026-12-08T01:02:46.381262Z`): the date
/// and time to the second rendered once a second on each thread, the
/// microseconds on each line.
fn timestamp(w: &mut Writer<'_>) -> fmt::Result {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    SECOND.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            text.clear();
            second(secs, text);
        }
        w.write_str(text)
    })?;
    let mut digits = [b'0'; 7];
    let mut m = micros;
    for d in digits[..6].iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    digits[6] = b'Z';
    w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

/// `secs` after the Unix epoch as `YYYY-MM-DDTHH:MM:SS.` (UTC).
fn second(secs: u64, out: &mut String) {
    let (year, month, day) = crate::ids::civil(secs / 86_400);
    let sod = secs % 86_400;
    let (h, m, s) = (sod / 3_600, sod / 60 % 60, sod % 60);
    let _ = write!(out, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.");
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

    /// One pair: its key, then what `value` writes (nothing after the
    /// first error).
    fn pair(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.w));
        }
    }

    /// A pair whose value is a JSON string: `value` writes its contents,
    /// escaped as they are written.
    fn quoted(&mut self, field: &Field, value: impl FnOnce(&mut Escaped<'_, '_>) -> fmt::Result) {
        self.pair(field, |w| {
            w.write_char('"')?;
            value(&mut Escaped(w))?;
            w.write_char('"')
        });
    }

    fn int(&mut self, field: &Field, v: impl itoa::Integer) {
        self.pair(field, |w| w.write_str(itoa::Buffer::new().format(v)));
    }

    fn raw(&mut self, field: &Field, v: fmt::Arguments<'_>) {
        self.pair(field, |w| w.write_fmt(v));
    }

    fn str(&mut self, field: &Field, v: &str) {
        self.quoted(field, |e| e.write_str(v));
    }

    fn string(&mut self, field: &Field, v: fmt::Arguments<'_>) {
        self.quoted(field, |e| e.write_fmt(v));
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
        self.int(field, v);
    }
    fn record_u64(&mut self, field: &Field, v: u64) {
        self.int(field, v);
    }
    fn record_bool(&mut self, field: &Field, v: bool) {
        self.raw(field, format_args!("{v}"));
    }
    fn record_str(&mut self, field: &Field, v: &str) {
        self.str(field, v);
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
        timestamp(&mut w)?;
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

    /// The escaper, fast path and all, against serde_json's string
    /// escaping: every byte below 0x80 at every offset of a 19-byte text
    /// (so each lands in a full 8-byte block and in the tail), and UTF-8.
    #[test]
    fn escaping_matches_serde_json_at_every_offset() {
        let mut texts: Vec<String> = Vec::new();
        for b in 0u8..0x80 {
            for at in 0..19 {
                let mut t = vec![b'a'; 19];
                t[at] = b;
                texts.push(String::from_utf8(t).unwrap());
            }
        }
        texts.push("ünïcödé \u{2028} and \"quotes\" \\ and\ttabs, long enough".into());
        texts.push(String::new());
        for t in texts {
            let mut out = String::new();
            Escaped(&mut Writer::new(&mut out)).write_str(&t).unwrap();
            let back: String = serde_json::from_str(&format!("\"{out}\"")).unwrap();
            assert_eq!(back, t, "{out}");
            let expect = serde_json::to_string(&t).unwrap();
            // serde_json writes the same escapes (short forms, else \u00XX).
            assert_eq!(format!("\"{out}\""), expect);
        }
    }

    #[test]
    fn any_escaped_finds_each_byte_in_each_lane() {
        for lane in 0..8 {
            for b in 0u8..=255 {
                let mut x = [b'a'; 8];
                x[lane] = b;
                let want = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(
                    any_escaped(u64::from_ne_bytes(x)),
                    want,
                    "{b:#x} in lane {lane}"
                );
            }
        }
    }

    #[test]
    fn timestamps_are_tracing_subscribers() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00."),
            (951_782_400, "2000-02-29T00:00:00."),
            (951_868_799, "2000-02-29T23:59:59."),
            (1_796_690_978, "2026-12-08T00:49:38."),
            (4_102_444_800, "2100-01-01T00:00:00."),
            (253_402_300_799, "9999-12-31T23:59:59."),
        ] {
            let mut out = String::new();
            second(secs, &mut out);
            assert_eq!(out, text);
        }
        // Against tracing-subscriber's own, to the second (again if the
        // second turned between the two).
        use tracing_subscriber::fmt::time::FormatTime as _;
        for _ in 0..3 {
            let (mut ours, mut theirs) = (String::new(), String::new());
            timestamp(&mut Writer::new(&mut ours)).unwrap();
            tracing_subscriber::fmt::time::SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
            assert!(ours.ends_with('Z'));
            if ours[..20] == theirs[..20] {
                return;
            }
        }
        panic!("the timestamps never agreed to the second");
    }
}
