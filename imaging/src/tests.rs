//! Tests of decoding and resizing on images generated here, and on the shared adult samples.

use std::io::Cursor;
use std::path::Path;

use cxr_config::{ChannelOrder, Preprocess, ResizeFilter};
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};

use super::*;

fn transform(h: u32, w: u32) -> Transform {
    Transform::from_config(&Preprocess { size: [h, w], ..Preprocess::default() })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 255 / w.max(1)) as u8 / 2) + ((y * 127 / h.max(1)) as u8)]))
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64
}

#[test]
fn grey_jpeg_becomes_three_equal_channels_of_the_right_size() {
    let bytes = encode(&DynamicImage::ImageLuma8(gradient(400, 300)), ImageFormat::Jpeg);
    let p = transform(50, 60).apply_bytes(&bytes).unwrap();
    assert_eq!(p.pixels.len(), 50 * 60 * 3);
    assert_eq!((p.source_width, p.source_height), (400, 300));
    assert_eq!(p.format, Format::Jpeg);
    assert!(p.pixels.chunks_exact(3).all(|c| c[0] == c[1] && c[1] == c[2]));
    // Left-to-right gradient survives: the right column is brighter than the left.
    let row = &p.pixels[25 * 60 * 3..26 * 60 * 3];
    assert!(row[59 * 3] > row[0] + 80, "{} vs {}", row[59 * 3], row[0]);
}

#[test]
fn dct_scaled_jpeg_decode_matches_full_decode() {
    let bytes = encode(&DynamicImage::ImageLuma8(gradient(1600, 1200)), ImageFormat::Jpeg);
    let scaled = transform(50, 50).apply_bytes(&bytes).unwrap();
    let full = Transform { jpeg_scaling: false, ..transform(50, 50) }.apply_bytes(&bytes).unwrap();
    let diff = mean_abs_diff(&scaled.pixels, &full.pixels);
    assert!(diff < 1.5, "mean abs difference {diff}");
}

#[test]
fn area_filter_equals_block_mean_on_exact_multiples() {
    // 4x4 blocks of known values shrink to their means.
    let img = GrayImage::from_fn(64, 64, |x, y| image::Luma([if (x / 32 + y / 32) % 2 == 0 { 200 } else { 40 }]));
    let bytes = encode(&DynamicImage::ImageLuma8(img), ImageFormat::Png);
    let p = transform(2, 2).apply_bytes(&bytes).unwrap();
    let grey: Vec<u8> = p.pixels.chunks_exact(3).map(|c| c[0]).collect();
    assert_eq!(grey, vec![200, 40, 40, 200]);
}

#[test]
fn channel_order_swaps_colour_images() {
    let img = RgbImage::from_pixel(40, 40, image::Rgb([250, 10, 0]));
    let bytes = encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png);
    let rgb = transform(32, 32).apply_bytes(&bytes).unwrap();
    assert_eq!(&rgb.pixels[..3], &[250, 10, 0]);
    let bgr = Transform { channel_order: ChannelOrder::Bgr, ..transform(32, 32) }.apply_bytes(&bytes).unwrap();
    assert_eq!(&bgr.pixels[..3], &[0, 10, 250]);
}

#[test]
fn png_16_bit_and_alpha_decode_to_8_bit() {
    let img16 = image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(40, 40, image::Luma([65535u16]));
    let p = transform(32, 32).apply_bytes(&encode(&DynamicImage::ImageLuma16(img16), ImageFormat::Png)).unwrap();
    assert!(p.pixels.iter().all(|&v| v == 255));
    let rgba = image::RgbaImage::from_pixel(40, 40, image::Rgba([100, 100, 100, 0]));
    let p = transform(32, 32).apply_bytes(&encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png)).unwrap();
    assert!(p.pixels.iter().all(|&v| v == 100));
}

#[test]
fn jpeg_named_png_is_decoded_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actually_jpeg.png");
    std::fs::write(&path, encode(&DynamicImage::ImageLuma8(gradient(100, 100)), ImageFormat::Jpeg)).unwrap();
    let p = transform(32, 32).apply_file(&path).unwrap();
    assert_eq!(p.format, Format::Jpeg);
}

