//! The one image transform of the project: any chest X-ray file (JPEG, PNG,
//! DICOM, ...) -> uint8 `[H, W, 3]` in the configured channel order.
//! `preprocess` and `infer` both call [`Transform::apply_file`], so a model never
//! sees pixels prepared differently from those it was trained on.

mod decode;
mod decoded;
mod dicom_guard;
mod file;
mod jpeg;
mod resize;

use std::path::{Path, PathBuf};

use cxr_config::{ChannelOrder, Equalize, Preprocess, ResizeFilter};

pub use decoded::{Decoded, Format, detect_format};
pub use file::read_bounded;

/// Why a file could not be turned into a tensor; the message is what `rejects.csv` records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImagingError {
    #[error("cannot read file: {0}")]
    Read(String),
    #[error("empty file")]
    Empty,
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("unsupported format: {0}")]
    Unsupported(String),
    #[error("corrupt or truncated {format}: {message}")]
    Corrupt { format: &'static str, message: String },
    #[error("image is {width}x{height} = {pixels} pixels, over preprocess.max_pixels {max}")]
    TooLarge { width: u32, height: u32, pixels: u64, max: u64 },
    #[error("image is {width}x{height}, smaller than preprocess.min_side {min}")]
    TooSmall { width: u32, height: u32, min: u32 },
    #[error("not a regular file: {0}")]
    NotAFile(&'static str),
    #[error("file is {bytes} bytes, over preprocess.max_file_bytes {max}")]
    FileTooLarge { bytes: u64, max: u64 },
    #[error("decoding would take {bytes} bytes, over preprocess.max_decoded_bytes {max}")]
    DecodedTooLarge { bytes: u64, max: u64 },
}

impl ImagingError {
    /// A short machine-friendly reason kind for summaries (`empty`, `corrupt`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ImagingError::Read(_) => "unreadable",
            ImagingError::Empty => "empty",
            ImagingError::NotAnImage(_) => "not-an-image",
            ImagingError::Unsupported(_) => "unsupported",
            ImagingError::Corrupt { .. } => "corrupt",
            ImagingError::TooLarge { .. } => "too-large",
            ImagingError::TooSmall { .. } => "too-small",
            ImagingError::NotAFile(_) => "not-a-file",
            ImagingError::FileTooLarge { .. } => "file-too-large",
            ImagingError::DecodedTooLarge { .. } => "too-large",
        }
    }
}

/// A transformed image and what was known of its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// `height * width * 3` bytes, row-major, channels last.
    pub pixels: Vec<u8>,
    /// Size of the source image before any scaling.
    pub source_width: u32,
    pub source_height: u32,
    pub format: Format,
}

/// Decode + resize settings, taken from the `preprocess` config section.
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    pub height: u32,
    pub width: u32,
    pub channel_order: ChannelOrder,
    pub filter: ResizeFilter,
    pub equalize: Equalize,
    pub max_pixels: u64,
    pub min_side: u32,
    /// Files larger than this are rejected before they are read.
    pub max_file_bytes: u64,
    /// Images whose decoded samples would take more bytes than this are rejected unread.
    pub max_decoded_bytes: u64,
    /// Let JPEG decoding skip detail the output cannot show (IDCT scaling by 1/2, 1/4, 1/8).
    pub jpeg_scaling: bool,
}

impl Transform {
    pub fn from_config(p: &Preprocess) -> Transform {
        Transform {
            height: p.size[0],
            width: p.size[1],
            channel_order: p.channel_order,
            filter: p.resize_filter,
            equalize: p.equalize,
            max_pixels: p.max_pixels,
            min_side: p.min_side,
            max_file_bytes: p.max_file_bytes,
            max_decoded_bytes: p.max_decoded_bytes,
            jpeg_scaling: true,
        }
    }

    /// The transform that made a model's training images (`preprocess`, as its metadata
    /// records it) at its input size and channel order.
    pub fn of_model(preprocess: &Preprocess, size: [u32; 2], channel_order: ChannelOrder) -> Transform {
        Transform { height: size[0], width: size[1], channel_order, ..Transform::from_config(preprocess) }
    }

    /// Bytes of one transformed image.
    pub fn output_len(&self) -> usize {
        self.height as usize * self.width as usize * 3
    }

    /// Reads one file within this transform's limits: a regular file of at most
    /// `max_file_bytes` (FIFOs, devices and sockets are refused without blocking).
    pub fn read_file(&self, path: &Path) -> Result<Vec<u8>, ImagingError> {
        read_bounded(path, self.max_file_bytes)
    }

    /// Reads and transforms one file.
    pub fn apply_file(&self, path: &Path) -> Result<Prepared, ImagingError> {
        self.apply_bytes(&self.read_file(path)?)
    }

    /// Transforms the bytes of one file (format detected from content, not the name).
    pub fn apply_bytes(&self, bytes: &[u8]) -> Result<Prepared, ImagingError> {
        let decoded = decode::decode(bytes, self)?;
        let (source_width, source_height, format) = (decoded.source_width, decoded.source_height, decoded.format);
        Ok(Prepared { pixels: resize::to_tensor(decoded, self)?, source_width, source_height, format })
    }

    /// The image as a person should see it: decoded as [`Transform::apply_bytes`] decodes
    /// it (orientation, DICOM windowing, limits) but neither equalised nor stretched; its
    /// aspect ratio kept, its longer side at most `long_side` (and at least `min_side`, so
    /// that small images stay legible). Grey stays one channel.
    pub fn display_bytes(&self, bytes: &[u8], long_side: u32, min_side: u32) -> Result<Decoded, ImagingError> {
        // JPEG decoding scales down (by 1/2, 1/4, 1/8) to at least 3/4 of the longer side on
        // both sides, and the picture is drawn at the size it came out (at most `long_side`):
        // a display-sized decode, a quarter of the work of one twice as large.
        let target = Transform { height: long_side * 3 / 4, width: long_side * 3 / 4, ..self.clone() };
        let decoded = decode::decode(bytes, &target)?;
        let long = long_side.min(decoded.width.max(decoded.height)).max(min_side);
        let scale = long as f64 / decoded.width.max(decoded.height).max(1) as f64;
        let width = ((decoded.width as f64 * scale).round() as u32).max(1);
        let height = ((decoded.height as f64 * scale).round() as u32).max(1);
        resize::resize_keeping_channels(decoded, width, height)
    }

    /// Refuses an image whose decoded samples would take more than `max_decoded_bytes`.
    pub(crate) fn check_decoded_bytes(&self, bytes: u64) -> Result<(), ImagingError> {
        if bytes > self.max_decoded_bytes {
            return Err(ImagingError::DecodedTooLarge { bytes, max: self.max_decoded_bytes });
        }
        Ok(())
    }

    pub(crate) fn check_size(&self, width: u32, height: u32) -> Result<(), ImagingError> {
        let pixels = width as u64 * height as u64;
        if pixels > self.max_pixels {
            return Err(ImagingError::TooLarge { width, height, pixels, max: self.max_pixels });
        }
        if width < self.min_side || height < self.min_side {
            return Err(ImagingError::TooSmall { width, height, min: self.min_side });
        }
        Ok(())
    }
}

/// File names that are never images and are skipped silently (`.DS_Store`, `Thumbs.db`, dotfiles).
pub fn is_ignored_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.') || name.eq_ignore_ascii_case("thumbs.db") || name.eq_ignore_ascii_case("desktop.ini")
}

/// Every non-ignored file below `dir`, recursively, sorted by path.
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            if is_ignored_name(&path) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
