//! One top-level member of a JSON object, read from a body that arrives in
//! pieces, without holding it: the `model` a request names, found exactly
//! where the upstream's own JSON parser finds it.
//!
//! A gateway that checks a key's scope against a streamed body must check
//! the very member the upstream acts on. A byte search for `"model"` is
//! fooled by nesting (`{"metadata":{"model":"cheap"},"model":"premium"}`),
//! by escapes (`"mod\u0065l"`) and by a second `model` member (most JSON
//! parsers keep the last). [`FieldScan`] is a small state machine over the
//! JSON token structure: it tracks strings, escapes and depth, reads only
//! the members of the outermost object, decodes the key and the value as
//! JSON does, and refuses a second member of the same name, a value that is
//! not a string and a value longer than [`MAX_VALUE_BYTES`].
//!
//! ```
//! use openai_types::top_level::{FieldScan, FieldError};
//!
//! let mut scan = FieldScan::new("model");
//! scan.push(br#"{"metadata":{"model":"cheap-1"},"mod"#).unwrap();
//! assert_eq!(scan.value(), None);
//! scan.push(br#"el":"premium-1","input":"hi"}"#).unwrap();
//! assert_eq!(scan.value(), Some("premium-1"));
//! assert!(scan.is_complete());
//!
//! let dup = FieldScan::scan(br#"{"model":"a","x":1,"model":"b"}"#, "model");
//! assert_eq!(dup, Err(FieldError::Duplicate));
//! ```
//!
//! The scanner checks structure, not validity: a body that is not JSON may
//! pass it (the upstream refuses such a body), but for every body a JSON
//! parser accepts, the scanner's answer is the parser's. The fuzz target
//! `top_level_model` checks that against `serde_json`, at every split.

/// The longest value read (a model name is short; a longer value is an
/// error, never silently cut).
pub const MAX_VALUE_BYTES: usize = 1024;

/// The longest key that can still name the member once its escapes are
/// decoded (six bytes per `\uXXXX`).
const MAX_KEY_BYTES: usize = 6 * 64;

/// Why a body's member cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The member appears more than once in the outermost object.
    #[error("the member appears more than once")]
    Duplicate,
    /// The member's value is not a string.
    #[error("the member's value is not a string")]
    NotString,
    /// The member's value is longer than [`MAX_VALUE_BYTES`].
    #[error("the member's value is too long")]
    TooLong,
    /// The member's value is not a valid JSON string.
    #[error("the member's value is not a valid JSON string")]
    BadString,
}

/// What the outermost object expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Key,
    Colon,
    Value,
    CommaOrEnd,
}

/// What the bytes of the current string are kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    Nothing,
    Key,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte that is not white space.
    Start,
    /// Between tokens.
    Between,
    /// Inside a string; `escape` after a backslash.
    Str { escape: bool },
    /// The outermost value closed (or was never an object): nothing more
    /// is read.
    Done,
}

/// An incremental reader of one member of the outermost JSON object.
#[derive(Debug, Clone)]
pub struct FieldScan {
    name: &'static str,
    state: State,
    depth: usize,
    expect: Expect,
    capture: Capture,
    /// The current key names the member: its value is the one wanted.
    wanted: bool,
    buf: Vec<u8>,
    overflow: bool,
    found: Option<String>,
    error: Option<FieldError>,
    object: bool,
}

