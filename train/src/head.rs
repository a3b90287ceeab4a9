//! The trained head and its ONNX Runtime training artifacts, built from standard
//! `ai.onnx` operators (ONNX Runtime's own training API is gone from current builds).
//!
//! Head: `features -> [Dense(h) -> ReLU -> Dropout]* -> Dense(classes) -> softmax`.
//! - `training_model.onnx`: forward with dropout, class-weighted cross-entropy, and the
//!   hand-derived backward pass; outputs the loss and one gradient per parameter.
//! - `eval_model.onnx`: forward without dropout, the same loss, and probabilities.
//! - `optimizer_model.onnx`: one SGD-momentum (Keras form) or Adam update of every parameter.
//!
//! Dropout masks are graph inputs drawn by the trainer from a generator seeded by
//! (seed, epoch, step), so a resumed run draws exactly the masks an uninterrupted
//! run would; ONNX's Dropout op keeps its generator state inside the session.

use cxr_config::{Optimizer, OptimizerKind};
use cxr_onnx::{Attr, DataType, Dim, GraphBuilder, ModelProto, tensor_f32, tensor_f64};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Shape of the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadShape {
    pub input: usize,
    pub hidden: Vec<usize>,
    pub classes: usize,
}

impl HeadShape {
    /// `(rows, cols)` of each Dense layer's kernel, input first.
    pub fn layers(&self) -> Vec<(usize, usize)> {
        let mut sizes = vec![self.input];
        sizes.extend(&self.hidden);
        sizes.push(self.classes);
        sizes.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// Parameters of the head, weights and biases.
    pub fn parameter_count(&self) -> u64 {
        self.layers().iter().map(|&(r, c)| (r as u64 + 1) * c as u64).sum()
    }

    /// Refuses a head too large to train (each parameter is held several times: value,
    /// gradient, optimizer slots, best copy), naming the keys that size it.
    pub fn check_size(&self) -> anyhow::Result<()> {
        const MAX_PARAMETERS: u64 = 1 << 28;
        let n = self.parameter_count();
        anyhow::ensure!(
            n <= MAX_PARAMETERS,
            "the head would have {n} parameters ({} features into model.head.hidden {:?}), above the limit of {MAX_PARAMETERS} (about 1 GiB each copy): lower model.head.hidden or use model.pooling: avg",
            self.input,
            self.hidden
        );
        Ok(())
    }

    /// Parameter names and shapes in order: `dense{i}.kernel`, `dense{i}.bias`, ...
    pub fn params(&self) -> Vec<(String, Vec<usize>)> {
        self.layers()
            .iter()
            .enumerate()
            .flat_map(|(i, &(r, c))| [(format!("dense{i}.kernel"), vec![r, c]), (format!("dense{i}.bias"), vec![c])])
            .collect()
    }
}

/// Named parameter values, in [`HeadShape::params`] order.
pub type Params = Vec<(String, Vec<f32>)>;

/// Keras' default init: Glorot-uniform kernels, zero biases; seeded.
pub fn init_params(shape: &HeadShape, seed: u64) -> Params {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4ead);
    let mut out = Vec::new();
    for (i, (r, c)) in shape.layers().into_iter().enumerate() {
        out.push((format!("dense{i}.kernel"), crate::init::glorot_uniform(&mut rng, r, c)));
        out.push((format!("dense{i}.bias"), vec![0.0; c]));
    }
    out
}

/// Element type the graphs compute in (float64 only for gradient checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    fn data_type(self) -> DataType {
        match self {
            Precision::F32 => DataType::Float,
            Precision::F64 => DataType::Double,
        }
    }
}

struct Builder {
    g: GraphBuilder,
    precision: Precision,
}

impl Builder {
    fn new(name: &str, precision: Precision) -> Self {
        Builder { g: GraphBuilder::new(name), precision }
    }

    fn constant(&mut self, dims: &[i64], values: &[f64]) -> String {
        let name = self.g.fresh("const");
        let t = match self.precision {
            Precision::F32 => tensor_f32(&name, dims, &values.iter().map(|&v| v as f32).collect::<Vec<_>>()),
            Precision::F64 => tensor_f64(&name, dims, values),
        };
        self.g.initializer(t)
    }

    fn input(&mut self, name: &str, shape: &[Dim]) -> String {
        let dt = self.precision.data_type();
        self.g.input(name, dt, shape)
    }

    fn output(&mut self, value: &str, name: &str, shape: &[Dim]) {
        let dt = self.precision.data_type();
        self.g.output(value, name, dt, shape);
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        self.g.op(op, inputs, attrs)
    }

