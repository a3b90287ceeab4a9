//! Decoding files into 8-bit greyscale or RGB pixels, by content (not file name).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::decoded::{Decoded, Format, detect_format, from_dynamic};
use crate::{ImagingError, Transform};

pub(crate) fn decode(bytes: &[u8], t: &Transform) -> Result<Decoded, ImagingError> {
    if bytes.is_empty() {
        return Err(ImagingError::Empty);
    }
    match detect_format(bytes) {
        Some(Format::Jpeg) => crate::jpeg::decode(bytes, t),
        Some(Format::Dicom) => decode_dicom(bytes, t),
        Some(format) => decode_with_image(bytes, format, t),
        None => Err(match unsupported_format(bytes) {
            Some(name) => ImagingError::Unsupported(format!("{name} (convert it to PNG or JPEG)")),
            None => not_an_image(bytes),
        }),
    }
}

/// Image formats recognised but not decoded, named so that the reject says what the file is.
fn unsupported_format(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("GIF")
    } else if bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
        || bytes.starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' '])
    {
        Some("JPEG 2000")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        match &bytes[8..12] {
            b"avif" | b"avis" => Some("AVIF"),
            b"heic" | b"heix" | b"mif1" | b"msf1" => Some("HEIF"),
            _ => None,
        }
    } else if bytes.starts_with(b"%PDF-") {
        Some("PDF")
    } else {
        None
    }
}

fn not_an_image(bytes: &[u8]) -> ImagingError {
    let text_like = bytes.iter().take(512).all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let what = if text_like {
        "content is text".to_string()
    } else {
        let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("unrecognised content starting {}", head.join(" "))
    };
    ImagingError::NotAnImage(what)
}

fn decode_with_image(bytes: &[u8], format: Format, t: &Transform) -> Result<Decoded, ImagingError> {
    let corrupt = |e: image::ImageError| match e {
        image::ImageError::Unsupported(u) => ImagingError::Unsupported(format!("{}: {u}", format.name())),
        e => ImagingError::Corrupt { format: format.name(), message: e.to_string() },
    };
    let reader = || ImageReader::new(Cursor::new(bytes)).with_guessed_format().expect("in-memory cursor");
    let (width, height) = reader().into_dimensions().map_err(corrupt)?;
    t.check_size(width, height)?;
    let mut decoder = reader().into_decoder().map_err(corrupt)?;
    t.check_decoded_bytes(decoder.total_bytes())?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    // (scaled to its significant bits below, before 8 bits are taken)
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let (w, h) = (img.width(), img.height());
    if format == Format::Png {
        img = scale_significant_bits(img, png_significant_bits(bytes));
    }
    // 16-bit and alpha variants become 8-bit grey or RGB; alpha is dropped.
    Ok(from_dynamic(img, w, h, format))
}

/// The largest significant-bit count of a PNG's colour channels, from its `sBIT` chunk.
fn png_significant_bits(bytes: &[u8]) -> Option<u8> {
    let mut i = 8;
    while i + 8 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[i..i + 4].try_into().ok()?) as usize;
        let kind = &bytes[i + 4..i + 8];
        if kind == b"IDAT" || kind == b"IEND" {
            return None; // sBIT comes before the image data
        }
        if kind == b"sBIT" {
            let data = bytes.get(i + 8..i + 8 + length)?;
            // Grey+alpha and RGBA end with the alpha channel's bits.
            let colour = match data.len() {
                2 => &data[..1],
                4 => &data[..3],
                _ => data,
            };
            return colour.iter().copied().max();
        }
        i = i.checked_add(12 + length)?;
    }
    None
}

/// 9- to 15-bit data stored in 16-bit samples, scaled over its own range rather than the
/// container's (where 12-bit data would come out nearly black): the bits are the `sBIT`
/// chunk's, or else those the largest sample needs. Other images are returned unchanged.
fn scale_significant_bits(img: DynamicImage, significant: Option<u8>) -> DynamicImage {
    let samples: &[u16] = match &img {
        DynamicImage::ImageLuma16(i) => i.as_raw(),
        DynamicImage::ImageLumaA16(i) => i.as_raw(),
        DynamicImage::ImageRgb16(i) => i.as_raw(),
        DynamicImage::ImageRgba16(i) => i.as_raw(),
        _ => return img,
    };
    let largest = samples.iter().copied().max().unwrap_or(0);
    let needed = (16 - largest.leading_zeros()) as u8;
    let bits = significant.filter(|b| (1..16).contains(b)).unwrap_or(needed).max(needed.min(16));
    if !(9..16).contains(&bits) {
        return img;
    }
    let max = (1u32 << bits) - 1;
    let stretch = |v: u16| ((v as u32).min(max) * 65535 / max) as u16;
    match img {
        DynamicImage::ImageLuma16(mut i) => {
            i.iter_mut().for_each(|v| *v = stretch(*v));
            DynamicImage::ImageLuma16(i)
        }
        DynamicImage::ImageRgb16(mut i) => {
            i.iter_mut().for_each(|v| *v = stretch(*v));
            DynamicImage::ImageRgb16(i)
        }
        // Alpha is dropped later: only colour samples matter.
        other => {
            let grey = !other.color().has_color();
            if grey {
                let mut i = other.into_luma16();
                i.iter_mut().for_each(|v| *v = stretch(*v));
                DynamicImage::ImageLuma16(i)
            } else {
                let mut i = other.into_rgb16();
                i.iter_mut().for_each(|v| *v = stretch(*v));
                DynamicImage::ImageRgb16(i)
            }
        }
    }
}