#[test]
fn bad_inputs_have_readable_reasons() {
    let t = transform(32, 32);
    assert_eq!(t.apply_bytes(b""), Err(ImagingError::Empty));
    let e = t.apply_bytes(b"hello, I am a text file\n").unwrap_err();
    assert_eq!(e.kind(), "not-an-image");
    assert!(e.to_string().contains("content is text"), "{e}");
    let e = t.apply_bytes(&[0x00, 0x01, 0x02, 0x03, 0x04]).unwrap_err();
    assert!(e.to_string().contains("unrecognised content starting 00 01 02 03"), "{e}");

    let jpeg = encode(&DynamicImage::ImageLuma8(gradient(200, 200)), ImageFormat::Jpeg);
    let e = t.apply_bytes(&jpeg[..jpeg.len() / 3]).unwrap_err();
    assert_eq!(e.kind(), "corrupt", "{e}");
    let png = encode(&DynamicImage::ImageLuma8(gradient(200, 200)), ImageFormat::Png);
    let e = t.apply_bytes(&png[..png.len() / 2]).unwrap_err();
    assert_eq!(e.kind(), "corrupt", "{e}");

    let e = t.apply_bytes(b"GIF89a\x01\x00\x01\x00\x80\x00\x00").unwrap_err();
    assert_eq!(e.to_string(), "unsupported format: GIF (convert it to PNG or JPEG)");
    assert_eq!(e.kind(), "unsupported");
    let e = t.apply_bytes(b"\0\0\0\x1cftypavif\0\0\0\0").unwrap_err();
    assert!(e.to_string().contains("AVIF"), "{e}");
    let e = t.apply_bytes(&[0xFF, 0x4F, 0xFF, 0x51, 0, 0x2F]).unwrap_err();
    assert!(e.to_string().contains("JPEG 2000"), "{e}");

    let tiny = encode(&DynamicImage::ImageLuma8(gradient(1, 1)), ImageFormat::Png);
    let e = t.apply_bytes(&tiny).unwrap_err();
    assert_eq!(e.to_string(), "image is 1x1, smaller than preprocess.min_side 16");
}

#[test]
fn decompression_bomb_is_rejected_before_decoding() {
    let big = encode(&DynamicImage::ImageLuma8(GrayImage::new(3000, 3000)), ImageFormat::Png);
    let t = Transform { max_pixels: 1_000_000, ..transform(32, 32) };
    let e = t.apply_bytes(&big).unwrap_err();
    assert_eq!(e.to_string(), "image is 3000x3000 = 9000000 pixels, over preprocess.max_pixels 1000000");
    let big_jpeg = encode(&DynamicImage::ImageLuma8(GrayImage::new(1200, 1000)), ImageFormat::Jpeg);
    assert_eq!(t.apply_bytes(&big_jpeg).unwrap_err().kind(), "too-large");
}

#[test]
fn every_filter_produces_the_output_size() {
    let bytes = encode(&DynamicImage::ImageLuma8(gradient(300, 200)), ImageFormat::Png);
    for filter in [ResizeFilter::Area, ResizeFilter::Bilinear, ResizeFilter::Lanczos3, ResizeFilter::Nearest] {
        let t = Transform { filter, ..transform(50, 40) };
        assert_eq!(t.apply_bytes(&bytes).unwrap().pixels.len(), 50 * 40 * 3, "{filter:?}");
    }
}

#[test]
fn listing_skips_hidden_and_system_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    for name in ["a/x.jpg", "a/b/y.png", ".DS_Store", "a/Thumbs.db", "a/.hidden.jpg"] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let files = list_files(dir.path()).unwrap();
    let names: Vec<_> = files.iter().map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf()).collect();
    assert_eq!(names, vec![Path::new("a/b/y.png").to_path_buf(), Path::new("a/x.jpg").to_path_buf()]);
}

fn shared_adult_samples() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/adult_samples");
    assert!(dir.is_dir(), "shared data missing: expected {} (CI always has it)", dir.display());
    dir
}

#[test]
fn shared_data_adult_samples_decode() {
    let dir = shared_adult_samples();
    let t = transform(224, 224);
    let mut seen = Vec::new();
    for path in list_files(&dir).unwrap() {
        if path.file_name().unwrap().to_string_lossy().starts_with("LICENSE") {
            continue;
        }
        let p = t.apply_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(p.pixels.len(), 224 * 224 * 3);
        let (lo, hi) = p.pixels.iter().fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        // A real radiograph spans most of the 8-bit range after windowing.
        assert!(hi as i32 - lo as i32 > 150, "{}: range {lo}..{hi}", path.display());
        let mean = p.pixels.iter().map(|&v| v as f64).sum::<f64>() / p.pixels.len() as f64;
        assert!((30.0..220.0).contains(&mean), "{}: mean {mean}", path.display());
        seen.push((p.format, p.source_width, p.source_height));
    }
    assert!(seen.iter().any(|s| s.0 == Format::Dicom), "{seen:?}");
    assert_eq!(seen.iter().filter(|s| s.0 == Format::Png).count(), 2, "{seen:?}");
}

