//! Layer 2: re-framing payload bytes into whole records.
//!
//! Payload parts are cut anywhere: in the middle of a line, of a JSON string,
//! of a multi-byte UTF-8 character. [`RecordReader`] concatenates them and
//! splits on `\n` only (a byte that never occurs inside a UTF-8 sequence), so a
//! record is decoded only once it is whole. It understands both framings
//! SageMaker containers use:
//!
//! * server-sent events: `data:` lines (with or without the space), `event:`,
//!   `id:`, `retry:` and `:` comment lines, records ended by a blank line;
//! * JSON lines: one JSON document a line, no prefix.

use bytes::{Buf, Bytes, BytesMut};

use crate::Error;

/// Default limit on one record (line or SSE event), in bytes.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// How a record was framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A server-sent event's `data`.
    Sse,
    /// A bare JSON line.
    JsonLine,
}

/// One whole record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A JSON document (not yet parsed).
    Data {
        /// The bytes of the document.
        bytes: Bytes,
        /// How it was framed.
        framing: Framing,
        /// The SSE `event:` name, if one preceded it.
        event: Option<Bytes>,
    },
    /// `[DONE]`: the upstream says the stream is over.
    Done,
}

/// Splits a byte stream into [`Record`]s. Feed with [`RecordReader::push`]
/// (or [`RecordReader::push_bytes`], which does not copy), drain with
/// [`RecordReader::next_record`], and call [`RecordReader::finish`] at end of
/// input.
///
/// Whole lines are sliced out of the input without copying; only a line cut
/// across two inputs is carried over in a buffer of its own.
#[derive(Debug)]
pub struct RecordReader {
    /// Input not yet split into lines.
    input: Bytes,
    /// The start of a line whose end has not arrived.
    carry: BytesMut,
    /// `data` of an SSE event not yet ended by a blank line.
    pending: Option<Bytes>,
    event: Option<Bytes>,
    /// A record read while an open SSE event had to be dispatched first.
    queued: Option<Record>,
    max: usize,
}

impl Default for RecordReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_BYTES)
    }
}

impl RecordReader {
    /// A reader refusing records over `max_record_bytes`.
    pub fn new(max_record_bytes: usize) -> Self {
        Self {
            input: Bytes::new(),
            carry: BytesMut::new(),
            pending: None,
            event: None,
            queued: None,
            max: max_record_bytes,
        }
    }

    /// Appends payload bytes (copied).
    pub fn push(&mut self, bytes: &[u8]) {
        self.push_bytes(Bytes::copy_from_slice(bytes));
    }

    /// Appends payload bytes without copying them.
    pub fn push_bytes(&mut self, bytes: Bytes) {
        if self.input.is_empty() {
            self.input = bytes;
        } else {
            // Only when the caller pushes twice without draining.
            let mut b = BytesMut::with_capacity(self.input.len() + bytes.len());
            b.extend_from_slice(&self.input);
            b.extend_from_slice(&bytes);
            self.input = b.freeze();
        }
    }

    fn next_line(&mut self) -> Result<Option<Bytes>, Error> {
        let found = memchr::memchr(b'\n', &self.input);
        if self.carry.is_empty() {
            if let Some(p) = found {
                let mut line = self.input.split_to(p + 1);
                line.truncate(p);
                return Ok(Some(line));
            }
        } else if let Some(p) = found {
            self.carry.extend_from_slice(&self.input[..p]);
            self.input.advance(p + 1);
            return Ok(Some(self.carry.split().freeze()));
        }
        self.carry.extend_from_slice(&self.input);
        self.input = Bytes::new();
        if self.carry.len() > self.max {
            return Err(Error::RecordTooLarge { limit: self.max });
        }
        Ok(None)
    }

