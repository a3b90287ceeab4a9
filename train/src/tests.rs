//! Correctness of the generated training artifacts, run by the real ONNX Runtime.

use std::path::Path;

use cxr_config::{Device, Optimizer, OptimizerKind, Runtime};
use cxr_engine::{Engine, Model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::head::{HeadShape, Precision, eval_model, optimizer_model, training_model};
use cxr_engine::Input;

fn engine() -> Engine {
    Engine::open(&Runtime { intra_threads: 1, ..Runtime::default() }, Device::Cpu).expect("run `make setup` first")
}

fn session(engine: &Engine, model: &cxr_onnx::ModelProto) -> Model {
    engine.session_from_bytes(&cxr_onnx::encode_model(model), Path::new("test")).unwrap().0
}

struct Problem {
    shape: HeadShape,
    x: Vec<f64>,
    labels: Vec<i64>,
    weights: Vec<f64>,
    masks: Vec<Vec<f64>>,
    params: Vec<(String, Vec<usize>, Vec<f64>)>,
}

fn problem() -> Problem {
    let shape = HeadShape { input: 5, hidden: vec![4, 3], classes: 3 };
    let n = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = (0..n * shape.input).map(|_| rng.random_range(-2.0..2.0)).collect();
    let labels = (0..n).map(|i| (i % 3) as i64).collect();
    let weights = (0..n).map(|i| [0.5, 1.5, 1.0][i % 3] / n as f64).collect();
    let masks = shape
        .hidden
        .iter()
        .map(|&h| (0..n * h).map(|_| if rng.random_bool(0.7) { 1.0 / 0.7 } else { 0.0 }).collect())
        .collect();
    let params = shape
        .params()
        .into_iter()
        .map(|(name, dims)| {
            let len = dims.iter().product();
            let values = (0..len).map(|_| rng.random_range(-0.8..0.8)).collect();
            (name, dims, values)
        })
        .collect();
    Problem { shape, x, labels, weights, masks, params }
}

fn inputs(p: &Problem, params: &[(String, Vec<usize>, Vec<f64>)]) -> Vec<(String, Input<'static>)> {
    let n = p.labels.len();
    let mut v = vec![
        ("features".to_string(), Input::F64(vec![n, p.shape.input], p.x.clone())),
        ("labels".to_string(), Input::I64(vec![n], p.labels.clone())),
        ("weights".to_string(), Input::F64(vec![n], p.weights.clone())),
    ];
    for (i, m) in p.masks.iter().enumerate() {
        v.push((format!("mask{i}"), Input::F64(vec![n, p.shape.hidden[i]], m.clone())));
    }
    for (name, dims, values) in params {
        v.push((name.clone(), Input::F64(dims.clone(), values.clone())));
    }
    v
}

#[test]
fn gradients_match_finite_differences_in_float64() {
    let engine = engine();
    let p = problem();
    let l2 = 0.01;
    let mut s = session(&engine, &training_model(&p.shape, l2, Precision::F64));
    let mut wanted = vec!["loss".to_string()];
    wanted.extend(p.params.iter().map(|(n, _, _)| format!("grad.{n}")));
    let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let out = s.run_typed::<f64>(inputs(&p, &p.params), &refs).unwrap();
    let loss_at = |s: &mut Model, params: &[(String, Vec<usize>, Vec<f64>)]| {
        s.run_typed::<f64>(inputs(&p, params), &["loss"]).unwrap()[0][0]
    };
    let eps = 1e-6;
    let mut worst: f64 = 0.0;
    for (k, (_, _, values)) in p.params.iter().enumerate() {
        for (i, analytic) in out[k + 1].iter().enumerate().take(values.len()) {
            let mut plus = p.params.clone();
            plus[k].2[i] += eps;
            let mut minus = p.params.clone();
            minus[k].2[i] -= eps;
            let numeric = (loss_at(&mut s, &plus) - loss_at(&mut s, &minus)) / (2.0 * eps);
            worst = worst.max((numeric - *analytic).abs());
        }
    }
    assert!(worst < 1e-7, "largest gradient error {worst}");
}

#[test]
fn eval_model_loss_is_the_training_loss_without_dropout() {
    let engine = engine();
    let mut p = problem();
    for m in &mut p.masks {
        m.iter_mut().for_each(|v| *v = 1.0);
    }
    let mut train = session(&engine, &training_model(&p.shape, 0.0, Precision::F64));
    let mut eval = session(&engine, &eval_model(&p.shape, 0.0, Precision::F64));
    let a = train.run_typed::<f64>(inputs(&p, &p.params), &["loss", "probabilities"]).unwrap();
    let mut eval_inputs = inputs(&p, &p.params);
    eval_inputs.retain(|(n, _)| !n.starts_with("mask"));
    let b = eval.run_typed::<f64>(eval_inputs, &["loss", "probabilities"]).unwrap();
    assert!((a[0][0] - b[0][0]).abs() < 1e-12);
    // Hand-computed class-weighted cross-entropy from the probabilities.
    let expected: f64 =
        b[1].chunks(3).zip(&p.labels).zip(&p.weights).map(|((probs, &l), w)| -w * probs[l as usize].ln()).sum();
    assert!((b[0][0] - expected).abs() < 1e-12, "{} vs {expected}", b[0][0]);
}

fn one_step(kind: OptimizerKind, w: f32, g: f32, slots: &[f32], lr: f32, step: f32) -> Vec<f32> {
    let engine = engine();
    let shape = HeadShape { input: 1, hidden: vec![], classes: 1 };
    let opt = Optimizer { kind, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, ..Optimizer::default() };
    let mut s = session(&engine, &optimizer_model(&shape, &opt));
    let mut ins =
        vec![("lr".to_string(), Input::F32(vec![], vec![lr])), ("step".to_string(), Input::F32(vec![], vec![step]))];
    let mut wanted = Vec::new();
    for (name, dims) in shape.params() {
        ins.push((name.clone(), Input::F32(dims.clone(), vec![w])));
        ins.push((format!("grad.{name}"), Input::F32(dims.clone(), vec![g])));
        wanted.push(format!("new.{name}"));
        for (slot, value) in crate::head::optimizer_slots(kind).iter().zip(slots) {
            ins.push((format!("{slot}.{name}"), Input::F32(dims.clone(), vec![*value])));
            wanted.push(format!("new.{slot}.{name}"));
        }
    }
    let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    // [kernel, kernel slots.., bias, bias slots..]: the kernel's come first.
    s.run(ins, &refs).unwrap().into_iter().map(|v| v[0]).collect()
}

#[test]
fn sgd_momentum_step_is_keras_rule() {
    let (w, g, v, lr, m) = (0.5f32, 2.0f32, -0.3f32, 0.01f32, 0.9f32);
    let out = one_step(OptimizerKind::Sgd, w, g, &[v], lr, 1.0);
    let v_new = m * v - lr * g;
    assert!((out[1] - v_new).abs() < 1e-7, "velocity {} vs {v_new}", out[1]);
    assert!((out[0] - (w + v_new)).abs() < 1e-7, "weight {} vs {}", out[0], w + v_new);
}

#[test]
fn adam_step_is_keras_rule() {
    let (w, g, m, v, lr, t) = (0.5f64, 2.0f64, 0.1f64, 0.2f64, 0.001f64, 3.0f64);
    let out = one_step(OptimizerKind::Adam, w as f32, g as f32, &[m as f32, v as f32], lr as f32, t as f32);
    let m2 = m + (g - m) * (1.0 - 0.9);
    let v2 = v + (g * g - v) * (1.0 - 0.999);
    let alpha = lr * (1.0 - 0.999f64.powf(t)).sqrt() / (1.0 - 0.9f64.powf(t));
    let w2 = w - alpha * m2 / (v2.sqrt() + 1e-7);
    assert!((out[0] as f64 - w2).abs() < 1e-6, "{} vs {w2}", out[0]);
    assert!((out[1] as f64 - m2).abs() < 1e-6);
    assert!((out[2] as f64 - v2).abs() < 1e-6);
}

#[test]
fn random_backbone_is_seeded_and_he_scaled() {
    let a = crate::backbone::random_convs(5);
    let b = crate::backbone::random_convs(5);
    assert_eq!(a.len(), 13);
    assert_eq!(a[0].kernel, b[0].kernel);
    assert_ne!(a[0].kernel, crate::backbone::random_convs(6)[0].kernel);
    let k = &a[12].kernel;
    let var = k.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / k.len() as f64;
    let expected = 2.0 / (512.0 * 9.0);
    assert!((var / expected - 1.0).abs() < 0.05, "variance {var} vs {expected}");
}

#[test]
fn feature_dims_follow_vgg_pooling() {
    use crate::backbone::{FeatureSpec, vgg16_feature_dim};
    let spec = |h, w, pooling| FeatureSpec {
        height: h,
        width: w,
        stored_order: cxr_config::ChannelOrder::Rgb,
        normalization: cxr_config::Normalization::Caffe,
        pooling,
    };
    assert_eq!(vgg16_feature_dim(&spec(50, 50, cxr_config::Pooling::Flatten)), 512);
    assert_eq!(vgg16_feature_dim(&spec(224, 224, cxr_config::Pooling::Flatten)), 7 * 7 * 512);
    assert_eq!(vgg16_feature_dim(&spec(224, 224, cxr_config::Pooling::Avg)), 512);
}

#[test]
fn skipping_rows_a_pool_drops_leaves_vgg16_features_unchanged() {
    use cxr_onnx::{DataType, Dim, GraphBuilder};
    let backbone = crate::backbone::vgg16_model(&crate::backbone::random_convs(3), "test");
    let (n, h, w) = (4usize, 50u32, 50u32);
    let model = |trim: bool| {
        let mut g = GraphBuilder::new("features");
        let shape = [Dim::Fixed(n as i64), Dim::Fixed(3), Dim::Fixed(h as i64), Dim::Fixed(w as i64)];
        let x = g.input("x", DataType::Float, &shape);
        let out = crate::backbone::splice(&mut g, &backbone, &x, trim.then_some((h, w))).unwrap().output;
        g.output(&out, "y", DataType::Float, &[Dim::named("N"), Dim::named("C"), Dim::named("H"), Dim::named("W")]);
        g.into_model("test")
    };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let pixels: Vec<f32> = (0..n * 3 * (h * w) as usize).map(|_| rng.random_range(-124.0f32..152.0)).collect();
    let engine = engine();
    let features = |trim: bool| {
        let mut s = session(&engine, &model(trim));
        let input = Input::F32View(vec![n, 3, h as usize, w as usize], &pixels);
        s.run(vec![("x".into(), input)], &["y"]).unwrap().remove(0)
    };
    let (full, trimmed) = (features(false), features(true));
    assert_eq!(full.len(), n * 512);
    let scale = full.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = full.iter().zip(&trimmed).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(scale > 0.0 && worst <= 1e-5 * scale, "max difference {worst} at scale {scale}");
}

#[test]
fn a_user_backbone_with_functions_sparse_weights_and_subgraphs_computes_the_same_spliced() {
    use cxr_onnx::{DataType, Dim, GraphBuilder};
    // Written by onnx/tests/fixtures/make_fixtures.py: a model-local function, a sparse kernel,
    // an If whose branches read an outer value.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../onnx/tests/fixtures/backbone.onnx");
    let backbone = cxr_onnx::read_model(&path).unwrap();
    let (n, h, w) = (2usize, 6usize, 4usize);
    let mut g = GraphBuilder::new("features");
    let x =
        g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(3), Dim::Fixed(h as i64), Dim::Fixed(w as i64)]);
    let spliced = crate::backbone::splice(&mut g, &backbone, &x, Some((h as u32, w as u32))).unwrap();
    g.output(
        &spliced.output,
        "y",
        DataType::Float,
        &[Dim::named("N"), Dim::named("C"), Dim::named("H"), Dim::named("W")],
    );
    let model = g.into_model("test");
    assert_eq!(model.functions, backbone.functions);
    assert!(model.opset_import.iter().any(|o| o.domain == "local.fn" && o.version == 1), "{:?}", model.opset_import);
    let sparse = &model.graph.as_ref().unwrap().sparse_initializer;
    assert_eq!(
        sparse.iter().map(|s| s.values.as_ref().unwrap().name.as_str()).collect::<Vec<_>>(),
        ["backbone/kernel"]
    );

    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let pixels: Vec<f32> = (0..n * 3 * h * w).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    let engine = engine();
    let run = |model: &cxr_onnx::ModelProto, input: &str, output: &str| {
        let input = (input.to_string(), Input::F32View(vec![n, 3, h, w], &pixels));
        session(&engine, model).run(vec![input], &[output]).unwrap().remove(0)
    };
    let alone = run(&backbone, "image", "features");
    assert_eq!(alone.len(), n * 4 * (h / 2) * (w / 2));
    assert!(alone.iter().any(|v| *v != 0.0));
    assert_eq!(run(&model, "x", "y"), alone);
}