#[test]
fn shared_data_dicom_is_monochrome2_with_body_brighter_than_air() {
    // In MONOCHROME2 display, the lungs/air outside the body are dark and bone is bright:
    // the image's border (air) must be darker than its centre-bottom (mediastinum/abdomen).
    let dir = shared_adult_samples();
    let path = list_files(&dir).unwrap().into_iter().find(|p| p.extension().is_some_and(|e| e == "dcm")).unwrap();
    let p = transform(64, 64).apply_file(&path).unwrap();
    let at = |y: usize, x: usize| p.pixels[(y * 64 + x) * 3] as f64;
    let corners = (at(1, 1) + at(1, 62)) / 2.0;
    let spine: f64 = (20..60).map(|y| at(y, 32)).sum::<f64>() / 40.0;
    assert!(spine > corners + 30.0, "spine {spine} vs corners {corners}");
}

#[test]
fn histogram_equalisation_spreads_a_narrow_range_and_keeps_order() {
    let narrow: Vec<u8> = (0..256).map(|i| 100 + (i % 20) as u8).collect();
    let out = resize::equalize_histogram(narrow.clone(), 1);
    let (lo, hi) = out.iter().fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert_eq!((lo, hi), (0, 255));
    // Brighter in, brighter (or equal) out.
    let mut pairs: Vec<(u8, u8)> = narrow.iter().copied().zip(out.iter().copied()).collect();
    pairs.sort();
    assert!(pairs.windows(2).all(|w| w[0].1 <= w[1].1));
    // A flat image is left alone.
    assert_eq!(resize::equalize_histogram(vec![7; 30], 3), vec![7; 30]);
}

fn with_exif_orientation(img: &DynamicImage, format: ImageFormat, orientation: u8) -> Vec<u8> {
    use image::ImageEncoder;
    // A big-endian TIFF header with one IFD entry: Orientation (0x0112), SHORT, 1 value.
    let exif =
        vec![b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0];
    let mut out = Vec::new();
    let luma = img.to_luma8();
    match format {
        ImageFormat::Jpeg => {
            let mut e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
            e.set_exif_metadata(exif).unwrap();
            e.write_image(&luma, luma.width(), luma.height(), image::ExtendedColorType::L8).unwrap();
        }
        _ => {
            let mut e = image::codecs::png::PngEncoder::new(&mut out);
            e.set_exif_metadata(exif).unwrap();
            e.write_image(&luma, luma.width(), luma.height(), image::ExtendedColorType::L8).unwrap();
        }
    }
    out
}

#[test]
fn exif_orientation_is_honoured_for_jpeg_and_png() {
    // 64 wide, 32 high, bright in the left half. Orientation 6 means "rotate 90 degrees
    // clockwise to display": upright it is 32 wide, 64 high, bright in the top half.
    let img = DynamicImage::ImageLuma8(GrayImage::from_fn(64, 32, |x, _| image::Luma([if x < 32 { 230 } else { 20 }])));
    for format in [ImageFormat::Jpeg, ImageFormat::Png] {
        let p = transform(32, 32).apply_bytes(&with_exif_orientation(&img, format, 6)).unwrap();
        assert_eq!((p.source_width, p.source_height), (32, 64), "{format:?}");
        let at = |y: usize, x: usize| p.pixels[(y * 32 + x) * 3] as i32;
        assert!(at(4, 16) > 180 && at(28, 16) < 60, "{format:?}: top {} bottom {}", at(4, 16), at(28, 16));
        // Without the tag the bright half stays on the left.
        let plain = transform(32, 32).apply_bytes(&with_exif_orientation(&img, format, 1)).unwrap();
        let at = |y: usize, x: usize| plain.pixels[(y * 32 + x) * 3] as i32;
        assert!(at(16, 4) > 180 && at(16, 28) < 60, "{format:?}");
    }
}

