//! JPEG decoding: libjpeg-turbo's decoder (as built by the `mozjpeg` crate: C, statically
//! linked, no assembler needed) with IDCT scaling, and `jpeg-decoder` as the fallback
//! that has the last word on every file libjpeg does not take cleanly.
//!
//! Why two decoders: at 1/8 scale nearly all the work is Huffman decoding, where
//! libjpeg's C is about 1.25x `jpeg-decoder` on these X-rays. But libjpeg only warns on a
//! truncated file (and fills it with grey), and an 8-bit build has no 12-bit JPEGs; so
//! any file without a clean end, any libjpeg error and any CMYK/YCCK file goes to
//! `jpeg-decoder`, whose errors are what `rejects.csv` records.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mozjpeg::{ColorSpace, Decompress, Marker};

use crate::decoded::{Decoded, Format};
use crate::{ImagingError, Transform};

/// Largest IDCT down-scaling (1/8, 1/4, 1/2) that keeps both sides at least the target size.
fn scale_divisor(width: u32, height: u32, t: &Transform) -> u32 {
    if !t.jpeg_scaling {
        return 1;
    }
    [8u32, 4, 2].into_iter().find(|&d| width.div_ceil(d) >= t.width && height.div_ceil(d) >= t.height).unwrap_or(1)
}

/// More scans than any real progressive JPEG has (they use about 10): a file that repeats
/// its scans makes the decoder redo the whole image each time (a decompression bomb).
const MAX_SCANS: usize = 100;

/// The start-of-scan markers in `bytes`. Entropy-coded data never holds `FF DA` (an `FF`
/// there is followed by `00` or a restart marker), so a byte search counts them (a SIMD
/// one: a byte-at-a-time loop over the file was 3.5% of preprocessing at 224 px).
fn scan_count(bytes: &[u8]) -> usize {
    memchr::memmem::find_iter(bytes, &[0xFF, 0xDA]).count()
}

/// The work a decode may take, in scans x pixels: each scan of a progressive JPEG revisits
/// the whole image, so this bounds decoding time whatever the file (about 15 s on one core
/// at the cap; a 5-megapixel X-ray with 10 scans is 5e7).
const MAX_SCAN_PIXELS: u64 = 1_500_000_000;

pub(crate) fn decode(bytes: &[u8], t: &Transform) -> Result<Decoded, ImagingError> {
    let scans = scan_count(bytes);
    if scans > MAX_SCANS {
        return Err(ImagingError::Corrupt {
            format: "JPEG",
            message: format!("{scans} scans, more than {MAX_SCANS}: a progressive file built to make decoding slow"),
        });
    }
    if let Some((height, width)) = frame_size(bytes) {
        let work = scans as u64 * height as u64 * width as u64;
        if work > MAX_SCAN_PIXELS {
            return Err(ImagingError::Corrupt {
                format: "JPEG",
                message: format!(
                    "{scans} scans of {width}x{height} pixels, more decoding work than {MAX_SCAN_PIXELS} scan-pixels"
                ),
            });
        }
    }
    if ends_cleanly(bytes)
        && let Some(decoded) = decode_libjpeg(bytes, t)?
    {
        return Ok(decoded);
    }
    decode_jpeg_decoder(bytes, t)
}

