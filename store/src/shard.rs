//! One shard of a job split across machines (`--shard I/N`): which contiguous part of
//! each split it takes, and the folder name (`EXP/shards/I-of-N/`, see `layout`).

/// One shard of a job split across machines: `--shard I/N` (0-based `I`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// This shard's contiguous part of `0..len`; the parts of `0..N` cover it in order.
    pub fn range(&self, len: usize) -> std::ops::Range<usize> {
        (self.index * len / self.count)..((self.index + 1) * len / self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?}: expected I/N with 0 <= I < N (e.g. --shard 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-of-{}", self.index, self.count)
    }
}

/// The layouts of the `count` shards of the experiment at `layout`, each checked complete
/// by its `marker` file (written last by the shard's run). The error names the first
/// missing marker and the command that makes it: `<stage> --shard I/N`.
pub fn complete_shards(
    layout: &crate::layout::Layout,
    count: usize,
    stage: &str,
    marker: impl Fn(&crate::layout::Layout) -> std::path::PathBuf,
) -> Result<Vec<crate::layout::Layout>, String> {
    if count == 0 {
        return Err("--merge 0: expected the number of shards".into());
    }
    let shards: Vec<crate::layout::Layout> =
        (0..count).map(|i| crate::layout::Layout::at(&layout.shard(i, count))).collect();
    for (i, shard) in shards.iter().enumerate() {
        let path = marker(shard);
        if !path.is_file() {
            return Err(format!("{} is missing: run `{stage} --shard {i}/{count}` first", path.display()));
        }
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_cover_every_index_once_in_order() {
        assert_eq!("1/3".parse::<Shard>().unwrap(), Shard { index: 1, count: 3 });
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().unwrap_err().contains("expected I/N"));
        for len in [0, 1, 2, 7, 100] {
            let covered: Vec<usize> = (0..3).flat_map(|i| Shard { index: i, count: 3 }.range(len)).collect();
            assert_eq!(covered, (0..len).collect::<Vec<_>>());
        }
    }

    #[test]
    fn merging_needs_every_shard_complete_and_names_the_command_for_the_first_missing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::layout::Layout::at(dir.path());
        let marker = |l: &crate::layout::Layout| l.tensors_meta();
        assert!(complete_shards(&layout, 0, "preprocess", marker).unwrap_err().contains("--merge 0"));
        for i in [0, 2] {
            let path = crate::layout::Layout::at(&layout.shard(i, 3)).tensors_meta();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "{}").unwrap();
        }
        let err = complete_shards(&layout, 3, "preprocess", marker).unwrap_err();
        assert!(err.contains("run `preprocess --shard 1/3` first"), "{err}");
        let path = crate::layout::Layout::at(&layout.shard(1, 3)).tensors_meta();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{}").unwrap();
        assert_eq!(complete_shards(&layout, 3, "preprocess", marker).unwrap().len(), 3);
    }
}
