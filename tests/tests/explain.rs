//! `infer --explain`: Grad-CAM heatmaps from the real binaries. On the synthetic demo data
//! with the ImageNet backbone, the heatmap's peak falls on the consolidation the generator
//! drew (pointing check) and changes when the head is randomised (model-randomisation
//! check); on a small folder dataset, the files, names and refusals.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use cxr_config::{Adapter, Backbone, ClassWeights, Pooling};
use cxr_store::heatmaps::HeatmapRow;
use image::ImageFormat;

fn heatmap_rows(dir: &Path) -> Vec<HeatmapRow> {
    cxr_store::heatmaps::read(dir).unwrap()
}

fn maps(dir: &Path) -> Vec<Vec<f32>> {
    let array = cxr_store::npy::read::<f32>(&cxr_store::heatmaps::npy_path(dir)).unwrap();
    let n = array.shape()[0];
    let flat: Vec<f32> = array.into_iter().collect();
    flat.chunks(flat.len() / n.max(1)).map(<[f32]>::to_vec).collect()
}

/// Spearman's rank correlation (average ranks for ties).
fn spearman(a: &[f32], b: &[f32]) -> f64 {
    fn ranks(v: &[f32]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
                j += 1;
            }
            for &k in &order[i..=j] {
                r[k] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (ma, mb) = (mean(&ra), mean(&rb));
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let var = |r: &[f64], m: f64| r.iter().map(|x| (x - m) * (x - m)).sum::<f64>();
    let denominator = (var(&ra, ma) * var(&rb, mb)).sqrt();
    if denominator == 0.0 { 0.0 } else { cov / denominator }
}

/// `model.onnx` with every head parameter replaced by seeded random values of the same
/// shape and scale (the model-randomisation check of Adebayo et al. 2018).
fn randomised_head(model: &Path, out: &Path) {
    let mut proto = cxr_onnx::read_model(model).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut replaced = 0;
    for tensor in graph.initializer.iter_mut().filter(|t| t.name.starts_with("head/")) {
        let values: Vec<f32> =
            tensor.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let scale = (values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32).sqrt().max(1e-3);
        let random: Vec<u8> = values
            .iter()
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let uniform = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                (uniform * scale * 3f32.sqrt()).to_le_bytes()
            })
            .collect();
        tensor.raw_data = random.into();
        replaced += 1;
    }
    assert!(replaced >= 2, "the head's kernels and biases are initialisers named head/...");
    std::fs::write(out, cxr_onnx::encode_model(&proto)).unwrap();
}

/// The consolidation patches the generator drew, per image path below `data.root`.
fn regions(root: &Path) -> HashMap<String, Vec<(f64, f64, f64)>> {
    let mut out: HashMap<String, Vec<(f64, f64, f64)>> = HashMap::new();
    for row in read_csv(&root.join(".synthetic-regions.csv")).into_iter().skip(1) {
        let v: Vec<f64> = row[1..4].iter().map(|s| s.parse().unwrap()).collect();
        out.entry(row[0].clone()).or_default().push((v[0], v[1], v[2]));
    }
    out
}

#[test]
fn heatmaps_point_at_the_consolidation_and_change_when_the_head_is_randomised() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("synthetic");
    let config = TestConfig::new("e", &dir.path().join("runs"), &root)
        .seed(42)
        .with(|c| {
            c.data.adapter = Adapter::Synthetic;
            c.data.synthetic.size = 400;
            c.model.pooling = Pooling::Avg;
            c.train.class_weights = ClassWeights::Balanced;
        })
        .size(224, 224)
        .backbone(Backbone::Imagenet)
        .epochs(30)
        .batch_size(32)
        .write(dir.path());
    ok(run_stage("preprocess", &config, &[]));
    ok(run_stage("train", &config, &[]));
    let trained = dir.path().join("heat");
    let explain = |model: &Path, out: &Path| {
        let output = bin("infer")
            .args(["--config", config.to_str().unwrap(), "--split", "test"])
            .args(["--explain-class", "PNEUMONIA", "--model"])
            .arg(model)
            .arg("--explain")
            .arg(out)
            .output()
            .unwrap();
        ok(output);
    };
    let model = dir.path().join("runs/e/train/model.onnx");
    explain(&model, &trained);

    // Pointing: the peak of the PNEUMONIA map inside the consolidation (within two
    // standard deviations of a patch's centre), against the chance of a uniform point.
    let truth = regions(&root);
    let rows = heatmap_rows(&trained);
    let (mut hits, mut pneumonia, mut chance) = (0, 0, 0.0);
    for row in rows.iter().filter(|r| r.label == "PNEUMONIA") {
        let relative = Path::new(&row.path).strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        let patches = &truth[&relative];
        let (w, h) = image::image_dimensions(&row.path).unwrap();
        let inside = |x: f64, y: f64| patches.iter().any(|&(px, py, r)| (x - px).hypot(y - py) <= 2.0 * r);
        pneumonia += 1;
        if let (Some(x), Some(y)) = (row.peak_x, row.peak_y)
            && inside(x * w as f64, y * h as f64)
        {
            hits += 1;
        }
        let grid = 50;
        let covered = (0..grid * grid)
            .filter(|i| inside((i % grid) as f64 / grid as f64 * w as f64, (i / grid) as f64 / grid as f64 * h as f64))
            .count();
        chance += covered as f64 / (grid * grid) as f64;
    }
    let rate = hits as f64 / pneumonia as f64;
    chance /= pneumonia as f64;
    eprintln!("pointing: {hits}/{pneumonia} = {rate:.3} of the peaks on the consolidation (chance {chance:.3})");
    assert!(pneumonia >= 30, "{pneumonia} pneumonia images");
    assert!(rate >= 0.6 && rate >= 4.0 * chance, "pointing rate {rate:.3}, chance {chance:.3}");

    // Randomisation: the same images with a random head give other maps.
    let random_model = dir.path().join("random.onnx");
    randomised_head(&model, &random_model);
    let random = dir.path().join("heat-random");
    explain(&random_model, &random);
    let (ours, theirs) = (maps(&trained), maps(&random));
    assert_eq!(ours.len(), rows.len());
    let similarity: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| spearman(a, b)).collect();
    let mean = similarity.iter().sum::<f64>() / similarity.len() as f64;
    // For scale: the maps of the same model on two different images.
    let across: Vec<f64> = ours.windows(2).map(|w| spearman(&w[0], &w[1])).collect();
    let across_mean = across.iter().sum::<f64>() / across.len() as f64;
    eprintln!(
        "randomisation: mean Spearman rank correlation {mean:.3} between trained and random-head maps of the same image ({across_mean:.3} between the trained maps of neighbouring images)"
    );
    assert!(mean < 0.5, "maps barely change with a random head: mean rank correlation {mean:.3}");
}

