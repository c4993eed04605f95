//! Figure 3's sweep in slices (`--shard i/N`): the slice, the files each shard writes, and
//! [`merge`], which joins the shards into the rows of a single run.

use super::{read_rows, write_rows, SweepPlan, SweepRow};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
pub use whichgan::run::Shard;
use whichgan::{Error, Result};

fn shard_stem(shard: Shard) -> String {
    format!("figure3-shard-{}-of-{}", shard.index, shard.count)
}

/// Where a shard keeps the rows of its finished fine-tunes until the shard is written.
pub fn progress_dir(out: &Path, shard: Shard) -> PathBuf {
    out.join(format!(".{}-progress", shard_stem(shard)))
}

/// What a shard writes beside its rows, so that [`merge`] can check the shards fit together.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardInfo {
    plan: SweepPlan,
    shard: Shard,
}

/// Writes one shard's rows (`figure3-shard-i-of-N.csv`) and its description (`.json`).
pub fn write_shard(out: &Path, plan: &SweepPlan, shard: Shard, rows: &[SweepRow]) -> Result<()> {
    let stem = shard_stem(shard);
    write_rows(&out.join(format!("{stem}.csv")), plan, rows)?;
    let info = ShardInfo {
        plan: plan.clone(),
        shard,
    };
    let json = serde_json::to_string_pretty(&info).expect("shard info serialises");
    whichgan::io::write_atomic(&out.join(format!("{stem}.json")), json.as_bytes())?;
    // The shard's files hold every row now: its kept progress is no longer needed.
    let progress = progress_dir(out, shard);
    if progress.is_dir() {
        std::fs::remove_dir_all(&progress).map_err(|e| Error::io(&progress, e))?;
    }
    Ok(())
}

/// Joins the shards found in `folders` (files `figure3-shard-*-of-*.json` and their `.csv`):
/// they must describe the same sweep and hold every shard exactly once.
pub fn merge(folders: &[PathBuf]) -> Result<(SweepPlan, Vec<SweepRow>)> {
    let mut found: Vec<(PathBuf, ShardInfo)> = Vec::new();
    for folder in folders {
        let entries = std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(folder, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("figure3-shard-") && name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                let info: ShardInfo = serde_json::from_str(&text)
                    .map_err(|e| Error::in_file(&path, format!("not a shard description: {e}")))?;
                if info.shard.count == 0 || info.shard.index >= info.shard.count {
                    return Err(Error::in_file(&path, "shard index out of range"));
                }
                found.push((path, info));
            }
        }
    }
    let Some((first_path, first)) = found.first().cloned() else {
        let names: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
        return Err(Error::invalid(format!(
            "no figure3-shard-*.json files in {}",
            names.join(", ")
        )));
    };
    let count = first.shard.count;
    let mut by_index: Vec<Option<PathBuf>> = vec![None; count];
    for (path, info) in &found {
        if info.plan != first.plan || info.shard.count != count {
            return Err(Error::in_file(
                path,
                format!(
                    "belongs to another sweep than {} (preset, seeds, protocol or shard count differ)",
                    first_path.display()
                ),
            ));
        }
        if let Some(other) = &by_index[info.shard.index] {
            return Err(Error::in_file(
                path,
                format!(
                    "shard {}/{count} is also in {}",
                    info.shard.index,
                    other.display()
                ),
            ));
        }
        by_index[info.shard.index] = Some(path.clone());
    }
    let missing: Vec<String> = (0..count)
        .filter(|&i| by_index[i].is_none())
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(format!(
            "missing shards: {}",
            missing.join(", ")
        )));
    }
    let mut rows = Vec::new();
    for (index, path) in by_index.into_iter().flatten().enumerate() {
        let csv = path.with_extension("csv");
        let shard_rows = read_rows(&csv, &first.plan)?;
        let got: Vec<(u64, u64)> = shard_rows.iter().map(|r| (r.seed, r.checkpoint)).collect();
        if got != first.plan.tasks_of(Some(Shard { index, count })) {
            return Err(Error::in_file(
                &csv,
                "its rows are not this shard's fine-tunes (edited or mixed files?)",
            ));
        }
        rows.extend(shard_rows);
    }
    rows.sort_by_key(|r| (r.seed, r.checkpoint));
    Ok((first.plan, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_sweep_round_robin() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "0/0", "1", "a/b", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let plan = SweepPlan {
            preset: "fast".into(),
            seeds: vec![0, 1],
            checkpoints: vec![0, 50, 100],
            eval_steps: vec![0, 100],
            protocol: Default::default(),
        };
        let mut joined: Vec<(u64, u64)> = (0..4)
            .flat_map(|i| plan.tasks_of(Some(Shard { index: i, count: 4 })))
            .collect();
        joined.sort();
        assert_eq!(joined, plan.tasks_of(None));
        assert_eq!(
            plan.tasks_of(Some(Shard { index: 1, count: 4 })),
            [(0, 50), (1, 100)]
        );
    }
}
