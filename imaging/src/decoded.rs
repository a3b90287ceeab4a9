//! Decoded pixels and what is known of their source: the container format (recognised
//! by content), the size before decode-time scaling, and EXIF orientation applied.

use image::DynamicImage;

/// Image container formats recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Dicom,
    Bmp,
    Tiff,
    Webp,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Dicom => "DICOM",
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
            Format::Webp => "WebP",
        }
    }
}

/// Recognises a format from the leading bytes of a file.
pub fn detect_format(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        Some(Format::Dicom)
    } else if bytes.starts_with(b"BM") {
        Some(Format::Bmp)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(Format::Tiff)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else {
        None
    }
}

/// Decoded pixels: `channels` is 1 (grey) or 3 (RGB), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
    /// Size of the source before any decode-time scaling.
    pub source_width: u32,
    pub source_height: u32,
    pub format: Format,
}

/// Applies an EXIF orientation, if any and not the identity.
pub(crate) fn apply_orientation(d: Decoded, orientation: Option<image::metadata::Orientation>) -> Decoded {
    match orientation {
        Some(o) if o != image::metadata::Orientation::NoTransforms => reorient(d, o),
        _ => d,
    }
}

fn reorient(d: Decoded, orientation: image::metadata::Orientation) -> Decoded {
    let mut img = to_dynamic(&d);
    img.apply_orientation(orientation);
    // A 90-degree rotation swaps the source's sides too.
    let swapped = img.width() != d.width;
    let (source_width, source_height) =
        if swapped { (d.source_height, d.source_width) } else { (d.source_width, d.source_height) };
    from_dynamic(img, source_width, source_height, d.format)
}

fn to_dynamic(d: &Decoded) -> DynamicImage {
    if d.channels == 1 {
        DynamicImage::ImageLuma8(image::GrayImage::from_raw(d.width, d.height, d.data.clone()).expect("sized"))
    } else {
        DynamicImage::ImageRgb8(image::RgbImage::from_raw(d.width, d.height, d.data.clone()).expect("sized"))
    }
}

pub(crate) fn from_dynamic(img: DynamicImage, source_width: u32, source_height: u32, format: Format) -> Decoded {
    let (width, height) = (img.width(), img.height());
    let grey = !img.color().has_color();
    let (channels, data) = if grey { (1, img.into_luma8().into_raw()) } else { (3, img.into_rgb8().into_raw()) };
    Decoded { width, height, channels, data, source_width, source_height, format }
}