#[test]
fn grad_cam_reads_vgg16_before_its_final_max_pool() {
    use cxr_onnx::{DataType, Dim, GraphBuilder};
    let backbone = crate::backbone::vgg16_model(&crate::backbone::random_convs(3), "test");
    let mut g = GraphBuilder::new("features");
    let x = g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(3), Dim::Fixed(64), Dim::Fixed(64)]);
    let spliced = crate::backbone::splice(&mut g, &backbone, &x, None).unwrap();
    let graph = backbone.graph.as_ref().unwrap();
    let relus: Vec<&str> = graph.node.iter().filter(|n| n.op_type == "Relu").map(|n| n.output[0].as_str()).collect();
    // The output is block5_pool (behind an Identity); the activations are block5_conv3's ReLU.
    assert_eq!(spliced.activations, format!("backbone/{}", relus.last().unwrap()));
    assert_eq!(spliced.output, "backbone/features");
}

#[test]
fn grad_cam_reads_an_int8_vgg16_before_its_final_max_pool_too() {
    use cxr_onnx::{DataType, Dim, GraphBuilder};
    let backbone = crate::backbone::vgg16_model(&crate::backbone::random_convs(3), "test");
    let names = crate::quantize::activations(backbone.graph.as_ref().unwrap());
    let ranges = names.into_iter().map(|n| (n, (0.0, 4.0))).collect();
    let quantized = crate::quantize::quantize(&backbone, &ranges).unwrap();
    let mut g = GraphBuilder::new("features");
    let x = g.input("x", DataType::Float, &[Dim::named("N"), Dim::Fixed(3), Dim::Fixed(64), Dim::Fixed(64)]);
    let spliced = crate::backbone::splice(&mut g, &quantized, &x, None).unwrap();
    let graph = quantized.graph.as_ref().unwrap();
    let last_pool = graph.node.iter().rfind(|n| n.op_type == "MaxPool").unwrap();
    // The final max-pool reads the dequantized block5_conv3 activations: those are the map.
    assert_eq!(spliced.activations, format!("backbone/{}", last_pool.input[0]));
    assert!(spliced.activations.ends_with("/dq"), "{}", spliced.activations);
}

