//! `model.precision: int8`: static post-training quantization of the frozen backbone.
//!
//! The float32 backbone runs over a seeded sample of training images to find each
//! activation's range (`model.quantization.calibration`: the min/max, or a percentile of
//! a histogram); then every convolution's input and every max-pool's output goes through
//! `QuantizeLinear`/`DequantizeLinear` (uint8: zero point 0 after a ReLU), its weights are
//! int8 per output channel (symmetric) and its bias int32 at the product of the two scales.
//! These are standard `ai.onnx` operators: ONNX Runtime fuses each `DQ -> Conv -> (Relu) ->
//! Q` group into an int8 convolution (VNNI on this CPU) and runs the max-pools on uint8, and
//! the same graph runs on CUDA. The quantized backbone then goes where the float32 one
//! went: the feature pass, its cache (keyed by its SHA-256) and `model.onnx`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use cxr_config::{Model, Precision, Quantization, RangeCalibration};
use cxr_engine::{Engine, Input};
use cxr_onnx::proto::{GraphProto, NodeProto, TensorProto};
use cxr_onnx::{Attr, DataType, Dim, GraphBuilder, ModelProto, tensor};
use cxr_store::layout::Layout;
use cxr_store::npy::NpyReader;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::backbone::{BackboneError, FeatureSpec, LoadedBackbone};