fn decode_dicom(bytes: &[u8], t: &Transform) -> Result<Decoded, ImagingError> {
    // dicom-pixeldata asserts on some inconsistent headers (found by fuzzing); the checks
    // below catch those known, and an unwinding decoder is a corrupt file, not a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_dicom_inner(bytes, t))).unwrap_or_else(|_| {
        Err(ImagingError::Corrupt { format: "DICOM", message: "the DICOM decoder failed on this file's header".into() })
    })
}

fn decode_dicom_inner(bytes: &[u8], t: &Transform) -> Result<Decoded, ImagingError> {
    use dicom_dictionary_std::tags;
    use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder, VoiLutOption};

    let corrupt = |message: String| ImagingError::Corrupt { format: "DICOM", message };
    crate::dicom_guard::check(bytes).map_err(corrupt)?;
    let obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .from_reader(Cursor::new(bytes))
        .map_err(|e| corrupt(e.to_string()))?;
    let number = |tag| -> Option<Vec<f64>> { obj.element(tag).ok()?.to_multi_float64().ok() };
    let text = |tag| -> Option<String> { Some(obj.element(tag).ok()?.to_str().ok()?.trim().to_string()) };
    let rows = number(tags::ROWS).and_then(|v| v.first().copied()).unwrap_or(0.0) as u32;
    let columns = number(tags::COLUMNS).and_then(|v| v.first().copied()).unwrap_or(0.0) as u32;
    t.check_size(columns, rows)?;
    let first = |tag| number(tag).and_then(|v| v.first().copied());
    let (allocated, stored) = (first(tags::BITS_ALLOCATED).unwrap_or(0.0), first(tags::BITS_STORED).unwrap_or(0.0));
    if ![1.0, 8.0, 16.0, 32.0].contains(&allocated) || !(1.0..=allocated).contains(&stored) {
        return Err(corrupt(format!("bits allocated {allocated} / stored {stored} are not a valid pair")));
    }
    let photometric = text(tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    // Only the first frame is decoded: a multi-frame file's other frames are never expanded,
    // so the work is bounded by `max_pixels` whatever NumberOfFrames says.
    let pixel_data = obj.decode_pixel_data_frame(0).map_err(|e| {
        let message = e.to_string();
        if message.contains("Unsupported") || message.contains("unsupported") {
            ImagingError::Unsupported(format!("DICOM: {message}"))
        } else {
            corrupt(message)
        }
    })?;
    let (width, height) = (pixel_data.columns(), pixel_data.rows());
    let samples = pixel_data.samples_per_pixel();
    if samples == 3 {
        let data: Vec<u8> = pixel_data
            .to_vec_frame_with_options(0, &ConvertOptions::new().with_modality_lut(ModalityLutOption::None))
            .map_err(|e| corrupt(e.to_string()))?;
        return Ok(Decoded {
            width,
            height,
            channels: 3,
            data,
            source_width: width,
            source_height: height,
            format: Format::Dicom,
        });
    }
    if samples != 1 {
        return Err(ImagingError::Unsupported(format!("DICOM with {samples} samples per pixel")));
    }
    // Modality LUT (rescale slope/intercept) only; the VOI window is applied below.
    let values: Vec<f32> = pixel_data
        .to_vec_frame_with_options(
            0,
            &ConvertOptions::new().with_modality_lut(ModalityLutOption::Default).with_voi_lut(VoiLutOption::Identity),
        )
        .map_err(|e| corrupt(e.to_string()))?;
    let window = match (number(tags::WINDOW_CENTER), number(tags::WINDOW_WIDTH)) {
        (Some(c), Some(w)) if !c.is_empty() && !w.is_empty() && w[0] > 1.0 => Some((c[0] as f32, w[0] as f32)),
        _ => None,
    };
    let (lo, hi) = match window {
        // DICOM PS3.3 C.11.2.1.2 linear window: [c - 0.5 - (w-1)/2, c - 0.5 + (w-1)/2].
        Some((c, w)) => (c - 0.5 - (w - 1.0) / 2.0, c - 0.5 + (w - 1.0) / 2.0),
        None => min_max(&values),
    };
    let invert = photometric == "MONOCHROME1";
    let span = (hi - lo).max(f32::EPSILON);
    let data = values
        .iter()
        .map(|v| {
            let x = ((v - lo) / span).clamp(0.0, 1.0) * 255.0;
            let x = if invert { 255.0 - x } else { x };
            x.round() as u8
        })
        .collect();
    Ok(Decoded { width, height, channels: 1, data, source_width: width, source_height: height, format: Format::Dicom })
}

fn min_max(values: &[f32]) -> (f32, f32) {
    values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
}
