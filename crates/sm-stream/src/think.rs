//! Splitting `<think>…</think>` reasoning out of generated text.
//!
//! DeepSeek-R1 style models write their reasoning inline, between `<think>` and
//! `</think>`, before the answer. Some chat templates put the opening tag into
//! the prompt, so the output starts inside the reasoning and only the closing
//! tag appears. Tags may be cut across records (`"</th"`, `"ink>"`), so the
//! splitter holds back a suffix that could still become a tag.
//!
//! The opening tag is recognised only before any other text; after the
//! reasoning ends, text passes through untouched (a literal `<think>` in an
//! answer stays in the answer).

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Which part of the output a piece of text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The answer (`delta.content`).
    Content,
    /// The reasoning (`delta.reasoning_content`).
    Reasoning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace seen yet: an opening tag may still come.
    Start,
    Reasoning,
    Content,
}

/// A per-choice reasoning splitter.
#[derive(Debug, Clone)]
pub struct ThinkSplitter {
    state: State,
    held: String,
    /// Trim leading newlines of the next piece (after a tag).
    trim: bool,
}

impl ThinkSplitter {
    /// A splitter; with `start_in_reasoning` the output is taken to begin
    /// inside `<think>` (the template already opened it).
    pub fn new(start_in_reasoning: bool) -> Self {
        Self {
            state: if start_in_reasoning {
                State::Reasoning
            } else {
                State::Start
            },
            held: String::new(),
            trim: start_in_reasoning,
        }
    }

    /// Whether the splitter is inside the reasoning.
    pub fn in_reasoning(&self) -> bool {
        self.state == State::Reasoning
    }

    /// Feeds text; `emit` receives the pieces in order.
    pub fn push(&mut self, text: &str, emit: &mut impl FnMut(Part, &str)) {
        if self.state == State::Content && self.held.is_empty() && !self.trim {
            if !text.is_empty() {
                emit(Part::Content, text);
            }
            return;
        }
        let mut s = std::mem::take(&mut self.held);
        s.push_str(text);
        let mut rest: &str = &s;
        loop {
            match self.state {
                State::Start => {
                    let t = rest.trim_start();
                    if let Some(after) = t.strip_prefix(OPEN) {
                        rest = after;
                        self.state = State::Reasoning;
                        self.trim = true;
                        continue;
                    }
                    if OPEN.starts_with(t) {
                        // Whitespace and a possible partial tag: wait.
                        self.held.push_str(rest);
                        return;
                    }
                    self.state = State::Content;
                }
                State::Reasoning => {
                    if self.trim {
                        rest = rest.trim_start_matches(['\n', '\r']);
                        if rest.is_empty() {
                            return;
                        }
                        self.trim = false;
                    }
                    if let Some(i) = rest.find(CLOSE) {
                        let (r, after) = rest.split_at(i);
                        if !r.is_empty() {
                            emit(Part::Reasoning, r);
                        }
                        rest = &after[CLOSE.len()..];
                        self.state = State::Content;
                        self.trim = true;
                        continue;
                    }
                    let keep = partial_suffix(rest, CLOSE);
                    let (r, held) = rest.split_at(rest.len() - keep);
                    if !r.is_empty() {
                        emit(Part::Reasoning, r);
                    }
                    self.held.push_str(held);
                    return;
                }
                State::Content => {
                    if self.trim {
                        rest = rest.trim_start_matches(['\n', '\r']);
                        if rest.is_empty() {
                            return;
                        }
                        self.trim = false;
                    }
                    if !rest.is_empty() {
                        emit(Part::Content, rest);
                    }
                    return;
                }
            }
        }
    }

    /// End of the choice: releases any held-back text.
    pub fn finish(&mut self, emit: &mut impl FnMut(Part, &str)) {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return;
        }
        match self.state {
            State::Reasoning => emit(Part::Reasoning, &held),
            State::Start | State::Content => emit(Part::Content, &held),
        }
    }
}

/// Length of the longest proper suffix of `s` that is a prefix of `tag`.
fn partial_suffix(s: &str, tag: &str) -> usize {
    let max = (tag.len() - 1).min(s.len());
    (1..=max)
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && tag.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: bool, pieces: &[&str]) -> (String, String) {
        let mut s = ThinkSplitter::new(start);
        let (mut c, mut r) = (String::new(), String::new());
        let mut emit = |p: Part, t: &str| match p {
            Part::Content => c.push_str(t),
            Part::Reasoning => r.push_str(t),
        };
        for p in pieces {
            s.push(p, &mut emit);
        }
        s.finish(&mut emit);
        (r, c)
    }

    #[test]
    fn splits_tags_cut_anywhere() {
        let text = "<think>\nI should greet.\n</think>\n\nHello!";
        let want = ("I should greet.\n".to_owned(), "Hello!".to_owned());
        for i in 0..=text.len() {
            if !text.is_char_boundary(i) {
                continue;
            }
            for j in i..=text.len() {
                if !text.is_char_boundary(j) {
                    continue;
                }
                assert_eq!(
                    run(false, &[&text[..i], &text[i..j], &text[j..]]),
                    want,
                    "{i} {j}"
                );
            }
        }
    }

    #[test]
    fn starts_in_reasoning_without_open_tag() {
        assert_eq!(
            run(true, &["Alright, hi", ".\n</th", "ink>\n\nHello 你好"]),
            ("Alright, hi.\n".to_owned(), "Hello 你好".to_owned())
        );
    }

    #[test]
    fn no_tags_is_all_content() {
        assert_eq!(
            run(false, &["Hel", "lo"]),
            (String::new(), "Hello".to_owned())
        );
        assert_eq!(run(false, &["<thi"]), (String::new(), "<thi".to_owned()));
        assert_eq!(
            run(false, &["a <think> b"]),
            (String::new(), "a <think> b".to_owned())
        );
    }

    #[test]
    fn unterminated_reasoning_is_flushed() {
        assert_eq!(
            run(false, &["<think>abc</thi"]),
            ("abc</thi".to_owned(), String::new())
        );
    }
}