impl FieldScan {
    /// A scanner for the member `name` of the outermost object.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            state: State::Start,
            depth: 0,
            expect: Expect::Key,
            capture: Capture::Nothing,
            wanted: false,
            buf: Vec::new(),
            overflow: false,
            found: None,
            error: None,
            object: false,
        }
    }

    /// Scans a whole body: the member's value, `None` when the outermost
    /// value is an object without it (or not an object).
    pub fn scan(body: &[u8], name: &'static str) -> Result<Option<String>, FieldError> {
        let mut s = Self::new(name);
        s.push(body)?;
        Ok(s.found)
    }

    /// The member's value, once read whole.
    pub fn value(&self) -> Option<&str> {
        self.found.as_deref()
    }

    /// Takes the member's value, once read whole.
    pub fn take_value(&mut self) -> Option<String> {
        self.found.take()
    }

    /// Whether the outermost value has been read to its end (after that,
    /// no later byte can add a member).
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the outermost value is an object (known after its first
    /// byte).
    pub fn is_object(&self) -> bool {
        self.object
    }

    /// Reads the next piece of the body. An error is final: every later
    /// call returns it again.
    pub fn push(&mut self, mut input: &[u8]) -> Result<(), FieldError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        while !input.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Str { escape } => {
                    let n = self.string_bytes(input, escape);
                    input = &input[n..];
                }
                State::Start | State::Between => {
                    let b = input[0];
                    input = &input[1..];
                    self.token(b);
                }
            }
            if let Some(e) = self.error {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Consumes string bytes; returns how many.
    fn string_bytes(&mut self, input: &[u8], escape: bool) -> usize {
        if escape {
            self.keep(&input[..1]);
            self.state = State::Str { escape: false };
            return 1;
        }
        match memchr::memchr2(b'"', b'\\', input) {
            None => {
                self.keep(input);
                input.len()
            }
            Some(i) => {
                self.keep(&input[..i]);
                if input[i] == b'\\' {
                    self.keep(&input[i..=i]);
                    self.state = State::Str { escape: true };
                } else {
                    self.state = State::Between;
                    self.string_end();
                }
                i + 1
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let limit = match self.capture {
            Capture::Nothing => return,
            Capture::Key => MAX_KEY_BYTES,
            Capture::Value => MAX_VALUE_BYTES,
        };
        if self.buf.len() + bytes.len() > limit {
            self.overflow = true;
            if self.capture == Capture::Value {
                self.error = Some(FieldError::TooLong);
            }
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn token(&mut self, b: u8) {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return;
        }
        if self.state == State::Start {
            self.state = State::Between;
            if b == b'{' {
                self.object = true;
                self.depth = 1;
                self.expect = Expect::Key;
            } else {
                self.state = State::Done;
            }
            return;
        }
        let outer = self.depth == 1;
        match b {
            b'"' => {
                self.capture = Capture::Nothing;
                if outer {
                    match self.expect {
                        Expect::Key => self.capture = Capture::Key,
                        Expect::Value if self.wanted => self.capture = Capture::Value,
                        _ => {}
                    }
                }
                self.buf.clear();
                self.overflow = false;
                self.state = State::Str { escape: false };
            }
            b'{' | b'[' => {
                self.value_other(outer);
                self.depth += 1;
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                match self.depth {
                    0 => self.state = State::Done,
                    1 => self.expect = Expect::CommaOrEnd,
                    _ => {}
                }
            }
            b':' if outer => self.expect = Expect::Value,
            b',' if outer => {
                self.expect = Expect::Key;
                self.wanted = false;
            }
            _ => self.value_other(outer),
        }
    }

    /// A value of the outermost object that is not a string begins.
    fn value_other(&mut self, outer: bool) {
        if outer && self.expect == Expect::Value {
            if self.wanted {
                self.error = Some(FieldError::NotString);
            }
            self.expect = Expect::CommaOrEnd;
        }
    }

    fn string_end(&mut self) {
        let capture = std::mem::replace(&mut self.capture, Capture::Nothing);
        if self.depth != 1 {
            return;
        }
        match (capture, self.expect) {
            (Capture::Key, _) => {
                self.wanted = !self.overflow && decoded_eq(&self.buf, self.name);
                self.expect = Expect::Colon;
            }
            (Capture::Value, _) => {
                self.expect = Expect::CommaOrEnd;
                if self.found.is_some() {
                    self.error = Some(FieldError::Duplicate);
                    return;
                }
                match decode(&self.buf) {
                    Some(v) => self.found = Some(v),
                    None => self.error = Some(FieldError::BadString),
                }
            }
            (Capture::Nothing, Expect::Value) => self.expect = Expect::CommaOrEnd,
            (Capture::Nothing, _) => {}
        }
        self.buf.clear();
    }
}

/// A JSON string's raw bytes (between the quotes), decoded.
fn decode(raw: &[u8]) -> Option<String> {
    if !raw.contains(&b'\\') {
        return std::str::from_utf8(raw)
            .ok()
            .filter(|s| !s.bytes().any(|c| c < 0x20))
            .map(str::to_owned);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).ok()
}

fn decoded_eq(raw: &[u8], name: &str) -> bool {
    if !raw.contains(&b'\\') {
        return raw == name.as_bytes();
    }
    decode(raw).is_some_and(|k| k == name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn model(body: &str) -> Result<Option<String>, FieldError> {
        let whole = FieldScan::scan(body.as_bytes(), "model");
        // Every split gives the same answer.
        for cut in 0..=body.len() {
            let mut s = FieldScan::new("model");
            let got = s
                .push(&body.as_bytes()[..cut])
                .and_then(|()| s.push(&body.as_bytes()[cut..]))
                .map(|()| s.take_value());
            assert_eq!(got, whole, "cut at {cut} of {body}");
        }
        whole
    }

    #[test]
    fn the_top_level_member_is_read_and_nesting_does_not_fool_it() {
        let cases: &[(&str, Result<Option<&str>, FieldError>)] = &[
            (r#"{"model":"m"}"#, Ok(Some("m"))),
            (
                r#" { "model" : "gpt-4o" , "input" : [1,2] } "#,
                Ok(Some("gpt-4o")),
            ),
            (
                r#"{"metadata":{"model":"cheap-1"},"model":"premium-1"}"#,
                Ok(Some("premium-1")),
            ),
            (
                r#"{"a":["model","x"],"b":"model","model":"m"}"#,
                Ok(Some("m")),
            ),
            (r#"{"a":{"b":{"model":"x"}}}"#, Ok(None)),
            (r#"{"a":"{\"model\":\"x\"}"}"#, Ok(None)),
            (r#"{"mod\u0065l":"p"}"#, Ok(Some("p"))),
            (r#"{"model":"pre\u006dium"}"#, Ok(Some("premium"))),
            (r#"{"model":"a\"b"}"#, Ok(Some("a\"b"))),
            (
                r#"{"model":"cheap-1","model":"premium-1"}"#,
                Err(FieldError::Duplicate),
            ),
            (
                r#"{"model":"a","mod\u0065l":"b"}"#,
                Err(FieldError::Duplicate),
            ),
            (r#"{"model":5}"#, Err(FieldError::NotString)),
            (r#"{"model":{"id":"x"}}"#, Err(FieldError::NotString)),
            (r#"{"model":null}"#, Err(FieldError::NotString)),
            (r#"{"x":"model","y":"z"}"#, Ok(None)),
            (r#"["model","m"]"#, Ok(None)),
            (r#""model""#, Ok(None)),
            (r#"{"model":"m"} {"model":"n"}"#, Ok(Some("m"))),
            (r#"{"modelx":"a","xmodel":"b"}"#, Ok(None)),
        ];
        for (body, want) in cases {
            let want = want.map(|o| o.map(str::to_owned));
            assert_eq!(model(body), want, "{body}");
        }
    }

    #[test]
    fn long_values_are_refused_and_long_keys_are_other_keys() {
        let long = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(model(&long), Err(FieldError::TooLong));
        let key = format!(r#"{{"{}":"x","model":"m"}}"#, "k".repeat(10_000));
        assert_eq!(model(&key), Ok(Some("m".into())));
    }

    #[test]
    fn completion_and_an_unfinished_body() {
        let mut s = FieldScan::new("model");
        s.push(br#"{"model":"m","input":"abc"#).unwrap();
        assert_eq!(s.value(), Some("m"));
        assert!(!s.is_complete());
        s.push(br#""}"#).unwrap();
        assert!(s.is_complete());
        // Deep nesting is counted, not recursed into.
        let deep = format!(
            r#"{{"a":{}1{},"model":"m"}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(
            FieldScan::scan(deep.as_bytes(), "model"),
            Ok(Some("m".into()))
        );
    }
}
