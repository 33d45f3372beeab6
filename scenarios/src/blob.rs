//! Blob contents and digests.
//!
//! The `io-fanout` scenario downloads blobs whose contents nobody stores: the server makes blob
//! `index` of `size` bytes with [`blob_bytes`] on every request, and the client checks what it
//! received against [`expected_digest`], so a wrong, short or mixed-up body is caught without
//! either side keeping the data.
//!
//! ```
//! use scenarios::blob::{Digest, blob_bytes, expected_digest};
//!
//! let image = blob_bytes(7, 64 * 1024);
//! assert_eq!(Digest::of(&image), expected_digest(7, 64 * 1024));
//! assert_ne!(Digest::of(&image), expected_digest(8, 64 * 1024));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// The generator behind [`blob_bytes`]: splitmix64, seeded by the blob's index.
struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeds the sequence of blob `index` (mixed with a constant, so that small indexes do not
    /// start from small states).
    fn for_blob(index: u64) -> Self {
        SplitMix64(index ^ 0x6a09_e667_f3bc_c908)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `buf` with the next bytes of the sequence, 8 at a time (little-endian words). Only
    /// the last call on a sequence may pass a length that is not a multiple of 8.
    fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let last = self.next_u64().to_le_bytes();
            tail.copy_from_slice(&last[..tail.len()]);
        }
    }
}

/// The contents of blob `index` when it is `size` bytes long: deterministic pseudo-random bytes
/// (splitmix64 seeded by `index`, written 8 bytes at a time), the same in every process and on
/// every run. A shorter blob of the same index is a prefix of a longer one.
///
/// ```
/// use scenarios::blob::blob_bytes;
///
/// let a = blob_bytes(1, 1000);
/// assert_eq!(a.len(), 1000);
/// assert_eq!(a, blob_bytes(1, 1000));
/// assert_ne!(a, blob_bytes(2, 1000));
/// assert_eq!(&blob_bytes(1, 4096)[..1000], &a[..]);
/// assert!(blob_bytes(3, 0).is_empty());
/// ```
pub fn blob_bytes(index: u64, size: usize) -> Vec<u8> {
    let mut bytes = vec![0; size];
    SplitMix64::for_blob(index).fill(&mut bytes);
    bytes
}

/// What a client checks a downloaded blob against: its length and its CRC-32 (IEEE).
///
/// ```
/// use scenarios::blob::Digest;
///
/// let d = Digest::of(b"123456789");
/// assert_eq!(d, Digest { len: 9, checksum: 0xcbf4_3926 });
/// assert_eq!(d.to_string(), "9 bytes, crc32 cbf43926");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Digest {
    /// The length in bytes.
    pub len: u64,
    /// The CRC-32 (IEEE 802.3, as zlib and `crc32fast` compute it) of the bytes.
    pub checksum: u32,
}

impl Digest {
    /// The digest of `bytes` (CRC-32 with `crc32fast`, SIMD where the CPU has it).
    ///
    /// ```
    /// use scenarios::blob::Digest;
    ///
    /// assert_eq!(Digest::of(&[]), Digest { len: 0, checksum: 0 });
    /// assert_ne!(Digest::of(b"a"), Digest::of(b"b"));
    /// ```
    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            len: bytes.len() as u64,
            checksum: crc32fast::hash(bytes),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes, crc32 {:08x}", self.len, self.checksum)
    }
}

/// The digest of [`blob_bytes(index, size)`](blob_bytes), computed in small pieces without
/// making the whole blob.
///
/// ```
/// use scenarios::blob::{Digest, blob_bytes, expected_digest};
///
/// for size in [0, 1, 7, 8, 9, 65_536, 100_003] {
///     assert_eq!(expected_digest(42, size), Digest::of(&blob_bytes(42, size)));
/// }
/// ```
pub fn expected_digest(index: u64, size: usize) -> Digest {
    // A multiple of 8, so that every piece but the last takes whole words (see `fill`).
    const PIECE: usize = 16 * 1024;
    let mut buf = [0u8; PIECE];
    let mut generator = SplitMix64::for_blob(index);
    let mut hasher = crc32fast::Hasher::new();
    let mut left = size;
    while left > 0 {
        let piece = &mut buf[..left.min(PIECE)];
        generator.fill(piece);
        hasher.update(piece);
        left -= piece.len();
    }
    Digest {
        len: size as u64,
        checksum: hasher.finalize(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_are_pinned() {
        // Computed independently (Python's zlib.crc32 over the same splitmix64 words): a change
        // here changes every digest the harness has recorded.
        assert_eq!(blob_bytes(0, 8), 0x1ac0_46dd_a8e8_6e2a_u64.to_le_bytes());
        assert_eq!(
            blob_bytes(0, 3),
            0x1ac0_46dd_a8e8_6e2a_u64.to_le_bytes()[..3]
        );
        assert_eq!(expected_digest(0, 8).checksum, 0xfaec_65f5);
        assert_eq!(
            expected_digest(1, 65_536),
            Digest {
                len: 65_536,
                checksum: 0x547a_31a5
            }
        );
        assert_eq!(expected_digest(123, 100_003).checksum, 0x9d1a_60d7);
    }

    #[test]
    fn the_tail_is_a_prefix_of_the_next_word() {
        let long = blob_bytes(9, 24);
        for size in 0..24 {
            assert_eq!(blob_bytes(9, size), long[..size]);
        }
    }

    #[test]
    fn streamed_digest_matches_across_piece_boundaries() {
        for size in [16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 3 * 16 * 1024 + 5] {
            assert_eq!(expected_digest(5, size), Digest::of(&blob_bytes(5, size)));
        }
    }

    #[test]
    fn blobs_differ_by_index() {
        let digests: std::collections::HashSet<_> =
            (0..1000).map(|i| expected_digest(i, 64)).collect();
        assert_eq!(digests.len(), 1000);
    }

    #[test]
    fn digest_round_trips_through_serde() {
        let d = expected_digest(3, 100);
        let bytes = serde_saphyr::to_string(&d).unwrap();
        let back: Digest = serde_saphyr::from_str(&bytes).unwrap();
        assert_eq!(back, d);
    }
}