    fn param_inputs(&mut self, shape: &HeadShape, prefix: &str) -> Vec<String> {
        shape
            .params()
            .iter()
            .map(|(name, dims)| {
                let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Fixed(d as i64)).collect();
                self.input(&format!("{prefix}{name}"), &dims)
            })
            .collect()
    }
}

fn n() -> Dim {
    Dim::named("N")
}

/// Forward pass; returns (layer inputs a_i, pre-activations z_i, logits).
fn forward(
    b: &mut Builder,
    x: &str,
    params: &[String],
    masks: Option<&[String]>,
) -> (Vec<String>, Vec<String>, String) {
    let layers = params.len() / 2;
    let mut a = vec![x.to_string()];
    let mut z = Vec::new();
    for i in 0..layers - 1 {
        let zi = b.op("Gemm", &[&a[i], &params[2 * i], &params[2 * i + 1]], &[]);
        let r = b.op("Relu", &[&zi], &[]);
        let ai = match masks {
            Some(m) => b.op("Mul", &[&r, &m[i]], &[]),
            None => r,
        };
        z.push(zi);
        a.push(ai);
    }
    let k = layers - 1;
    let logits = b.op("Gemm", &[&a[k], &params[2 * k], &params[2 * k + 1]], &[]);
    (a, z, logits)
}

/// Class-weighted cross-entropy: `sum_n w_n * -log softmax(logits)_n[y_n]` (+ L2).
/// `w_n` already includes the 1/N of the batch mean, so the loss is Keras' weighted mean.
fn loss(
    b: &mut Builder,
    logits: &str,
    labels: &str,
    weights: &str,
    classes: usize,
    params: &[String],
    l2: f64,
) -> (String, String) {
    let logp = b.op("LogSoftmax", &[logits], &[("axis", Attr::Int(1))]);
    let depth = b.g.const_i64(&[1], &[classes as i64]);
    // ONNX Runtime's OneHot has no float64 kernel: build it in float32 and cast.
    let off_on = b.g.const_f32(&[2], &[0.0, 1.0]);
    let mut onehot = b.op("OneHot", &[labels, &depth, &off_on], &[("axis", Attr::Int(-1))]);
    if b.precision == Precision::F64 {
        onehot = b.op("Cast", &[&onehot], &[("to", Attr::Int(DataType::Double as i64))]);
    }
    let picked = b.op("Mul", &[&onehot, &logp], &[]);
    let axis1 = b.g.const_i64(&[1], &[1]);
    let per_sample = b.op("ReduceSum", &[&picked, &axis1], &[("keepdims", Attr::Int(0))]);
    let weighted = b.op("Mul", &[&per_sample, weights], &[]);
    let total = b.op("ReduceSum", &[&weighted], &[("keepdims", Attr::Int(0))]);
    let mut loss = b.op("Neg", &[&total], &[]);
    if l2 > 0.0 {
        let half = b.constant(&[], &[0.5 * l2]);
        for kernel in params.iter().step_by(2) {
            let sq = b.op("Mul", &[kernel, kernel], &[]);
            let s = b.op("ReduceSum", &[&sq], &[("keepdims", Attr::Int(0))]);
            let term = b.op("Mul", &[&s, &half], &[]);
            loss = b.op("Add", &[&loss, &term], &[]);
        }
    }
    (loss, onehot)
}

