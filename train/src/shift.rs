//! The cohort-shift monitor built into `model.onnx`: how unlike the training images an image
//! is, from the backbone features the head sees. A Gaussian is fitted to the training
//! images' features with Ledoit-Wolf shrinkage of the covariance (the sample covariance of
//! 512 features from a few hundred images is singular; shrinkage towards a scaled identity
//! by the Ledoit-Wolf rule needs no tuning and keeps the precision well conditioned). An
//! image's score is its Mahalanobis distance divided by the square root of the dimension
//! (about 1 for an image like the training ones), computed in the graph from standard
//! operators: `||(x - mean) W||^2 / p`, then a square root, with `W` the inverse Cholesky
//! factor of the covariance.

use cxr_onnx::{GraphBuilder, tensor_f32};

use crate::features::SplitFeatures;

/// Feature vectors longer than this are reduced to their channel means first (a flattened
/// 7x7x512 map has 25,088 values: too many for a covariance from a few thousand images).
pub const MAX_DIM: usize = 4096;

/// How the monitor's vector is made from the head's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// The head's features as they are.
    None,
    /// A channels-last flattened map (`[positions x channels]`): the mean of each channel.
    ChannelMeans { channels: usize },
}

impl Reduce {
    /// The reduction for features of `dim` values from a backbone with `channels` channels
    /// (when known); `None` when the monitor cannot be built.
    pub fn for_dim(dim: usize, channels: Option<usize>) -> Option<Reduce> {
        if dim <= MAX_DIM {
            return Some(Reduce::None);
        }
        channels
            .filter(|&c| c > 0 && c <= MAX_DIM && dim.is_multiple_of(c))
            .map(|channels| Reduce::ChannelMeans { channels })
    }

    fn apply(self, row: &[f32]) -> Vec<f64> {
        match self {
            Reduce::None => row.iter().map(|&v| v as f64).collect(),
            Reduce::ChannelMeans { channels } => {
                let positions = row.len() / channels;
                let mut out = vec![0.0; channels];
                for cell in row.chunks(channels) {
                    for (o, &v) in out.iter_mut().zip(cell) {
                        *o += v as f64;
                    }
                }
                out.iter_mut().for_each(|v| *v /= positions as f64);
                out
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            Reduce::None => "the head's input features".into(),
            Reduce::ChannelMeans { channels } => format!("the means of the head's {channels} feature channels"),
        }
    }
}

/// A fitted monitor.
#[derive(Debug, Clone)]
pub struct ShiftModel {
    pub reduce: Reduce,
    /// The length of the head's features, and of the monitor's vector made from them.
    pub input_dim: usize,
    pub dim: usize,
    pub mean: Vec<f64>,
    /// `W` (row-major `[dim, dim]`): the transpose of the inverse Cholesky factor of the
    /// shrunk covariance, so that `(x - mean) W` has the identity covariance.
    pub whiten: Vec<f64>,
    /// The Ledoit-Wolf shrinkage intensity in [0, 1].
    pub shrinkage: f64,
    pub images: usize,
}

impl ShiftModel {
    /// Fits the monitor to `train`'s features.
    pub fn fit(train: &SplitFeatures, reduce: Reduce) -> anyhow::Result<ShiftModel> {
        let rows: Vec<Vec<f64>> = (0..train.len()).map(|i| reduce.apply(train.row(i))).collect();
        anyhow::ensure!(rows.len() >= 2, "the shift monitor needs at least two training images");
        let (n, p) = (rows.len(), rows[0].len());
        let mut mean = vec![0.0; p];
        for r in &rows {
            mean.iter_mut().zip(r).for_each(|(m, v)| *m += v / n as f64);
        }
        let centred: Vec<Vec<f64>> = rows.iter().map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect()).collect();
        let (covariance, shrinkage) = ledoit_wolf(&centred);
        let factor = cholesky(&covariance, p)?;
        let whiten = lower_inverse_transposed(&factor, p);
        Ok(ShiftModel { reduce, input_dim: train.dim, dim: p, mean, whiten, shrinkage, images: n })
    }

    /// The score of each row of `split` (as the graph computes it, in float64).
    pub fn scores(&self, split: &SplitFeatures) -> Vec<f64> {
        (0..split.len()).map(|i| self.score(&self.reduce.apply(split.row(i)))).collect()
    }

    fn score(&self, x: &[f64]) -> f64 {
        let p = self.dim;
        // y = (x - mean) W, accumulated a row of W at a time (rows are contiguous).
        let mut y = vec![0.0; p];
        for ((v, m), row) in x.iter().zip(&self.mean).zip(self.whiten.chunks(p)) {
            let d = v - m;
            y.iter_mut().zip(row).for_each(|(y, w)| *y += d * w);
        }
        (y.iter().map(|v| v * v).sum::<f64>() / p as f64).sqrt()
    }