#[test]
fn the_shift_score_in_the_graph_equals_scikit_learns_mahalanobis() {
    // sklearn.covariance.LedoitWolf().fit(X).mahalanobis(Y), square-rooted over the
    // dimension (scikit-learn 1.9.1): 0.8147702260123837, 2.695581446155098, 0.4496224478533669.
    let x: [[f32; 4]; 12] = [
        [0.00123, 0.29973, -0.274138, -2.055322],
        [-0.454671, -1.355383, 0.060144, 2.740574],
        [-0.492207, -1.01424, 0.489842, 1.203616],
        [0.105414, -0.846137, -0.029252, 1.361355],
        [-1.344215, -1.532987, -1.901223, -4.480298],
        [-1.841735, -1.708479, -1.267446, -0.724918],
        [0.156751, -0.06153, -2.51676, -3.594146],
        [-0.048501, 0.074508, -1.530136, -2.485642],
        [-0.978519, -1.591653, 1.060899, -0.554171],
        [-0.032522, 0.858373, -0.5836, -0.807004],
        [0.110464, 0.152153, -1.225056, -1.072775],
        [1.358823, -0.460086, 0.859383, 1.098091],
    ];
    let y: [[f32; 4]; 3] = [[0.5, -0.2, 1.0, 0.3], [3.0, 2.5, -1.0, 4.0], [0.0, 0.0, 0.0, 0.0]];
    let expected = [0.8147702260123837, 2.695581446155098, 0.4496224478533669];
    let split = |rows: &[[f32; 4]]| crate::features::SplitFeatures {
        features: rows.iter().flatten().copied().collect(),
        labels: vec![0; rows.len()],
        dim: 4,
    };
    let model = crate::shift::ShiftModel::fit(&split(&x), crate::shift::Reduce::None).unwrap();
    assert!((model.shrinkage - 0.22040296638685525).abs() < 1e-6, "{}", model.shrinkage);
    let reference = model.scores(&split(&y));
    let mut g = cxr_onnx::GraphBuilder::new("shift");
    let features =
        g.input("features", cxr_onnx::DataType::Float, &[cxr_onnx::Dim::named("N"), cxr_onnx::Dim::Fixed(4)]);
    let score = model.append(&mut g, &features);
    g.output(&score, "shift_score", cxr_onnx::DataType::Float, &[cxr_onnx::Dim::named("N")]);
    let engine = engine();
    let mut session = session(&engine, &g.into_model("test"));
    let out =
        session.run(vec![("features".into(), Input::F32(vec![3, 4], split(&y).features))], &["shift_score"]).unwrap();
    for ((graph, rust), sklearn) in out[0].iter().zip(&reference).zip(expected) {
        assert!((rust - sklearn).abs() < 1e-5, "rust {rust} vs scikit-learn {sklearn}");
        assert!((*graph as f64 - sklearn).abs() < 1e-4, "graph {graph} vs scikit-learn {sklearn}");
    }
}