#[test]
fn cmyk_jpeg_becomes_rgb() {
    // Left half white paper (no ink), right half pure cyan ink; Adobe CMYK as print tools write it.
    let (w, h) = (64u16, 32u16);
    let mut cmyk = Vec::new();
    for _ in 0..h {
        for x in 0..w {
            cmyk.extend_from_slice(if x < w / 2 { &[0, 0, 0, 0] } else { &[255, 0, 0, 0] });
        }
    }
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, 95).encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk).unwrap();
    let p = transform(32, 32).apply_bytes(&bytes).unwrap();
    let px = |x: usize| &p.pixels[(16 * 32 + x) * 3..(16 * 32 + x) * 3 + 3];
    let near = |a: &[u8], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| (*x as i32 - y as i32).abs() <= 8);
    assert!(near(px(4), [255, 255, 255]), "paper {:?}", px(4));
    assert!(near(px(28), [0, 255, 255]), "cyan {:?}", px(28));
}

/// Writes JPEG bit streams for the high-bit-depth tests: lossless (SOF3, predictor 1) of
/// any precision, and a 12-bit extended DCT (SOF1) of flat blocks.
pub(crate) mod high_depth_jpeg {
    /// Every Huffman code is 5 bits: symbol k (k <= 16) has code k.
    fn dht(class_and_id: u8, symbols: &[u8]) -> Vec<u8> {
        let mut counts = [0u8; 16];
        counts[4] = symbols.len() as u8;
        let mut seg = vec![0xFF, 0xC4];
        let len = 2 + 1 + 16 + symbols.len();
        seg.extend_from_slice(&(len as u16).to_be_bytes());
        seg.push(class_and_id);
        seg.extend_from_slice(&counts);
        seg.extend_from_slice(symbols);
        seg
    }

    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }

    impl Bits {
        fn put(&mut self, value: u32, bits: u32) {
            for i in (0..bits).rev() {
                self.acc = (self.acc << 1) | ((value >> i) & 1);
                self.n += 1;
                if self.n == 8 {
                    let byte = self.acc as u8;
                    self.out.push(byte);
                    if byte == 0xFF {
                        self.out.push(0x00);
                    }
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }
        fn finish(mut self) -> Vec<u8> {
            while self.n != 0 {
                self.put(1, 1);
            }
            self.out
        }
        /// A difference as (category code, extra bits), as both lossless and DC coding do.
        fn diff(&mut self, diff: i32) {
            let category = 32 - diff.unsigned_abs().leading_zeros();
            self.put(category, 5);
            if (1..16).contains(&category) {
                let extra = if diff < 0 { diff - 1 } else { diff } as u32 & ((1 << category) - 1);
                self.put(extra, category);
            }
        }
    }

    fn frame(marker: u8, precision: u8, w: u16, h: u16) -> Vec<u8> {
        let mut seg = vec![0xFF, marker, 0, 11, precision];
        seg.extend_from_slice(&h.to_be_bytes());
        seg.extend_from_slice(&w.to_be_bytes());
        seg.extend_from_slice(&[1, 1, 0x11, 0]);
        seg
    }

    fn scan(ss: u8, se: u8) -> Vec<u8> {
        vec![0xFF, 0xDA, 0, 8, 1, 1, 0x00, ss, se, 0]
    }

    /// A lossless greyscale JPEG of `precision` bits (2-16) holding `samples` (row-major).
    pub fn lossless(precision: u8, w: u16, h: u16, samples: &[u16]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        out.extend(frame(0xC3, precision, w, h));
        out.extend(dht(0x00, &(0..=16).collect::<Vec<u8>>()));
        out.extend(scan(1, 0));
        let mut bits = Bits { out: Vec::new(), acc: 0, n: 0 };
        let (w, h) = (w as usize, h as usize);
        for y in 0..h {
            for x in 0..w {
                let predicted = match (x, y) {
                    (0, 0) => 1i32 << (precision - 1),
                    (0, _) => samples[(y - 1) * w] as i32,
                    _ => samples[y * w + x - 1] as i32,
                };
                let mut diff = (samples[y * w + x] as i32 - predicted).rem_euclid(65536);
                if diff > 32768 {
                    diff -= 65536;
                }
                bits.diff(diff);
            }
        }
        out.extend(bits.finish());
        out.extend([0xFF, 0xD9]);
        out
    }

    /// A 12-bit extended sequential DCT JPEG whose 8x8 blocks are flat (DC only).
    pub fn dct12(w: u16, h: u16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xDB, 0, 67, 0];
        out.extend([1u8; 64]);
        out.extend(frame(0xC1, 12, w, h));
        out.extend(dht(0x00, &(0..=15).collect::<Vec<u8>>()));
        out.extend(dht(0x10, &[0x00]));
        out.extend(scan(0, 63));
        let mut bits = Bits { out: Vec::new(), acc: 0, n: 0 };
        let blocks = (w as usize).div_ceil(8) * (h as usize).div_ceil(8);
        for b in 0..blocks {
            bits.diff(if b == 0 { 800 } else { 0 });
            bits.put(0, 5); // EOB
        }
        out.extend(bits.finish());
        out.extend([0xFF, 0xD9]);
        out
    }
}

