//! Test inputs shared by the kernels' unit tests.

/// `len` values in [-1, 1) from a seed (a multiplicative hash of the index).
pub(crate) fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0
                - 1.0
        })
        .collect()
}
