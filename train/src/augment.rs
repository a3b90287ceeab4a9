//! Training-time augmentation of stored uint8 `[H, W, 3]` images: a small rotation
//! about the centre, a shift and a brightness change, drawn per (seed, epoch, row)
//! so that a resumed run sees exactly the images an uninterrupted one saw.
//!
//! No flips: a mirrored chest X-ray puts the heart on the wrong side.

use cxr_config::Augment;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One image's transform. The identity leaves every pixel unchanged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentParams {
    /// Rotation about the image centre, counter-clockwise on screen.
    pub degrees: f64,
    /// Shift in pixels (positive: content moves right / down).
    pub dx: f64,
    pub dy: f64,
    /// Multiplicative brightness factor.
    pub brightness: f64,
}

impl AugmentParams {
    pub const IDENTITY: AugmentParams = AugmentParams { degrees: 0.0, dx: 0.0, dy: 0.0, brightness: 1.0 };

    /// Draws row `row`'s transform for `epoch` (0-based), uniformly within the configured ranges.
    /// The stream depends only on (seed, epoch, row): not on batch size or thread count.
    pub fn draw(config: &Augment, seed: u64, epoch: usize, row: usize, [h, w]: [usize; 2]) -> AugmentParams {
        let mut rng = ChaCha8Rng::seed_from_u64(crate::seed::mix(seed ^ 0xA06_u64, epoch as u64 + 1, row as u64 + 1));
        let mut symmetric = |limit: f64| if limit > 0.0 { rng.random_range(-limit..=limit) } else { 0.0 };
        let degrees = symmetric(config.rotate_degrees);
        let dx = symmetric(config.shift_fraction) * w as f64;
        let dy = symmetric(config.shift_fraction) * h as f64;
        let brightness = 1.0 + symmetric(config.brightness);
        AugmentParams { degrees, dx, dy, brightness }
    }
}

