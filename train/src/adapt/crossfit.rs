//! Cross-fitting over the local sample: folds grouped by patient and stratified by class,
//! out-of-fold probabilities from refits that never saw the fold, and every choice made for
//! an image (the local weight, the temperature, the threshold) made on the other folds
//! only. So no local image is scored by a model that saw it, and none is decided by a
//! threshold chosen on its own label.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The labelled local sample, row by row.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Vec<usize>,
    /// Patient group of each row (rows of one patient share it).
    pub patients: Vec<usize>,
    pub classes: usize,
    pub positive: usize,
}

impl Sample {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn patient_count(&self) -> usize {
        self.patients.iter().collect::<std::collections::BTreeSet<_>>().len()
    }

    /// Each patient's rows, patients in order of first appearance, and the patient's class
    /// (the largest label among its rows).
    fn patients_in_order(&self) -> Vec<(usize, Vec<usize>)> {
        let mut index: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
        for (row, &p) in self.patients.iter().enumerate() {
            let at = *index.entry(p).or_insert_with(|| {
                out.push((0, Vec::new()));
                out.len() - 1
            });
            out[at].0 = out[at].0.max(self.labels[row]);
            out[at].1.push(row);
        }
        out
    }

    /// The patients of `rows` (each as its rows among `rows`) by class, shuffled within
    /// each class by `seed`.
    fn shuffled_strata(&self, rows: &[usize], seed: u64) -> Vec<Vec<Vec<usize>>> {
        let wanted: std::collections::HashSet<usize> = rows.iter().copied().collect();
        let mut strata: Vec<Vec<Vec<usize>>> = vec![Vec::new(); self.classes];
        for (class, members) in self.patients_in_order() {
            let members: Vec<usize> = members.into_iter().filter(|r| wanted.contains(r)).collect();
            if !members.is_empty() {
                strata[class].push(members);
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for stratum in &mut strata {
            stratum.shuffle(&mut rng);
        }
        strata
    }

    /// Patients of `rows` in a seeded order that keeps every prefix close to the classes'
    /// shares: patients are shuffled within each class, then merged by taking next from
    /// the class furthest behind its share.
    fn stratified_patient_order(&self, rows: &[usize], seed: u64) -> Vec<Vec<usize>> {
        let strata = self.shuffled_strata(rows, seed);
        let total: usize = strata.iter().map(Vec::len).sum();
        let mut taken = vec![0usize; self.classes];
        let mut out = Vec::with_capacity(total);
        while out.len() < total {
            let next = (0..self.classes)
                .filter(|&c| taken[c] < strata[c].len())
                .min_by(|&a, &b| {
                    let share = |c: usize| (taken[c] as f64 + 0.5) / strata[c].len() as f64;
                    share(a).total_cmp(&share(b))
                })
                .expect("some stratum has patients left");
            out.push(strata[next][taken[next]].clone());
            taken[next] += 1;
        }
        out
    }
}

/// The fold of every row: whole patients of each class, in a seeded order, dealt in turn to
/// `folds` folds (the dealing goes on from class to class, so fold sizes stay even). Fewer
/// folds when there are fewer patients. Returns the fold of each row and the number of folds.
pub fn assign_folds(sample: &Sample, folds: usize, seed: u64) -> (Vec<usize>, usize) {
    let all: Vec<usize> = (0..sample.len()).collect();
    let strata = sample.shuffled_strata(&all, seed);
    let patients: usize = strata.iter().map(Vec::len).sum();
    let folds = folds.min(patients).max(1);
    let mut fold_of = vec![0; sample.len()];
    for (i, rows) in strata.iter().flatten().enumerate() {
        for &r in rows {
            fold_of[r] = i % folds;
        }
    }
    (fold_of, folds)
}

/// Nested subsets of `pool` (whole patients, stratified by class, in a seeded order): for
/// each size, the shortest prefix holding at least that many images. Sizes the pool cannot
/// reach are left out; every subset holds the previous one.
pub fn nested_subsets(sample: &Sample, pool: &[usize], sizes: &[usize], seed: u64) -> Vec<(usize, Vec<usize>)> {
    let order = sample.stratified_patient_order(pool, seed);
    let mut out = Vec::new();
    for &size in sizes {
        if size >= pool.len() {
            continue;
        }
        let mut subset = Vec::new();
        for rows in &order {
            if subset.len() >= size {
                break;
            }
            subset.extend_from_slice(rows);
        }
        subset.sort_unstable();
        out.push((size, subset));
    }
    out
}

/// Out-of-fold probabilities: for each fold, `fit_score(train_rows, score_rows)` fits on
/// every other fold's rows and returns the probabilities of the fold's rows.
pub fn out_of_fold(
    fold_of: &[usize],
    folds: usize,
    mut fit_score: impl FnMut(usize, &[usize], &[usize]) -> anyhow::Result<Vec<Vec<f64>>>,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut out = vec![Vec::new(); fold_of.len()];
    for k in 0..folds {
        let train: Vec<usize> = (0..fold_of.len()).filter(|&r| fold_of[r] != k).collect();
        let score: Vec<usize> = (0..fold_of.len()).filter(|&r| fold_of[r] == k).collect();
        let probabilities = fit_score(k, &train, &score)?;
        anyhow::ensure!(
            probabilities.len() == score.len(),
            "fold {k}: {} scores for {} rows",
            probabilities.len(),
            score.len()
        );
        for (r, p) in score.into_iter().zip(probabilities) {
            out[r] = p;
        }
    }
    Ok(out)
}

/// What is chosen from out-of-fold probabilities: which candidate, the temperature, the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub candidate: usize,
    pub temperature: f64,
    /// Two classes only; `None` also when the rows hold no positive image.
    pub threshold: Option<f64>,
}

/// The ROC AUC of `probabilities` on `rows` (macro one-vs-rest with 3+ classes).
pub fn auc_on(sample: &Sample, probabilities: &[Vec<f64>], rows: &[usize]) -> Option<f64> {
    let labels: Vec<usize> = rows.iter().map(|&r| sample.labels[r]).collect();
    if sample.classes == 2 {
        let scores: Vec<f64> = rows.iter().map(|&r| probabilities[r][sample.positive]).collect();
        let positive: Vec<bool> = labels.iter().map(|&l| l == sample.positive).collect();
        cxr_metrics::auc(&scores, &positive)
    } else {
        let probs: Vec<Vec<f64>> = rows.iter().map(|&r| probabilities[r].clone()).collect();
        cxr_metrics::macro_auc(&probs, &labels, sample.classes)
    }
}

/// Chooses on `rows` only: the candidate whose probabilities rank them best (ROC AUC; ties
/// go to the earlier candidate), the temperature fitted to that candidate's probabilities
/// (when `calibrate`), and the threshold reaching `target` sensitivity on the calibrated ones.
pub fn choose(sample: &Sample, candidates: &[Vec<Vec<f64>>], rows: &[usize], target: f64, calibrate: bool) -> Choice {
    let mut candidate = 0;
    let mut best = f64::NEG_INFINITY;
    for (c, probabilities) in candidates.iter().enumerate() {
        let auc = auc_on(sample, probabilities, rows).unwrap_or(f64::NEG_INFINITY);
        if auc > best + 1e-12 {
            (candidate, best) = (c, auc);
        }
    }
    let probs: Vec<Vec<f64>> = rows.iter().map(|&r| candidates[candidate][r].clone()).collect();
    let labels: Vec<usize> = rows.iter().map(|&r| sample.labels[r]).collect();
    let temperature = if calibrate { cxr_metrics::fit_temperature(&probs, &labels).unwrap_or(1.0) } else { 1.0 };
    let threshold = (sample.classes == 2)
        .then(|| {
            let scores: Vec<f64> =
                probs.iter().map(|p| cxr_metrics::apply_temperature(p, temperature)[sample.positive]).collect();
            let positive: Vec<bool> = labels.iter().map(|&l| l == sample.positive).collect();
            cxr_metrics::threshold_for_sensitivity(&scores, &positive, target)
        })
        .flatten();
    Choice { candidate, temperature, threshold }
}

/// Cross-fitted predictions: each row's probabilities from its fold's refit, calibrated and
/// decided by what was chosen on the other folds.
#[derive(Debug, Clone)]
pub struct Estimate {
    pub probabilities: Vec<Vec<f64>>,
    pub predicted: Vec<usize>,
    /// What was chosen for each fold (on the others).
    pub choices: Vec<Choice>,
}

/// The honest estimate of a cross-fitted procedure: for fold `k`, [`choose`] on the rows of
/// the other folds, then apply that choice to fold `k`'s out-of-fold probabilities.
pub fn estimate(
    sample: &Sample,
    candidates: &[Vec<Vec<f64>>],
    fold_of: &[usize],
    folds: usize,
    target: f64,
    calibrate: bool,
) -> Estimate {
    let n = sample.len();
    let mut probabilities = vec![Vec::new(); n];
    let mut predicted = vec![0; n];
    let mut choices = Vec::with_capacity(folds);
    for k in 0..folds {
        let others: Vec<usize> = (0..n).filter(|&r| fold_of[r] != k).collect();
        let choice = choose(sample, candidates, &others, target, calibrate);
        for r in (0..n).filter(|&r| fold_of[r] == k) {
            let p = cxr_metrics::apply_temperature(&candidates[choice.candidate][r], choice.temperature);
            predicted[r] = cxr_metrics::decide(&p, sample.positive, choice.threshold.unwrap_or(0.5));
            probabilities[r] = p;
        }
        choices.push(choice);
    }
    Estimate { probabilities, predicted, choices }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 60 patients, some with two images; labels alternate by patient.
    fn sample() -> Sample {
        let mut labels = Vec::new();
        let mut patients = Vec::new();
        for p in 0..60 {
            for _ in 0..(1 + p % 2) {
                labels.push(usize::from(p % 3 != 0));
                patients.push(p);
            }
        }
        Sample { labels, patients, classes: 2, positive: 1 }
    }

    #[test]
    fn folds_keep_patients_whole_and_hold_both_classes() {
        let s = sample();
        for k in [2, 3, 5] {
            let (fold_of, folds) = assign_folds(&s, k, 7);
            for f in 0..folds {
                let labels: Vec<usize> = (0..s.len()).filter(|&r| fold_of[r] == f).map(|r| s.labels[r]).collect();
                assert!(labels.contains(&0) && labels.contains(&1), "{k} folds: fold {f} lacks a class");
            }
        }
        let (fold_of, folds) = assign_folds(&s, 5, 7);
        assert_eq!(folds, 5);
        for (a, b) in (0..s.len()).flat_map(|a| (0..s.len()).map(move |b| (a, b))) {
            if s.patients[a] == s.patients[b] {
                assert_eq!(fold_of[a], fold_of[b], "a patient is split between folds");
            }
        }
        for k in 0..folds {
            let labels: Vec<usize> = (0..s.len()).filter(|&r| fold_of[r] == k).map(|r| s.labels[r]).collect();
            assert!(labels.contains(&0) && labels.contains(&1), "fold {k} lacks a class: {labels:?}");
        }
        let (few, n) = assign_folds(&Sample { labels: vec![0, 1, 1], patients: vec![0, 1, 1], ..s }, 5, 7);
        assert_eq!(n, 2, "no more folds than patients");
        assert_eq!(few[1], few[2]);
    }

    #[test]
    fn no_row_is_scored_by_a_refit_that_saw_it() {
        // A learner that remembers: the label of a row it was fitted on, 0.5 otherwise. Any
        // leak of a row into its own scorer shows up as a perfect score.
        let s = sample();
        let (fold_of, folds) = assign_folds(&s, 5, 1);
        let mut scored_by = vec![usize::MAX; s.len()];
        let oof = out_of_fold(&fold_of, folds, |k, train, score| {
            let seen: std::collections::HashSet<usize> = train.iter().copied().collect();
            for &r in score {
                assert!(!seen.contains(&r), "row {r} is in its own scorer's training rows");
                assert!(train.iter().all(|&t| s.patients[t] != s.patients[r]), "a patient on both sides");
                scored_by[r] = k;
            }
            Ok(score
                .iter()
                .map(|&r| {
                    if seen.contains(&r) { vec![1.0 - s.labels[r] as f64, s.labels[r] as f64] } else { vec![0.5, 0.5] }
                })
                .collect())
        })
        .unwrap();
        assert!(scored_by.iter().all(|&k| k < folds), "every row scored once");
        assert_eq!(auc_on(&s, &oof, &(0..s.len()).collect::<Vec<_>>()), Some(0.5), "nothing leaked");
        let estimate = estimate(&s, &[oof], &fold_of, folds, 0.95, true);
        assert_eq!(estimate.choices.len(), folds);
    }

    #[test]
    fn each_folds_choices_come_from_the_other_folds_only() {
        // Candidate 1 ranks fold 0 perfectly and the rest backwards; candidate 0 the reverse.
        // Fold 0 must be decided by candidate 0 (the better one elsewhere), the others by 1.
        let s = sample();
        let (fold_of, folds) = assign_folds(&s, 3, 3);
        let good = |r: usize| vec![1.0 - s.labels[r] as f64 * 0.8 - 0.1, s.labels[r] as f64 * 0.8 + 0.1];
        let bad = |r: usize| good(r).into_iter().rev().collect::<Vec<f64>>();
        let c0: Vec<Vec<f64>> = (0..s.len()).map(|r| if fold_of[r] == 0 { bad(r) } else { good(r) }).collect();
        let c1: Vec<Vec<f64>> = (0..s.len()).map(|r| if fold_of[r] == 0 { good(r) } else { bad(r) }).collect();
        let estimate = estimate(&s, &[c0, c1], &fold_of, folds, 0.95, false);
        assert_eq!(estimate.choices[0].candidate, 0);
        assert!(estimate.choices[1..].iter().all(|c| c.candidate == 1 || c.candidate == 0));
        // Fold 0 is scored by candidate 0, which ranks it backwards: the estimate says so.
        let fold0: Vec<usize> = (0..s.len()).filter(|&r| fold_of[r] == 0).collect();
        assert!(auc_on(&s, &estimate.probabilities, &fold0).unwrap() < 0.01);
    }

    #[test]
    fn budget_subsets_are_nested_whole_patients_within_the_pool() {
        let s = sample();
        let pool: Vec<usize> = (0..s.len()).filter(|r| r % 4 != 0).collect();
        let subsets = nested_subsets(&s, &pool, &[5, 10, 20, 1000], 9);
        assert_eq!(subsets.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![5, 10, 20], "unreachable sizes left out");
        for w in subsets.windows(2) {
            assert!(w[0].1.iter().all(|r| w[1].1.contains(r)), "not nested");
        }
        for (size, rows) in &subsets {
            assert!(rows.len() >= *size && rows.iter().all(|r| pool.contains(r)));
            let labels: std::collections::BTreeSet<usize> = rows.iter().map(|&r| s.labels[r]).collect();
            assert_eq!(labels.len(), 2, "a stratified prefix of {size} holds both classes");
        }
    }
}
