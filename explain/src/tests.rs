//! The Grad-CAM graph against a finite-difference gradient and against the class
//! activation map computed directly, on small models run by the real ONNX Runtime.

use std::path::Path;

use cxr_config::{Device, Pooling, Runtime};
use cxr_engine::{Engine, Input};
use cxr_onnx::{Attr, DataType, Dim, GraphBuilder, tensor_f32};
use cxr_store::model_meta::{ExplainLayer, ExplainMeta};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::explain_model;

const N: usize = 2;
const C: usize = 3;
const H: usize = 4;
const W: usize = 6;
const K: usize = 2;

/// A model shaped like the exported one from the last convolution's activations `a`
/// (`[N, C, H, W]`) on: an optional final 2x2 max-pool, the pooling, the head, a
/// temperature and a softmax; `logits` is an output too.
struct Small {
    bytes: Vec<u8>,
    meta: ExplainMeta,
    /// The activations are `[N, H, W, C]` (a channels-last backbone) instead of `[N, C, H, W]`.
    nhwc: bool,
    /// Kernels, input first, `[rows, cols]` row-major.
    kernels: Vec<Vec<f32>>,
}

fn small(pooling: Pooling, final_max_pool: bool, hidden: &[usize], seed: u64) -> Small {
    small_in(pooling, final_max_pool, hidden, seed, false)
}

fn small_in(pooling: Pooling, final_max_pool: bool, hidden: &[usize], seed: u64, nhwc: bool) -> Small {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = GraphBuilder::new("small");
    let dims = if nhwc { [H, W, C] } else { [C, H, W] };
    let shape: Vec<Dim> = std::iter::once(Dim::named("N")).chain(dims.iter().map(|&d| Dim::Fixed(d as i64))).collect();
    let a = g.input("a", DataType::Float, &shape);
    let a_nchw = if nhwc { g.op("Transpose", &[&a], &[("perm", Attr::Ints(vec![0, 3, 1, 2]))]) } else { a.clone() };
    let (mut ph, mut pw) = (H, W);
    let p = if final_max_pool {
        (ph, pw) = (H / 2, W / 2);
        let pool = [("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))];
        g.op("MaxPool", &[&a_nchw], &pool)
    } else {
        a_nchw
    };
    let (features, inputs) = match pooling {
        Pooling::Avg => (g.op("GlobalAveragePool", &[&p], &[]), C),
        Pooling::Max => (g.op("GlobalMaxPool", &[&p], &[]), C),
        Pooling::Flatten => (g.op("Transpose", &[&p], &[("perm", Attr::Ints(vec![0, 2, 3, 1]))]), ph * pw * C),
    };
    let mut x = g.op("Flatten", &[&features], &[("axis", Attr::Int(1))]);
    let mut sizes = vec![inputs];
    sizes.extend(hidden);
    sizes.push(K);
    let (mut layers, mut kernels) = (Vec::new(), Vec::new());
    for (i, pair) in sizes.windows(2).enumerate() {
        let (rows, cols) = (pair[0], pair[1]);
        let mut kernel: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0..1.0f32)).collect();
        if cols == K {
            // Opposite classes: where one class's map is negative the other's is positive,
            // so no test compares two all-zero maps.
            for row in kernel.chunks_mut(K) {
                row[1] = -row[0];
            }
        }
        // Hidden units mostly alive (a head whose ReLUs are all closed has no gradient), some not.
        let bias: Vec<f32> = (0..cols).map(|_| rng.random_range(-0.5..1.5f32)).collect();
        let k = g.initializer(tensor_f32(&format!("head/dense{i}.kernel"), &[rows as i64, cols as i64], &kernel));
        let b = g.initializer(tensor_f32(&format!("head/dense{i}.bias"), &[cols as i64], &bias));
        x = g.op("Gemm", &[&x, &k, &b], &[]);
        layers.push(ExplainLayer { kernel: k, output: x.clone() });
        kernels.push(kernel);
        if i + 2 < sizes.len() {
            x = g.op("Relu", &[&x], &[]);
        }
    }
    g.output(&x, "logits", DataType::Float, &[Dim::named("N"), Dim::Fixed(K as i64)]);
    let t = g.const_f32(&[], &[1.7]);
    let scaled = g.op("Div", &[&x, &t], &[]);
    let probs = g.op("Softmax", &[&scaled], &[("axis", Attr::Int(1))]);
    g.output(&probs, "probabilities", DataType::Float, &[Dim::named("N"), Dim::Fixed(K as i64)]);
    let bytes = cxr_onnx::encode_model(&g.into_model("test"));
    let layout = if nhwc { "nhwc" } else { "nchw" }.to_string();
    Small { bytes, meta: ExplainMeta { activations: a, layout, pooling, layers }, nhwc, kernels }
}

fn engine() -> Engine {
    Engine::open(&Runtime { intra_threads: 1, ..Runtime::default() }, Device::Cpu).expect("run `make setup` first")
}

/// Runs the Grad-CAM model on `a`: (logits `[N, K]`, cam `[N, K, H, W]`).
fn run(engine: &Engine, model: &Small, a: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let proto = cxr_onnx::decode_model(&model.bytes, Path::new("small")).unwrap();
    let explained = explain_model(&model.bytes, &proto, &model.meta, K).unwrap();
    let mut session = engine.session_from_bytes(&explained.bytes, Path::new("explain")).unwrap().0;
    let input = Input::F32View(input_shape(model), a);
    let mut out = session.run(vec![("a".into(), input)], &["logits", crate::CAM]).unwrap();
    let cam = out.pop().unwrap();
    (out.pop().unwrap(), cam)
}

