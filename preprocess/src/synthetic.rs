//! The embedded default dataset: seeded synthetic chest-X-ray-like images.
//!
//! Each image has a torso, two lung fields, a mediastinum, ribs, a diaphragm and
//! the clavicles, with varied size, exposure, rotation, position and noise.
//! PNEUMONIA adds patchy consolidation and haze to part of one or both lungs, at
//! varied density, so some cases are obvious and some subtle; NORMAL images get
//! vessel markings and small benign opacities so that "any bright spot" is not
//! a shortcut. Written as JPEG files in the `<split>/<CLASS>/` folder layout.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use cxr_config::{Data, Synthetic};

/// File recording what was generated; a matching one means the dataset is ready.
const MARKER: &str = ".synthetic.json";
/// Where the generator put each pneumonia image's consolidation: one row per patch, `path`
/// (below `data.root`), centre `x`, `y` and `radius` in the image's pixels (each patch is
/// a Gaussian bump of that standard deviation). The ground truth that heatmaps are checked
/// against; a dotfile, so no adapter reads it as an image.
pub const REGIONS: &str = ".synthetic-regions.csv";

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

struct Blob {
    x: f32,
    y: f32,
    radius: f32,
    amplitude: f32,
}

/// One patient's drawn anatomy: position, size, rotation and exposure of everything in
/// the image. The fields are drawn from the seed in declaration order.
struct Anatomy {
    width: u32,
    height: u32,
    sin_a: f32,
    cos_a: f32,
    cx: f32,
    cy: f32,
    torso_w: f32,
    torso_h: f32,
    lung_w: f32,
    lung_h: f32,
    lung_dx: f32,
    lung_dy: f32,
    rib_freq: f32,
    rib_phase: f32,
    heart_shift: f32,
    gain: f32,
    offset: f32,
    noise: f32,
}

impl Anatomy {
    fn draw(rng: &mut ChaCha8Rng, size: u32) -> Anatomy {
        let scale = rng.random_range(0.8..1.2f32);
        let height = (size as f32 * scale) as u32;
        let width = (height as f32 * rng.random_range(1.0..1.3f32)) as u32;
        let (w, h) = (width as f32, height as f32);
        let (sin_a, cos_a) = rng.random_range(-0.07..0.07f32).sin_cos();
        let cx = w * (0.5 + rng.random_range(-0.04..0.04f32));
        let cy = h * (0.52 + rng.random_range(-0.04..0.04f32));
        let torso_w = w * rng.random_range(0.36..0.44f32);
        let torso_h = h * rng.random_range(0.48..0.56f32);
        Anatomy {
            width,
            height,
            sin_a,
            cos_a,
            cx,
            cy,
            torso_w,
            torso_h,
            lung_w: torso_w * rng.random_range(0.36..0.42f32),
            lung_h: torso_h * rng.random_range(0.66..0.76f32),
            lung_dx: torso_w * rng.random_range(0.44..0.5f32),
            lung_dy: -torso_h * 0.08,
            rib_freq: rng.random_range(15.0..19.0f32),
            rib_phase: rng.random_range(0.0..std::f32::consts::TAU),
            heart_shift: torso_w * rng.random_range(0.05..0.12f32),
            gain: rng.random_range(0.8..1.2f32),
            offset: rng.random_range(-15.0..15.0f32),
            noise: rng.random_range(3.0..9.0f32),
        }
    }

    /// The base image before opacities: torso, lungs with ribs and diaphragm,
    /// mediastinum, spine and clavicles, evaluated per pixel in the rotated frame.
    fn base(&self) -> Vec<f32> {
        let mut img = vec![0f32; (self.width * self.height) as usize];
        for py in 0..self.height {
            for px in 0..self.width {
                img[(py * self.width + px) as usize] = self.value_at(px as f32, py as f32);
            }
        }
        img
    }

