//! The gateway's own token estimate, for when an upstream reports no usage:
//! one definition for every crate that counts (SageMaker streams, Bedrock
//! streams and embeddings, interrupted streams).

/// A rough token count for text when the upstream reports none: a token per
/// four ASCII characters, one per other character (CJK and the like).
pub fn estimate_tokens(text: &str) -> u64 {
    let mut c = TokenCounter::default();
    c.add(text);
    c.tokens()
}

/// [`estimate_tokens`] over text that arrives in pieces (a stream): the
/// same count as for the pieces joined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounter {
    ascii: u64,
    other: u64,
}

impl TokenCounter {
    /// Counts a piece.
    pub fn add(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_ascii() {
                self.ascii += 1;
            } else {
                self.other += 1;
            }
        }
    }

    /// The estimate so far: four ASCII characters a token, one token for
    /// any other character.
    pub fn tokens(&self) -> u64 {
        self.ascii.div_ceil(4) + self.other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_count_as_the_whole() {
        let text = "Hello, 世界! How are you?";
        let mut c = TokenCounter::default();
        for piece in ["Hello, 世", "界! How", " are you?"] {
            c.add(piece);
        }
        assert_eq!(c.tokens(), estimate_tokens(text));
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("世界"), 2);
    }
}