fn input_shape(model: &Small) -> Vec<usize> {
    if model.nhwc { vec![N, H, W, C] } else { vec![N, C, H, W] }
}

/// Where activation `(n, c, position)` lies in the model's input.
fn at(model: &Small, n: usize, c: usize, ij: usize) -> usize {
    if model.nhwc { (n * H * W + ij) * C + c } else { (n * C + c) * H * W + ij }
}

fn activations(seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Non-negative like ReLU outputs, and without ties for the max-pools.
    (0..N * C * H * W).map(|_| rng.random_range(0.0..2.0f32)).collect()
}

/// Grad-CAM from the definition, with the gradient by central differences of `logits`.
fn grad_cam_by_finite_differences(engine: &Engine, model: &Small, a: &[f32]) -> Vec<f32> {
    let proto = cxr_onnx::decode_model(&model.bytes, Path::new("small")).unwrap();
    let mut session = engine.session_from_bytes(&cxr_onnx::encode_model(&proto), Path::new("small")).unwrap().0;
    let shape = input_shape(model);
    let mut logits = |a: &[f32]| {
        let input = Input::F32View(shape.clone(), a);
        session.run(vec![("a".into(), input)], &["logits"]).unwrap().remove(0)
    };
    // The function is piecewise linear (ReLU, max): a wide step is exact away from its kinks.
    let eps = 1e-2f32;
    let mut alpha = [0f64; N * K * C]; // sum over positions of d logit / d a
    for n in 0..N {
        for c in 0..C {
            for ij in 0..H * W {
                let index = at(model, n, c, ij);
                let mut up = a.to_vec();
                up[index] += eps;
                let mut down = a.to_vec();
                down[index] -= eps;
                let (lu, ld) = (logits(&up), logits(&down));
                for k in 0..K {
                    alpha[(n * K + k) * C + c] += (lu[n * K + k] - ld[n * K + k]) as f64 / (2.0 * eps as f64);
                }
            }
        }
    }
    let mut cam = vec![0f32; N * K * H * W];
    for n in 0..N {
        for k in 0..K {
            for ij in 0..H * W {
                let v: f64 =
                    (0..C).map(|c| alpha[(n * K + k) * C + c] / (H * W) as f64 * a[at(model, n, c, ij)] as f64).sum();
                cam[(n * K + k) * H * W + ij] = v.max(0.0) as f32;
            }
        }
    }
    cam
}

fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: an all-zero map tests nothing");
    let worst = got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    assert!(worst <= tolerance * scale, "{what}: max difference {worst} at scale {scale}");
}

#[test]
fn the_grad_cam_graph_agrees_with_a_finite_difference_gradient() {
    let engine = engine();
    for (i, (pooling, final_max_pool, hidden)) in [
        (Pooling::Avg, true, vec![]),
        (Pooling::Avg, false, vec![5]),
        (Pooling::Max, true, vec![5]),
        (Pooling::Max, false, vec![]),
        (Pooling::Flatten, true, vec![5, 4]),
        (Pooling::Flatten, false, vec![]),
        (Pooling::Flatten, false, vec![7]),
    ]
    .into_iter()
    .enumerate()
    {
        // A channels-last backbone (a Keras export) for every other case.
        let nhwc = i % 2 == 1;
        let what = format!("{pooling:?} pooling, final max-pool {final_max_pool}, hidden {hidden:?}, nhwc {nhwc}");
        let model = small_in(pooling, final_max_pool, &hidden, 30 + i as u64, nhwc);
        let a = activations(7 + i as u64);
        let (_, cam) = run(&engine, &model, &a);
        let expected = grad_cam_by_finite_differences(&engine, &model, &a);
        assert_close(&cam, &expected, 2e-3, &what);
    }
}

#[test]
fn with_average_pooling_and_a_linear_head_it_is_the_class_activation_map() {
    let engine = engine();
    for final_max_pool in [false, true] {
        let model = small(Pooling::Avg, final_max_pool, &[], 5);
        let a = activations(3);
        let (_, cam) = run(&engine, &model, &a);
        // CAM (Zhou et al. 2016): the last Dense layer's weights applied to each position's
        // channels, here divided by the positions (Grad-CAM's mean) and kept where positive.
        let kernel = &model.kernels[0]; // [C, K]
        let mut direct = vec![0f32; N * K * H * W];
        for n in 0..N {
            for k in 0..K {
                for ij in 0..H * W {
                    let v: f32 = (0..C).map(|c| kernel[c * K + k] * a[(n * C + c) * H * W + ij]).sum();
                    direct[(n * K + k) * H * W + ij] = v.max(0.0) / (H * W) as f32;
                }
            }
        }
        assert_close(&cam, &direct, 1e-5, &format!("final max-pool {final_max_pool}"));
    }
}

#[test]
fn a_model_whose_metadata_names_missing_values_is_refused() {
    let model = small(Pooling::Avg, false, &[], 1);
    let proto = cxr_onnx::decode_model(&model.bytes, Path::new("small")).unwrap();
    let meta = ExplainMeta { activations: "backbone/nowhere".into(), ..model.meta.clone() };
    let err = explain_model(&model.bytes, &proto, &meta, K).unwrap_err().to_string();
    assert!(err.contains("backbone/nowhere"), "{err}");
    let nhwc = ExplainMeta { layout: "hwcn".into(), ..model.meta };
    let err = explain_model(&model.bytes, &proto, &nhwc, K).unwrap_err().to_string();
    assert!(err.contains("hwcn"), "{err}");
}