/// Whether the file ends with the EOI marker (trailing padding allowed): a truncated file
/// does not, and libjpeg would decode it without an error.
fn ends_cleanly(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    let end = tail.iter().rposition(|&b| b != 0 && !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    tail[..end].ends_with(&[0xFF, 0xD9])
}

extern "C-unwind" fn fail_on_error(_: &mut mozjpeg_sys::jpeg_common_struct) {
    std::panic::resume_unwind(Box::new("libjpeg error"));
}

/// Level -1 is a warning: corrupt data, a premature end of a segment or of the file, after
/// which libjpeg would fill the rest of the image with grey. Here it ends the decode.
extern "C-unwind" fn fail_on_warning(_: &mut mozjpeg_sys::jpeg_common_struct, level: std::os::raw::c_int) {
    if level < 0 {
        std::panic::resume_unwind(Box::new(WARNING));
    }
}

/// What unwinds out of libjpeg after a warning.
const WARNING: &str = "libjpeg warning";

/// A decode that libjpeg stopped with a warning: the file is damaged, whatever a decoder
/// that fills the gap would make of it.
fn warned(payload: &(dyn std::any::Any + Send)) -> Option<ImagingError> {
    (payload.downcast_ref::<&str>() == Some(&WARNING)).then(|| ImagingError::Corrupt {
        format: "JPEG",
        message: "corrupt or truncated data (libjpeg: premature end of a data segment or corrupt entropy data; the rest of the image would be filled with grey)".into(),
    })
}

extern "C-unwind" fn quiet(_: &mut mozjpeg_sys::jpeg_common_struct) {}

extern "C-unwind" fn no_format(_: &mut mozjpeg_sys::jpeg_common_struct, _: &[u8; 80]) {}

/// An error manager under which every libjpeg error and warning unwinds out of the decode
/// (as the `mozjpeg` crate's own does for errors only); messages are not formatted, since
/// `jpeg-decoder` then decides and says why.
fn strict_error_manager() -> mozjpeg_sys::jpeg_error_mgr {
    mozjpeg_sys::jpeg_error_mgr {
        error_exit: Some(fail_on_error),
        emit_message: Some(fail_on_warning),
        output_message: Some(quiet),
        format_message: Some(no_format),
        reset_error_mgr: Some(quiet),
        msg_code: 0,
        msg_parm: Default::default(),
        trace_level: 0,
        num_warnings: 0,
        jpeg_message_table: std::ptr::null(),
        last_jpeg_message: 0,
        addon_message_table: std::ptr::null(),
        first_addon_message: 0,
        last_addon_message: 0,
    }
}

/// The libjpeg path. `Ok(None)` hands the file to `jpeg-decoder`; `Err` for the size limits
/// and for a file libjpeg warned about (`jpeg-decoder` would fill the gap silently too).
fn decode_libjpeg(bytes: &[u8], t: &Transform) -> Result<Option<Decoded>, ImagingError> {
    // libjpeg reports errors and (with the strict manager) warnings by unwinding.
    let header = catch_unwind(AssertUnwindSafe(|| {
        let builder = Decompress::builder().with_err(strict_error_manager()).with_markers(&[Marker::APP(1)]);
        let d = builder.from_mem(bytes).ok()?;
        let (w, h) = (d.width() as u32, d.height() as u32);
        Some((d, w, h))
    }));
    let (mut d, source_width, source_height) = match header {
        Ok(Some(found)) => found,
        Err(payload) if let Some(e) = warned(payload.as_ref()) => return Err(e),
        _ => return Ok(None),
    };
    t.check_size(source_width, source_height)?;
    t.check_decoded_bytes(source_width as u64 * source_height as u64 * d.components().len() as u64)?;
    let channels: u8 = match d.color_space() {
        ColorSpace::JCS_GRAYSCALE => 1,
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => 3,
        _ => return Ok(None),
    };
    let orientation = d
        .markers()
        .find(|m| m.marker == Marker::APP(1) && m.data.starts_with(b"Exif\0\0"))
        .and_then(|m| image::metadata::Orientation::from_exif_chunk(&m.data[6..]));
    let divisor = scale_divisor(source_width, source_height, t);
    let pixels = catch_unwind(AssertUnwindSafe(move || {
        d.scale((8 / divisor) as u8);
        let mut started = if channels == 1 { d.grayscale() } else { d.rgb() }.ok()?;
        let (width, height) = (started.width() as u32, started.height() as u32);
        let data: Vec<u8> = started.read_scanlines().ok()?;
        started.finish().ok()?;
        Some((width, height, data))
    }));
    let (width, height, data) = match pixels {
        Ok(Some(found)) => found,
        Err(payload) if let Some(e) = warned(payload.as_ref()) => return Err(e),
        _ => return Ok(None),
    };
    if data.len() != width as usize * height as usize * channels as usize {
        return Ok(None);
    }
    let decoded = Decoded { width, height, channels, data, source_width, source_height, format: Format::Jpeg };
    Ok(Some(crate::decoded::apply_orientation(decoded, orientation)))
}

/// The frame header (SOFn): the bytes after its length field (precision, height, width, ...).
fn frame_header(bytes: &[u8]) -> Option<&[u8]> {
    let mut i = 2;
    while i + 4 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return bytes.get(i + 4..);
        }
        let length = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        i += 2 + length;
    }
    None
}

/// `(height, width)` from the frame header, if there is one.
fn frame_size(bytes: &[u8]) -> Option<(u16, u16)> {
    let h = frame_header(bytes)?;
    (h.len() >= 5).then(|| (u16::from_be_bytes([h[1], h[2]]), u16::from_be_bytes([h[3], h[4]])))
}

/// The sample precision (bits) in the file's frame header (SOFn), if there is one.
pub(crate) fn sample_precision(bytes: &[u8]) -> Option<u8> {
    frame_header(bytes)?.first().copied()
}

