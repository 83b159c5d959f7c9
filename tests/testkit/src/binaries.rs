//! Building and locating the programs that tests run.
//!
//! Tests run real binaries (the agent, the admin CLI, nvml-sim's library, the simulator), so
//! they must be built from the current sources with the same profile and target directory
//! as the test itself: then `cargo test` reuses every compiled dependency and a test never
//! runs a stale binary left over from another profile. Each build runs at most once per
//! test process; parallel test binaries queue on a file lock (cargo's own lock would also
//! serialise them, but the simulator's Go build has none of its own beyond build.sh's).
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::Error;

/// Where cargo put the running test, and so where sibling artifacts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLayout {
    /// The cargo target directory (`CARGO_TARGET_DIR`, default `<workspace>/target`).
    pub target_dir: PathBuf,
    /// `<target_dir>[/<triple>]/<profile dir>`, where binaries and cdylibs land.
    pub profile_dir: PathBuf,
    /// The cargo profile name to pass to `--profile` (`dev` for the `debug` directory).
    pub profile: String,
    /// The `--target` triple when the test was cross-built into `<target_dir>/<triple>/`.
    pub triple: Option<String>,
}

impl TargetLayout {
    /// Derives the layout from a test executable's path,
    /// `<target>[/<triple>]/<profile>/deps/<test>-<hash>`.
    pub fn from_exe(exe: &Path) -> Option<TargetLayout> {
        let mut dir = exe.parent()?;
        if matches!(dir.file_name()?.to_str()?, "deps" | "examples") {
            dir = dir.parent()?;
        }
        let profile_dir = dir.to_path_buf();
        let profile = match profile_dir.file_name()?.to_str()? {
            "debug" => "dev".to_owned(),
            other => other.to_owned(),
        };
        let above = profile_dir.parent()?;
        // Cargo keeps `.rustc_info.json` (and, when it created the directory, CACHEDIR.TAG)
        // in the root of a target directory; finding it one level higher means a
        // `--target <triple>` build.
        let is_root =
            |dir: &Path| dir.join(".rustc_info.json").exists() || dir.join("CACHEDIR.TAG").exists();
        let cross = !is_root(above) && above.parent().is_some_and(is_root);
        let (target_dir, triple) = match (cross, above.parent()) {
            (true, Some(root)) => (
                root.to_path_buf(),
                above
                    .file_name()
                    .and_then(|t| t.to_str())
                    .map(str::to_owned),
            ),
            _ => (above.to_path_buf(), None),
        };
        Some(TargetLayout {
            target_dir,
            profile_dir,
            profile,
            triple,
        })
    }
}

/// The layout of the running test executable.
///
/// # Panics
/// When the executable does not sit in a cargo target directory (e.g. in a doctest).
pub fn target_layout() -> &'static TargetLayout {
    static LAYOUT: OnceLock<TargetLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own executable path");
        TargetLayout::from_exe(&exe)
            .unwrap_or_else(|| panic!("{} is not inside a cargo target directory", exe.display()))
    })
}

/// The workspace root (the directory of the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

/// Runs `f` while holding an exclusive lock shared by every test process of this target dir.
fn with_build_lock<T>(f: impl FnOnce() -> T) -> T {
    let dir = &target_layout().target_dir;
    let path = dir.join("vmig-testkit-build.lock");
    let lock = std::fs::create_dir_all(dir)
        .and_then(|()| File::create(&path))
        .and_then(|file| file.lock().map(|()| file))
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    let out = f();
    drop(lock);
    out
}

/// Builds workspace binary `bin` (whichever package owns it) and returns its path.
///
/// Runs `cargo build --workspace --bin <bin>` once per test process with this test's target
/// directory and profile.
///
/// # Panics
/// When the build fails; the message holds cargo's output.
pub fn workspace_bin(bin: &str) -> PathBuf {
    build_once(&["--workspace", "--bin", bin], bin)
}

/// Like [`workspace_bin`] for a binary name that several packages share.
///
/// # Panics
/// When the build fails; the message holds cargo's output.
pub fn workspace_bin_in(package: &str, bin: &str) -> PathBuf {
    build_once(&["-p", package, "--bin", bin], bin)
}

