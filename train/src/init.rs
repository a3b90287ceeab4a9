//! Seeded parameter initialisation (the same on every machine: ChaCha8 + Box-Muller).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A standard normal sample.
pub fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Keras' default Dense kernel init: uniform in +-sqrt(6 / (fan_in + fan_out)).
pub fn glorot_uniform(rng: &mut ChaCha8Rng, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    (0..fan_in * fan_out).map(|_| rng.random_range(-limit..limit)).collect()
}
