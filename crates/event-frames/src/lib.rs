//! AWS event-stream framing (`application/vnd.amazon.eventstream`), sans
//! I/O: the binary frames in which SageMaker's
//! `InvokeEndpointWithResponseStream`, Bedrock's `ConverseStream` and
//! `InvokeModelWithResponseStream` send their events.
//!
//! Feed bytes as they arrive, in pieces of any size, and take whole,
//! CRC-checked messages out; bytes buffered for an unfinished frame are
//! bounded by [`MAX_FRAME_BYTES`]. [`encode`] writes frames exactly as AWS
//! services send them (for test servers, fixtures and fuzzing).
//!
//! ```
//! use event_frames::{MessageDecoder, encode, header_str};
//!
//! let wire = encode::frame(vec![(":event-type", "PayloadPart")], "hi".into());
//! let mut d = MessageDecoder::new();
//! // Any split: here one byte short, then the rest.
//! d.push(&wire[..wire.len() - 1]);
//! assert!(d.next_message().unwrap().is_none());
//! d.push(&wire[wire.len() - 1..]);
//! let m = d.next_message().unwrap().unwrap();
//! assert_eq!(header_str(&m, ":event-type"), Some("PayloadPart"));
//! assert_eq!(&m.payload()[..], b"hi");
//! assert!(!d.has_partial());
//! ```

#![deny(missing_docs)]

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::HeaderValue;
use bytes::{Buf, BytesMut};

pub use aws_smithy_types::event_stream::Message;

/// The most bytes buffered for one frame: the event-stream format's own
/// 16 MiB message limit, plus room for the prelude and CRC.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024 + 16;

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad CRC, bad length or a bad header.
    #[error("{0}")]
    Malformed(String),
    /// More than [`MAX_FRAME_BYTES`] without a complete frame.
    #[error("more than {MAX_FRAME_BYTES} bytes without a complete frame")]
    TooLarge,
}

/// Incremental event-stream message decoder for any service: feed bytes as
/// they arrive, take whole CRC-checked messages out.
///
/// [`MessageDecoder::next_message`] returns `Ok(None)` when more bytes are
/// needed.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    buf: BytesMut,
    inner: MessageFrameDecoder,
    /// Whether `inner` consumed part of the current frame (its prelude).
    in_frame: bool,
}

impl MessageDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes from the wire.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Decodes the next complete message, if there is one.
    pub fn next_message(&mut self) -> Result<Option<Message>, Error> {
        if self.buf.len() > MAX_FRAME_BYTES {
            return Err(Error::TooLarge);
        }
        let before = self.buf.remaining();
        let decoded = self
            .inner
            .decode_frame(&mut self.buf)
            .map_err(|e| Error::Malformed(e.to_string()))?;
        match decoded {
            DecodedFrame::Incomplete => {
                if self.buf.remaining() != before {
                    self.in_frame = true;
                }
                Ok(None)
            }
            DecodedFrame::Complete(message) => {
                self.in_frame = false;
                Ok(Some(message))
            }
        }
    }

    /// Whether bytes of an unfinished frame are pending (a cut stream).
    pub fn has_partial(&self) -> bool {
        self.in_frame || !self.buf.is_empty()
    }
}

/// A string header of a message (`:event-type`, `:message-type`…).
pub fn header_str<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

/// Encodes frames exactly as AWS services send them.
pub mod encode {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use bytes::Bytes;

    /// A frame with string headers. Headers or a payload over the format's
    /// limits (16 MiB) give an empty frame.
    pub fn frame(headers: Vec<(&'static str, &str)>, payload: Bytes) -> Vec<u8> {
        let mut m = Message::new(payload);
        for (k, v) in headers {
            m = m.add_header(Header::new(k, HeaderValue::String(v.to_owned().into())));
        }
        let mut out = Vec::new();
        if write_message_to(&m, &mut out).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_split_of_two_frames_decodes_the_same() {
        let mut wire = encode::frame(vec![(":event-type", "A")], "one".into());
        wire.extend(encode::frame(vec![(":event-type", "B")], "two".into()));
        for cut in 0..=wire.len() {
            let mut d = MessageDecoder::new();
            let mut names = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                d.push(part);
                while let Some(m) = d.next_message().unwrap() {
                    names.push(header_str(&m, ":event-type").unwrap().to_owned());
                }
            }
            assert_eq!(names, ["A", "B"], "cut at {cut}");
            assert!(!d.has_partial());
        }
    }

    #[test]
    fn a_bad_crc_is_an_error_and_a_cut_frame_is_partial() {
        let mut wire = encode::frame(vec![(":event-type", "A")], "one".into());
        let last = wire.len() - 1;
        let mut d = MessageDecoder::new();
        d.push(&wire[..last]);
        assert!(d.next_message().unwrap().is_none());
        assert!(d.has_partial());
        wire[last] ^= 0xff;
        let mut d = MessageDecoder::new();
        d.push(&wire);
        assert!(matches!(d.next_message(), Err(Error::Malformed(_))));
    }
}
