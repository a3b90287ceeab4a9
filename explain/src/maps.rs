//! The Grad-CAM output of a run, `[N, classes, rows, cols]` per batch, kept per image with
//! every class's map (which one is drawn may depend on a call made later), and one image's
//! map of one class as a [`Heatmap`]. `infer --explain` and the report's gallery both read
//! the Grad-CAM model's output through this.

use crate::{ExplainError, Heatmap};

/// Every class's map of each image seen so far, in order.
#[derive(Debug, Clone, Default)]
pub struct CamMaps {
    /// `[rows, cols]` of every map (fixed by the model's input size); `None` before any.
    grid: Option<[usize; 2]>,
    classes: usize,
    /// Per image, `[classes, rows, cols]`.
    maps: Vec<Vec<f32>>,
}

impl CamMaps {
    /// Keeps a batch of `images`' maps: `cam` is the Grad-CAM output of `shape` `[N, K, H, W]`.
    pub fn push(&mut self, shape: &[usize], cam: &[f32], images: usize) -> Result<(), ExplainError> {
        let &[n, classes, rows, cols] = shape else {
            return Err(ExplainError::Model(format!("the Grad-CAM output has shape {shape:?}, not [N, K, H, W]")));
        };
        if n != images || n == 0 || cam.len() != n * classes * rows * cols {
            return Err(ExplainError::Model(format!("the Grad-CAM output has shape {shape:?} for {images} images")));
        }
        if self.grid.is_some_and(|g| g != [rows, cols]) || (self.classes != 0 && self.classes != classes) {
            return Err(ExplainError::Model(format!("the Grad-CAM output changed shape to {shape:?}")));
        }
        self.grid = Some([rows, cols]);
        self.classes = classes;
        self.maps.extend(cam.chunks(cam.len() / n).map(<[f32]>::to_vec));
        Ok(())
    }

    /// Images kept.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// `[rows, cols]` of the maps (`[0, 0]` before any).
    pub fn grid(&self) -> [usize; 2] {
        self.grid.unwrap_or([0, 0])
    }

    /// Image `image`'s map of class `class`, placed on an input of `input` pixels (`stride`:
    /// from [`crate::ExplainModel`]); `None` when either is out of range.
    pub fn heatmap(&self, image: usize, class: usize, stride: Option<[u32; 2]>, input: [u32; 2]) -> Option<Heatmap> {
        let [rows, cols] = self.grid?;
        let all = self.maps.get(image).filter(|_| class < self.classes)?;
        let cells = rows * cols;
        Some(Heatmap::new(rows, cols, all[class * cells..(class + 1) * cells].to_vec(), stride, input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_kept_per_image_and_each_class_map_is_its_own_slice() {
        let mut maps = CamMaps::default();
        // 2 images, 2 classes, 1x2 maps: image i, class k holds [10i+k, 10i+k+0.5].
        let cam = [0.0, 0.5, 1.0, 1.5, 10.0, 10.5, 11.0, 11.5];
        maps.push(&[2, 2, 1, 2], &cam, 2).unwrap();
        assert_eq!((maps.len(), maps.grid()), (2, [1, 2]));
        let m = maps.heatmap(1, 1, None, [4, 8]).unwrap();
        assert_eq!(m.values, [11.0, 11.5]);
        assert!(maps.heatmap(2, 0, None, [4, 8]).is_none() && maps.heatmap(0, 2, None, [4, 8]).is_none());
        assert!(maps.push(&[2, 2, 1, 2], &cam, 3).is_err(), "a batch of another size");
        assert!(maps.push(&[1, 2, 2, 1], &cam[..4], 1).is_err(), "another grid");
        assert!(maps.push(&[2, 2, 2], &cam, 2).is_err(), "not four dimensions");
    }
}