    fn value_at(&self, px: f32, py: f32) -> f32 {
        let (w, h) = (self.width as f32, self.height as f32);
        let (torso_w, torso_h) = (self.torso_w, self.torso_h);
        let (dx, dy) = (px - self.cx, py - self.cy);
        let x = self.cos_a * dx + self.sin_a * dy;
        let y = -self.sin_a * dx + self.cos_a * dy;
        let (nx, ny) = (x / torso_w, y / torso_h);
        let torso = 1.0 - smoothstep(0.9, 1.05, (nx * nx + ny * ny * 0.6).sqrt());
        let mut v = 25.0 + 95.0 * torso;
        let mut lung_total = 0.0;
        for side in [-1.0f32, 1.0] {
            let lx = (x - side * self.lung_dx) / self.lung_w;
            let ly = (y - self.lung_dy) / self.lung_h;
            let r = (lx * lx + ly * ly).sqrt();
            let lung = 1.0 - smoothstep(0.85, 1.0, r);
            // Diaphragm: the lower edge of each lung is a bright dome.
            let dome = smoothstep(0.55, 0.9, ly + 0.25 * lx * lx);
            let lung = lung * (1.0 - dome);
            lung_total += lung;
            // Ribs: arcs across the lung fields.
            let arc = ((ly + 0.25 * lx * lx) * self.rib_freq + self.rib_phase).sin();
            v += lung * (-62.0 + 16.0 * smoothstep(0.6, 0.95, arc));
        }
        // Mediastinum and heart, offset to the patient's left.
        let mx = (x + self.heart_shift) / (torso_w * 0.3);
        let my = (y - torso_h * 0.15) / (torso_h * 0.55);
        v += 55.0 * (1.0 - smoothstep(0.7, 1.0, (mx * mx + my * my).sqrt())) * (1.0 - lung_total * 0.5);
        // Spine.
        v += 30.0 * (1.0 - smoothstep(0.04, 0.07, (x / w).abs())) * torso;
        // Clavicles.
        let clav = (y + torso_h * 0.78 - 0.35 * x.abs() * torso_h / torso_w).abs() / (h * 0.012);
        v + 35.0 * (1.0 - smoothstep(0.6, 1.0, clav)) * (1.0 - smoothstep(0.8, 1.0, x.abs() / torso_w))
    }

    /// A random point inside one lung (`side` -1 or 1), in image coordinates.
    fn lung_point(&self, rng: &mut ChaCha8Rng, side: f32) -> (f32, f32) {
        let a = rng.random_range(0.0..std::f32::consts::TAU);
        let r = rng.random_range(0.0..0.8f32).sqrt();
        let (x, y) =
            (side * self.lung_dx + r * a.cos() * self.lung_w * 0.8, self.lung_dy + r * a.sin() * self.lung_h * 0.7);
        (self.cx + self.cos_a * x - self.sin_a * y, self.cy + self.sin_a * x + self.cos_a * y)
    }

    /// Vessel markings and small benign opacities, in every image.
    fn markings(&self, rng: &mut ChaCha8Rng) -> Vec<Blob> {
        (0..rng.random_range(6..14))
            .map(|_| {
                let side = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
                let (x, y) = self.lung_point(rng, side);
                Blob {
                    x,
                    y,
                    radius: self.lung_w * rng.random_range(0.03..0.08f32),
                    amplitude: rng.random_range(8.0..22.0f32),
                }
            })
            .collect()
    }

    /// Consolidation: a cluster of overlapping patches in one lung, sometimes both, and a
    /// diffuse haze over each affected lung.
    fn consolidation(&self, rng: &mut ChaCha8Rng) -> Vec<Blob> {
        let severity = rng.random_range(0.35..1.0f32);
        let sides: &[f32] = if rng.random_bool(0.3) {
            &[-1.0, 1.0]
        } else if rng.random_bool(0.5) {
            &[-1.0]
        } else {
            &[1.0]
        };
        let mut blobs = Vec::new();
        for &side in sides {
            let (fx, fy) = self.lung_point(rng, side);
            for _ in 0..rng.random_range(4..10) {
                let jitter = self.lung_w * 0.35;
                blobs.push(Blob {
                    x: fx + rng.random_range(-jitter..jitter),
                    y: fy + rng.random_range(-jitter..jitter),
                    radius: self.lung_w * rng.random_range(0.12..0.3f32),
                    amplitude: severity * rng.random_range(14.0..30.0f32),
                });
            }
            let (hx, hy) = self.lung_point(rng, side);
            blobs.push(Blob {
                x: hx,
                y: hy,
                radius: self.lung_w * 0.7,
                amplitude: severity * rng.random_range(6.0..14.0f32),
            });
        }
        blobs
    }

