//! Topic ids on the wire. The controller numbers topics in creation order (a
//! [`TopicId`], never reused: a topic deleted and created again gets a new one); Kafka's
//! wire and files carry a UUID. Eddy's UUID of topic `n` is `"EDDY"`, four zero bytes
//! and `n`: the same on every broker of a cluster, never Kafka's reserved all-zero id or
//! its metadata topic's id (0, 1).

use eddy_core::controller::TopicId;
use uuid::Uuid;

/// The high 64 bits of every Eddy topic id.
const MARK: u64 = u64::from_be_bytes(*b"EDDY\0\0\0\0");

pub(crate) fn to_uuid(id: TopicId) -> Uuid {
    Uuid::from_u64_pair(MARK, id.0)
}

/// The topic id a UUID names; `None` for one no Eddy topic has (unknown on this cluster).
pub(crate) fn from_uuid(uuid: Uuid) -> Option<TopicId> {
    let (high, low) = uuid.as_u64_pair();
    (high == MARK).then_some(TopicId(low))
}

/// Kafka's text form of a topic id (`partition.metadata`, tools): URL-safe base64 of the
/// 16 bytes, without padding.
pub(crate) fn to_base64(uuid: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The UUID of Kafka's text form; `None` if it is not one.
pub(crate) fn from_base64(text: &str) -> Option<Uuid> {
    let text = text.as_bytes();
    if text.len() != 22 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut bytes = Vec::with_capacity(16);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            bytes.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Uuid::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_round_trip_and_foreign_uuids_name_no_topic() {
        for n in [0, 1, 7, u64::MAX] {
            assert_eq!(from_uuid(to_uuid(TopicId(n))), Some(TopicId(n)));
        }
        assert_ne!(to_uuid(TopicId(0)), Uuid::nil());
        assert_eq!(from_uuid(Uuid::nil()), None);
        assert_eq!(from_uuid(Uuid::from_u64_pair(0, 1)), None);
    }

    #[test]
    fn base64_is_kafkas_text_form() {
        // Kafka's Uuid.toString of (0, 1), its metadata topic's id.
        assert_eq!(
            to_base64(Uuid::from_u64_pair(0, 1)),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert_eq!(to_base64(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        for n in [0, 1, 12345, u64::MAX] {
            let u = to_uuid(TopicId(n));
            assert_eq!(from_base64(&to_base64(u)), Some(u));
        }
        let max = Uuid::from_u128(u128::MAX);
        assert_eq!(to_base64(max), "_____________________w");
        assert_eq!(from_base64("_____________________w"), Some(max));
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAA*",
            "AAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(from_base64(bad), None, "{bad:?}");
        }
    }
}
