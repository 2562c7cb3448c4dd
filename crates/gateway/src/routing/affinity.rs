//! Cache-affine routing: the requests of one conversation go to the same
//! candidate while it is healthy, so the prompt cache that candidate (a
//! region, an account, a server) holds for the conversation's prefix is
//! read rather than written again elsewhere.
//!
//! A request's affinity is a 64-bit hash of what stays the same across the
//! conversation's turns: a session header the client sends, else (mode
//! `prefix`) the model, tools, system prompt and first user turn, or (mode
//! `key`) the client key. Candidates are ordered by weighted rendezvous
//! hashing within each priority: every candidate gets the score
//! `-ln(u) / weight`, `u` drawn from the hash of (affinity, candidate); the
//! lowest goes first. The same affinity always gives the same order, the
//! weights still share conversations out, and when a candidate leaves
//! (breaker open, disabled) only its conversations move.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use openai_types::chat::{ChatCompletionRequest, ChatMessage};

use crate::backend::Model;
pub(crate) use crate::config::AffinityMode;

/// A hasher fed by `serde_json` (the prefix is hashed as JSON, with no copy
/// of it made).
struct HashWriter<H>(H);

impl<H: Hasher> std::io::Write for HashWriter<H> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A stable 64-bit hasher (SipHash with fixed keys: the same on every
/// replica running this build).
fn hasher() -> std::collections::hash_map::DefaultHasher {
    std::collections::hash_map::DefaultHasher::new()
}

/// The affinity of a chat request under `mode`: the session id when the
/// client sent one, else its prefix or key.
pub(crate) fn of_chat(
    mode: AffinityMode,
    session: Option<&str>,
    key: Option<&str>,
    r: &ChatCompletionRequest,
) -> Option<u64> {
    if mode == AffinityMode::Off {
        return None;
    }
    let mut h = hasher();
    r.model.hash(&mut h);
    if let Some(s) = session {
        ("session", s).hash(&mut h);
        return Some(h.finish());
    }
    match mode {
        AffinityMode::Key => {
            ("key", key?).hash(&mut h);
        }
        _ => {
            let mut w = HashWriter(h);
            let _ = serde_json::to_writer(&mut w, &r.tools);
            // System and developer turns, then everything up to and with
            // the first user turn: what every later turn repeats.
            for m in &r.messages {
                let _ = serde_json::to_writer(&mut w, m);
                if matches!(m, ChatMessage::User(_)) {
                    break;
                }
            }
            h = w.0;
        }
    }
    Some(h.finish())
}

/// A candidate's place for `affinity`: its priority, then its weighted
/// rendezvous score (`-ln(u) / weight` is never negative, so its bits
/// order as the float does).
fn rank(m: &Arc<Model>, affinity: u64) -> (i32, u64) {
    let mut h = hasher();
    affinity.hash(&mut h);
    m.key().hash(&mut h);
    // 53 random bits as a float in (0, 1].
    let u = ((h.finish() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let score = -u.ln() / f64::from(m.weight().max(1));
    (m.priority(), score.to_bits())
}

/// The preferred order for `affinity`: by priority, then within each
/// priority by weighted rendezvous score (each candidate scored once).
pub(crate) fn order(cands: &mut [Arc<Model>], affinity: u64) {
    cands.sort_by_cached_key(|m| rank(m, affinity));
}

/// The candidate `affinity` prefers, healthy or not: the first of
/// [`order`], found in one pass.
pub(crate) fn preferred(cands: &[Arc<Model>], affinity: u64) -> Option<&Arc<Model>> {
    cands.iter().min_by_key(|m| rank(m, affinity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

    fn model(name: &str, weight: u32) -> Arc<Model> {
        let mut c = ModelConfig::for_bedrock(name);
        c.weight = weight;
        Arc::new(Model::configured(c, 0).unwrap())
    }

    fn chat(v: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_conversation_keeps_its_affinity_across_turns() {
        let turn1 = chat(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello"}]}));
        let turn2 = chat(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "more"}]}));
        let other = chat(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "another conversation"}]}));
        let p = AffinityMode::Prefix;
        let a1 = of_chat(p, None, None, &turn1);
        assert!(a1.is_some());
        assert_eq!(a1, of_chat(p, None, None, &turn2));
        assert_ne!(a1, of_chat(p, None, None, &other));
        // A session header wins over the prefix; key mode needs a key.
        assert_eq!(
            of_chat(p, Some("s1"), None, &turn1),
            of_chat(p, Some("s1"), None, &other)
        );
        assert_eq!(of_chat(AffinityMode::Key, None, None, &turn1), None);
        assert_eq!(of_chat(AffinityMode::Off, Some("s1"), None, &turn1), None);
    }

    #[test]
    fn rendezvous_is_stable_weighted_and_moves_only_the_leavers() {
        let cands = vec![model("a", 1), model("b", 1), model("c", 2)];
        let mut firsts = std::collections::HashMap::new();
        let mut moved = 0;
        for k in 0..4000u64 {
            let mut all = cands.clone();
            order(&mut all, k);
            let mut again = cands.clone();
            again.reverse();
            order(&mut again, k);
            assert_eq!(
                all[0].key(),
                again[0].key(),
                "the input order does not matter"
            );
            assert_eq!(
                preferred(&cands, k).map(|m| m.key()),
                Some(all[0].key()),
                "the preferred candidate is the order's first"
            );
            *firsts.entry(all[0].key()).or_insert(0u32) += 1;
            // Without "a": only the conversations that were on "a" move.
            let mut without: Vec<_> = cands[1..].to_vec();
            order(&mut without, k);
            if all[0].key() != cands[0].key() && without[0].key() != all[0].key() {
                moved += 1;
            }
        }
        assert_eq!(moved, 0, "a conversation not on the leaver stays put");
        let share = |i: usize| f64::from(firsts[&cands[i].key()]) / 4000.0;
        // Weights 1:1:2 → 25 %, 25 %, 50 %.
        assert!((share(0) - 0.25).abs() < 0.04, "{}", share(0));
        assert!((share(1) - 0.25).abs() < 0.04, "{}", share(1));
        assert!((share(2) - 0.5).abs() < 0.04, "{}", share(2));
    }
}