    /// The next whole record, or `Ok(None)` when more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Record>, Error> {
        if let Some(r) = self.queued.take() {
            return Ok(Some(r));
        }
        while let Some(line) = self.next_line()? {
            if let Some(record) = self.line(line)? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// End of input: the last line may lack its `\n`, and the last SSE event
    /// its blank line. Returns the records they hold, in order.
    pub fn finish(&mut self) -> Result<Vec<Record>, Error> {
        let mut out = Vec::new();
        while let Some(r) = self.next_record()? {
            out.push(r);
        }
        if !self.carry.is_empty() {
            let line = self.carry.split().freeze();
            if let Some(r) = self.line(line)? {
                out.push(r);
            }
            if let Some(r) = self.queued.take() {
                out.push(r);
            }
        }
        if let Some(r) = self.dispatch() {
            out.push(r);
        }
        Ok(out)
    }

    fn dispatch(&mut self) -> Option<Record> {
        let data = self.pending.take()?;
        Some(Record::Data {
            bytes: data,
            framing: Framing::Sse,
            event: self.event.take(),
        })
    }

    fn line(&mut self, mut line: Bytes) -> Result<Option<Record>, Error> {
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.max {
            return Err(Error::RecordTooLarge { limit: self.max });
        }
        let trimmed = trim_ascii_start(&line);
        if trimmed.is_empty() {
            // A blank line ends an SSE event.
            return Ok(self.dispatch());
        }
        match trimmed[0] {
            b':' => return Ok(None), // comment / keep-alive
            b'{' | b'[' => {
                let record = if trimmed == b"[DONE]" {
                    Record::Done
                } else {
                    let start = line.len() - trimmed.len();
                    Record::Data {
                        bytes: line.slice(start..),
                        framing: Framing::JsonLine,
                        event: None,
                    }
                };
                // A bare JSON line ends an SSE event still open.
                if let Some(r) = self.dispatch() {
                    self.queued = Some(record);
                    return Ok(Some(r));
                }
                return Ok(Some(record));
            }
            _ => {}
        }
        let Some(colon) = memchr::memchr(b':', &line) else {
            // A field name without a value: ignored, as the SSE spec says, but
            // only if it looks like a field name.
            return if is_field_name(&line) {
                Ok(None)
            } else {
                Err(unexpected(&line))
            };
        };
        let name = &line[..colon];
        let mut value = line.slice(colon + 1..);
        if value.first() == Some(&b' ') {
            value.advance(1);
        }
        match name {
            b"data" => {
                if value.as_ref() == b"[DONE]" {
                    self.pending = None;
                    return Ok(Some(Record::Done));
                }
                match self.pending.take() {
                    None => self.pending = Some(value),
                    Some(p) => {
                        // Servers that omit the blank line between events send
                        // `data: {…}` lines back to back: a complete object
                        // followed by a new one starts a new event.
                        if p.last() == Some(&b'}') && value.first() == Some(&b'{') {
                            let r = Record::Data {
                                bytes: p,
                                framing: Framing::Sse,
                                event: self.event.take(),
                            };
                            self.pending = Some(value);
                            return Ok(Some(r));
                        }
                        if p.len() + 1 + value.len() > self.max {
                            return Err(Error::RecordTooLarge { limit: self.max });
                        }
                        let mut joined = BytesMut::with_capacity(p.len() + 1 + value.len());
                        joined.extend_from_slice(&p);
                        joined.extend_from_slice(b"\n");
                        joined.extend_from_slice(&value);
                        self.pending = Some(joined.freeze());
                    }
                }
                Ok(None)
            }
            b"event" => {
                self.event = Some(value);
                Ok(None)
            }
            n if is_field_name(n) => Ok(None), // id, retry, unknown fields
            _ => Err(unexpected(&line)),
        }
    }
}

fn unexpected(line: &[u8]) -> Error {
    Error::InvalidRecord(format!(
        "unexpected line: {}",
        String::from_utf8_lossy(&line[..line.len().min(64)])
    ))
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn is_field_name(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 32
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Record> {
        let mut r = RecordReader::default();
        r.push(input);
        let mut out = Vec::new();
        while let Some(x) = r.next_record().unwrap() {
            out.push(x);
        }
        out.extend(r.finish().unwrap());
        out
    }

    fn data(s: &str, framing: Framing) -> Record {
        Record::Data {
            bytes: Bytes::copy_from_slice(s.as_bytes()),
            framing,
            event: None,
        }
    }

    #[test]
    fn sse_with_and_without_space_comments_and_done() {
        let out = all(b": ping\n\ndata:{\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n");
        assert_eq!(
            out,
            vec![
                data("{\"a\":1}", Framing::Sse),
                data("{\"b\":2}", Framing::Sse),
                Record::Done
            ]
        );
    }

    #[test]
    fn json_lines_without_trailing_newline() {
        let out = all(b"{\"a\":1}\n{\"b\":2}");
        assert_eq!(
            out,
            vec![
                data("{\"a\":1}", Framing::JsonLine),
                data("{\"b\":2}", Framing::JsonLine)
            ]
        );
    }

    #[test]
    fn back_to_back_data_lines_are_separate_events() {
        let out = all(b"data: {\"a\":1}\ndata: {\"b\":2}\n");
        assert_eq!(
            out,
            vec![
                data("{\"a\":1}", Framing::Sse),
                data("{\"b\":2}", Framing::Sse)
            ]
        );
    }

    #[test]
    fn event_name_is_kept() {
        let out = all(b"event: error\ndata: {\"error\":\"x\"}\n\n");
        assert_eq!(
            out,
            vec![Record::Data {
                bytes: Bytes::from_static(b"{\"error\":\"x\"}"),
                framing: Framing::Sse,
                event: Some(Bytes::from_static(b"error")),
            }]
        );
    }

    #[test]
    fn record_over_limit_is_an_error() {
        let mut r = RecordReader::new(8);
        r.push(b"{\"aaaaaaaaaa");
        assert_eq!(r.next_record(), Err(Error::RecordTooLarge { limit: 8 }));
    }

    #[test]
    fn garbage_line_is_an_error() {
        let mut r = RecordReader::default();
        r.push(b"hello world!\n");
        assert!(matches!(r.next_record(), Err(Error::InvalidRecord(_))));
    }
}