    /// Adds each blob as a Gaussian bump, within 2.5 radii of its centre.
    fn add(&self, img: &mut [f32], blobs: &[Blob]) {
        for b in blobs {
            let reach = b.radius * 2.5;
            let (x0, x1) = ((b.x - reach).max(0.0) as u32, ((b.x + reach) as u32).min(self.width));
            let (y0, y1) = ((b.y - reach).max(0.0) as u32, ((b.y + reach) as u32).min(self.height));
            let inv = 1.0 / (2.0 * b.radius * b.radius);
            for py in y0..y1 {
                for px in x0..x1 {
                    let (dx, dy) = (px as f32 - b.x, py as f32 - b.y);
                    img[(py * self.width + px) as usize] += b.amplitude * (-(dx * dx + dy * dy) * inv).exp();
                }
            }
        }
    }

    /// Exposure (gain, offset) and seeded noise, to uint8.
    fn expose(&self, img: &[f32], mut state: u64) -> Vec<u8> {
        img.iter()
            .map(|v| {
                // xorshift noise: cheap and seeded; the sum of two uniforms is roughly bell-shaped.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state & 0xffff) as f32 / 65535.0 + ((state >> 16) & 0xffff) as f32 / 65535.0 - 1.0;
                (v * self.gain + self.offset + u * self.noise).clamp(0.0, 255.0) as u8
            })
            .collect()
    }
}

/// One rendered image: grey, row-major, and its consolidation patches `(x, y, radius)`.
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    pub patches: Vec<(f32, f32, f32)>,
}

/// Renders one image for the given class (0 = normal, 1 = pneumonia).
pub fn render(seed: u64, pneumonia: bool, size: u32) -> Rendered {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let anatomy = Anatomy::draw(&mut rng, size);
    let mut img = anatomy.base();
    let mut blobs = anatomy.markings(&mut rng);
    let mut patches = Vec::new();
    if pneumonia {
        let consolidation = anatomy.consolidation(&mut rng);
        // The haze (the widest blob, one per affected lung) is not a patch.
        let haze = anatomy.lung_w * 0.7;
        patches = consolidation.iter().filter(|b| b.radius != haze).map(|b| (b.x, b.y, b.radius)).collect();
        blobs.extend(consolidation);
    }
    anatomy.add(&mut img, &blobs);
    let pixels = anatomy.expose(&img, rng.random::<u64>() | 1);
    Rendered { width: anatomy.width, height: anatomy.height, pixels, patches }
}

/// What the marker records: regenerate when any of it changes.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Marker {
    seed: u64,
    classes: Vec<String>,
    settings: Synthetic,
    generator_version: u32,
}

/// 3: the same pixels as 2, and [`REGIONS`].
const GENERATOR_VERSION: u32 = 3;