/// 9- to 16-bit samples (native-endian `u16`, as jpeg-decoder returns them) scaled to
/// 8 bits over the full range the frame's precision allows.
fn scale_to_8_bits(raw: &[u8], precision: u8) -> Vec<u8> {
    let max = (1u32 << precision.clamp(9, 16)) - 1;
    raw.chunks_exact(2)
        .map(|b| {
            let v = (u16::from_ne_bytes([b[0], b[1]]) as u32).min(max);
            ((v * 255 + max / 2) / max) as u8
        })
        .collect()
}

fn jpeg_error(e: jpeg_decoder::Error) -> ImagingError {
    match e {
        jpeg_decoder::Error::Unsupported(jpeg_decoder::UnsupportedFeature::SamplePrecision(bits)) => {
            ImagingError::Unsupported(format!(
                "{bits}-bit DCT JPEG (8-bit DCT and 2- to 16-bit lossless JPEGs are decoded; convert it to 16-bit PNG)"
            ))
        }
        jpeg_decoder::Error::Unsupported(feature) => ImagingError::Unsupported(format!("JPEG with {feature:?}")),
        e => ImagingError::Corrupt { format: "JPEG", message: e.to_string() },
    }
}

fn decode_jpeg_decoder(bytes: &[u8], t: &Transform) -> Result<Decoded, ImagingError> {
    let corrupt = jpeg_error;
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(corrupt)?;
    let info = decoder.info().expect("read_info succeeded");
    let (source_width, source_height) = (info.width as u32, info.height as u32);
    t.check_size(source_width, source_height)?;
    let sample_bytes = if info.pixel_format == jpeg_decoder::PixelFormat::L16 { 2 } else { 1 };
    let channels = info.pixel_format.pixel_bytes() as u64 / sample_bytes;
    t.check_decoded_bytes(source_width as u64 * source_height as u64 * channels * sample_bytes)?;
    let (mut width, mut height) = (source_width, source_height);
    let divisor = scale_divisor(source_width, source_height, t);
    if divisor > 1 {
        let request = (source_width.div_ceil(divisor) as u16, source_height.div_ceil(divisor) as u16);
        let (sw, sh) = decoder.scale(request.0, request.1).map_err(corrupt)?;
        (width, height) = (sw as u32, sh as u32);
    }
    let raw = decoder.decode().map_err(corrupt)?;
    let info = decoder.info().expect("decoded");
    let (channels, data) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (1, raw),
        jpeg_decoder::PixelFormat::L16 => (1, scale_to_8_bits(&raw, sample_precision(bytes).unwrap_or(16))),
        jpeg_decoder::PixelFormat::RGB24 => (3, raw),
        jpeg_decoder::PixelFormat::CMYK32 => (3, cmyk_to_rgb(&raw)),
    };
    if data.len() != width as usize * height as usize * channels as usize {
        return Err(ImagingError::Corrupt {
            format: "JPEG",
            message: format!("decoder returned {} bytes for {width}x{height}x{channels}", data.len()),
        });
    }
    let decoded = Decoded { width, height, channels, data, source_width, source_height, format: Format::Jpeg };
    let orientation = decoder.exif_data().and_then(image::metadata::Orientation::from_exif_chunk);
    Ok(crate::decoded::apply_orientation(decoded, orientation))
}

