//! The default partitioner: a keyed record goes to `toPositive(murmur2(key)) %
//! partitions`, exactly as Kafka's Java client computes it (`Utils.murmur2`,
//! `BuiltInPartitioner.partitionForKey`), so a key lands on the same partition whichever
//! client wrote it. Records without a key are spread by the producer (sticky per batch).

/// Kafka's murmur2: MurmurHash2, 32-bit, seed 0x9747b28c, with Java's sign-extending
/// tail handling reproduced (`data[i] & 0xff` — the bytes are taken unsigned).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The switch with fall-through in Java: the highest remaining byte first.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (to_positive(murmur2(key)) as usize % partitions) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own `UtilsTest.testMurmur2` vectors, plus values from kafka-python's
    /// `murmur2` (which matches Java) for the short tails.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
            (b"", 275_646_681),
            (b"a", 2_731_586_172u32 as i32),
            (b"ab", 316_155_434),
            (b"key", 3_215_029_929u32 as i32),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key),
                *want,
                "murmur2({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn keys_land_where_the_java_client_puts_them() {
        // toPositive(murmur2("key")) = 1067546281.
        assert_eq!(partition_for_key(b"key", 6), 1_067_546_281 % 6);
        assert_eq!(to_positive(-973_932_308), 1_173_551_340);
    }
}
