//! Seeded streams: every random draw of training (dropout masks, shuffles, augmentation)
//! comes from a ChaCha8 seeded by (experiment seed, epoch, step or row), so a resumed run
//! replays exactly what an uninterrupted one does.

/// One 64-bit seed per (seed, a, b): the SplitMix64 finaliser over the combined words,
/// so that neighbouring epochs and steps get unrelated streams.
pub(crate) fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
