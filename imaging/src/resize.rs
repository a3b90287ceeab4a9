//! Resizing decoded pixels to the output size and laying them out as `[H, W, 3]`.

use cxr_config::{ChannelOrder, Equalize, ResizeFilter};
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::{Decoded, ImagingError, Transform};

fn algorithm(filter: ResizeFilter) -> ResizeAlg {
    match filter {
        // A box convolution averages every source pixel under each output pixel: OpenCV's INTER_AREA.
        ResizeFilter::Area => ResizeAlg::Convolution(FilterType::Box),
        // Fixed 2x2 kernel, no antialiasing: what cv2.resize does by default.
        ResizeFilter::Bilinear => ResizeAlg::Interpolation(FilterType::Bilinear),
        ResizeFilter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        ResizeFilter::Nearest => ResizeAlg::Nearest,
    }
}

/// Resizes (greyscale stays one channel until the end: 3x less work) and expands to 3 channels.
pub(crate) fn to_tensor(d: Decoded, t: &Transform) -> Result<Vec<u8>, ImagingError> {
    let pixel_type = if d.channels == 1 { PixelType::U8 } else { PixelType::U8x3 };
    let resized = if d.width == t.width && d.height == t.height {
        d.data
    } else {
        let src = Image::from_vec_u8(d.width, d.height, d.data, pixel_type)
            .map_err(|e| ImagingError::Corrupt { format: d.format.name(), message: e.to_string() })?;
        let mut dst = Image::new(t.width, t.height, pixel_type);
        Resizer::new()
            .resize(&src, &mut dst, &ResizeOptions::new().resize_alg(algorithm(t.filter)))
            .map_err(|e| ImagingError::Corrupt { format: d.format.name(), message: e.to_string() })?;
        dst.into_vec()
    };
    let resized = match t.equalize {
        Equalize::None => resized,
        Equalize::Histogram => equalize_histogram(resized, d.channels as usize),
    };
    Ok(match (d.channels, t.channel_order) {
        (1, _) => resized.iter().flat_map(|&v| [v, v, v]).collect(),
        (_, ChannelOrder::Rgb) => resized,
        (_, ChannelOrder::Bgr) => resized.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect(),
    })
}

/// Resizes with a box filter (area averaging down, bilinear-like up), channels unchanged.
pub(crate) fn resize_keeping_channels(mut d: Decoded, width: u32, height: u32) -> Result<Decoded, ImagingError> {
    if d.width == width && d.height == height {
        return Ok(d);
    }
    let format = d.format.name();
    let corrupt = |e: String| ImagingError::Corrupt { format, message: e };
    let pixel_type = if d.channels == 1 { PixelType::U8 } else { PixelType::U8x3 };
    let data = std::mem::take(&mut d.data);
    let src = Image::from_vec_u8(d.width, d.height, data, pixel_type).map_err(|e| corrupt(e.to_string()))?;
    let mut dst = Image::new(width, height, pixel_type);
    Resizer::new()
        .resize(&src, &mut dst, &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box)))
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(Decoded { width, height, data: dst.into_vec(), ..d })
}

/// Global histogram equalisation: brightness (the channel mean) is mapped through its
/// cumulative distribution, and every channel gets the same mapping.
pub(crate) fn equalize_histogram(mut pixels: Vec<u8>, channels: usize) -> Vec<u8> {
    let brightness = |p: &[u8]| (p.iter().map(|&v| v as u32).sum::<u32>() / channels as u32) as usize;
    let mut histogram = [0u64; 256];
    for p in pixels.chunks_exact(channels) {
        histogram[brightness(p)] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let first = histogram.iter().copied().find(|&c| c > 0).unwrap_or(0);
    if total == first {
        return pixels; // one brightness only: nothing to spread
    }
    let mut cdf = 0u64;
    let mut lut = [0u8; 256];
    for (v, &count) in histogram.iter().enumerate() {
        cdf += count;
        lut[v] = (((cdf.saturating_sub(first)) as f64 / (total - first) as f64) * 255.0).round() as u8;
    }
    for p in pixels.chunks_exact_mut(channels) {
        let b = brightness(p);
        let shift = lut[b] as i32 - b as i32;
        for v in p.iter_mut() {
            *v = (*v as i32 + shift).clamp(0, 255) as u8;
        }
    }
    pixels
}