/// Builds nvml-sim's `cdylib` (the simulated `libnvidia-ml.so`) and returns its path,
/// `<profile dir>/libnvml_sim.so`.
///
/// # Panics
/// When the build fails; the message holds cargo's output.
pub fn nvml_sim_lib() -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    build_once(
        &["-p", "nvml-sim", "--lib"],
        &format!("{DLL_PREFIX}nvml_sim{DLL_SUFFIX}"),
    )
}

fn build_once(args: &[&str], artifact: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<Vec<String>, PathBuf>>> = OnceLock::new();
    let key: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    // Held across the build so that parallel tests in this process wait for one build.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let layout = target_layout();
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root())
        .arg("build")
        .args(args)
        .args(["--profile", &layout.profile])
        .arg("--target-dir")
        .arg(&layout.target_dir);
    if let Some(triple) = &layout.triple {
        cmd.args(["--target", triple]);
    }
    remove_test_env(&mut cmd);
    let output = with_build_lock(|| cmd.output())
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is cargo on PATH?)"));
    if !output.status.success() {
        panic!(
            "{cmd:?} failed with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = layout
        .profile_dir
        .join(format!("{artifact}{}", exe_suffix(artifact)));
    assert!(
        path.exists(),
        "{cmd:?} succeeded but {} does not exist",
        path.display()
    );
    built.insert(key, path.clone());
    path
}

/// Removes the variables cargo sets for a running test (not for the cargo that started it).
/// Build scripts such as ring's declare `rerun-if-env-changed=CARGO_MANIFEST_DIR`: a nested
/// build that still saw the test's values would record them, and the next `cargo test` would
/// see a change and rebuild those crates, over and over.
fn remove_test_env(cmd: &mut Command) {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if EXACT.contains(&name)
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
        {
            cmd.env_remove(name);
        }
    }
}

fn exe_suffix(artifact: &str) -> &'static str {
    if artifact.ends_with(std::env::consts::DLL_SUFFIX) {
        ""
    } else {
        std::env::consts::EXE_SUFFIX
    }
}

/// The simulator binary, built by `tests/vcsim/build.sh` into `<target dir>/vcsim/vcsim`
/// (a no-op when up to date), or the file named by `VMIG_VCSIM_BIN` when that is set.
///
/// # Panics
/// When the build fails, e.g. because Go is not installed: tests that need a vCenter must
/// fail, never skip. The message says how to install the toolchain.
pub fn vcsim_binary() -> PathBuf {
    try_vcsim_binary().unwrap_or_else(|e| panic!("{e}"))
}

/// [`vcsim_binary`] without the panic.
pub fn try_vcsim_binary() -> Result<PathBuf, Error> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(build_vcsim)
        .clone()
        .map_err(Error::VcsimBuild)
}

fn build_vcsim() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("VMIG_VCSIM_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("VMIG_VCSIM_BIN={} is not a file", bin.display()))
        };
    }
    let script = workspace_root().join("tests/vcsim/build.sh");
    let out = target_layout().target_dir.join("vcsim").join("vcsim");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}:\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_from_test_exe() {
        let dir = crate::temp_dir("layout");
        let target = dir.path().join("target");
        std::fs::create_dir_all(target.join("debug/deps")).unwrap();
        std::fs::write(target.join(".rustc_info.json"), "{}").unwrap();
        let l = TargetLayout::from_exe(&target.join("debug/deps/vcsim-0123abcd")).unwrap();
        assert_eq!(l.target_dir, target);
        assert_eq!(l.profile_dir, target.join("debug"));
        assert_eq!(l.profile, "dev");
        assert_eq!(l.triple, None);

        std::fs::create_dir_all(target.join("x86_64-unknown-linux-gnu/release/deps")).unwrap();
        let exe = target.join("x86_64-unknown-linux-gnu/release/deps/t-1");
        let l = TargetLayout::from_exe(&exe).unwrap();
        assert_eq!(l.target_dir, target);
        assert_eq!(l.profile, "release");
        assert_eq!(l.triple.as_deref(), Some("x86_64-unknown-linux-gnu"));
    }

    #[test]
    fn this_test_runs_from_a_target_dir() {
        let l = target_layout();
        assert!(l.target_dir.join(".rustc_info.json").exists(), "{l:?}");
        assert!(workspace_root().join("Cargo.toml").exists());
    }
}
