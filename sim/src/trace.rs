//! The trace: every event the world processes, hashed into one number per run (and
//! written out line by line with `--trace FILE`). The same seed must give the same
//! hash, always; a different hash means something ambient leaked into the run.
//!
//! The hash is written here because it must never change between Rust versions or
//! platforms (std's `DefaultHasher` promises neither). It mixes eight bytes at a time,
//! FxHash's way (rotate, xor, multiply by a fixed odd constant), since the trace hashes
//! every message's bytes and a byte-at-a-time hash showed up in profiles.

use std::hash::Hasher;

const SEED: u64 = 0xcbf2_9ce4_8422_2325;
const K: u64 = 0x517c_c1b7_2722_0a95;

#[derive(Clone, Debug)]
pub struct TraceHasher(u64);

impl Default for TraceHasher {
    fn default() -> TraceHasher {
        TraceHasher(SEED)
    }
}

impl TraceHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for TraceHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.mix(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(bytes: &[u8]) -> u64 {
        let mut h = TraceHasher::default();
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn the_hash_of_known_inputs_never_changes() {
        // Pinned values: if these change, every recorded trace hash changes with them.
        assert_eq!(hash(b""), SEED);
        let pinned = [hash(b"a"), hash(b"foobar"), hash(b"eddy trace hash!")];
        assert_eq!(pinned, PINNED);
    }

    #[test]
    fn nearby_inputs_hash_apart() {
        assert_ne!(hash(b"ab"), hash(b"ab\0"));
        assert_ne!(hash(b"abcdefgh"), hash(b"abcdefgi"));
        assert_ne!(hash(&[0u8; 16]), hash(&[0u8; 8]));
    }

    const PINNED: [u64; 3] = [
        4587672830311604664,
        13843293088977690315,
        15494671346533075590,
    ];
}
