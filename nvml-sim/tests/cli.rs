//! The control binary: argument errors, refusals and the state it writes.
use std::process::{Command, Output};

fn run(state: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nvml-sim"))
        .arg("--state")
        .arg(state)
        .args(args)
        .env_remove("NVML_SIM_STATE")
        .output()
        .expect("run nvml-sim")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn init_validates_models_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let bad = run(&state, &["init", "--gpu", "rtx-4090"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("unknown GPU model `rtx-4090`")
            && stderr(&bad).contains("a100-pcie-40gb")
    );
    assert!(!state.exists());

    let ok = run(
        &state,
        &["init", "--gpu", "a100-pcie-40gb", "--gpu", "h100-sxm5-80gb"],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains("GPU 0: NVIDIA A100-PCIE-40GB (UUID: GPU-"),
        "{stdout}"
    );
    let first: serde_json::Value = serde_json::from_slice(&run(&state, &["show"]).stdout).unwrap();
    assert_eq!(first["gpus"].as_array().unwrap().len(), 2);
    assert_eq!(first["gpus"][1]["mig"]["model"], "h100-sxm5-80gb");
    assert_eq!(first["driver_version"], "550.54.15");

    let again = run(&state, &["init", "--gpu", "a100-pcie-40gb"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = run(
        &state,
        &[
            "init",
            "--gpu",
            "a30-24gb",
            "--force",
            "--mig",
            "--driver-version",
            "535.161.08",
        ],
    );
    assert!(forced.status.success());
    let now: serde_json::Value = serde_json::from_slice(&run(&state, &["show"]).stdout).unwrap();
    assert_eq!(now["gpus"][0]["mig_mode"]["current"], true);
    assert_eq!(now["driver_version"], "535.161.08");
}

#[test]
fn bad_requests_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let missing = run(&state, &["show"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("does not exist") && stderr(&missing).contains("init"));

    assert!(
        run(&state, &["init", "--gpu", "a100-pcie-40gb", "--mig"])
            .status
            .success()
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["occupy", "-i", "3", "--pid", "1"],
            "GPU index 3 does not exist",
        ),
        (&["occupy", "-i", "0", "--pid", "1"], "--gi and --ci"),
        (
            &["occupy", "-i", "0", "--gi", "1", "--ci", "0", "--pid", "1"],
            "no compute instance 0 in GPU instance 1",
        ),
        (
            &["occupy", "-i", "0", "--gi", "1", "--pid", "1"],
            "both --gi and --ci",
        ),
        (
            &[
                "occupy",
                "-i",
                "0",
                "--gi",
                "1",
                "--vgpu",
                "grid_a100-3-20c",
                "--vm",
                "a",
            ],
            "no GPU instance 1",
        ),
        (&["release", "--pid", "5"], "no simulated process has pid 5"),
        (
            &["release", "--vm", "nope"],
            "no active vGPU belongs to VM `nope`",
        ),
        (&["reset", "-i", "9"], "GPU index 9 does not exist"),
    ];
    for (args, want) in cases {
        let out = run(&state, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    // clap-level errors
    assert!(!run(&state, &["occupy", "-i", "0"]).status.success());
    assert!(!run(&state, &["frobnicate"]).status.success());
}

#[test]
fn models_lists_the_catalog_without_a_state() {
    let out = Command::new(env!("CARGO_BIN_EXE_nvml-sim"))
        .arg("models")
        .env_remove("NVML_SIM_STATE")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a100-pcie-40gb") && text.contains("h100-sxm5-80gb"),
        "{text}"
    );
    assert!(
        text.contains("rtx-pro-6000-bse-96gb")
            && text.contains("NVIDIA RTX PRO 6000 Blackwell Server Edition"),
        "{text}"
    );
}

#[test]
fn concurrent_writers_do_not_lose_updates() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    assert!(
        run(&state, &["init", "--gpu", "a100-pcie-40gb"])
            .status
            .success()
    );
    // Eight processes at once, each read-modify-writes the file; the lock serialises them.
    let children: Vec<_> = (0..8)
        .map(|pid| {
            Command::new(env!("CARGO_BIN_EXE_nvml-sim"))
                .arg("--state")
                .arg(&state)
                .args(["occupy", "-i", "0", "--pid", &(1000 + pid).to_string()])
                .env_remove("NVML_SIM_STATE")
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn nvml-sim")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let now: serde_json::Value = serde_json::from_slice(&run(&state, &["show"]).stdout).unwrap();
    let mut pids: Vec<u64> = now["gpus"][0]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    pids.sort();
    assert_eq!(pids, (1000..1008).collect::<Vec<u64>>());
}
