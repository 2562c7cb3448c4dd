//! What a client's path under `/v1` may be before it is appended to an
//! upstream's base URL. A URL parser resolves dot segments, decoded or not,
//! and some read a backslash as a slash: a path that passes [`check`] keeps
//! every segment a plain name, so `base + path` stays under `base`.

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A `.` or `..` segment, raw or percent-encoded at any depth.
    #[error("dot segment")]
    DotSegment,
    /// `%2f` or `%5c` (at any depth), which some servers decode to a
    /// separator.
    #[error("encoded separator")]
    EncodedSeparator,
    /// A backslash or a control byte, raw or encoded.
    #[error("backslash or control character")]
    BadByte,
    /// Percent-encoding nested deeper than any client needs.
    #[error("too deeply encoded")]
    TooDeep,
}

/// How many rounds of percent-decoding are looked through.
const MAX_DEPTH: usize = 4;

/// Checks a path (`/files/file-abc/content`): every segment, decoded again
/// and again until nothing changes, must not be `.` or `..`, nor hide a
/// `/`, `\` or control byte.
pub fn check(path: &str) -> Result<(), PathError> {
    // A URL parser strips spaces at the ends of its input, so `/.. ` would
    // read as `/..`; a request target has no raw space anyway.
    if path
        .bytes()
        .any(|b| b == b'\\' || b == b' ' || b.is_ascii_control())
    {
        return Err(PathError::BadByte);
    }
    for segment in path.split('/') {
        check_segment(segment)?;
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    let mut s = segment.as_bytes().to_vec();
    for _ in 0..=MAX_DEPTH {
        // Some servers also trim spaces from a decoded segment (`..%20`).
        if matches!(s.trim_ascii(), b"." | b"..") {
            return Err(PathError::DotSegment);
        }
        if !s.contains(&b'%') {
            return Ok(());
        }
        let decoded = percent_decode(&s);
        if decoded.contains(&b'/') {
            return Err(PathError::EncodedSeparator);
        }
        if decoded.iter().any(|b| *b == b'\\' || b.is_ascii_control()) {
            return Err(if decoded.contains(&b'\\') {
                PathError::EncodedSeparator
            } else {
                PathError::BadByte
            });
        }
        if decoded == s {
            return Ok(());
        }
        s = decoded;
    }
    Err(PathError::TooDeep)
}

/// `%XX` sequences decoded; an invalid one is kept as it is.
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_climb_out_are_refused() {
        for (bad, why) in [
            ("/..", PathError::DotSegment),
            ("/../x", PathError::DotSegment),
            ("/%2e%2e/internal/secret", PathError::DotSegment),
            ("/%2E%2E/%2e%2e/x", PathError::DotSegment),
            ("/%2e%2E/x", PathError::DotSegment),
            ("/./../x", PathError::DotSegment),
            ("/.", PathError::DotSegment),
            ("/a/./b", PathError::DotSegment),
            ("/%2e/x", PathError::DotSegment),
            ("/%252e%252e/x", PathError::DotSegment),
            ("/%25252e%25252e/x", PathError::DotSegment),
            ("/.%2e/x", PathError::DotSegment),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%2F..", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a%255c..", PathError::EncodedSeparator),
            ("/a\\..\\b", PathError::BadByte),
            ("/a%00b", PathError::BadByte),
            ("/a\tb", PathError::BadByte),
            ("/.. ", PathError::BadByte),
            ("/..%20/x", PathError::DotSegment),
            ("/%20%2e%2e%20", PathError::DotSegment),
            ("/%252525252e", PathError::TooDeep),
        ] {
            assert_eq!(check(bad), Err(why), "{bad}");
        }
        for good in [
            "/responses",
            "/files/file-abc/content",
            "/audio/speech",
            "/a..b/c",
            "/...",
            "/%41bc",
            "/models/ft:gpt-4o:org:x",
            "/100%",
            "/%zz",
            "",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode(b"%41%2f%zz%4"), b"A/%zz%4");
    }
}
