//! Validation splits (stratified, seeded, grouped by patient) and balanced per-class limits.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::dataset::Item;

/// Why a validation split could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(
        "patient {patient:?} holds {images} of the {total} training images ({share:.1}%, over data.max_patient_share {max:.1}%): the patient grouping is wrong for this dataset. Set data.patient to a label-file column ({{column: \"Patient ID\"}}) or a pattern over the path ({{pattern: \"patient(\\\\d+)\"}}), or data.group_by_patient: false"
    )]
    GroupTooLarge { patient: String, images: usize, total: usize, share: f64, max: f64 },
}

/// Moves about `fraction` of each class from `train` to a validation split.
///
/// With `group_by_patient`, all images of a patient (`Item::patient`) land on the same
/// side, so the validation figures are not inflated by near-duplicates of training
/// images. A patient holding more than `max_share` of the images (and more than
/// `Data::MIN_IMAGES_FOR_SHARE_CHECK`) means the grouping is wrong, and is an error.
pub fn take_validation(
    train: Vec<Item>,
    fraction: f64,
    seed: u64,
    group_by_patient: bool,
    max_share: f64,
    classes: usize,
) -> Result<(Vec<Item>, Vec<Item>), SplitError> {
    let total = train.len();
    let mut groups: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in train {
        let key = if group_by_patient { item.patient.clone() } else { item.path.display().to_string() };
        groups.entry(key).or_default().push(item);
    }
    if let Some((patient, items)) = groups.iter().max_by_key(|(_, items)| items.len())
        && items.len() > cxr_config::Data::MIN_IMAGES_FOR_SHARE_CHECK
        && items.len() as f64 > max_share * total as f64
    {
        return Err(SplitError::GroupTooLarge {
            patient: patient.clone(),
            images: items.len(),
            total,
            share: 100.0 * items.len() as f64 / total as f64,
            max: 100.0 * max_share,
        });
    }
    let mut per_class = vec![0usize; classes];
    for item in groups.values().flatten() {
        per_class[item.label] += 1;
    }
    let target: Vec<usize> = per_class.iter().map(|&n| ((n as f64) * fraction).round() as usize).collect();
    let mut keys: Vec<String> = groups.keys().cloned().collect();
    keys.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x7a11));
    let (mut keep, mut val) = (Vec::new(), Vec::new());
    let mut taken = vec![0usize; classes];
    for key in keys {
        let items = groups.remove(&key).expect("listed key");
        let mut counts = vec![0usize; classes];
        for i in &items {
            counts[i.label] += 1;
        }
        let majority = (0..classes).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))).unwrap_or(0);
        if taken[majority] < target[majority] {
            for (c, n) in counts.iter().enumerate() {
                taken[c] += n;
            }
            val.extend(items);
        } else {
            keep.extend(items);
        }
    }
    keep.sort();
    val.sort();
    Ok((keep, val))
}

/// At most `limit` images per class, a seeded random choice, in sorted order.
pub fn limit_per_class(items: Vec<Item>, limit: usize, seed: u64, classes: usize) -> Vec<Item> {
    let mut by_class: Vec<Vec<Item>> = vec![Vec::new(); classes];
    for item in items {
        by_class[item.label].push(item);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x11317);
    let mut out = Vec::new();
    for mut class_items in by_class {
        if class_items.len() > limit {
            class_items.shuffle(&mut rng);
            class_items.truncate(limit);
        }
        out.extend(class_items);
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

    fn item(name: &str, label: usize) -> Item {
        let path = PathBuf::from(format!("/d/{name}.jpeg"));
        Item { patient: crate::patient::kermany_key(&path), path, label }
    }

    #[test]
    fn a_patient_holding_too_many_images_is_an_error_that_explains_itself() {
        // CheXpert read with the Kermany rule: every `view1_frontal.jpg` is one "patient".
        let mut items: Vec<Item> =
            (0..30).map(|i| item(&format!("patient{i:05}/study1/view1_frontal"), i % 2)).collect();
        for i in 0..70 {
            items.push(item(&format!("person{i}_bacteria_1"), 1));
        }
        let items: Vec<Item> = items
            .into_iter()
            .map(|mut i| {
                if i.path.to_string_lossy().contains("view1") {
                    i.patient = "view1_frontal".into()
                }
                i
            })
            .collect();
        let err = take_validation(items.clone(), 0.2, 1, true, 0.05, 2).unwrap_err().to_string();
        assert!(err.contains("\"view1_frontal\" holds 30 of the 100") && err.contains("data.patient"), "{err}");
        // Without grouping there is no such group.
        assert!(take_validation(items, 0.2, 1, false, 0.05, 2).is_ok());
    }

    #[test]
    fn validation_keeps_patients_together_and_is_stratified() {
        let mut items = Vec::new();
        for p in 0..100 {
            for k in 0..3 {
                items.push(item(&format!("person{p}_bacteria_{k}"), 1));
            }
        }
        for p in 0..60 {
            items.push(item(&format!("IM-{p:04}-0001"), 0));
            items.push(item(&format!("IM-{p:04}-0002"), 0));
        }
        let (train, val) = take_validation(items.clone(), 0.2, 7, true, 0.05, 2).unwrap();
        assert_eq!(train.len() + val.len(), items.len());
        let train_patients: HashSet<&str> = train.iter().map(|i| i.patient.as_str()).collect();
        assert!(val.iter().all(|i| !train_patients.contains(i.patient.as_str())));
        let val_pos = val.iter().filter(|i| i.label == 1).count();
        let val_neg = val.len() - val_pos;
        assert!((57..=63).contains(&val_pos), "{val_pos}");
        assert!((22..=26).contains(&val_neg), "{val_neg}");
        // Same seed, same split; another seed, another split.
        assert_eq!(take_validation(items.clone(), 0.2, 7, true, 0.05, 2).unwrap().1, val);
        assert_ne!(take_validation(items, 0.2, 8, true, 0.05, 2).unwrap().1, val);
    }

    proptest! {
        #[test]
        fn split_partitions_items(n0 in 1usize..80, n1 in 1usize..80, fraction in 0.05f64..0.5, seed: u64) {
            let items: Vec<Item> = (0..n0).map(|i| item(&format!("a{i}"), 0))
                .chain((0..n1).map(|i| item(&format!("b{i}"), 1))).collect();
            let (train, val) = take_validation(items.clone(), fraction, seed, false, 0.05, 2).unwrap();
            let mut all: Vec<Item> = train.iter().chain(val.iter()).cloned().collect();
            all.sort();
            let mut expected = items;
            expected.sort();
            prop_assert_eq!(all, expected);
            for (label, n) in [(0, n0), (1, n1)] {
                let got = val.iter().filter(|i| i.label == label).count();
                let want = (n as f64 * fraction).round() as usize;
                prop_assert!(got.abs_diff(want) <= 1, "class {} got {} want {}", label, got, want);
            }
        }

        #[test]
        fn limit_is_balanced_and_a_subset(n0 in 0usize..50, n1 in 0usize..50, limit in 1usize..40, seed: u64) {
            let items: Vec<Item> = (0..n0).map(|i| item(&format!("a{i}"), 0))
                .chain((0..n1).map(|i| item(&format!("b{i}"), 1))).collect();
            let out = limit_per_class(items.clone(), limit, seed, 2);
            prop_assert_eq!(out.iter().filter(|i| i.label == 0).count(), n0.min(limit));
            prop_assert_eq!(out.iter().filter(|i| i.label == 1).count(), n1.min(limit));
            prop_assert!(out.iter().all(|i| items.contains(i)));
            prop_assert!(out.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
