//! Fuzz seeds on stable Rust: every crate with a `fuzz/` directory also runs its fuzz entry
//! points over the seed corpus (and simple mutations of it) in an ordinary integration test, so
//! a regression shows up in `cargo test` without nightly or cargo-fuzz. These two helpers are
//! the part those tests share; which bytes a mutation writes and how densely it samples stay
//! with each crate, because they follow its input format (XML, JSON, YAML, …).

use std::path::{Path, PathBuf};

/// One seed file of a fuzz target's corpus.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The fuzz target (the directory under `fuzz/seeds/`).
    pub target: &'static str,
    /// Where the seed lives.
    pub path: PathBuf,
    /// The seed's bytes.
    pub bytes: Vec<u8>,
}

impl Seed {
    /// The seed's file name, which often says what the seed holds (`invalid-*` and the like).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Every seed of `crate_dir/fuzz/seeds/<target>/` for each target, targets in the given order
/// and files sorted by path within a target, so failures name the same seed on every run.
///
/// # Panics
/// When a seed directory or file cannot be read, or fewer than `min_seeds` seeds were found
/// in all: a corpus that lost its seeds would otherwise pass silently.
pub fn fuzz_seeds(crate_dir: &Path, targets: &[&'static str], min_seeds: usize) -> Vec<Seed> {
    let root = crate_dir.join("fuzz/seeds");
    let mut out = Vec::new();
    for &target in targets {
        let dir = root.join(target);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading the seed directory {}: {e}", dir.display()))
            .map(|e| {
                e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                    .path()
            })
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("reading the seed {}: {e}", path.display()));
            out.push(Seed {
                target,
                path,
                bytes,
            });
        }
    }
    assert!(
        out.len() >= min_seeds,
        "the corpus under {} lost its seeds: {} found, at least {min_seeds} expected",
        root.display(),
        out.len()
    );
    out
}

/// How [`mutations`] derives inputs from a seed.
#[derive(Debug, Clone, Copy)]
pub struct Mutations<'a> {
    /// Every `cut_step`-th prefix length is tried (0 included, the whole seed not).
    pub cut_step: usize,
    /// Every `corrupt_step`-th byte is overwritten, one at a time, with each of `corruptions`.
    pub corrupt_step: usize,
    /// The bytes written in place of the original one: the format's structural characters.
    pub corruptions: &'a [u8],
}

impl<'a> Mutations<'a> {
    /// About `budget` truncations of a seed of `seed_len` bytes and a corruption at every
    /// third cut: the density scales with the seed so long seeds stay fast in a debug build.
    pub fn sampled(seed_len: usize, budget: usize, corruptions: &'a [u8]) -> Self {
        let cut_step = (seed_len / budget.max(1)).max(1);
        Self {
            cut_step,
            corrupt_step: cut_step * 3,
            corruptions,
        }
    }
}

/// The truncations of `bytes` (prefixes of length `0, cut_step, 2·cut_step, …`), then its
/// single-byte corruptions (each sampled position overwritten with each corruption byte, the
/// rest of the seed unchanged), in that order.
///
/// # Panics
/// When a step is 0.
pub fn mutations<'a>(bytes: &'a [u8], how: Mutations<'a>) -> impl Iterator<Item = Vec<u8>> + 'a {
    assert!(
        how.cut_step > 0 && how.corrupt_step > 0,
        "mutation steps must be positive: {how:?}"
    );
    let cuts = (0..bytes.len())
        .step_by(how.cut_step)
        .map(move |cut| bytes[..cut].to_vec());
    let corrupted = (0..bytes.len())
        .step_by(how.corrupt_step)
        .flat_map(move |i| {
            how.corruptions.iter().map(move |&b| {
                let mut v = bytes.to_vec();
                v[i] = b;
                v
            })
        });
    cuts.chain(corrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_truncations_then_corruptions() {
        let got: Vec<Vec<u8>> = mutations(
            b"abcd",
            Mutations {
                cut_step: 2,
                corrupt_step: 3,
                corruptions: b"XY",
            },
        )
        .collect();
        let want: Vec<&[u8]> = vec![b"", b"ab", b"Xbcd", b"Ybcd", b"abcX", b"abcY"];
        assert_eq!(got, want);
        let s = Mutations::sampled(1000, 400, b"X");
        assert_eq!((s.cut_step, s.corrupt_step), (2, 6));
        let s = Mutations::sampled(10, 400, b"X");
        assert_eq!((s.cut_step, s.corrupt_step), (1, 3));
        assert_eq!(
            mutations(
                b"",
                Mutations {
                    cut_step: 1,
                    corrupt_step: 1,
                    corruptions: b"X"
                }
            )
            .count(),
            0
        );
    }

    #[test]
    fn seeds_are_sorted_per_target_and_counted() {
        let dir = crate::temp_dir("testkit-seeds");
        for (t, f) in [("b", "2"), ("b", "1"), ("a", "z")] {
            let d = dir.path().join("fuzz/seeds").join(t);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(f), f).unwrap();
        }
        let seeds = fuzz_seeds(dir.path(), &["b", "a"], 3);
        let got: Vec<(&str, String)> = seeds.iter().map(|s| (s.target, s.name())).collect();
        assert_eq!(
            got,
            [("b", "1".into()), ("b", "2".into()), ("a", "z".into())]
        );
        assert_eq!(seeds[0].bytes, b"1");
        let lost = std::panic::catch_unwind(|| fuzz_seeds(dir.path(), &["a"], 2));
        assert!(lost.is_err());
    }
}