/// The backbone `model.precision` asks for: `backbone` itself, or for `int8` the backbone
/// quantized (`model.quantization`) with ranges measured on a sample of the train split's
/// images drawn from `seed` (`experiment.seed`). With `cache` (`train.feature_cache`) the
/// ranges are kept in the feature cache, keyed by what decides them, so a repeated `train`
/// quantizes without running the float32 backbone again.
pub fn apply_precision(
    model: &Model,
    seed: u64,
    engine: &Engine,
    backbone: LoadedBackbone,
    layout: &Layout,
    spec: &FeatureSpec,
    cache: bool,
) -> anyhow::Result<LoadedBackbone> {
    if model.precision == Precision::Fp32 {
        return Ok(backbone);
    }
    let settings = &model.quantization;
    let path = layout.images("train");
    let mut reader = NpyReader::open(&path)?;
    let mut rows: Vec<usize> = (0..reader.rows()).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x1a78));
    rows.truncate(settings.images);
    rows.sort_unstable();
    anyhow::ensure!(!rows.is_empty(), "{}: no training image to calibrate int8 on", path.display());
    let mut pixels = Vec::new();
    for &row in &rows {
        pixels.extend(reader.read_rows_bytes(row, 1)?);
    }
    let started = std::time::Instant::now();
    let cached = cache.then(|| ranges_cache(layout, &backbone, spec, settings, &pixels));
    let reused = cached.as_deref().and_then(read_ranges);
    let measured = reused.is_none();
    let measure = || -> anyhow::Result<Ranges> {
        let ranges = calibrate(engine, &backbone, spec, &pixels, rows.len(), settings)
            .with_context(|| format!("cannot calibrate int8 on {}", path.display()))?;
        if let Some(file) = &cached {
            write_ranges(file, &ranges)?;
        }
        Ok(ranges)
    };
    // The kernels do not depend on the ranges: they are quantized on a second thread while
    // ONNX Runtime builds the calibration session (which keeps one core busy).
    let (ranges, kernels) = std::thread::scope(|scope| {
        let kernels = scope.spawn(|| Kernels::of(&backbone.model));
        let ranges = match reused {
            Some(ranges) => Ok(ranges),
            None => measure(),
        };
        (ranges, kernels.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let ranges = ranges?;
    let quantized = quantize_with(&backbone.model, &kernels?, &ranges)?;
    // Read back from its own encoding: the quantized model then holds slices of these bytes,
    // not of the float backbone's file (which a user backbone's other initializers, kept as
    // they are, would otherwise keep in memory for the whole run).
    let bytes = cxr_onnx::Bytes::from(cxr_onnx::encode_model(&quantized));
    let sha256 = cxr_store::sha256_bytes(&bytes);
    let quantized = cxr_onnx::decode_shared(bytes, Path::new("quantized backbone"))?;
    let method = cxr_config::spelling(&settings.calibration);
    tracing::info!(
        images = rows.len(),
        method,
        ranges = if measured { "measured" } else { "reused from the feature cache" },
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "backbone quantized to int8"
    );
    Ok(LoadedBackbone {
        sha256,
        description: format!("{}, int8 ({method} ranges of {} train images)", backbone.description, rows.len()),
        layout: backbone.layout,
        model: quantized,
    })
}

/// `<feature cache>/int8-ranges/<key>.json`: the ranges of one calibration, keyed by the
/// float32 backbone, the features graph's preprocessing, the calibration settings and the
/// calibration images' pixels (so the same images and settings give the same file).
fn ranges_cache(
    layout: &Layout,
    backbone: &LoadedBackbone,
    spec: &FeatureSpec,
    settings: &Quantization,
    pixels: &[u8],
) -> std::path::PathBuf {
    let key = format!(
        "{}\n{}\n{}\n{}",
        backbone.sha256,
        serde_json::to_string(spec).expect("serialisable"),
        serde_json::to_string(settings).expect("serialisable"),
        cxr_store::sha256_bytes(pixels)
    );
    let hash = cxr_store::sha256_bytes(key.as_bytes());
    layout.feature_cache().join("int8-ranges").join(format!("{}.json", &hash[..16]))
}

/// The cached ranges, when the file is there and readable (else they are measured again).
fn read_ranges(path: &Path) -> Option<Ranges> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_ranges(path: &Path, ranges: &Ranges) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // f32 values are written as the shortest text that reads back as the same f32.
    cxr_store::write_atomic(path, &serde_json::to_vec(ranges)?)?;
    Ok(())
}

/// A percentile's value is rounded up to the top of its bin among this many equal bins
/// from 0 to the activation's max (as a histogram of the values would read it).
const BINS: usize = 2048;

/// Each activation's calibrated range `[lo, hi]`.
pub type Ranges = HashMap<String, (f32, f32)>;

/// The float activations to quantize: every convolution's and max-pool's data input that is
/// not a weight, and every max-pool's output.
pub fn activations(graph: &GraphProto) -> Vec<String> {
    let weights: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: &str| {
        if !weights.contains(name) && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    };
    for node in &graph.node {
        if matches!(node.op_type.as_str(), "Conv" | "MaxPool")
            && let Some(input) = node.input.first()
        {
            push(input);
        }
        if node.op_type == "MaxPool"
            && let Some(output) = node.output.first()
        {
            push(output);
        }
    }
    out
}

/// Runs the float32 `backbone` (behind the preprocessing of `spec`) over `images` (uint8
/// NHWC, `n` of them) in batches and returns the range of every activation to quantize.
///
/// The activations never leave ONNX Runtime whole: the calibration graph reduces each to
/// its min, max and shape, and (for `percentile`) to its largest values, as many as the
/// percentile leaves above it; only those few numbers are copied out per batch.
pub fn calibrate(
    engine: &Engine,
    backbone: &LoadedBackbone,
    spec: &FeatureSpec,
    images: &[u8],
    n: usize,
    settings: &Quantization,
) -> anyhow::Result<Ranges> {
    let names = activations(cxr_onnx::graph(&backbone.model));
    let percentile = matches!(settings.calibration, RangeCalibration::Percentile);
    let bytes = cxr_onnx::encode_model(&calibration_model(backbone, spec, &names, percentile)?);
    let (mut session, _) = engine.session_from_bytes(&bytes, Path::new("calibration model"))?;
    let per_image = (spec.height * spec.width * 3) as usize;
    // One run's inputs: the batch of images from `start`, and with `percentile` each
    // activation's `k` from `k_of(i)`.
    let inputs = |start: usize, count: usize, k_of: &dyn Fn(usize) -> i64| {
        let pixels = images[start * per_image..(start + count) * per_image].to_vec();
        let shape = vec![count, spec.height as usize, spec.width as usize, 3];
        let mut inputs = vec![("image".to_string(), Input::U8(shape, pixels))];
        if percentile {
            inputs.extend((0..names.len()).map(|i| (format!("k/{i}"), Input::I64(vec![1], vec![k_of(i)]))));
        }
        inputs
    };
    let batches: Vec<(usize, usize)> =
        (0..n).step_by(CALIBRATION_BATCH).map(|s| (s, CALIBRATION_BATCH.min(n - s))).collect();
    // Pass 1: min, max and the number of values (the top-k outputs, asked for one value each, are not read).
    let mut ranges: Vec<(f32, f32)> = vec![(f32::INFINITY, f32::NEG_INFINITY); names.len()];
    let mut totals = vec![0u64; names.len()];
    let summaries: Vec<String> =
        (0..names.len()).flat_map(|i| [format!("min/{i}"), format!("max/{i}"), format!("shape/{i}")]).collect();
    let summaries: Vec<&str> = summaries.iter().map(String::as_str).collect();
    for &(start, count) in &batches {
        let out = session.run(inputs(start, count, &|_| 1), &summaries)?;
        for (i, ((range, total), summary)) in ranges.iter_mut().zip(&mut totals).zip(out.chunks(3)).enumerate() {
            let (&[lo], &[hi]) = (summary[0].as_slice(), summary[1].as_slice()) else {
                anyhow::bail!("calibration: activation {} did not reduce to one min and max", names[i]);
            };
            *range = (range.0.min(lo), range.1.max(hi));
            *total += summary[2].iter().map(|&d| d as u64).product::<u64>();
        }
    }
    if percentile {
        // Pass 2: the upper end at the percentile of each non-negative activation's values
        // (a signed one, the normalised image, keeps its min/max: it has no outliers).
        let mut largest: Vec<Option<Largest>> = ranges
            .iter()
            .zip(&totals)
            .map(|(&(lo, hi), &total)| {
                (lo >= 0.0 && hi > 0.0 && total > 0).then(|| Largest::new(total, settings.percentile))
            })
            .collect();
        let wanted: Vec<String> = (0..names.len()).map(|i| format!("top/{i}")).collect();
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let ks: Vec<i64> = largest.iter().map(|l| l.as_ref().map_or(1, |l| l.k as i64)).collect();
        for &(start, count) in &batches {
            for (l, values) in largest.iter_mut().zip(session.run(inputs(start, count, &|i| ks[i]), &wanted)?) {
                if let Some(l) = l {
                    l.add(values);
                }
            }
        }
        for (range, l) in ranges.iter_mut().zip(&largest) {
            if let Some(l) = l {
                range.1 = percentile_bound(range.1, l.kth());
            }
        }
    }
    Ok(names.into_iter().zip(ranges).collect())
}

/// Images per calibration run: the activations stay inside ONNX Runtime, so the batch is
/// bounded by its working memory only (a 224-px VGG16 batch of 8 needs about 0.5 GB).
const CALIBRATION_BATCH: usize = 8;

/// The float32 backbone behind `spec`'s preprocessing, with three outputs per activation
/// `i` of `names`: `min/i` and `max/i` (scalars) and `shape/i` (its dims, as floats), and
/// with `percentile` a fourth, `top/i`: its `k/i` (an input) largest values, in any order.
fn calibration_model(
    backbone: &LoadedBackbone,
    spec: &FeatureSpec,
    names: &[String],
    percentile: bool,
) -> anyhow::Result<ModelProto> {
    let graph = cxr_onnx::graph(&backbone.model);
    let mut g = GraphBuilder::new("calibration");
    let x = crate::backbone::preprocessing(&mut g, spec, backbone.layout);
    crate::backbone::splice(&mut g, &backbone.model, &x, None)?;
    // Spliced values are prefixed, except the backbone's input, which is the preprocessing's output.
    let weights: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let input = graph.input.iter().map(|i| i.name.as_str()).find(|n| !weights.contains(n)).unwrap_or_default();
    let spliced = |name: &str| if name == input { x.clone() } else { format!("backbone/{name}") };
    let scalar: [Dim; 0] = [];
    let flat = g.const_i64(&[1], &[-1]);
    for (i, name) in names.iter().enumerate() {
        let value = spliced(name);
        let keep = [("keepdims", Attr::Int(0))];
        let min = g.op("ReduceMin", &[&value], &keep);
        g.output(&min, &format!("min/{i}"), DataType::Float, &scalar);
        let max = g.op("ReduceMax", &[&value], &keep);
        g.output(&max, &format!("max/{i}"), DataType::Float, &scalar);
        let shape = g.op("Shape", &[&value], &[]);
        let shape = g.op("Cast", &[&shape], &[("to", Attr::Int(DataType::Float as i64))]);
        g.output(&shape, &format!("shape/{i}"), DataType::Float, &[Dim::named("rank")]);
        if percentile {
            let k = g.input(&format!("k/{i}"), DataType::Int64, &[Dim::Fixed(1)]);
            let values = g.op("Reshape", &[&value, &flat], &[]);
            let size = g.op("Shape", &[&values], &[]);
            let k = g.op("Min", &[&k, &size], &[]);
            let attrs = [("axis", Attr::Int(-1)), ("largest", Attr::Int(1)), ("sorted", Attr::Int(0))];
            let top = g.op_multi("TopK", &[&values, &k], &attrs, 2);
            g.output(&top[0], &format!("top/{i}"), DataType::Float, &[Dim::named("k")]);
        }
    }
    Ok(g.into_model("cxr-train"))
}

/// The `k` largest of an activation's values over every batch, where `k` is the number of
/// values above its `percentile`: the smallest of them is the percentile's value.
struct Largest {
    k: usize,
    values: Vec<f32>,
}

impl Largest {
    /// For `total` values: the `keep`-th smallest (`keep` = `total` x `percentile` / 100,
    /// rounded up) is the `total - keep + 1`-th largest.
    fn new(total: u64, percentile: f64) -> Largest {
        let keep = ((total as f64 * percentile / 100.0).ceil() as u64).clamp(1, total);
        Largest { k: (total - keep + 1) as usize, values: Vec::new() }
    }

    /// Adds one batch's largest values (the `k` largest of a batch hold every one of the
    /// overall `k` largest that it has).
    fn add(&mut self, batch: Vec<f32>) {
        self.values.extend(batch);
        if self.values.len() > self.k {
            let k = self.k;
            self.values.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            self.values.truncate(k);
        }
    }

    /// The `k`-th largest value seen.
    fn kth(&self) -> f32 {
        self.values.iter().copied().fold(f32::INFINITY, f32::min)
    }
}

/// The upper end of a range whose max is `hi` at the percentile whose value is `kth`: the
/// top of the value's bin among `BINS` equal bins from 0 to `hi`.
fn percentile_bound(hi: f32, kth: f32) -> f32 {
    let bin = ((kth / hi * BINS as f32) as usize).min(BINS - 1);
    hi.min(hi * (bin + 1) as f32 / BINS as f32)
}

/// The uint8 scale and zero point that cover `[lo, hi]` (and 0, which must be exact).
fn activation_params(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zero)
}

