//! One simulated host per test: a temp dir with nvml-sim's state file, the simulated NVML
//! library, and helpers that run `vmig-agent` and `nvml-sim` against it.
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use vmig_testkit::{TempDir, nvml_sim_lib, temp_dir, workspace_bin};

/// What one `vmig-agent` run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A simulated host.
pub struct Host {
    _dir: TempDir,
    pub state: PathBuf,
    pub lib: PathBuf,
}

impl Host {
    /// A host with one GPU per model key, MIG disabled.
    pub fn new(models: &[&str]) -> Host {
        Host::with_args(models, &[])
    }

    /// A host whose GPUs start with MIG enabled.
    pub fn with_mig(models: &[&str]) -> Host {
        Host::with_args(models, &["--mig"])
    }

    /// A host made by `nvml-sim init --gpu MODEL… EXTRA…` (e.g. `--driver-version`).
    pub fn with_args(models: &[&str], extra: &[&str]) -> Host {
        let dir = temp_dir("agent-cli");
        let state = dir.path().join("nvml-sim.json");
        let host = Host {
            lib: nvml_sim_lib(),
            state,
            _dir: dir,
        };
        let mut args = vec!["init"];
        for m in models {
            args.extend(["--gpu", m]);
        }
        args.extend(extra);
        host.sim(&args);
        host
    }

    /// Run `nvml-sim` on this host's state; panics unless it succeeds.
    pub fn sim(&self, args: &[&str]) -> String {
        let out = Command::new(workspace_bin("nvml-sim"))
            .arg("--state")
            .arg(&self.state)
            .args(args)
            .output()
            .expect("run nvml-sim");
        assert!(
            out.status.success(),
            "nvml-sim {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `vmig-agent --nvml-lib <sim> ARGS`.
    pub fn agent(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_vmig-agent"))
            .env("NVML_SIM_STATE", &self.state)
            .env_remove("VMIG_NVML_LIB")
            .arg("--nvml-lib")
            .arg(&self.lib)
            .args(args)
            .output()
            .expect("run vmig-agent");
        let run = Run::from(out);
        assert!(
            !run.stderr.contains("panicked"),
            "vmig-agent {args:?} panicked:\n{}",
            run.stderr
        );
        run
    }

    /// Run and require exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.agent(args);
        assert_eq!(
            r.code, 0,
            "vmig-agent {args:?} failed:\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Run with `--json`, require exit 0, parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Run, require exit `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.agent(args);
        assert_eq!(
            r.code, code,
            "vmig-agent {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.starts_with("vmig-agent: error: ") || code == 2,
            "stderr: {}",
            r.stderr
        );
        r.stderr
    }
}

/// u32 field of a JSON object.
pub fn u(v: &Value, key: &str) -> u32 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer '{key}' in {v}")) as u32
}

/// String field of a JSON object.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string '{key}' in {v}"))
}

/// The rows of a JSON array output.
pub fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}