/// Generates the dataset into `data.root`, drawn from `seed` (`experiment.seed`), unless a
/// matching one is already there.
///
/// Writes into a temporary sibling folder and renames it, so an interrupted run
/// never leaves a half-generated dataset that looks finished.
pub fn ensure(data: &Data, seed: u64, threads: usize) -> anyhow::Result<PathBuf> {
    use anyhow::Context;

    let root = data.root.clone();
    let marker = Marker {
        seed,
        classes: data.classes.clone(),
        settings: data.synthetic.clone(),
        generator_version: GENERATOR_VERSION,
    };
    let marker_path = root.join(MARKER);
    if root.exists() {
        let existing = std::fs::read_to_string(&marker_path).ok();
        match existing.and_then(|t| serde_json::from_str::<Marker>(&t).ok()) {
            Some(m) if m == marker => return Ok(root),
            Some(_) => {
                tracing::info!(root = %root.display(), "synthetic dataset settings changed; regenerating");
                std::fs::remove_dir_all(&root).with_context(|| format!("cannot remove {}", root.display()))?;
            }
            None => anyhow::bail!(
                "data.root {} exists but is not a synthetic dataset made by this tool (no {MARKER}); \
                 point data.root elsewhere or use data.adapter: folders",
                root.display()
            ),
        }
    }
    let parent = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let temp = parent.join(format!(
        ".{}.tmp-{}",
        root.file_name().and_then(|n| n.to_str()).unwrap_or("synthetic"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&temp);
    let s = &data.synthetic;
    let mut jobs = Vec::new();
    for (split, count) in [("train", s.train_per_class), ("val", s.val_per_class), ("test", s.test_per_class)] {
        for (label, class) in data.classes.iter().enumerate() {
            let dir = temp.join(split).join(class);
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for i in 0..count {
                jobs.push((dir.join(format!("p{i:05}_{}.jpeg", class.to_lowercase())), split, label, i));
            }
        }
    }
    tracing::info!(images = jobs.len(), root = %root.display(), "generating the synthetic dataset");
    let csv = render_all(data, seed, &jobs, &temp, threads)?;
    std::fs::write(temp.join(REGIONS), csv)
        .with_context(|| format!("cannot write {}", temp.join(REGIONS).display()))?;
    std::fs::write(temp.join(MARKER), serde_json::to_string_pretty(&marker)?)
        .with_context(|| format!("cannot write {}", temp.join(MARKER).display()))?;
    std::fs::rename(&temp, &root).with_context(|| format!("cannot rename {} to {}", temp.display(), root.display()))?;
    Ok(root)
}

/// Renders and writes every image of `jobs` (path, split, label, index within its class)
/// on `threads` threads; returns the [`REGIONS`] file's text, paths below `temp`.
fn render_all(
    data: &Data,
    seed: u64,
    jobs: &[(PathBuf, &str, usize, usize)],
    temp: &Path,
    threads: usize,
) -> anyhow::Result<String> {
    use anyhow::Context;
    use rayon::prelude::*;

    let s = &data.synthetic;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let positive = data.positive_index();
    let regions: Vec<Vec<String>> = pool.install(|| {
        jobs.par_iter()
            .map(|(path, split, label, i)| -> anyhow::Result<Vec<String>> {
                let split_id = match *split {
                    "train" => 0u64,
                    "val" => 1,
                    _ => 2,
                };
                let seed = seed ^ (split_id << 40) ^ ((*label as u64) << 32) ^ (*i as u64) ^ 0x5eed;
                let r = render(seed, *label == positive, s.size);
                image::save_buffer_with_format(
                    path,
                    &r.pixels,
                    r.width,
                    r.height,
                    image::ColorType::L8,
                    image::ImageFormat::Jpeg,
                )
                .with_context(|| format!("cannot write {}", path.display()))?;
                let relative = path.strip_prefix(temp).unwrap_or(path).to_string_lossy().replace('\\', "/");
                Ok(r.patches.iter().map(|(x, y, radius)| format!("{relative},{x:.2},{y:.2},{radius:.2}\n")).collect())
            })
            .collect::<anyhow::Result<_>>()
    })?;
    let mut csv = String::from("path,x,y,radius\n");
    csv.extend(regions.into_iter().flatten());
    Ok(csv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The embedded dataset is part of every `make demo` figure: the same seed must draw the
    /// same pixels in every version, so a refactor of `render` cannot change it unnoticed.
    #[test]
    fn render_draws_the_same_pixels_for_the_same_seed() {
        let mut hasher = Sha256::new();
        for seed in 0..6u64 {
            let r = render(seed * 7919, seed % 2 == 1, 96);
            hasher.update(r.width.to_le_bytes());
            hasher.update(r.height.to_le_bytes());
            hasher.update(&r.pixels);
            assert_eq!(r.patches.is_empty(), seed % 2 == 0, "patches exactly where there is pneumonia");
        }
        assert_eq!(hex::encode(hasher.finalize()), "f617cfec8db90f7e21ddf04d8b08b863928e460028095f0580f39b32440f8446");
    }
}