/// jpeg-decoder returns ink amounts (it undoes Adobe's inverted storage itself):
/// RGB = (255 - ink) * (255 - K) / 255 per channel.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    cmyk.chunks_exact(4)
        .flat_map(|p| {
            let paper = 255 - p[3] as u32;
            [0, 1, 2].map(|i| (((255 - p[i] as u32) * paper + 127) / 255) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use cxr_config::Preprocess;
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

    use super::*;

    fn transform(size: u32) -> Transform {
        Transform::from_config(&Preprocess { size: [size, size], ..Preprocess::default() })
    }

    /// A textured image (gradients plus a pattern), so that AC coefficients matter.
    fn jpeg(w: u32, h: u32, grey: bool) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 3 + y * 2) % 256) as u8 / 2 + if (x / 7 + y / 5) % 2 == 0 { 90 } else { 0 };
            Rgb([v, v.wrapping_add((y % 40) as u8), v / 2 + (x % 50) as u8])
        });
        let img = if grey { DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(img).to_luma8()) } else { img.into() };
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    fn max_and_mean_diff(a: &Decoded, b: &Decoded) -> (u8, f64) {
        assert_eq!((a.width, a.height, a.channels), (b.width, b.height, b.channels));
        let diffs: Vec<u8> = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y)).collect();
        (*diffs.iter().max().unwrap(), diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64)
    }

    /// Mean absolute difference of `scaled` from the `d`x`d` block means of `full`.
    fn error_against_block_means(scaled: &Decoded, full: &Decoded, d: usize) -> f64 {
        let c = full.channels as usize;
        let (fw, sw) = (full.width as usize, scaled.width as usize);
        let (mut error, mut n) = (0.0, 0.0);
        for y in 0..full.height as usize / d {
            for x in 0..fw / d {
                for ch in 0..c {
                    let block: f64 =
                        (0..d * d).map(|i| full.data[((y * d + i / d) * fw + x * d + i % d) * c + ch] as f64).sum();
                    error += (scaled.data[(y * sw + x) * c + ch] as f64 - block / (d * d) as f64).abs();
                    n += 1.0;
                }
            }
        }
        error / n
    }

    #[test]
    fn libjpeg_decodes_like_jpeg_decoder_and_scales_like_a_block_mean() {
        for grey in [true, false] {
            let bytes = jpeg(331, 257, grey);
            assert!(ends_cleanly(&bytes));
            let full_t = transform(300);
            assert_eq!(scale_divisor(331, 257, &full_t), 1);
            let full = decode_libjpeg(&bytes, &full_t).unwrap().expect("libjpeg takes a clean baseline JPEG");
            let reference = decode_jpeg_decoder(&bytes, &full_t).unwrap();
            assert_eq!((full.width, full.height, full.channels), (331, 257, if grey { 1 } else { 3 }));
            let (max, mean) = max_and_mean_diff(&full, &reference);
            // Two IDCT implementations: rounding differs, the picture does not.
            assert!(mean < 1.0 && max <= 12, "grey {grey}, full size: max {max}, mean {mean}");
            // Target sizes that select 1/2, 1/4 and 1/8. (jpeg-decoder's own scaled IDCT is
            // 4 to 6 levels off the block means on this texture at 1/2 and 1/4; libjpeg's is not.)
            for (size, divisor) in [(120, 2), (60, 4), (32, 8)] {
                let t = transform(size);
                assert_eq!(scale_divisor(331, 257, &t), divisor);
                let scaled = decode_libjpeg(&bytes, &t).unwrap().unwrap();
                assert_eq!((scaled.width, scaled.height), (331u32.div_ceil(divisor), 257u32.div_ceil(divisor)));
                let error = error_against_block_means(&scaled, &full, divisor as usize);
                assert!(error < 1.0, "grey {grey}, 1/{divisor}: mean error {error}");
            }
        }
    }

    #[test]
    fn a_truncated_jpeg_goes_to_jpeg_decoder_and_is_rejected() {
        let bytes = jpeg(200, 160, true);
        let cut = &bytes[..bytes.len() * 2 / 3];
        assert!(!ends_cleanly(cut), "a truncated file has no EOI marker");
        // libjpeg warns about it: a reject, not a grey-filled picture.
        assert_eq!(decode_libjpeg(cut, &transform(32)).unwrap_err().kind(), "corrupt");
        let e = decode(cut, &transform(32)).unwrap_err();
        assert_eq!(e.kind(), "corrupt", "{e}");
    }

    #[test]
    fn trailing_padding_after_the_end_marker_is_still_clean() {
        let mut bytes = jpeg(64, 64, true);
        bytes.extend_from_slice(&[0, 0, b'\n']);
        assert!(ends_cleanly(&bytes));
        assert!(!ends_cleanly(&[0xFF, 0xD8, 0xFF]));
        assert!(!ends_cleanly(&[]));
    }

    #[test]
    fn libjpeg_errors_fall_back_instead_of_panicking() {
        // A clean end but garbage inside: libjpeg's fatal error unwinds and is caught.
        let mut bytes = jpeg(64, 64, true);
        let n = bytes.len();
        bytes[20..n - 2].fill(0xFF);
        assert_eq!(decode_libjpeg(&bytes, &transform(32)).unwrap(), None);
        assert_eq!(decode(&bytes, &transform(32)).unwrap_err().kind(), "corrupt");
    }

    #[test]
    fn scan_markers_are_counted_wherever_they_fall() {
        assert_eq!(scan_count(&[]), 0);
        assert_eq!(scan_count(&[0xFF, 0xDA]), 1);
        // After a fill byte, at the end, next to each other, and not split by a stuffed zero.
        let bytes = [0xFF, 0xFF, 0xDA, 1, 0xFF, 0x00, 0xDA, 0xFF, 0xDA, 0xFF, 0xDA];
        assert_eq!(scan_count(&bytes), 3);
        let long: Vec<u8> = (0..100_000u32)
            .flat_map(|i| if i % 1000 == 999 { vec![0xFF, 0xDA] } else { vec![(i % 255) as u8] })
            .collect();
        assert_eq!(scan_count(&long), long.windows(2).filter(|w| w == &[0xFF, 0xDA]).count());
    }
}
