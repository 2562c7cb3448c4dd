//! Ids and the wall clock, for every layer.

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The proleptic Gregorian date `(year, month, day)` of a day counted
/// from 1970-01-01 (Howard Hinnant's `civil_from_days`): SigV4's dates,
/// templates' `strftime_now`, the log line's timestamp.
pub(crate) fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

/// A fresh id: `prefix-` and 16 hex digits. Each thread steps its own
/// generator (splitmix64, seeded at random once a thread): no lock, no
/// hashing, no formatting machinery on a request's path. Ids are unique
/// names, not secrets.
pub fn new_id(prefix: &str) -> String {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            h.finish()
        });
    }
    let x = STATE.with(|s| {
        let v = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(v);
        v
    });
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('-');
    for i in (0..16).rev() {
        id.push(char::from(HEX[((z >> (i * 4)) & 0xf) as usize]));
    }
    id
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod id_tests {
    #[test]
    fn ids_are_prefixed_hex_and_distinct() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| super::new_id("req")).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(5) {
            let hex = id.strip_prefix("req-").unwrap();
            assert_eq!(hex.len(), 16);
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }
}