/// `training_model.onnx`: inputs `features`, `labels`, `weights`, `mask{i}` per hidden
/// layer and every parameter; outputs `loss`, `probabilities` and `grad.<param>`.
pub fn training_model(shape: &HeadShape, l2: f64, precision: Precision) -> ModelProto {
    let mut b = Builder::new("training", precision);
    let x = b.input("features", &[n(), Dim::Fixed(shape.input as i64)]);
    let labels = b.g.input("labels", DataType::Int64, &[n()]);
    let weights = b.input("weights", &[n()]);
    let masks: Vec<String> = shape
        .hidden
        .iter()
        .enumerate()
        .map(|(i, &h)| b.input(&format!("mask{i}"), &[n(), Dim::Fixed(h as i64)]))
        .collect();
    let params = b.param_inputs(shape, "");
    let (a, z, logits) = forward(&mut b, &x, &params, Some(&masks));
    let (loss_value, onehot) = loss(&mut b, &logits, &labels, &weights, shape.classes, &params, l2);
    let probs = b.op("Softmax", &[&logits], &[("axis", Attr::Int(1))]);

    // d loss / d logits = (softmax - onehot) * w_n
    let diff = b.op("Sub", &[&probs, &onehot], &[]);
    let axis1 = b.g.const_i64(&[1], &[1]);
    let w_col = b.op("Unsqueeze", &[&weights, &axis1], &[]);
    let mut delta = b.op("Mul", &[&diff, &w_col], &[]);
    let axis0 = b.g.const_i64(&[1], &[0]);
    let layers = params.len() / 2;
    let mut grads = vec![String::new(); params.len()];
    let l2c = (l2 > 0.0).then(|| b.constant(&[], &[l2]));
    for i in (0..layers).rev() {
        let mut gk = b.op("Gemm", &[&a[i], &delta], &[("transA", Attr::Int(1))]);
        if let Some(c) = &l2c {
            let decay = b.op("Mul", &[&params[2 * i], c], &[]);
            gk = b.op("Add", &[&gk, &decay], &[]);
        }
        grads[2 * i] = gk;
        grads[2 * i + 1] = b.op("ReduceSum", &[&delta, &axis0], &[("keepdims", Attr::Int(0))]);
        if i > 0 {
            // Back through dropout (the mask is already scaled by 1/keep) and ReLU.
            let da = b.op("Gemm", &[&delta, &params[2 * i]], &[("transB", Attr::Int(1))]);
            let dm = b.op("Mul", &[&da, &masks[i - 1]], &[]);
            let zero = b.constant(&[], &[0.0]);
            let positive = b.op("Greater", &[&z[i - 1], &zero], &[]);
            let gate = b.op("Cast", &[&positive], &[("to", Attr::Int(precision.data_type() as i64))]);
            delta = b.op("Mul", &[&dm, &gate], &[]);
        }
    }
    b.output(&loss_value, "loss", &[]);
    b.output(&probs, "probabilities", &[n(), Dim::Fixed(shape.classes as i64)]);
    for ((name, dims), grad) in shape.params().iter().zip(&grads) {
        let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Fixed(d as i64)).collect();
        b.output(grad, &format!("grad.{name}"), &dims);
    }
    b.g.metadata("artifact", "training_model");
    b.g.into_model("cxr-train")
}

/// `eval_model.onnx`: `features`, `labels`, `weights` and parameters -> `loss`, `probabilities` (no dropout).
pub fn eval_model(shape: &HeadShape, l2: f64, precision: Precision) -> ModelProto {
    let mut b = Builder::new("eval", precision);
    let x = b.input("features", &[n(), Dim::Fixed(shape.input as i64)]);
    let labels = b.g.input("labels", DataType::Int64, &[n()]);
    let weights = b.input("weights", &[n()]);
    let params = b.param_inputs(shape, "");
    let (_, _, logits) = forward(&mut b, &x, &params, None);
    let (loss_value, _) = loss(&mut b, &logits, &labels, &weights, shape.classes, &params, l2);
    let probs = b.op("Softmax", &[&logits], &[("axis", Attr::Int(1))]);
    b.output(&loss_value, "loss", &[]);
    b.output(&probs, "probabilities", &[n(), Dim::Fixed(shape.classes as i64)]);
    b.g.metadata("artifact", "eval_model");
    b.g.into_model("cxr-train")
}

/// Names of the optimizer state slots per parameter.
pub fn optimizer_slots(kind: OptimizerKind) -> &'static [&'static str] {
    match kind {
        OptimizerKind::Sgd => &["velocity"],
        OptimizerKind::Adam => &["m", "v"],
    }
}

