//! How the embedded store is split into parts: each conversation lives in
//! one part (a redb file with its own writer thread and group commit), chosen
//! by a stable hash of its key, so commits of different conversations run on
//! as many writers as there are parts. Part 0 is the file the store is named
//! by (a store from before parts is a one-part store); part `i` sits beside
//! it as `NAME.part{i}.EXT`. The count is fixed when the store is created and
//! kept in part 0: a conversation's part never changes.

use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// `"parts"` → how many parts the store was created with.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The most parts a store may have.
pub const MAX_PARTS: usize = 64;

/// Parts for a new store on this machine when the config names none: one
/// writer per four cores (the writers' work is about a quarter of a turn's),
/// at least 1, at most 8.
pub fn default_parts() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 4).clamp(1, 8)
}

/// The file of part `index` of the store at `path`.
pub(super) fn part_path(path: &Path, index: usize) -> PathBuf {
    if index == 0 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}.part{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}.part{index}"),
    };
    path.with_file_name(name)
}

/// The part that holds conversation `key` (`bot \0 conversation`) in a store
/// of `parts` parts: FNV-1a, fixed forever (the files depend on it).
pub(super) fn home(key: &str, parts: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % parts as u64) as usize
}

/// The store's part count, recorded in part 0 by `tx`: what it was created
/// with; a new store takes `wanted` (`new` if none), a store from before
/// parts has 1. A `wanted` count other than the recorded one is refused.
pub(super) fn parts(
    tx: &WriteTransaction,
    created: bool,
    wanted: Option<usize>,
    new: usize,
    path: &Path,
) -> Result<usize, String> {
    let mut meta = tx.open_table(META).map_err(|e| e.to_string())?;
    let recorded = meta
        .get("parts")
        .map_err(|e| e.to_string())?
        .map(|v| v.value() as usize);
    let parts = match (recorded, created) {
        (Some(n), _) => n,
        (None, true) => wanted.unwrap_or(new),
        (None, false) => 1,
    };
    if !(1..=MAX_PARTS).contains(&parts) {
        return Err(format!(
            "store.embedded.parts must be between 1 and {MAX_PARTS} (got {parts})"
        ));
    }
    if let Some(w) = wanted
        && w != parts
    {
        return Err(format!(
            "{} was created with {parts} part(s) and `store.embedded.parts` asks for {w}: a data folder keeps the count it was created with — remove the setting (or set it to {parts}), or copy the stopped store into a new data folder with `sandbot store copy --data OLD --to NEW --parts {w}` and point `data` at it",
            path.display()
        ));
    }
    if recorded.is_none() {
        meta.insert("parts", parts as u64)
            .map_err(|e| e.to_string())?;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash decides where existing data lives: it must never change.
    #[test]
    fn homes_are_fixed() {
        assert_eq!(home("b\0c", 1), 0);
        let got: Vec<usize> = ["b\0c", "bank\0u1", "bank\0u2", "shop\0+3247"]
            .iter()
            .map(|k| home(k, 7))
            .collect();
        assert_eq!(got, [2, 3, 6, 4]);
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
        assert_eq!(
            home("a", 1 << 20),
            (0xaf63dc4c8601ec8c_u64 % (1 << 20)) as usize
        );
    }

    #[test]
    fn homes_spread_over_the_parts() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[home(&format!("bot\0user-{i}"), 4)] += 1;
        }
        assert!(
            counts.iter().all(|&n| (800..1200).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn part_files_sit_beside_part_zero() {
        let p = Path::new("/d/sandbot.redb");
        assert_eq!(part_path(p, 0), p);
        assert_eq!(part_path(p, 3), Path::new("/d/sandbot.part3.redb"));
        assert_eq!(part_path(Path::new("/d/s"), 1), Path::new("/d/s.part1"));
    }
}
