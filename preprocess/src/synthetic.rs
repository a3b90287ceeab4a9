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

use cxr_config::{Config, Synthetic};

/// File recording what was generated; a matching one means the dataset is ready.
const MARKER: &str = ".synthetic.json";

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

/// Renders one image (grey, row-major) for the given class (0 = normal, 1 = pneumonia).
pub fn render(seed: u64, pneumonia: bool, size: u32) -> (u32, u32, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = rng.random_range(0.8..1.2f32);
    let height = (size as f32 * scale) as u32;
    let width = (height as f32 * rng.random_range(1.0..1.3f32)) as u32;
    let (w, h) = (width as f32, height as f32);

    let angle = rng.random_range(-0.07..0.07f32);
    let (sin_a, cos_a) = angle.sin_cos();
    let cx = w * (0.5 + rng.random_range(-0.04..0.04f32));
    let cy = h * (0.52 + rng.random_range(-0.04..0.04f32));
    let torso_w = w * rng.random_range(0.36..0.44f32);
    let torso_h = h * rng.random_range(0.48..0.56f32);
    let lung_w = torso_w * rng.random_range(0.36..0.42f32);
    let lung_h = torso_h * rng.random_range(0.66..0.76f32);
    let lung_dx = torso_w * rng.random_range(0.44..0.5f32);
    let lung_dy = -torso_h * 0.08;
    let rib_freq = rng.random_range(15.0..19.0f32);
    let rib_phase = rng.random_range(0.0..std::f32::consts::TAU);
    let heart_shift = torso_w * rng.random_range(0.05..0.12f32);
    let gain = rng.random_range(0.8..1.2f32);
    let offset = rng.random_range(-15.0..15.0f32);
    let noise = rng.random_range(3.0..9.0f32);

    // Base anatomy, evaluated per pixel in the rotated frame.
    let mut img = vec![0f32; (width * height) as usize];
    for py in 0..height {
        for px in 0..width {
            let (dx, dy) = (px as f32 - cx, py as f32 - cy);
            let x = cos_a * dx + sin_a * dy;
            let y = -sin_a * dx + cos_a * dy;
            let (nx, ny) = (x / torso_w, y / torso_h);
            let torso = 1.0 - smoothstep(0.9, 1.05, (nx * nx + ny * ny * 0.6).sqrt());
            let mut v = 25.0 + 95.0 * torso;
            let mut lung_total = 0.0;
            for side in [-1.0f32, 1.0] {
                let lx = (x - side * lung_dx) / lung_w;
                let ly = (y - lung_dy) / lung_h;
                let r = (lx * lx + ly * ly).sqrt();
                let lung = 1.0 - smoothstep(0.85, 1.0, r);
                // Diaphragm: the lower edge of each lung is a bright dome.
                let dome = smoothstep(0.55, 0.9, ly + 0.25 * lx * lx);
                let lung = lung * (1.0 - dome);
                lung_total += lung;
                // Ribs: arcs across the lung fields.
                let arc = ((ly + 0.25 * lx * lx) * rib_freq + rib_phase).sin();
                v += lung * (-62.0 + 16.0 * smoothstep(0.6, 0.95, arc));
            }
            // Mediastinum and heart, offset to the patient's left.
            let mx = (x + heart_shift) / (torso_w * 0.3);
            let my = (y - torso_h * 0.15) / (torso_h * 0.55);
            v += 55.0 * (1.0 - smoothstep(0.7, 1.0, (mx * mx + my * my).sqrt())) * (1.0 - lung_total * 0.5);
            // Spine.
            v += 30.0 * (1.0 - smoothstep(0.04, 0.07, (x / w).abs())) * torso;
            // Clavicles.
            let clav = (y + torso_h * 0.78 - 0.35 * x.abs() * torso_h / torso_w).abs() / (h * 0.012);
            v += 35.0 * (1.0 - smoothstep(0.6, 1.0, clav)) * (1.0 - smoothstep(0.8, 1.0, x.abs() / torso_w));
            img[(py * width + px) as usize] = v;
        }
    }

    let lung_point = |rng: &mut ChaCha8Rng, side: f32| {
        let a = rng.random_range(0.0..std::f32::consts::TAU);
        let r = rng.random_range(0.0..0.8f32).sqrt();
        let (x, y) = (side * lung_dx + r * a.cos() * lung_w * 0.8, lung_dy + r * a.sin() * lung_h * 0.7);
        (cx + cos_a * x - sin_a * y, cy + sin_a * x + cos_a * y)
    };
    let mut blobs = Vec::new();
    // Vessel markings and small benign opacities, in every image.
    for _ in 0..rng.random_range(6..14) {
        let side = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
        let (x, y) = lung_point(&mut rng, side);
        blobs.push(Blob {
            x,
            y,
            radius: lung_w * rng.random_range(0.03..0.08f32),
            amplitude: rng.random_range(8.0..22.0f32),
        });
    }
    if pneumonia {
        // Consolidation: a cluster of overlapping patches in one lung, sometimes both.
        let severity = rng.random_range(0.35..1.0f32);
        let sides: &[f32] = if rng.random_bool(0.3) {
            &[-1.0, 1.0]
        } else if rng.random_bool(0.5) {
            &[-1.0]
        } else {
            &[1.0]
        };
        for &side in sides {
            let (fx, fy) = lung_point(&mut rng, side);
            for _ in 0..rng.random_range(4..10) {
                let jitter = lung_w * 0.35;
                blobs.push(Blob {
                    x: fx + rng.random_range(-jitter..jitter),
                    y: fy + rng.random_range(-jitter..jitter),
                    radius: lung_w * rng.random_range(0.12..0.3f32),
                    amplitude: severity * rng.random_range(14.0..30.0f32),
                });
            }
            // Diffuse haze over the affected lung.
            let (hx, hy) = lung_point(&mut rng, side);
            blobs.push(Blob {
                x: hx,
                y: hy,
                radius: lung_w * 0.7,
                amplitude: severity * rng.random_range(6.0..14.0f32),
            });
        }
    }
    for b in &blobs {
        let reach = b.radius * 2.5;
        let (x0, x1) = ((b.x - reach).max(0.0) as u32, ((b.x + reach) as u32).min(width));
        let (y0, y1) = ((b.y - reach).max(0.0) as u32, ((b.y + reach) as u32).min(height));
        let inv = 1.0 / (2.0 * b.radius * b.radius);
        for py in y0..y1 {
            for px in x0..x1 {
                let (dx, dy) = (px as f32 - b.x, py as f32 - b.y);
                img[(py * width + px) as usize] += b.amplitude * (-(dx * dx + dy * dy) * inv).exp();
            }
        }
    }

    let mut state = rng.random::<u64>() | 1;
    let pixels = img
        .iter()
        .map(|v| {
            // xorshift noise: cheap and seeded; the sum of two uniforms is roughly bell-shaped.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state & 0xffff) as f32 / 65535.0 + ((state >> 16) & 0xffff) as f32 / 65535.0 - 1.0;
            (v * gain + offset + u * noise).clamp(0.0, 255.0) as u8
        })
        .collect();
    (width, height, pixels)
}

