//! Drawing a heatmap over the X-ray: the image at its own aspect ratio, the map in the
//! turbo colour scale blended over it, a colour bar, and lines of text (the call and the
//! probability) in a band above, in an 8x8 bitmap font; encoded as PNG.

use font8x8::UnicodeFonts;
use image::ImageEncoder;

use crate::{ExplainError, Heatmap};

/// Width of the colour bar's panel right of the image.
pub const PANEL: u32 = 52;

/// An RGB canvas.
struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Canvas {
        Canvas { width, height, rgb: vec![0; (width * height * 3) as usize] }
    }

    fn put(&mut self, x: u32, y: u32, colour: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = ((y * self.width + x) * 3) as usize;
            self.rgb[i..i + 3].copy_from_slice(&colour);
        }
    }

    /// Writes `text` with its top-left corner at `(x, y)`, each font pixel `scale` wide.
    fn text(&mut self, x: u32, y: u32, text: &str, scale: u32, colour: [u8; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::BASIC_FONTS.get('?')).unwrap_or([0; 8]);
            let left = x + i as u32 * 8 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8u32 {
                    if bits >> col & 1 == 1 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.put(left + col * scale + dx, y + row as u32 * scale + dy, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Google's turbo colour map (Mikhailov 2019), by its polynomial approximation.
pub fn turbo(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let poly = |c: [f32; 6]| c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * c[5]))));
    let r = poly([0.135_721_38, 4.615_392_6, -42.660_32, 132.131_08, -152.942_39, 59.286_38]);
    let g = poly([0.091_402_61, 2.194_188_4, 4.842_966_6, -14.185_033, 4.277_298_6, 2.829_566]);
    let b = poly([0.106_673_3, 12.641_946, -60.582_047, 110.362_77, -89.903_11, 27.348_25]);
    [r, g, b].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// The grey or RGB pixels of the image to draw over (row-major, 1 or 3 channels).
#[derive(Debug, Clone, Copy)]
pub struct Picture<'a> {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub pixels: &'a [u8],
}

/// `map` blended over `picture`: RGB, row-major, the picture's size. Weak evidence leaves
/// the X-ray visible; strong evidence is mostly colour.
pub fn overlay(picture: Picture, map: &Heatmap) -> Result<Vec<u8>, ExplainError> {
    let (w, h) = (picture.width, picture.height);
    let expected = (w * h) as usize * picture.channels as usize;
    if picture.pixels.len() != expected || !matches!(picture.channels, 1 | 3) {
        return Err(ExplainError::Render(format!("a {w}x{h} picture needs {expected} bytes")));
    }
    // The colour and opacity of each of 256 levels of the map, computed once.
    let levels: Vec<([f32; 3], f32)> = (0..256)
        .map(|q| {
            let v = q as f32 / 255.0;
            (turbo(v).map(|c| c as f32 * 0.6 * v), 1.0 - 0.6 * v)
        })
        .collect();
    let values = map.resample(w, h);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for (i, v) in values.iter().enumerate() {
        let (colour, keep) = levels[(v.clamp(0.0, 1.0) * 255.0).round() as usize];
        let p = i * picture.channels as usize;
        let base = match picture.channels {
            1 => [picture.pixels[p]; 3],
            _ => [picture.pixels[p], picture.pixels[p + 1], picture.pixels[p + 2]],
        };
        rgb.extend((0..3).map(|c| (base[c] as f32 * keep + colour[c]).round() as u8));
    }
    Ok(rgb)
}

/// Draws `map` over `picture` with `lines` of text above and a colour bar right; returns
/// the PNG's bytes.
pub fn render_png(picture: Picture, map: &Heatmap, lines: &[String]) -> Result<Vec<u8>, ExplainError> {
    let (w, h) = (picture.width, picture.height);
    // Twice the font's size when every line fits so, else its own.
    let longest = lines.iter().map(|l| l.chars().count() as u32).max().unwrap_or(0);
    let scale = if longest * 16 + 6 <= w + PANEL { 2 } else { 1 };
    let line_height = 8 * scale + 4;
    let band = lines.len() as u32 * line_height + 6;
    let mut canvas = Canvas::new(w + PANEL, h + band);
    let blended = overlay(picture, map)?;
    for (y, row) in blended.chunks_exact((w * 3) as usize).enumerate() {
        let start = (((y as u32 + band) * canvas.width) * 3) as usize;
        canvas.rgb[start..start + row.len()].copy_from_slice(row);
    }
    draw_colour_bar(&mut canvas, w, band, h);
    let chars = ((w + PANEL) / (8 * scale)) as usize;
    for (i, line) in lines.iter().enumerate() {
        let shown: String = line.chars().take(chars).collect();
        canvas.text(3, 3 + i as u32 * line_height, &shown, scale, [255, 255, 255]);
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    )
    .write_image(&canvas.rgb, canvas.width, canvas.height, image::ExtendedColorType::Rgb8)
    .map_err(|e| ExplainError::Render(e.to_string()))?;
    Ok(png)
}

/// The scale from 0 (bottom) to the image's largest value (top), right of the image.
fn draw_colour_bar(canvas: &mut Canvas, left: u32, top: u32, height: u32) {
    let (x0, bar) = (left + 6, 12);
    let (y0, y1) = (top + 12, (top + height).saturating_sub(12));
    if y1 <= y0 + 1 {
        return;
    }
    for y in y0..y1 {
        let colour = turbo((y1 - 1 - y) as f32 / (y1 - 1 - y0) as f32);
        for x in x0..x0 + bar {
            canvas.put(x, y, colour);
        }
    }
    canvas.text(x0 + bar + 3, y0, "max", 1, [255, 255, 255]);
    canvas.text(x0 + bar + 3, y1 - 8, "0", 1, [255, 255, 255]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turbo_runs_from_dark_blue_to_dark_red() {
        let [r0, _, b0] = turbo(0.1);
        let [r1, _, b1] = turbo(1.0);
        assert!(b0 > r0 && r1 > b1, "{:?} {:?}", turbo(0.1), turbo(1.0));
        assert_eq!(turbo(-1.0), turbo(0.0));
    }

    #[test]
    fn the_heatmap_is_drawn_where_its_peak_is_with_a_band_and_a_colour_bar() {
        let (w, h) = (80u32, 60u32);
        let grey = vec![100u8; (w * h) as usize];
        // A 2x2 map whose top-right cell is hot.
        let map = Heatmap::new(2, 2, vec![0.0, 4.0, 0.0, 0.0], None, [32, 32]);
        let png =
            render_png(Picture { width: w, height: h, channels: 1, pixels: &grey }, &map, &["CALL".into()]).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let band = 2 * 8 + 4 + 6; // "CALL" fits at twice the font size
        assert_eq!((img.width(), img.height()), (w + PANEL, h + band));
        let at = |x: u32, y: u32| img.get_pixel(x, y + band).0;
        assert_eq!(at(2, h - 2), [100, 100, 100], "no evidence: the X-ray unchanged");
        let hot = at(w - 2, 2);
        assert!(hot[0] > 105 && hot[2] < 60, "hot corner {hot:?}");
        assert!(img.pixels().take((band * (w + PANEL)) as usize).any(|p| p.0 == [255, 255, 255]), "text in the band");
        let bar_top = img.get_pixel(w + 10, band + 13).0;
        assert!(bar_top[0] > bar_top[2], "the bar's top is the hot end: {bar_top:?}");
    }
}