#[test]
fn in_distribution_images_are_flagged_at_about_the_nominal_rate() {
    // Correlated Gaussian features: train, validation (whose 99th percentile is the flag
    // threshold) and a fresh in-distribution set of 4000 images each.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut draw = |n: usize| {
        let mut features = Vec::with_capacity(n * 8);
        for _ in 0..n {
            let z: Vec<f64> = (0..8)
                .map(|_| {
                    // Box-Muller.
                    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random::<f64>());
                    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
                })
                .collect();
            features.extend((0..8).map(|i| (z[i] + 0.7 * z[(i + 3) % 8]) as f32));
        }
        crate::features::SplitFeatures { features, labels: vec![0; n], dim: 8 }
    };
    let (train, val, fresh) = (draw(4000), draw(4000), draw(4000));
    let (_, meta) = crate::shift::monitor(&train, &val, None).unwrap().unwrap();
    let model = crate::shift::ShiftModel::fit(&train, crate::shift::Reduce::None).unwrap();
    let flagged = model.scores(&fresh).iter().filter(|&&s| s > meta.p99).count() as f64 / 4000.0;
    // 1% nominal; 4 binomial standard deviations of 4000 draws, plus the threshold's own noise.
    assert!((0.004..0.018).contains(&flagged), "flagged share {flagged}");
}

