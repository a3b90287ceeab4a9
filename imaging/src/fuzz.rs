//! Mutation fuzzing of the decoders, as a proptest corpus that runs in CI: valid JPEG (grey,
//! RGB, lossless 16-bit), PNG (8- and 16-bit) and DICOM files with bytes flipped, cut short,
//! duplicated or spliced. Every input must give pixels or an `ImagingError` within a time
//! bound, never a panic, a hang or an unbounded allocation (limits: `max_pixels`).
//! `CXR_FUZZ_CASES=N` runs N cases per test (default 1500).

use std::io::Cursor;
use std::time::{Duration, Instant};

use cxr_config::Preprocess;
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use proptest::prelude::*;

use crate::Transform;

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn dicom(w: u16, h: u16) -> Vec<u8> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    let mut obj = InMemDicomObject::new_empty();
    let us = |v: u16| PrimitiveValue::from(v);
    let put = |obj: &mut InMemDicomObject, tag, vr, value| {
        obj.put(DataElement::new(tag, vr, value));
    };
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7"));
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.4"));
    put(&mut obj, tags::SAMPLES_PER_PIXEL, VR::US, us(1));
    put(&mut obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, PrimitiveValue::from("MONOCHROME1"));
    put(&mut obj, tags::ROWS, VR::US, us(h));
    put(&mut obj, tags::COLUMNS, VR::US, us(w));
    put(&mut obj, tags::BITS_ALLOCATED, VR::US, us(16));
    put(&mut obj, tags::BITS_STORED, VR::US, us(12));
    put(&mut obj, tags::HIGH_BIT, VR::US, us(11));
    put(&mut obj, tags::PIXEL_REPRESENTATION, VR::US, us(0));
    put(&mut obj, tags::WINDOW_CENTER, VR::DS, PrimitiveValue::from("2048"));
    put(&mut obj, tags::WINDOW_WIDTH, VR::DS, PrimitiveValue::from("4096"));
    let pixels: Vec<u16> = (0..w as u32 * h as u32).map(|i| (i * 37 % 4096) as u16).collect();
    put(&mut obj, tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into()));
    let file = obj.with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1")).unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

/// One valid file of each kind the decoders take.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let grey = GrayImage::from_fn(72, 56, |x, y| image::Luma([((x * 3 + y * 5) % 256) as u8]));
    let rgb = RgbImage::from_fn(48, 40, |x, y| image::Rgb([(x * 5) as u8, (y * 6) as u8, ((x + y) * 2) as u8]));
    let grey16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(40, 36, |x, y| {
        image::Luma([((x * 1500 + y * 700) % 65536) as u16])
    });
    let lossless: Vec<u16> = (0..40u32 * 32).map(|i| (i * 97 % 65536) as u16).collect();
    vec![
        ("grey JPEG", encode(&DynamicImage::ImageLuma8(grey.clone()), ImageFormat::Jpeg)),
        ("RGB JPEG", encode(&DynamicImage::ImageRgb8(rgb), ImageFormat::Jpeg)),
        ("16-bit lossless JPEG", crate::tests::lossless_jpeg(16, 40, 32, &lossless)),
        ("8-bit PNG", encode(&DynamicImage::ImageLuma8(grey), ImageFormat::Png)),
        ("16-bit PNG", encode(&DynamicImage::ImageLuma16(grey16), ImageFormat::Png)),
        ("DICOM", dicom(48, 40)),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Sets the byte at this fraction of the file.
    Set(f64, u8),
    /// Cuts the file at this fraction.
    Truncate(f64),
    /// Repeats a slice (fraction start, length) in place: lengths and markers go wrong.
    Duplicate(f64, usize),
    /// Writes a big-endian u16 (a length, a size) at this fraction.
    Word(f64, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (0.0f64..1.0, any::<u8>()).prop_map(|(f, b)| Mutation::Set(f, b)),
        1 => (0.0f64..1.0).prop_map(Mutation::Truncate),
        1 => (0.0f64..1.0, 1usize..64).prop_map(|(f, n)| Mutation::Duplicate(f, n)),
        2 => (0.0f64..0.3, prop_oneof![Just(0u16), Just(1), Just(0xFFFF), Just(0x8000), any::<u16>()])
            .prop_map(|(f, w)| Mutation::Word(f, w)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len - 1);
        match *m {
            Mutation::Set(f, b) => {
                let i = at(f, bytes.len());
                bytes[i] = b;
            }
            Mutation::Truncate(f) => bytes.truncate(at(f, bytes.len())),
            Mutation::Duplicate(f, n) => {
                let i = at(f, bytes.len());
                let end = (i + n).min(bytes.len());
                let copy = bytes[i..end].to_vec();
                bytes.splice(i..i, copy);
            }
            Mutation::Word(f, w) => {
                let i = at(f, bytes.len());
                for (k, b) in w.to_be_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(i + k) {
                        *slot = b;
                    }
                }
            }
        }
    }
    bytes
}

fn cases() -> u32 {
    std::env::var("CXR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_decode_or_fail_cleanly(seed in 0usize..6, mutations in proptest::collection::vec(mutation(), 1..8)) {
        let seeds = seeds();
        let (kind, bytes) = &seeds[seed];
        let input = apply(bytes.clone(), &mutations);
        // Limits a hostile header must not get past: 4 megapixels decoded at most.
        let t = Transform { max_pixels: 4_000_000, ..Transform::from_config(&Preprocess { size: [32, 32], ..Preprocess::default() }) };
        let started = Instant::now();
        if let Ok(p) = t.apply_bytes(&input) {
            prop_assert_eq!(p.pixels.len(), 32 * 32 * 3);
        }
        prop_assert!(started.elapsed() < Duration::from_secs(5), "{} took {:?}", kind, started.elapsed());
    }
}

#[test]
fn every_seed_decodes_unmutated() {
    let t = Transform::from_config(&Preprocess { size: [32, 32], ..Preprocess::default() });
    for (kind, bytes) in seeds() {
        t.apply_bytes(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[test]
fn a_dicom_length_past_the_end_is_refused_before_allocating_it() {
    // Found by the fuzz test: a 3.2 GB declared value length made the parser allocate it.
    let seeds = seeds();
    let input = apply(
        seeds[5].1.clone(),
        &[
            Mutation::Duplicate(0.5380398846394427, 49),
            Mutation::Word(0.1723083412875979, 32768),
            Mutation::Set(0.6527030194893887, 21),
        ],
    );
    let t = Transform::from_config(&Preprocess { size: [32, 32], ..Preprocess::default() });
    let started = Instant::now();
    let e = t.apply_bytes(&input).unwrap_err();
    assert!(e.to_string().contains("declares") && e.to_string().contains("bytes but only"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}