    /// Appends the score to `g`, from the head's `features` value; returns the `[N]` score.
    /// Sums are MatMuls with ones (Reduce* operators moved their axes from attribute to input
    /// at opset 18, and a spliced user backbone may bring either opset).
    pub fn append(&self, g: &mut GraphBuilder, features: &str) -> String {
        let p = self.dim as i64;
        let x = match self.reduce {
            Reduce::None => features.to_string(),
            Reduce::ChannelMeans { channels } => {
                let cells = self.input_dim / channels;
                let shape = g.const_i64(&[3], &[0, cells as i64, channels as i64]);
                let map = g.op("Reshape", &[features, &shape], &[]);
                // [1, cells] x [N, cells, C] -> [N, 1, C]: the mean over the map's cells.
                let average = g.const_f32(&[1, cells as i64], &vec![1.0 / cells as f32; cells]);
                let mean = g.op("MatMul", &[&average, &map], &[]);
                let flat = g.const_i64(&[2], &[0, channels as i64]);
                g.op("Reshape", &[&mean, &flat], &[])
            }
        };
        let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mean = g.initializer(tensor_f32("shift/mean", &[p], &as_f32(&self.mean)));
        let whiten = g.initializer(tensor_f32("shift/whiten", &[p, p], &as_f32(&self.whiten)));
        let d = g.op("Sub", &[&x, &mean], &[]);
        let y = g.op("MatMul", &[&d, &whiten], &[]);
        let squares = g.op("Mul", &[&y, &y], &[]);
        // The mean of the squares: [N, p] x [p, 1] with every weight 1/p.
        let average = g.const_f32(&[p, 1], &vec![1.0 / p as f32; p as usize]);
        let mean_square = g.op("MatMul", &[&squares, &average], &[]);
        let flat = g.const_i64(&[1], &[-1]);
        let mean_square = g.op("Reshape", &[&mean_square, &flat], &[]);
        g.op("Sqrt", &[&mean_square], &[])
    }
}

/// The monitor of a trained model: fitted on the `train` features, with the scores of the
/// `val` images as the reference a cohort is compared with. `None` (with a log line) when
/// the features are too long to model and their channels are unknown.
pub fn monitor(
    train: &SplitFeatures,
    val: &SplitFeatures,
    channels: Option<usize>,
) -> anyhow::Result<Option<(ShiftModel, cxr_store::model_meta::ShiftMeta)>> {
    let Some(reduce) = Reduce::for_dim(train.dim, channels) else {
        tracing::info!(dim = train.dim, "no shift monitor: features this long need the backbone's channel count");
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let model = ShiftModel::fit(train, reduce)?;
    let mut val_scores: Vec<f32> = model.scores(val).iter().map(|&s| s as f32).collect();
    val_scores.sort_by(f32::total_cmp);
    let meta = cxr_store::model_meta::ShiftMeta {
        features: reduce.describe(),
        dim: model.dim,
        shrinkage: model.shrinkage,
        train_images: model.images,
        p95: percentile(&val_scores, 0.95),
        p99: percentile(&val_scores, 0.99),
        val_scores,
    };
    tracing::info!(
        "shift monitor fitted on {} train images ({}, shrinkage {:.3}, {:.1}s): val scores p95 {:.3}, p99 {:.3}",
        model.images,
        meta.features,
        model.shrinkage,
        started.elapsed().as_secs_f64(),
        meta.p95,
        meta.p99
    );
    Ok(Some((model, meta)))
}

/// The `q` quantile of sorted `values` (linear between neighbours); 0 when empty.
pub fn percentile(sorted: &[f32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    let w = at - lo as f64;
    sorted[lo] as f64 * (1.0 - w) + sorted[hi] as f64 * w
}

/// The Ledoit-Wolf shrunk covariance of centred rows (Ledoit and Wolf 2004, as
/// scikit-learn's `ledoit_wolf` computes it), row-major `[p, p]`, and the shrinkage.
fn ledoit_wolf(centred: &[Vec<f64>]) -> (Vec<f64>, f64) {
    let (n, p) = (centred.len(), centred[0].len());
    // S = (1/n) sum of r r^T, its upper triangle accumulated and then mirrored.
    let mut s = vec![0.0; p * p];
    for r in centred {
        for i in 0..p {
            let ri = r[i];
            if ri == 0.0 {
                continue;
            }
            s[i * p + i..(i + 1) * p].iter_mut().zip(&r[i..]).for_each(|(v, &rj)| *v += ri * rj);
        }
    }
    for i in 0..p {
        for j in i..p {
            s[i * p + j] /= n as f64;
            s[j * p + i] = s[i * p + j];
        }
    }
    let mu = (0..p).map(|i| s[i * p + i]).sum::<f64>() / p as f64;
    // delta: distance of S from mu*I; beta: how far single outer products scatter around S,
    // sum over r of ||r r^T - S||^2 = sum ||r||^4 - 2 sum r^T S r + n ||S||^2, where the
    // middle sum is n ||S||^2 (S is the mean of the r r^T).
    let delta = s.iter().enumerate().map(|(k, v)| if k / p == k % p { (v - mu).powi(2) } else { v * v }).sum::<f64>();
    let s_norm = s.iter().map(|v| v * v).sum::<f64>();
    let fourth: f64 = centred.iter().map(|r| r.iter().map(|v| v * v).sum::<f64>().powi(2)).sum();
    let beta = (fourth - n as f64 * s_norm) / (n * n) as f64;
    let shrinkage = if delta > 0.0 { (beta.min(delta) / delta).clamp(0.0, 1.0) } else { 1.0 };
    let mut shrunk: Vec<f64> = s.iter().map(|v| v * (1.0 - shrinkage)).collect();
    for i in 0..p {
        shrunk[i * p + i] += shrinkage * mu;
    }
    (shrunk, shrinkage)
}

/// The lower Cholesky factor `L` of a symmetric positive definite `[p, p]` matrix.
fn cholesky(a: &[f64], p: usize) -> anyhow::Result<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let dot: f64 = l[i * p..i * p + j].iter().zip(&l[j * p..j * p + j]).map(|(a, b)| a * b).sum();
            if i == j {
                let v = a[i * p + i] - dot;
                anyhow::ensure!(v > 0.0 && v.is_finite(), "the features' covariance is not positive definite");
                l[i * p + i] = v.sqrt();
            } else {
                l[i * p + j] = (a[i * p + j] - dot) / l[j * p + j];
            }
        }
    }
    Ok(l)
}

