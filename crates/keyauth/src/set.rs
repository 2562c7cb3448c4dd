//! A fixed key set, checked in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::KeyId;

struct Entry {
    digest: [u8; 32],
    id: KeyId,
}

/// A fixed set of keys, held as SHA-256 digests and checked in constant
/// time. [`KeyAuth`](crate::KeyAuth) keeps one per fetch; a caller with keys
/// from a config file builds one directly and swaps it whole when the file
/// changes.
#[derive(Default)]
pub struct KeySet {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.entries.len())
    }
}

impl KeySet {
    /// The set of `keys`.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(keys: I) -> Self {
        Self {
            entries: keys
                .into_iter()
                .map(|k| Entry {
                    digest: Sha256::digest(k.as_ref().as_bytes()).into(),
                    id: KeyId::of(k.as_ref()),
                })
                .collect(),
        }
    }

    /// The id of `key` if it is in the set.
    pub fn verify(&self, key: &str) -> Option<KeyId> {
        self.lookup(&Sha256::digest(key.as_bytes()).into())
    }

    /// The id of the key with this SHA-256 digest. Every key is compared,
    /// match or not, so timing says nothing about which key (or how much of
    /// it) matched.
    pub(crate) fn lookup(&self, digest: &[u8; 32]) -> Option<KeyId> {
        let mut found: Option<&Entry> = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(digest)) {
                found = Some(e);
            }
        }
        found.map(|e| e.id.clone())
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_verify_and_others_do_not() {
        let s = KeySet::new(["sk-a", "sk-b"]);
        assert_eq!(s.verify("sk-b"), Some(KeyId::of("sk-b")));
        assert_eq!(s.verify("sk-c"), None);
        assert_eq!(s.verify(""), None);
        assert_eq!(s.len(), 2);
        assert!(KeySet::default().is_empty());
        assert_eq!(format!("{s:?}"), "KeySet(2 keys)");
    }
}
