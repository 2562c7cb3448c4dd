//! Scrubbing secrets out of text that came from elsewhere (an upstream's
//! error message, a transport error) before it is stored, logged, alerted
//! or returned: an upstream that echoes the `Authorization` it was sent must
//! not leak a key into `/admin/upstreams`, the logs, an alert or a client's
//! error body.

use std::borrow::Cow;

/// Secrets shorter than this are not scrubbed by value (they would match
/// ordinary words); the patterns still catch them after `Bearer `.
const MIN_SECRET_LEN: usize = 6;

/// The replacement.
const MASK: &str = "*****";

/// Every secret the gateway knows (client keys, upstream keys, extra
/// upstream header values, admin and metrics tokens), plus the shapes of
/// bearer tokens and OpenAI-style keys.
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor for these secrets (longest first, so a key that contains
    /// another is masked whole).
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(secrets: I) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every known secret, `extra` (a caller's own credential)
    /// and anything shaped like a bearer token or an `sk-` key masked.
    pub fn scrub<'a>(&self, text: &'a str, extra: Option<&str>) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        let extra = extra
            .map(|e| keyauth::parse_bearer(e).unwrap_or(e))
            .filter(|e| e.len() >= MIN_SECRET_LEN);
        for s in self.secrets.iter().map(String::as_str).chain(extra) {
            if out.contains(s) {
                out = Cow::Owned(out.replace(s, MASK));
            }
        }
        match mask_patterns(&out) {
            Some(masked) => Cow::Owned(masked),
            None => out,
        }
    }
}

/// Whether `b` can be part of a token.
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

/// `Bearer <token>` (any case) and `sk-<8 or more token bytes>` masked;
/// `None` when there is nothing to mask.
fn mask_patterns(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    // (start, end) of each token to mask.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let token_end =
        |from: usize| from + bytes[from..].iter().take_while(|b| token_byte(**b)).count();
    for (i, _) in lower.match_indices("bearer") {
        let mut j = i + "bearer".len();
        let spaces = bytes[j..]
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        if spaces == 0 {
            continue;
        }
        j += spaces;
        let end = token_end(j);
        if end > j && !(end - j == MASK.len() && &text[j..end] == MASK) {
            spans.push((j, end));
        }
    }
    for (i, _) in lower.match_indices("sk-") {
        if i > 0 && token_byte(bytes[i - 1]) {
            continue;
        }
        let start = i + 3;
        let end = token_end(start);
        if end - start >= 8 {
            spans.push((start, end));
        }
    }
    if spans.is_empty() {
        return None;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in spans {
        if s < at {
            continue;
        }
        out.push_str(&text[at..s]);
        out.push_str(MASK);
        at = e;
    }
    out.push_str(&text[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_and_token_shapes_are_masked() {
        let r = Redactor::new(["upstream-key-123456", "abc", "x-tenant-secret"]);
        for (text, extra, want) in [
            ("plain failure", None, "plain failure"),
            (
                "Invalid key: upstream-key-123456",
                None,
                "Invalid key: *****",
            ),
            (
                "got Authorization: Bearer sk-live-canary-9",
                None,
                "got Authorization: Bearer *****",
            ),
            (
                "header was bearer\tZZZZ.yy",
                None,
                "header was bearer\t*****",
            ),
            (
                "key sk-proj-abcdefgh1234 refused",
                None,
                "key sk-***** refused",
            ),
            ("task-sk-abc is fine", None, "task-sk-abc is fine"),
            ("abc stays (too short)", None, "abc stays (too short)"),
            (
                "echo: client-token-42",
                Some("Bearer client-token-42"),
                "echo: *****",
            ),
            ("tenant x-tenant-secret", None, "tenant *****"),
            ("Bearer", None, "Bearer"),
        ] {
            assert_eq!(r.scrub(text, extra), want, "{text}");
        }
    }

    #[test]
    fn clean_text_is_not_copied() {
        let r = Redactor::new(["secret-value"]);
        assert!(matches!(r.scrub("nothing here", None), Cow::Borrowed(_)));
    }
}
