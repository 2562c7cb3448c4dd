//! One field of a `multipart/form-data` body (audio transcriptions, image
//! edits, file uploads), read from a body that arrives in pieces, without
//! holding it.
//!
//! [`FormScan`] follows the parts by their boundary, reads each part's
//! `Content-Disposition` and keeps the value of the named field. A second
//! field of that name anywhere in the body is an error, so what a gateway
//! checks is what the upstream reads, however far into the body the field
//! comes. File contents are searched only for the boundary (which the
//! client chose not to occur in them), never read as headers.
//!
//! ```
//! use openai_types::form::FormScan;
//!
//! let body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--b--\r\n";
//! let mut scan = FormScan::new("b", "model");
//! scan.push(&body[..40]).unwrap();
//! scan.push(&body[40..]).unwrap();
//! assert_eq!(scan.value(), Some("whisper-1"));
//! ```

use crate::top_level::{FieldError, MAX_VALUE_BYTES};

/// The longest head of one part.
const MAX_PART_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the next delimiter (in the preamble or a part's body).
    Seek { wanted: bool },
    /// After a delimiter: `--` ends the body, else a part's head follows.
    AfterDelim,
    /// A part's head, up to the blank line.
    Head,
    /// After the closing delimiter.
    Done,
}

/// An incremental reader of one field of a multipart form.
#[derive(Debug, Clone)]
pub struct FormScan {
    delim: Vec<u8>,
    name: &'static str,
    state: State,
    /// Bytes not yet resolved (a possible delimiter's start, a head, the
    /// wanted field's value).
    pending: Vec<u8>,
    found: Option<String>,
    error: Option<FieldError>,
}

impl FormScan {
    /// A scanner for the field `name` of a form whose boundary is
    /// `boundary` (from the `Content-Type` header).
    pub fn new(boundary: &str, name: &'static str) -> Self {
        let mut delim = b"\r\n--".to_vec();
        delim.extend_from_slice(boundary.as_bytes());
        Self {
            delim,
            name,
            state: State::Seek { wanted: false },
            // The first delimiter has no line break before it.
            pending: b"\r\n".to_vec(),
            found: None,
            error: None,
        }
    }

    /// The boundary named by a `multipart/…` content type.
    pub fn boundary(content_type: &str) -> Option<&str> {
        content_type.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| v.trim().trim_matches('"'))
                .filter(|b| !b.is_empty() && b.len() <= 70)
        })
    }

    /// The field's value, once read whole.
    pub fn value(&self) -> Option<&str> {
        self.found.as_deref()
    }

    /// Whether the closing delimiter has been read.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Reads the next piece of the body. An error is final.
    pub fn push(&mut self, input: &[u8]) -> Result<(), FieldError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.state == State::Done {
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        let mut at = 0;
        loop {
            let rest = &self.pending[at..];
            match self.state {
                State::Done => break,
                State::Seek { wanted } => match memchr::memmem::find(rest, &self.delim) {
                    Some(i) => {
                        if wanted {
                            self.field_value(at, at + i)?;
                        }
                        at += i + self.delim.len();
                        self.state = State::AfterDelim;
                    }
                    None => {
                        // Keep what could still begin a delimiter (and the
                        // wanted field's value, bounded).
                        let keep_from = if wanted {
                            if rest.len() > MAX_VALUE_BYTES + self.delim.len() {
                                return self.fail(FieldError::TooLong);
                            }
                            at
                        } else {
                            self.pending
                                .len()
                                .saturating_sub(self.delim.len() - 1)
                                .max(at)
                        };
                        at = keep_from;
                        break;
                    }
                },
                State::AfterDelim => {
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Done;
                        break;
                    }
                    match memchr::memchr(b'\n', rest) {
                        Some(i) => {
                            at += i + 1;
                            self.state = State::Head;
                        }
                        None if rest.len() > MAX_PART_HEAD => {
                            return self.fail(FieldError::TooLong);
                        }
                        None => break,
                    }
                }
                State::Head => {
                    let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
                        if rest.len() > MAX_PART_HEAD {
                            return self.fail(FieldError::TooLong);
                        }
                        break;
                    };
                    let wanted = field_name(&rest[..end]).is_some_and(|n| n == self.name);
                    if wanted && self.found.is_some() {
                        return self.fail(FieldError::Duplicate);
                    }
                    // The part's body begins after the blank line; its
                    // end is the next delimiter (at once for an empty value).
                    at += end + 4;
                    self.state = State::Seek { wanted };
                }
            }
        }
        self.pending.drain(..at.min(self.pending.len()));
        Ok(())
    }

    fn fail(&mut self, e: FieldError) -> Result<(), FieldError> {
        self.error = Some(e);
        Err(e)
    }

    fn field_value(&mut self, from: usize, to: usize) -> Result<(), FieldError> {
        let raw = &self.pending[from..to];
        if raw.len() > MAX_VALUE_BYTES {
            return self.fail(FieldError::TooLong);
        }
        match std::str::from_utf8(raw) {
            Ok(v) => {
                self.found = Some(v.trim().to_owned());
                Ok(())
            }
            Err(_) => self.fail(FieldError::BadString),
        }
    }
}

