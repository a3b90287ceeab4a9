//! `preprocess`: how images are decoded, resized and stored.

use serde::{Deserialize, Serialize};

/// Decode + resize settings; the same transform runs in `infer` on raw files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preprocess {
    /// Output `[height, width]`.
    pub size: [u32; 2],
    /// Channel order of the stored tensors (the tutorial swapped BGR -> RGB).
    pub channel_order: ChannelOrder,
    pub resize_filter: ResizeFilter,
    /// Contrast normalisation of each image after resizing (exposure varies between machines).
    pub equalize: Equalize,
    pub on_error: OnError,
    /// Images with more pixels than this are rejected (decompression bombs).
    pub max_pixels: u64,
    /// Images with a side shorter than this are rejected.
    pub min_side: u32,
    /// Files larger than this many bytes are rejected before they are read.
    pub max_file_bytes: u64,
    /// Images whose decoded samples would take more than this many bytes (width x height x
    /// channels x bytes per sample, read from the header) are rejected before decoding: the
    /// memory a worker needs is bounded by this, not by the file's size.
    pub max_decoded_bytes: u64,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            size: [224, 224],
            channel_order: ChannelOrder::Rgb,
            resize_filter: ResizeFilter::Area,
            equalize: Equalize::None,
            on_error: OnError::Skip,
            max_pixels: 100_000_000,
            min_side: 16,
            // 256 MiB: above any single chest radiograph (a 16-bit 4k x 4k DICOM is 32 MiB).
            max_file_bytes: 256 << 20,
            // 512 MiB: a 100-megapixel 16-bit grey image fits, a 16-bit RGBA one does not.
            max_decoded_bytes: 512 << 20,
            threads: 0,
        }
    }
}

impl Preprocess {
    /// Decoding threads: `threads`, or one per core when it is 0.
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeFilter {
    /// Box/area averaging: no aliasing when shrinking 1800 px to 50 px.
    Area,
    /// What cv2.resize does by default (the tutorial).
    Bilinear,
    Lanczos3,
    Nearest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Equalize {
    /// Pixels as decoded.
    None,
    /// Global histogram equalisation of the image's brightness.
    Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Record the bad file in `rejects.csv` and go on.
    Skip,
    /// Stop at the first bad file.
    Fail,
}