#[test]
fn calibration_reduces_activations_inside_the_runtime_to_their_ranges() {
    use crate::backbone::{FeatureSpec, LoadedBackbone};
    use cxr_config::{Quantization, RangeCalibration, TensorLayout};
    let backbone = LoadedBackbone {
        model: crate::backbone::vgg16_model(&crate::backbone::random_convs(5), "test"),
        layout: TensorLayout::Nchw,
        description: "random".into(),
        sha256: String::new(),
    };
    let spec = FeatureSpec {
        height: 32,
        width: 32,
        stored_order: cxr_config::ChannelOrder::Rgb,
        normalization: cxr_config::Normalization::Caffe,
        pooling: cxr_config::Pooling::Flatten,
    };
    // 11 images: a last batch smaller than the others.
    let n = 11;
    let images: Vec<u8> = (0..n * 32 * 32 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
    let engine = engine();
    let calibrate = |calibration, percentile| {
        let settings = Quantization { calibration, images: n, percentile };
        crate::quantize::calibrate(&engine, &backbone, &spec, &images, n, &settings).unwrap()
    };
    let names = crate::quantize::activations(backbone.model.graph.as_ref().unwrap());
    let minmax = calibrate(RangeCalibration::Minmax, 99.0);
    assert_eq!(minmax.len(), names.len());
    // The first activation is the normalised image: RGB pixels to BGR minus Caffe's means.
    let means = [103.939f32, 116.779, 123.68];
    let normalised =
        images.chunks(3).flat_map(|p| [p[2] as f32 - means[0], p[1] as f32 - means[1], p[0] as f32 - means[2]]);
    let (lo, hi) = normalised.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let image = minmax.values().find(|(l, _)| *l < 0.0).expect("the normalised image is signed");
    assert!((image.0 - lo).abs() < 1e-4 && (image.1 - hi).abs() < 1e-4, "{image:?} against {lo} {hi}");
    let all = calibrate(RangeCalibration::Percentile, 100.0);
    assert_eq!(all, minmax, "the 100th percentile is the max");
    let most = calibrate(RangeCalibration::Percentile, 99.0);
    let mut cut = 0;
    for (name, &(lo, hi)) in &minmax {
        let (plo, phi) = most[name];
        assert_eq!(plo, lo, "{name}: the lower end stays the min");
        assert!(phi <= hi && phi > 0.0, "{name}: {phi} against the max {hi}");
        cut += usize::from(phi < hi);
    }
    assert!(2 * cut >= names.len(), "the 99th percentile cuts most ReLU outputs' ranges: {cut} of {}", names.len());
}

/// The preprocessing graph against Keras' and torchvision's normalisation written out here,
/// for each stored channel order, normalisation and backbone layout.
#[test]
fn the_preprocessing_graph_normalises_like_keras_in_every_order_layout_and_mode() {
    use crate::backbone::FeatureSpec;
    use cxr_config::{ChannelOrder, Normalization, Pooling, TensorLayout};
    use cxr_onnx::Dim;
    let engine = engine();
    let (n, h, w) = (2usize, 3usize, 4usize);
    let pixels: Vec<u8> = (0..n * h * w * 3).map(|i| ((i * 97) % 256) as u8).collect();
    for stored_order in [ChannelOrder::Rgb, ChannelOrder::Bgr] {
        for normalization in [Normalization::Caffe, Normalization::Torch, Normalization::None] {
            for layout in [TensorLayout::Nchw, TensorLayout::Nhwc] {
                let spec = FeatureSpec {
                    height: h as u32,
                    width: w as u32,
                    stored_order,
                    normalization,
                    pooling: Pooling::Avg,
                };
                let mut g = cxr_onnx::GraphBuilder::new("preprocessing");
                let x = crate::backbone::preprocessing(&mut g, &spec, layout);
                g.output(&x, "x", cxr_onnx::DataType::Float, &["n", "a", "b", "c"].map(Dim::named));
                let mut model = session(&engine, &g.into_model("test"));
                let shape = vec![n, h, w, 3];
                let got =
                    model.run(vec![("image".into(), Input::U8(shape, pixels.clone()))], &["x"]).unwrap().remove(0);
                let mut want = vec![0f32; got.len()];
                for (p, stored) in pixels.chunks(3).enumerate() {
                    let rgb = match stored_order {
                        ChannelOrder::Rgb => [stored[0], stored[1], stored[2]],
                        ChannelOrder::Bgr => [stored[2], stored[1], stored[0]],
                    }
                    .map(f32::from);
                    let values = match normalization {
                        Normalization::Caffe => [rgb[2] - 103.939, rgb[1] - 116.779, rgb[0] - 123.68],
                        Normalization::Torch => [
                            (rgb[0] / 255.0 - 0.485) / 0.229,
                            (rgb[1] / 255.0 - 0.456) / 0.224,
                            (rgb[2] / 255.0 - 0.406) / 0.225,
                        ],
                        Normalization::None => rgb,
                    };
                    let (image, pixel) = (p / (h * w), p % (h * w));
                    for (c, v) in values.into_iter().enumerate() {
                        let at = match layout {
                            TensorLayout::Nchw => (image * 3 + c) * h * w + pixel,
                            _ => p * 3 + c,
                        };
                        want[at] = v;
                    }
                }
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-5, "{stored_order:?} {normalization:?} {layout:?}: off by {worst}");
            }
        }
    }
}