/// The `name` parameter of a part head's `Content-Disposition`.
fn field_name(head: &[u8]) -> Option<String> {
    let head = std::str::from_utf8(head).ok()?;
    let value = head.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("name").then(|| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn part(name: &str, extra: &str, value: &str) -> String {
        format!(
            "--xyz\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\nContent-Type: text/plain\r\n\r\n{value}\r\n"
        )
    }

    fn model(body: &str) -> Result<Option<String>, FieldError> {
        let mut whole = FormScan::new("xyz", "model");
        let want = whole
            .push(body.as_bytes())
            .map(|()| whole.value().map(str::to_owned));
        for cut in 0..=body.len() {
            let mut s = FormScan::new("xyz", "model");
            let got = s
                .push(&body.as_bytes()[..cut])
                .and_then(|()| s.push(&body.as_bytes()[cut..]))
                .map(|()| s.value().map(str::to_owned));
            assert_eq!(got, want, "cut at {cut}");
        }
        want
    }

    #[test]
    fn the_field_is_read_wherever_it_comes() {
        let first = format!(
            "{}{}--xyz--\r\n",
            part("model", "", "whisper-1"),
            part("file", "; filename=\"a.wav\"", "RIFF name=\"model\" x")
        );
        assert_eq!(model(&first), Ok(Some("whisper-1".into())));
        let last = format!(
            "{}{}--xyz--\r\n",
            part("file", "; filename=\"model\"", "data"),
            part("model", "", "m2")
        );
        assert_eq!(model(&last), Ok(Some("m2".into())));
        let none = format!("{}--xyz--\r\n", part("purpose", "", "batch"));
        assert_eq!(model(&none), Ok(None));
        let empty = format!("{}--xyz--\r\n", part("model", "", ""));
        assert_eq!(model(&empty), Ok(Some(String::new())));
        // A file whose content holds a fake part head without the boundary.
        let fake = format!(
            "{}--xyz--\r\n",
            part(
                "file",
                "; filename=\"f\"",
                "\r\n--xy\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nevil\r\n"
            )
        );
        assert_eq!(model(&fake), Ok(None));
    }

    #[test]
    fn a_second_field_is_refused() {
        let two = format!(
            "{}{}{}--xyz--\r\n",
            part("model", "", "cheap-1"),
            part("file", "; filename=\"a\"", "x"),
            part("model", "", "premium-1")
        );
        assert_eq!(model(&two), Err(FieldError::Duplicate));
        let big = format!(
            "{}--xyz--\r\n",
            part("model", "", &"m".repeat(MAX_VALUE_BYTES + 1))
        );
        assert_eq!(model(&big), Err(FieldError::TooLong));
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            FormScan::boundary("multipart/form-data; boundary=abc"),
            Some("abc")
        );
        assert_eq!(
            FormScan::boundary("multipart/form-data; charset=x; BOUNDARY=\"a b\""),
            Some("a b")
        );
        assert_eq!(FormScan::boundary("multipart/form-data"), None);
    }
}