/// The transpose of the inverse of a lower-triangular `[p, p]` matrix: row `c` of the
/// result is column `c` of `L^-1`, found by forward substitution on `L x = e_c` (so that
/// each solve reads and writes contiguous rows).
fn lower_inverse_transposed(l: &[f64], p: usize) -> Vec<f64> {
    let mut out = vec![0.0; p * p];
    for (col, x) in out.chunks_mut(p).enumerate() {
        for i in col..p {
            let rhs = if i == col { 1.0 } else { 0.0 };
            let dot: f64 = l[i * p + col..i * p + i].iter().zip(&x[col..i]).map(|(a, b)| a * b).sum();
            x[i] = (rhs - dot) / l[i * p + i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn split(rows: &[Vec<f32>]) -> SplitFeatures {
        SplitFeatures { features: rows.concat(), labels: vec![0; rows.len()], dim: rows[0].len() }
    }

    #[test]
    fn ledoit_wolf_agrees_with_scikit_learn() {
        // sklearn.covariance.ledoit_wolf(X) for these rows, scikit-learn 1.9.1.
        let rows = [[1.0, 2.0, 0.5], [2.0, 1.0, 1.5], [0.5, 0.2, 2.5], [1.5, 2.5, 0.0], [3.0, 0.5, 1.0]];
        let mean: Vec<f64> = (0..3).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / 5.0).collect();
        let centred: Vec<Vec<f64>> = rows.iter().map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect()).collect();
        let (cov, shrinkage) = ledoit_wolf(&centred);
        assert!((shrinkage - 0.8308197705992618).abs() < 1e-12, "{shrinkage}");
        let expected = [
            [0.748418973675406, -0.01928654615168415, -0.035527848174155024],
            [-0.01928654615168415, 0.7535620526491884, -0.11233567232209016],
            [-0.035527848174155024, -0.11233567232209016, 0.748418973675406],
        ];
        for i in 0..3 {
            for j in 0..3 {
                assert!((cov[i * 3 + j] - expected[i][j]).abs() < 1e-12, "[{i}][{j}]: {}", cov[i * 3 + j]);
            }
        }
    }

    #[test]
    fn whitened_scores_are_about_one_in_distribution_and_large_outside() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let draw = |rng: &mut rand_chacha::ChaCha8Rng, shift: f32| -> Vec<f32> {
            let z: Vec<f32> = (0..16).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
            // Correlated features: each is a mix of its neighbours.
            (0..16).map(|i| z[i] + 0.5 * z[(i + 1) % 16] + shift).collect()
        };
        let train: Vec<Vec<f32>> = (0..400).map(|_| draw(&mut rng, 0.0)).collect();
        let model = ShiftModel::fit(&split(&train), Reduce::None).unwrap();
        let inside: Vec<Vec<f32>> = (0..200).map(|_| draw(&mut rng, 0.0)).collect();
        let outside: Vec<Vec<f32>> = (0..200).map(|_| draw(&mut rng, 1.5)).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (a, b) = (mean(&model.scores(&split(&inside))), mean(&model.scores(&split(&outside))));
        assert!((0.8..1.2).contains(&a), "in distribution: {a}");
        assert!(b > 2.0 * a, "shifted: {b} against {a}");
    }

    #[test]
    fn channel_means_reduce_a_channels_last_map() {
        let reduce = Reduce::for_dim(8 * 1000, Some(1000)).unwrap();
        assert_eq!(reduce, Reduce::ChannelMeans { channels: 1000 });
        let row: Vec<f32> = (0..4).flat_map(|cell| [cell as f32, 10.0]).collect();
        assert_eq!(Reduce::ChannelMeans { channels: 2 }.apply(&row), vec![1.5, 10.0]);
        assert_eq!(Reduce::for_dim(512, None), Some(Reduce::None));
        assert_eq!(Reduce::for_dim(25088, None), None, "no monitor without the channel count");
    }
}