/// What the marker records: regenerate when any of it changes.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Marker {
    seed: u64,
    classes: Vec<String>,
    settings: Synthetic,
    generator_version: u32,
}

const GENERATOR_VERSION: u32 = 2;

/// Generates the dataset into `data.root` unless a matching one is already there.
///
/// Writes into a temporary sibling folder and renames it, so an interrupted run
/// never leaves a half-generated dataset that looks finished.
pub fn ensure(config: &Config, threads: usize) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    use rayon::prelude::*;

    let root = config.data.root.clone();
    let marker = Marker {
        seed: config.experiment.seed,
        classes: config.data.classes.clone(),
        settings: config.data.synthetic.clone(),
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
    let s = &config.data.synthetic;
    let mut jobs = Vec::new();
    for (split, count) in [("train", s.train_per_class), ("val", s.val_per_class), ("test", s.test_per_class)] {
        for (label, class) in config.data.classes.iter().enumerate() {
            let dir = temp.join(split).join(class);
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for i in 0..count {
                jobs.push((dir.join(format!("p{i:05}_{}.jpeg", class.to_lowercase())), split, label, i));
            }
        }
    }
    tracing::info!(images = jobs.len(), root = %root.display(), "generating the synthetic dataset");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let positive = config.data.positive_index();
    pool.install(|| {
        jobs.par_iter().try_for_each(|(path, split, label, i)| -> anyhow::Result<()> {
            let split_id = match *split {
                "train" => 0u64,
                "val" => 1,
                _ => 2,
            };
            let seed = config.experiment.seed ^ (split_id << 40) ^ ((*label as u64) << 32) ^ (*i as u64) ^ 0x5eed;
            let (w, h, pixels) = render(seed, *label == positive, s.size);
            image::save_buffer_with_format(path, &pixels, w, h, image::ColorType::L8, image::ImageFormat::Jpeg)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(())
        })
    })?;
    std::fs::write(temp.join(MARKER), serde_json::to_string_pretty(&marker)?)
        .with_context(|| format!("cannot write {}", temp.join(MARKER).display()))?;
    std::fs::rename(&temp, &root).with_context(|| format!("cannot rename {} to {}", temp.display(), root.display()))?;
    Ok(root)
}