/// Writes the transformed `src` (`[h, w, 3]`) into `dst`, sampling bilinearly.
/// Pixels that come from outside the image repeat the nearest edge (Keras'
/// `fill_mode="nearest"`), so no black corners teach the head a shortcut.
pub fn apply(src: &[u8], [h, w]: [usize; 2], p: &AugmentParams, dst: &mut [u8]) {
    assert_eq!(src.len(), h * w * 3, "source is not [h, w, 3]");
    assert_eq!(dst.len(), src.len(), "destination size differs from the source");
    let (sin, cos) = p.degrees.to_radians().sin_cos();
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let max_x = (w - 1) as f64;
    let max_y = (h - 1) as f64;
    for y in 0..h {
        for x in 0..w {
            // Inverse map of the output pixel's centre: undo the shift, then the rotation.
            let ox = x as f64 + 0.5 - cx - p.dx;
            let oy = y as f64 + 0.5 - cy - p.dy;
            // Screen coordinates have y down, so a counter-clockwise rotation on screen is
            // a clockwise one in these axes; its inverse is the rotation by +degrees.
            let sx = (cos * ox - sin * oy + cx - 0.5).clamp(0.0, max_x);
            let sy = (sin * ox + cos * oy + cy - 0.5).clamp(0.0, max_y);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            let out = &mut dst[(y * w + x) * 3..][..3];
            for (c, o) in out.iter_mut().enumerate() {
                let at = |yy: usize, xx: usize| src[(yy * w + xx) * 3 + c] as f64;
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                let v = (top * (1.0 - fy) + bottom * fy) * p.brightness;
                *o = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn gradient(h: usize, w: usize) -> Vec<u8> {
        (0..h * w * 3).map(|i| ((i / 3 % w) * 7 + (i / 3 / w) * 13 + i % 3) as u8).collect()
    }

    fn transformed(src: &[u8], hw: [usize; 2], p: AugmentParams) -> Vec<u8> {
        let mut dst = vec![0; src.len()];
        apply(src, hw, &p, &mut dst);
        dst
    }

    #[test]
    fn identity_leaves_every_pixel_unchanged() {
        let src = gradient(9, 11);
        assert_eq!(transformed(&src, [9, 11], AugmentParams::IDENTITY), src);
    }

    #[test]
    fn a_whole_pixel_shift_moves_content_and_repeats_the_edge() {
        let (h, w) = (6, 8);
        let src = gradient(h, w);
        let out = transformed(&src, [h, w], AugmentParams { dx: 2.0, dy: -1.0, ..AugmentParams::IDENTITY });
        for y in 0..h {
            for x in 0..w {
                let sx = (x as i64 - 2).clamp(0, w as i64 - 1) as usize;
                let sy = (y as i64 + 1).clamp(0, h as i64 - 1) as usize;
                assert_eq!(out[(y * w + x) * 3..][..3], src[(sy * w + sx) * 3..][..3], "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn a_half_turn_reverses_rows_and_columns() {
        let (h, w) = (5, 7);
        let src = gradient(h, w);
        let out = transformed(&src, [h, w], AugmentParams { degrees: 180.0, ..AugmentParams::IDENTITY });
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (w - 1 - x, h - 1 - y);
                assert_eq!(out[(y * w + x) * 3..][..3], src[(sy * w + sx) * 3..][..3], "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn a_quarter_turn_is_counter_clockwise_on_screen() {
        // A bright pixel right of centre ends up above the centre.
        let n = 7;
        let mut src = vec![0u8; n * n * 3];
        src[(3 * n + 5) * 3..][..3].copy_from_slice(&[200, 200, 200]);
        let out = transformed(&src, [n, n], AugmentParams { degrees: 90.0, ..AugmentParams::IDENTITY });
        assert_eq!(out[(n + 3) * 3], 200, "expected the pixel at (3, 1)");
        assert_eq!(out.iter().filter(|&&v| v > 0).count(), 3);
    }

    #[test]
    fn brightness_scales_and_saturates() {
        let src = vec![100u8, 200, 250];
        let out = transformed(&src, [1, 1], AugmentParams { brightness: 1.1, ..AugmentParams::IDENTITY });
        assert_eq!(out, vec![110, 220, 255]);
    }

    #[test]
    fn draws_are_reproducible_within_range_and_differ_by_row_and_epoch() {
        let config = Augment { enabled: true, rotate_degrees: 5.0, shift_fraction: 0.1, brightness: 0.2 };
        let a = AugmentParams::draw(&config, 7, 3, 11, [50, 60]);
        assert_eq!(a, AugmentParams::draw(&config, 7, 3, 11, [50, 60]));
        assert_ne!(a, AugmentParams::draw(&config, 7, 3, 12, [50, 60]));
        assert_ne!(a, AugmentParams::draw(&config, 7, 4, 11, [50, 60]));
        assert_ne!(a, AugmentParams::draw(&config, 8, 3, 11, [50, 60]));
        for row in 0..200 {
            let p = AugmentParams::draw(&config, 1, 0, row, [50, 60]);
            assert!(p.degrees.abs() <= 5.0 && p.dx.abs() <= 6.0 && p.dy.abs() <= 5.0);
            assert!((0.8..=1.2).contains(&p.brightness));
        }
        let off = Augment { enabled: true, rotate_degrees: 0.0, shift_fraction: 0.0, brightness: 0.0 };
        assert_eq!(AugmentParams::draw(&off, 1, 0, 0, [50, 60]), AugmentParams::IDENTITY);
    }

    proptest! {
        #[test]
        fn a_constant_image_stays_constant_under_any_rotation_and_shift(
            value in 0u8..=255, degrees in -45.0f64..45.0, dx in -10.0f64..10.0, dy in -10.0f64..10.0,
            h in 1usize..12, w in 1usize..12,
        ) {
            let src = vec![value; h * w * 3];
            let out = transformed(&src, [h, w], AugmentParams { degrees, dx, dy, brightness: 1.0 });
            prop_assert!(out.iter().all(|&v| v == value));
        }
    }
}