/// Symmetric per-output-channel int8 weights of a `[C_out, ...]` kernel: values and scales.
fn quantize_weights(kernel: &[f32], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = kernel.len() / out_channels.max(1);
    let mut q = Vec::with_capacity(kernel.len());
    let mut scales = Vec::with_capacity(out_channels);
    for channel in kernel.chunks(per) {
        let max = channel.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        q.extend(channel.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    (q, scales)
}

/// Every convolution's float kernel as symmetric int8 per output channel (values and
/// scales), by the kernel's initializer name: the part of quantizing that does not depend
/// on the activations' ranges. A kernel that is not an initializer (computed) stays float.
pub struct Kernels(HashMap<String, (Vec<i8>, Vec<f32>)>);

impl Kernels {
    pub fn of(model: &ModelProto) -> Result<Kernels, BackboneError> {
        let invalid = |message: String| BackboneError::Invalid { path: "backbone".into(), message };
        let graph = cxr_onnx::graph(model);
        let initializers: HashMap<&str, &TensorProto> =
            graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut kernels = HashMap::new();
        for conv in graph.node.iter().filter(|n| n.op_type == "Conv" && n.input.len() >= 2) {
            let name = &conv.input[1];
            let Some(kernel) = initializers.get(name.as_str()).filter(|_| !kernels.contains_key(name)) else {
                continue;
            };
            let values = kernel.to_f32_vec().map_err(|e| invalid(e.to_string()))?;
            let out_channels =
                *kernel.dims.first().ok_or_else(|| invalid(format!("convolution kernel {name} has no dims")))?;
            if values.is_empty() {
                return Err(invalid(format!("convolution kernel {name} has no values")));
            }
            kernels.insert(name.clone(), quantize_weights(&values, out_channels as usize));
        }
        Ok(Kernels(kernels))
    }
}

/// The backbone with its activations, weights and biases quantized (see the module doc).
pub fn quantize(model: &ModelProto, ranges: &Ranges) -> Result<ModelProto, BackboneError> {
    quantize_with(model, &Kernels::of(model)?, ranges)
}

/// [`quantize`], with the kernels already quantized ([`Kernels::of`] the same model).
fn quantize_with(model: &ModelProto, kernels: &Kernels, ranges: &Ranges) -> Result<ModelProto, BackboneError> {
    let invalid = |message: String| BackboneError::Invalid { path: "backbone".into(), message };
    let mut graph = model.graph.clone().unwrap_or_default();
    let mut initializers: HashMap<String, TensorProto> =
        graph.initializer.drain(..).map(|t| (t.name.clone(), t)).collect();
    let mut weight_nodes: Vec<NodeProto> = Vec::new();
    let mut nodes: Vec<NodeProto> = Vec::new();
    let mut quantized: HashMap<String, (f32, u8)> =
        ranges.iter().map(|(name, &(lo, hi))| (name.clone(), activation_params(lo, hi))).collect();
    // A max-pool's output keeps its input's scale and zero point, so that ONNX Runtime runs
    // it on the uint8 values as they are.
    for pool in graph.node.iter().filter(|n| n.op_type == "MaxPool") {
        if let (Some(input), Some(output)) = (pool.input.first(), pool.output.first())
            && let Some(&params) = quantized.get(input.as_str())
            && quantized.contains_key(output.as_str())
        {
            quantized.insert(output.clone(), params);
        }
    }
    let dq = |name: &str| format!("{name}/dq");
    // An activation that is a graph input gets its Q/DQ first.
    let inputs: Vec<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    let qdq_after = |produced: &str, nodes: &mut Vec<NodeProto>, initializers: &mut HashMap<String, TensorProto>| {
        if let Some(&(scale, zero)) = quantized.get(produced) {
            let (s, z) = (format!("{produced}/q.scale"), format!("{produced}/q.zero"));
            initializers.insert(s.clone(), tensor(&s, &[], &[scale]));
            initializers.insert(z.clone(), tensor(&z, &[], &[zero]));
            nodes.push(node("QuantizeLinear", &[produced, &s, &z], &format!("{produced}/q"), &[]));
            nodes.push(node("DequantizeLinear", &[&format!("{produced}/q"), &s, &z], &dq(produced), &[]));
        }
    };
    for input in &inputs {
        qdq_after(input, &mut nodes, &mut initializers);
    }
    for original in std::mem::take(&mut graph.node) {
        let mut n = original.clone();
        for input in n.input.iter_mut() {
            if quantized.contains_key(input.as_str()) {
                *input = dq(input);
            }
        }
        if n.op_type == "Conv" && n.input.len() >= 2 {
            let input_scale = quantized.get(original.input[0].as_str()).map(|p| p.0);
            quantize_conv(&mut n, input_scale, kernels, &mut initializers, &mut weight_nodes).map_err(invalid)?;
        }
        let outputs = n.output.clone();
        nodes.push(n);
        for output in &outputs {
            qdq_after(output, &mut nodes, &mut initializers);
        }
    }
    // Graph outputs stay float: an output that was quantized is read from its DQ.
    for output in graph.output.iter_mut() {
        if quantized.contains_key(output.name.as_str()) {
            nodes.push(node("Identity", &[&dq(&output.name)], &format!("{}/float", output.name), &[]));
            output.name = format!("{}/float", output.name);
        }
    }
    weight_nodes.extend(nodes);
    graph.node = weight_nodes;
    let used: HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let mut kept: Vec<TensorProto> = initializers.into_values().filter(|t| used.contains(t.name.as_str())).collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    graph.initializer = kept;
    Ok(ModelProto { graph: Some(graph), ..model.clone() })
}

/// Replaces a convolution's float kernel (and bias, when its input is quantized) with
/// int8 (int32) initialisers behind `DequantizeLinear` nodes appended to `weight_nodes`.
fn quantize_conv(
    conv: &mut NodeProto,
    input_scale: Option<f32>,
    kernels: &Kernels,
    initializers: &mut HashMap<String, TensorProto>,
    weight_nodes: &mut Vec<NodeProto>,
) -> Result<(), String> {
    let kernel_name = conv.input[1].clone();
    let (Some((q, scales)), Some(kernel)) = (kernels.0.get(&kernel_name), initializers.get(&kernel_name)) else {
        return Ok(()); // a computed kernel stays float
    };
    let (dims, out_channels) = (kernel.dims.clone(), scales.len());
    let mut per_channel = PerChannel { initializers, weight_nodes };
    conv.input[1] = per_channel.dequantized(&kernel_name, &dims, q, scales);
    if let (Some(bias_name), Some(sx)) = (conv.input.get(2).cloned(), input_scale)
        && let Some(bias) = per_channel.initializers.get(&bias_name)
    {
        let b = bias.to_f32_vec().map_err(|e| e.to_string())?;
        let bias_scales: Vec<f32> = scales.iter().map(|sw| sx * sw).collect();
        let qb: Vec<i32> = b.iter().zip(&bias_scales).map(|(v, s)| (v / s).round() as i32).collect();
        conv.input[2] = per_channel.dequantized(&bias_name, &[out_channels as i64], &qb, &bias_scales);
    }
    Ok(())
}

/// Where quantized weights go: their initialisers, and the `DequantizeLinear` nodes that
/// restore them, one scale per output channel (axis 0), zero points 0.
struct PerChannel<'a> {
    initializers: &'a mut HashMap<String, TensorProto>,
    weight_nodes: &'a mut Vec<NodeProto>,
}

impl PerChannel<'_> {
    /// Stores `values` (`dims`, channels first) as `<name>/q` with its scales and zero points;
    /// returns the name of the dequantized value, `<name>/dq`.
    fn dequantized<T: cxr_onnx::RawElement + Default>(
        &mut self,
        name: &str,
        dims: &[i64],
        values: &[T],
        scales: &[f32],
    ) -> String {
        let channels = [scales.len() as i64];
        let (q, s, z) = (format!("{name}/q"), format!("{name}/q.scale"), format!("{name}/q.zero"));
        self.initializers.insert(q.clone(), tensor(&q, dims, values));
        self.initializers.insert(s.clone(), tensor(&s, &channels, scales));
        self.initializers.insert(z.clone(), tensor(&z, &channels, &vec![T::default(); scales.len()]));
        let dq = format!("{name}/dq");
        self.weight_nodes.push(node("DequantizeLinear", &[&q, &s, &z], &dq, &[("axis", Attr::Int(0))]));
        dq
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: &[(&str, Attr)]) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: format!("{output}/node"),
        op_type: op.to_string(),
        attribute: attrs.iter().map(|(n, v)| cxr_onnx::attribute(n, v.clone())).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_after_a_relu_use_all_256_levels_from_zero_and_signed_ones_a_zero_point() {
        assert_eq!(activation_params(0.0, 2.55), (0.01, 0));
        let (scale, zero) = activation_params(-1.0, 1.55);
        assert!((scale - 0.01).abs() < 1e-7 && zero == 100, "{scale} {zero}");
        // A range that misses 0 is widened to hold it (0 must be exact: padding).
        assert_eq!(activation_params(1.0, 2.55).1, 0);
        assert_eq!(activation_params(0.0, 0.0), (1.0, 0));
    }

    #[test]
    fn weights_are_symmetric_per_output_channel_within_half_a_step() {
        let kernel = [0.5f32, -1.0, 0.25, 0.0, 0.02, -0.01, 0.0, 0.0];
        let (q, scales) = quantize_weights(&kernel, 4);
        assert_eq!(scales.len(), 4);
        assert_eq!(&q[..2], &[64, -127], "the largest magnitude of a channel is 127 steps");
        assert_eq!(scales[3], 1.0, "an all-zero channel keeps a usable scale");
        for (i, (&v, &w)) in q.iter().zip(&kernel).enumerate() {
            let scale = scales[i / 2];
            assert!((v as f32 * scale - w).abs() <= scale / 2.0 + 1e-7, "weight {i}");
        }
    }

    #[test]
    fn vgg16_gets_int8_kernels_and_uint8_activations_with_max_pools_keeping_their_scale() {
        let model = crate::backbone::vgg16_model(&crate::backbone::random_convs(1), "test");
        let graph = model.graph.as_ref().unwrap();
        let names = activations(graph);
        // The image, the 8 ReLU outputs a convolution reads, the 5 a max-pool reads, and the
        // 5 max-pool outputs (4 of them read by a convolution), each once.
        assert_eq!(names.len(), 1 + 8 + 5 + 5, "{names:?}");
        let ranges: Ranges = names.iter().enumerate().map(|(i, n)| (n.clone(), (0.0, 1.0 + i as f32))).collect();
        let quantized = quantize(&model, &ranges).unwrap();
        let q = quantized.graph.as_ref().unwrap();
        let initializer = |name: &str| q.initializer.iter().find(|t| t.name == name);
        for conv in q.node.iter().filter(|n| n.op_type == "Conv") {
            assert!(conv.input[0].ends_with("/dq") && conv.input[1].ends_with("kernel/dq"), "{conv:?}");
            let kernel = conv.input[1].trim_end_matches("/dq");
            assert!(initializer(kernel).is_none(), "the float kernel {kernel} is gone");
            assert_eq!(initializer(&format!("{kernel}/q")).unwrap().data_type, DataType::Int8 as i32);
            assert_eq!(initializer(&format!("{}/q", conv.input[2].trim_end_matches("/dq"))).unwrap().data_type, 6);
        }
        for pool in q.node.iter().filter(|n| n.op_type == "MaxPool") {
            let scale = |value: &str| initializer(&format!("{value}/q.scale")).unwrap().to_f32_vec().unwrap();
            assert_eq!(scale(pool.input[0].trim_end_matches("/dq")), scale(&pool.output[0]), "{}", pool.name);
        }
        assert_eq!(q.output, graph.output, "the output stays float, under its name");
    }

    /// The percentile as a histogram of every value reads it: the top of the first bin at
    /// which the running count reaches the percentile.
    fn histogram_bound(values: &[f32], percentile: f64) -> f32 {
        let hi = values.iter().copied().fold(0f32, f32::max);
        let mut histogram = vec![0u64; BINS];
        for v in values {
            histogram[((v / hi * BINS as f32) as usize).min(BINS - 1)] += 1;
        }
        let keep = (values.len() as f64 * percentile / 100.0).ceil() as u64;
        let mut seen = 0;
        for (bin, &count) in histogram.iter().enumerate() {
            seen += count;
            if seen >= keep {
                return hi.min(hi * (bin + 1) as f32 / BINS as f32);
            }
        }
        hi
    }

    #[test]
    fn the_largest_values_merged_over_batches_give_the_histograms_percentile() {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (percentile, n) in [(99.999, 300_000), (99.0, 20_000), (50.0, 5_000), (100.0, 1_000), (0.0, 1_000)] {
            // ReLU-like: many exact zeros, a long tail and a few repeated outliers.
            let values: Vec<f32> = (0..n)
                .map(|i| if i % 97 == 0 { 40.0 } else { (rng.random::<f32>() - 0.4).max(0.0).powi(3) * 10.0 })
                .collect();
            let hi = values.iter().copied().fold(0f32, f32::max);
            let mut largest = Largest::new(values.len() as u64, percentile);
            for batch in values.chunks(n / 7 + 1) {
                // What TopK hands back: a batch's k largest, in any order.
                let mut top = batch.to_vec();
                top.sort_by(|a, b| b.total_cmp(a));
                top.truncate(largest.k);
                top.reverse();
                largest.add(top);
            }
            assert_eq!(percentile_bound(hi, largest.kth()), histogram_bound(&values, percentile), "{percentile}");
        }
    }
}