/// `optimizer_model.onnx`: inputs `lr`, `step` (1-based, float), and per parameter
/// `<p>`, `grad.<p>` and its state slots; outputs `new.<p>` and `new.<slot>.<p>`.
///
/// SGD in Keras' form: `v' = m*v - lr*g`, `w' = w + v'`.
/// Adam as Keras: `m' = m + (g-m)(1-b1)`, `v' = v + (g^2-v)(1-b2)`,
/// `w' = w - lr*sqrt(1-b2^t)/(1-b1^t) * m' / (sqrt(v') + eps)`.
pub fn optimizer_model(shape: &HeadShape, opt: &Optimizer) -> ModelProto {
    let mut b = Builder::new("optimizer", Precision::F32);
    let lr = b.input("lr", &[]);
    let step = b.input("step", &[]);
    let mut outputs = Vec::new();
    let c = |b: &mut Builder, v: f64| b.constant(&[], &[v]);
    for (name, dims) in shape.params() {
        let d: Vec<Dim> = dims.iter().map(|&x| Dim::Fixed(x as i64)).collect();
        let w = b.input(&name, &d);
        let g = b.input(&format!("grad.{name}"), &d);
        match opt.kind {
            OptimizerKind::Sgd => {
                let v = b.input(&format!("velocity.{name}"), &d);
                let m = c(&mut b, opt.momentum);
                let mv = b.op("Mul", &[&v, &m], &[]);
                let lg = b.op("Mul", &[&g, &lr], &[]);
                let v2 = b.op("Sub", &[&mv, &lg], &[]);
                let w2 = b.op("Add", &[&w, &v2], &[]);
                outputs.push((w2, name.clone(), d.clone()));
                outputs.push((v2, format!("velocity.{name}"), d));
            }
            OptimizerKind::Adam => {
                let m = b.input(&format!("m.{name}"), &d);
                let v = b.input(&format!("v.{name}"), &d);
                let (b1, b2) = (c(&mut b, opt.beta1), c(&mut b, opt.beta2));
                let (one_b1, one_b2) = (c(&mut b, 1.0 - opt.beta1), c(&mut b, 1.0 - opt.beta2));
                let gm = b.op("Sub", &[&g, &m], &[]);
                let gm = b.op("Mul", &[&gm, &one_b1], &[]);
                let m2 = b.op("Add", &[&m, &gm], &[]);
                let g2 = b.op("Mul", &[&g, &g], &[]);
                let gv = b.op("Sub", &[&g2, &v], &[]);
                let gv = b.op("Mul", &[&gv, &one_b2], &[]);
                let v2 = b.op("Add", &[&v, &gv], &[]);
                let one = c(&mut b, 1.0);
                let b1t = b.op("Pow", &[&b1, &step], &[]);
                let b2t = b.op("Pow", &[&b2, &step], &[]);
                let c1 = b.op("Sub", &[&one, &b1t], &[]);
                let c2 = b.op("Sub", &[&one, &b2t], &[]);
                let s2 = b.op("Sqrt", &[&c2], &[]);
                let alpha = b.op("Mul", &[&lr, &s2], &[]);
                let alpha = b.op("Div", &[&alpha, &c1], &[]);
                let eps = c(&mut b, opt.epsilon);
                let sv = b.op("Sqrt", &[&v2], &[]);
                let den = b.op("Add", &[&sv, &eps], &[]);
                let ratio = b.op("Div", &[&m2, &den], &[]);
                let upd = b.op("Mul", &[&ratio, &alpha], &[]);
                let w2 = b.op("Sub", &[&w, &upd], &[]);
                outputs.push((w2, name.clone(), d.clone()));
                outputs.push((m2, format!("m.{name}"), d.clone()));
                outputs.push((v2, format!("v.{name}"), d));
            }
        }
    }
    for (value, name, d) in outputs {
        b.output(&value, &format!("new.{name}"), &d);
    }
    b.g.metadata("artifact", "optimizer_model");
    b.g.into_model("cxr-train")
}

/// Appends the head (eval form, fixed parameters) and a softmax to a features graph.
/// Returns the probabilities and, per Dense layer, its kernel's initialiser and the value
/// it computes (what a Grad-CAM graph differentiates through).
pub fn append_head(
    g: &mut GraphBuilder,
    features: &str,
    params: &Params,
    temperature: f64,
) -> (String, Vec<cxr_store::model_meta::ExplainLayer>) {
    let mut x = features.to_string();
    let layers = params.len() / 2;
    let mut dense = Vec::with_capacity(layers);
    for i in 0..layers {
        let (kname, kernel) = &params[2 * i];
        let (bname, bias) = &params[2 * i + 1];
        let cols = bias.len();
        let rows = kernel.len() / cols;
        let k = g.initializer(tensor_f32(&format!("head/{kname}"), &[rows as i64, cols as i64], kernel));
        let bb = g.initializer(tensor_f32(&format!("head/{bname}"), &[cols as i64], bias));
        x = g.op("Gemm", &[&x, &k, &bb], &[]);
        dense.push(cxr_store::model_meta::ExplainLayer { kernel: k, output: x.clone() });
        if i + 1 < layers {
            x = g.op("Relu", &[&x], &[]);
        }
    }
    if temperature != 1.0 {
        // Temperature scaling: the logits divided by one fitted constant before the softmax.
        let t = g.const_f32(&[], &[temperature as f32]);
        x = g.op("Div", &[&x, &t], &[]);
    }
    (g.op("Softmax", &[&x], &[("axis", Attr::Int(1))]), dense)
}