fn grey_of(p: &Prepared) -> Vec<u8> {
    p.pixels.chunks_exact(3).map(|c| c[0]).collect()
}

#[test]
fn lossless_16_and_12_bit_jpegs_are_scaled_over_their_precision() {
    let (w, h) = (64u16, 40u16);
    for precision in [16u8, 12] {
        let max = (1u32 << precision) - 1;
        // A left-to-right ramp over the whole range, the same on every row.
        let samples: Vec<u16> =
            (0..h as u32).flat_map(|_| (0..w as u32).map(move |x| (x * max / (w as u32 - 1)) as u16)).collect();
        let bytes = high_depth_jpeg::lossless(precision, w, h, &samples);
        assert_eq!(crate::jpeg::sample_precision(&bytes), Some(precision));
        let t = Transform { filter: ResizeFilter::Nearest, ..transform(h as u32, w as u32) };
        let p = t.apply_bytes(&bytes).unwrap_or_else(|e| panic!("{precision}-bit lossless: {e}"));
        let grey = grey_of(&p);
        for x in 0..w as usize {
            let expected = (samples[x] as u32 * 255 + max / 2) / max;
            assert!((grey[x] as i32 - expected as i32).abs() <= 1, "{precision}-bit x={x}: {} vs {expected}", grey[x]);
        }
        // The low byte would make a saw-tooth; the scaled high bits rise monotonically.
        assert!(
            grey.windows(2).take(w as usize - 1).all(|p| p[0] <= p[1]),
            "{precision}-bit: {:?}",
            &grey[..w as usize]
        );
        assert_eq!((grey[0], grey[w as usize - 1]), (0, 255));
    }
}

#[test]
fn a_12_bit_dct_jpeg_is_rejected_with_a_reason_that_says_so() {
    let e = transform(32, 32).apply_bytes(&high_depth_jpeg::dct12(64, 48)).unwrap_err();
    assert!(e.to_string().contains("12-bit DCT JPEG"), "{e}");
    assert_eq!(e.kind(), "unsupported");
}

pub(crate) use high_depth_jpeg::lossless as lossless_jpeg;

#[test]
fn a_truncated_jpeg_with_an_end_marker_appended_is_a_reject() {
    // Cut to 10% and given an EOI: libjpeg warns "premature end of data segment" and would
    // fill the rest with grey; that warning is a reject, not a 90% grey image.
    let jpeg = encode(&DynamicImage::ImageLuma8(gradient(400, 400)), ImageFormat::Jpeg);
    let mut cut = jpeg[..jpeg.len() / 10].to_vec();
    cut.extend_from_slice(&[0xFF, 0xD9]);
    let e = transform(32, 32).apply_bytes(&cut).unwrap_err();
    assert_eq!(e.kind(), "corrupt", "{e}");
}

