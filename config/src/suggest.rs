//! "Did you mean …?": the allowed word closest to a mistyped one, by edit distance, and
//! the few words people reach for that are far from the right one (`gpu` for `cuda`).

/// Words people type for an allowed value they do not know the name of: (typed, meant).
/// They win over edit distance, which would offer `cpu` for `gpu`.
const HINTS: &[(&str, &str)] = &[("gpu", "cuda"), ("nvidia", "cuda"), ("cuda0", "cuda"), ("cuda:0", "cuda")];

/// The largest edit distance that is still offered as a suggestion.
const MAX_DISTANCE: usize = 2;

/// The allowed word `typed` most likely means, if one is close enough: a known synonym
/// (`gpu` -> `cuda`), the same word in other case, a word at edit distance <= 2 (and
/// less than half the typed word's length), or the one allowed word it starts.
pub fn did_you_mean<'a>(typed: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lower = typed.trim().to_lowercase();
    if lower.is_empty() {
        return None;
    }
    if let Some(meant) = HINTS.iter().find(|(t, _)| *t == lower).map(|(_, m)| *m)
        && let Some(found) = allowed.iter().find(|a| **a == meant)
    {
        return Some(found);
    }
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in allowed {
        let distance = levenshtein(&lower, &candidate.to_lowercase());
        if distance <= MAX_DISTANCE
            && distance * 2 < lower.chars().count().max(2)
            && best.is_none_or(|(d, _)| distance < d)
        {
            best = Some((distance, candidate));
        }
    }
    if let Some((_, found)) = best {
        return Some(found);
    }
    let starting: Vec<&&str> = allowed.iter().filter(|a| a.to_lowercase().starts_with(&lower)).collect();
    match starting.as_slice() {
        [only] if lower.chars().count() >= 3 => Some(only),
        _ => None,
    }
}

/// What to say about `typed`: `use cuda` for a known synonym (`gpu`), else
/// `did you mean "X"?` (the caller lists every allowed value after it).
pub fn hint(typed: &str, allowed: &[&str]) -> Option<String> {
    let meant = did_you_mean(typed, allowed)?;
    let lower = typed.trim().to_lowercase();
    if HINTS.iter().any(|(t, m)| *t == lower && *m == meant) {
        Some(format!("use {meant}"))
    } else {
        Some(format!("did you mean {meant:?}?"))
    }
}

/// The number of single-character insertions, deletions and substitutions that turn
/// `a` into `b`.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("epoch", "epochs"), 1);
        assert_eq!(levenshtein("sgdd", "sgd"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("abc", ""), 3);
    }

    #[test]
    fn suggests_the_closest_word_and_known_synonyms() {
        assert_eq!(did_you_mean("epoch", &["epochs", "batch_size"]), Some("epochs"));
        assert_eq!(did_you_mean("SGD", &["sgd", "adam"]), Some("sgd"));
        assert_eq!(did_you_mean("gpu", &["cpu", "cuda", "auto"]), Some("cuda"));
        assert_eq!(did_you_mean("batch", &["epochs", "batch_size"]), Some("batch_size"));
        assert_eq!(did_you_mean("xyz", &["cpu", "cuda", "auto"]), None);
        assert_eq!(did_you_mean("ab", &["cd", "ef"]), None);
        assert_eq!(hint("gpu", &["cpu", "cuda", "auto"]).as_deref(), Some("use cuda"));
        assert_eq!(hint("sgdd", &["sgd", "adam"]).as_deref(), Some("did you mean \"sgd\"?"));
    }
}