/// Copies of one generated image under two folders, so that their stems collide.
fn colliding_files(dir: &Path) -> PathBuf {
    let files = dir.join("files");
    for (i, class) in ["NORMAL", "PNEUMONIA"].into_iter().enumerate() {
        save(&xray_like(i as u32, 90, 70, i == 1), &files.join(class).join("scan.jpeg"), ImageFormat::Jpeg);
    }
    save(&xray_like(5, 60, 80, false), &files.join("other.png"), ImageFormat::Png);
    files
}

#[test]
fn explain_writes_one_named_png_per_image_and_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = trained(dir.path());
    let cfg = config.to_str().unwrap();
    let files = colliding_files(dir.path());
    let out = dir.path().join("heat");
    let run = |extra: &[&str], dir: &Path| {
        bin("infer").args(["--config", cfg]).args(extra).arg("--explain").arg(dir).arg(&files).output().unwrap()
    };
    ok(run(&[], &out));
    let rows = heatmap_rows(&out);
    let predictions = read_csv(&dir.path().join("runs/e/predictions/files.csv"));
    assert_eq!(rows.len(), 3);
    assert_eq!(predictions.len(), 4, "a header and three predictions");
    let mut names: Vec<&str> = rows.iter().map(|r| r.png.as_str()).collect();
    names.sort();
    assert_eq!(names, ["NORMAL__scan.png", "PNEUMONIA__scan.png", "other.png"]);
    for (row, prediction) in rows.iter().zip(&predictions[1..]) {
        assert_eq!(row.path, prediction[0]);
        assert_eq!(row.predicted, prediction[2]);
        assert_eq!(row.explained, row.predicted, "without --explain-class, the call is explained");
        let (w, h) = image::image_dimensions(out.join(&row.png)).unwrap();
        let (sw, sh) = image::image_dimensions(&row.path).unwrap();
        // Small images are enlarged to a 256-px longer side, keeping their aspect ratio; the
        // colour bar's panel is right of the image.
        let drawn_width = (256.0 * sw as f64 / sw.max(sh) as f64).round() as u32;
        assert_eq!(w, drawn_width + cxr_explain::PANEL, "{}: {w}x{h} for a {sw}x{sh} image", row.png);
        assert!(h > 256 * sh / sw.max(sh), "{}: {w}x{h} for a {sw}x{sh} image", row.png);
    }
    assert_eq!(maps(&out).len(), 3);

    // Another class on request; the folder is replaced whole.
    ok(run(&["--explain-class", "NORMAL"], &out));
    assert!(heatmap_rows(&out).iter().all(|r| r.explained == "NORMAL"));
    let err = fails(run(&["--explain-class", "VIRUS"], &out));
    assert!(err.contains("--explain-class VIRUS") && err.contains("NORMAL, PNEUMONIA"), "{err}");

    // A folder holding other files is not replaced.
    let foreign = dir.path().join("mine");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    let err = fails(run(&[], &foreign));
    assert!(err.contains("mine") && err.contains("holds files"), "{err}");
    assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).unwrap(), "keep me");
    // Nor a folder holding only the user's own heatmaps.csv, nor a file.
    let own = dir.path().join("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("heatmaps.csv"), "mine").unwrap();
    let err = fails(run(&[], &own));
    assert!(err.contains("holds files"), "{err}");
    assert_eq!(std::fs::read_to_string(own.join("heatmaps.csv")).unwrap(), "mine");
    let file = dir.path().join("notes.md");
    std::fs::write(&file, "keep me").unwrap();
    let err = fails(run(&[], &file));
    assert!(err.contains("a file is there"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let err = fails(run(&["--shard", "0/2"], &out));
    assert!(err.contains("--shard"), "{err}");

    // A model exported before heatmaps has no cxr.explain metadata: the fix is named.
    let model = dir.path().join("runs/e/train/model.onnx");
    let mut proto = cxr_onnx::read_model(&model).unwrap();
    proto.metadata_props.retain(|p| p.key != cxr_store::model_meta::EXPLAIN);
    let old = dir.path().join("old.onnx");
    std::fs::write(&old, cxr_onnx::encode_model(&proto)).unwrap();
    let err = fails(run(&["--model", old.to_str().unwrap()], &dir.path().join("heat-old")));
    assert!(err.contains("cxr.explain") && err.contains("retrain"), "{err}");
}