/// A 16-bit grey PNG of `values`, with an `sBIT` chunk when `sbit` is given.
fn png16(w: u32, h: u32, values: impl Fn(u32, u32) -> u16, sbit: Option<u8>) -> Vec<u8> {
    let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(w, h, |x, y| image::Luma([values(x, y)]));
    let mut png = encode(&DynamicImage::ImageLuma16(img), ImageFormat::Png);
    if let Some(bits) = sbit {
        // sBIT goes right after IHDR (8-byte signature + 25-byte IHDR chunk).
        let mut chunk = 1u32.to_be_bytes().to_vec();
        chunk.extend_from_slice(b"sBIT");
        chunk.push(bits);
        let crc = crc32(&chunk[4..]);
        chunk.extend_from_slice(&crc.to_be_bytes());
        png.splice(33..33, chunk);
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn twelve_bit_data_in_a_16_bit_png_is_scaled_over_12_bits_with_or_without_sbit() {
    // Values 0..4000 of 4095: a mid-grey X-ray in 12 bits, nearly black over 16.
    let values = |x: u32, y: u32| ((y * 64 + x) * 4000 / 4095) as u16;
    let mean = |p: &Prepared| p.pixels.iter().map(|&v| v as f64).sum::<f64>() / p.pixels.len() as f64;
    let t = Transform { filter: ResizeFilter::Nearest, ..transform(64, 64) };
    for sbit in [None, Some(12)] {
        let p = t.apply_bytes(&png16(64, 64, values, sbit)).unwrap();
        let m = mean(&p);
        assert!((m - 124.5).abs() < 8.0, "sBIT {sbit:?}: mean {m} (over 16 bits it would be about 7.8)");
    }
    // sBIT wins over the data's own range: 0..1000 declared 12-bit stays dark.
    let dim = |x: u32, y: u32| ((y * 64 + x) * 1000 / 4095) as u16;
    let declared = mean(&t.apply_bytes(&png16(64, 64, dim, Some(12))).unwrap());
    let inferred = mean(&t.apply_bytes(&png16(64, 64, dim, None)).unwrap());
    assert!(declared < 40.0 && inferred > 100.0, "declared {declared}, inferred {inferred}");
    // Full 16-bit data stays scaled over 16 bits.
    let full = t.apply_bytes(&png16(64, 64, |x, y| ((x * 997 + y * 331) % 65536) as u16, None)).unwrap();
    assert!(mean(&full) > 100.0);
}

#[test]
fn memory_is_bounded_by_decoded_bytes_and_scans_are_capped() {
    // 16-bit RGBA, 3000x3000: a small file (one colour) that decodes to 72 MB.
    let img = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_pixel(
        3000,
        3000,
        image::Rgba([9000, 9000, 9000, 65535]),
    );
    let png = encode(&DynamicImage::ImageRgba16(img), ImageFormat::Png);
    assert!(png.len() < 1_000_000);
    let t = Transform { max_decoded_bytes: 64 << 20, ..transform(32, 32) };
    let e = t.apply_bytes(&png).unwrap_err();
    assert_eq!(e.kind(), "too-large", "{e}");
    assert!(e.to_string().contains("72000000") && e.to_string().contains("max_decoded_bytes"), "{e}");
    assert!(Transform { max_decoded_bytes: 80 << 20, ..transform(32, 32) }.apply_bytes(&png).is_ok());

    // A JPEG whose scan repeats 150 times: rejected before any decoding.
    let jpeg = encode(&DynamicImage::ImageLuma8(gradient(64, 64)), ImageFormat::Jpeg);
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let scan = &jpeg[sos..jpeg.len() - 2];
    let mut bomb = jpeg[..jpeg.len() - 2].to_vec();
    for _ in 0..150 {
        bomb.extend_from_slice(scan);
    }
    bomb.extend_from_slice(&[0xFF, 0xD9]);
    let started = std::time::Instant::now();
    let e = transform(32, 32).apply_bytes(&bomb).unwrap_err();
    assert!(e.to_string().contains("151 scans"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn decoding_work_is_capped_in_scans_times_pixels() {
    // 60 scans of a 6000x6000 frame: 2.16e9 scan-pixels, rejected from the headers alone.
    let jpeg = encode(&DynamicImage::ImageLuma8(gradient(64, 64)), ImageFormat::Jpeg);
    let mut big = jpeg.clone();
    let sof = big.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    big[sof + 5..sof + 9].copy_from_slice(&[0x17, 0x70, 0x17, 0x70]); // 6000 x 6000
    let sos = big.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let scan = big[sos..big.len() - 2].to_vec();
    let mut bomb = big[..big.len() - 2].to_vec();
    for _ in 0..59 {
        bomb.extend_from_slice(&scan);
    }
    bomb.extend_from_slice(&[0xFF, 0xD9]);
    let started = std::time::Instant::now();
    let t = Transform { max_pixels: 100_000_000, ..transform(32, 32) };
    let e = t.apply_bytes(&bomb).unwrap_err();
    assert!(e.to_string().contains("60 scans of 6000x6000"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(transform(32, 32).apply_bytes(&jpeg).is_ok(), "an ordinary file is untouched");
}
