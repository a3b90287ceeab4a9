//! VGG16's convolutions and its notop graph: the layer table, weights as `Conv`s (seeded
//! He-normal, or the ImageNet ones from `imagenet.rs`), and the feature length at a size.

use cxr_config::Pooling;
use cxr_onnx::{Attr, DataType, Dim, GraphBuilder, ModelProto, tensor_f32};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::FeatureSpec;

/// VGG16's convolution blocks: (number of 3x3 convolutions, output channels).
pub const VGG16_BLOCKS: [(usize, usize); 5] = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)];

/// One convolution's weights: kernel OIHW and bias.
#[derive(Debug, Clone)]
pub struct Conv {
    pub name: String,
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel: Vec<f32>,
    pub bias: Vec<f32>,
}

/// VGG16's convolutions with seeded He-normal kernels and zero biases.
pub fn random_convs(seed: u64) -> Vec<Conv> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb0b);
    let mut convs = Vec::new();
    let mut in_channels = 3;
    for (b, (n, out)) in VGG16_BLOCKS.iter().enumerate() {
        for c in 0..*n {
            let fan_in = (in_channels * 9) as f32;
            let std = (2.0 / fan_in).sqrt();
            let kernel = (0..out * in_channels * 9).map(|_| crate::init::normal(&mut rng) * std).collect();
            convs.push(Conv {
                name: format!("block{}_conv{}", b + 1, c + 1),
                out_channels: *out,
                in_channels,
                kernel,
                bias: vec![0.0; *out],
            });
            in_channels = *out;
        }
    }
    convs
}

/// The VGG16 notop graph: float `[N,3,H,W]` (BGR, caffe-normalised for ImageNet
/// weights) -> `[N,512,H/32,W/32]`, dynamic N, H, W.
pub fn vgg16_model(convs: &[Conv], description: &str) -> ModelProto {
    let mut g = GraphBuilder::new("vgg16_notop");
    let mut x = g.input("input", DataType::Float, &[Dim::named("N"), Dim::Fixed(3), Dim::named("H"), Dim::named("W")]);
    let mut k = 0;
    for (n, _) in VGG16_BLOCKS {
        for _ in 0..n {
            let c = &convs[k];
            let w = g.initializer(tensor_f32(
                &format!("{}/kernel", c.name),
                &[c.out_channels as i64, c.in_channels as i64, 3, 3],
                &c.kernel,
            ));
            let b = g.initializer(tensor_f32(&format!("{}/bias", c.name), &[c.out_channels as i64], &c.bias));
            let y = g.op(
                "Conv",
                &[&x, &w, &b],
                &[("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))],
            );
            x = g.op("Relu", &[&y], &[]);
            k += 1;
        }
        x = g.op("MaxPool", &[&x], &[("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))]);
    }
    g.output(&x, "features", DataType::Float, &[Dim::named("N"), Dim::Fixed(512), Dim::named("h"), Dim::named("w")]);
    g.metadata("description", description);
    g.into_model("cxr-train")
}

/// Feature vector length for VGG16 at `spec`'s size (each of 5 poolings halves, rounding down).
pub fn vgg16_feature_dim(spec: &FeatureSpec) -> usize {
    let shrink = |mut s: u32| {
        for _ in 0..5 {
            s /= 2;
        }
        s as usize
    };
    match spec.pooling {
        Pooling::Flatten => shrink(spec.height) * shrink(spec.width) * 512,
        Pooling::Avg | Pooling::Max => 512,
    }
}
