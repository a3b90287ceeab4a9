//! One image's Grad-CAM map and where its cells lie on the image.

/// A map of one class for one image, over the model's input grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub rows: usize,
    pub cols: usize,
    /// Row-major, as the graph computed them (non-negative).
    pub values: Vec<f32>,
    /// Model input pixels per cell (rows, columns).
    pub stride: [f32; 2],
    /// The model's input size `[H, W]`, which the image was stretched to.
    pub input: [u32; 2],
}

impl Heatmap {
    /// `stride` as the graph's walk found it; without one the cells tile the whole input.
    pub fn new(rows: usize, cols: usize, values: Vec<f32>, stride: Option<[u32; 2]>, input: [u32; 2]) -> Heatmap {
        assert_eq!(values.len(), rows * cols, "a {rows}x{cols} map");
        let stride = match stride {
            Some([h, w]) => [h as f32, w as f32],
            None => [input[0] as f32 / rows.max(1) as f32, input[1] as f32 / cols.max(1) as f32],
        };
        Heatmap { rows, cols, values, stride, input }
    }

    /// The largest value (0 for an empty map).
    pub fn max(&self) -> f32 {
        self.values.iter().copied().fold(0.0, f32::max)
    }

    /// The values divided by the largest, so in `[0, 1]`; all zero when the map is.
    pub fn normalised(&self) -> Vec<f32> {
        let max = self.max();
        if max > 0.0 && max.is_finite() {
            self.values.iter().map(|v| (v / max).clamp(0.0, 1.0)).collect()
        } else {
            vec![0.0; self.values.len()]
        }
    }

    /// The normalised value at a point given as fractions of the image's width and height:
    /// bilinear between cell centres, edge cells reaching to the border (also over input
    /// rows a trailing pool dropped, which no cell covers).
    pub fn sample(normalised: &[f32], map: &Heatmap, fx: f32, fy: f32) -> f32 {
        let coordinate = |fraction: f32, input: u32, stride: f32, cells: usize| {
            let g = (fraction * input as f32 / stride - 0.5).clamp(0.0, (cells.max(1) - 1) as f32);
            let i = (g.floor() as usize).min(cells.saturating_sub(2));
            (i, (g - i as f32).clamp(0.0, 1.0))
        };
        if map.rows == 0 || map.cols == 0 {
            return 0.0;
        }
        let (r, ty) = coordinate(fy, map.input[0], map.stride[0], map.rows);
        let (c, tx) = coordinate(fx, map.input[1], map.stride[1], map.cols);
        let at = |r: usize, c: usize| normalised[r.min(map.rows - 1) * map.cols + c.min(map.cols - 1)];
        let top = at(r, c) * (1.0 - tx) + at(r, c + 1) * tx;
        let bottom = at(r + 1, c) * (1.0 - tx) + at(r + 1, c + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }

    /// The normalised map at every pixel of a `width` x `height` picture of the image, row-major:
    /// [`Heatmap::sample`] at each pixel's centre, computed separably (the interpolation
    /// weights of each column and each row once).
    pub fn resample(&self, width: u32, height: u32) -> Vec<f32> {
        let normalised = self.normalised();
        if self.rows == 0 || self.cols == 0 {
            return vec![0.0; (width * height) as usize];
        }
        let weights = |pixels: u32, input: u32, stride: f32, cells: usize| -> Vec<(usize, f32)> {
            (0..pixels)
                .map(|p| {
                    let fraction = (p as f32 + 0.5) / pixels as f32;
                    let g = (fraction * input as f32 / stride - 0.5).clamp(0.0, (cells - 1) as f32);
                    let i = (g.floor() as usize).min(cells.saturating_sub(2));
                    (i, (g - i as f32).clamp(0.0, 1.0))
                })
                .collect()
        };
        let columns = weights(width, self.input[1], self.stride[1], self.cols);
        let rows = weights(height, self.input[0], self.stride[0], self.rows);
        let at = |r: usize, c: usize| normalised[r.min(self.rows - 1) * self.cols + c.min(self.cols - 1)];
        let mut out = Vec::with_capacity((width * height) as usize);
        for &(r, ty) in &rows {
            for &(c, tx) in &columns {
                let top = at(r, c) * (1.0 - tx) + at(r, c + 1) * tx;
                let bottom = at(r + 1, c) * (1.0 - tx) + at(r + 1, c + 1) * tx;
                out.push(top * (1.0 - ty) + bottom * ty);
            }
        }
        out
    }

    /// The centre of the largest cell as fractions of the image's width and height (the
    /// first in row order on ties); `None` when the map is all zero.
    pub fn peak(&self) -> Option<(f32, f32)> {
        let (index, &value) = self
            .values
            .iter()
            .enumerate()
            .fold((0, &f32::MIN), |best, (i, v)| if *v > *best.1 { (i, v) } else { best });
        if value.is_nan() || value <= 0.0 {
            return None;
        }
        let (r, c) = (index / self.cols, index % self.cols);
        let fraction = |cell: usize, stride: f32, input: u32| (((cell as f32 + 0.5) * stride) / input as f32).min(1.0);
        Some((fraction(c, self.stride[1], self.input[1]), fraction(r, self.stride[0], self.input[0])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_map_to_input_pixels_through_the_stride() {
        // VGG16's last convolution at 50 px: 3x3 cells of 16 px; the last 2 px have no cell.
        let map = Heatmap::new(3, 3, vec![0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 1.0, 0.0], Some([16, 16]), [50, 50]);
        let (x, y) = map.peak().unwrap();
        assert!((x - 40.0 / 50.0).abs() < 1e-6 && (y - 24.0 / 50.0).abs() < 1e-6, "{x} {y}");
        let n = map.normalised();
        assert_eq!(n[5], 1.0);
        assert_eq!(n[7], 0.5);
        // At a cell's centre the sample is the cell's value; past the last centre it stays.
        assert!((Heatmap::sample(&n, &map, 0.8, 0.48) - 1.0).abs() < 1e-6);
        assert!((Heatmap::sample(&n, &map, 1.0, 0.48) - 1.0).abs() < 1e-6);
        // Half-way between two centres, the mean.
        let halfway = Heatmap::sample(&n, &map, 32.0 / 50.0, 32.0 / 50.0);
        assert!((halfway - 0.25 * (0.0 + 1.0 + 0.5 + 0.0)).abs() < 1e-6, "{halfway}");
        // Resampling a picture gives the sample at each pixel's centre.
        let (w, h) = (37u32, 23u32);
        let picture = map.resample(w, h);
        for (i, v) in picture.iter().enumerate() {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let want = Heatmap::sample(&n, &map, (x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
            assert!((v - want).abs() < 1e-5, "pixel ({x}, {y}): {v} against {want}");
        }
    }

    #[test]
    fn a_map_without_evidence_has_no_peak_and_a_missing_stride_tiles_the_input() {
        let zero = Heatmap::new(2, 2, vec![0.0; 4], None, [64, 32]);
        assert_eq!(zero.peak(), None);
        assert_eq!(zero.normalised(), vec![0.0; 4]);
        assert_eq!(zero.stride, [32.0, 16.0]);
        let one = Heatmap::new(1, 1, vec![3.0], None, [64, 64]);
        assert_eq!(one.peak(), Some((0.5, 0.5)));
        assert_eq!(Heatmap::sample(&one.normalised(), &one, 0.1, 0.9), 1.0);
    }
}
