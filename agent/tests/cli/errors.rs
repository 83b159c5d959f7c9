//! Every error path of the interface: the exit code and a message that names the object.
use crate::harness::{Host, rows, s, u};

#[test]
fn mig_disabled_and_not_found_gpus() {
    let host = Host::new(&["a100-pcie-40gb"]);
    for cmd in [
        vec!["mig", "lgip", "-i", "0"],
        vec!["mig", "lgipp"],
        vec!["mig", "cgi", "-i", "0", "9"],
        vec!["mig", "lgi"],
        vec!["mig", "dgi", "-i", "0", "--gi", "1"],
        vec!["mig", "lci", "-i", "0"],
    ] {
        let err = host.fails(&cmd, 3);
        assert!(
            err.contains(
                "MIG mode is disabled on GPU 0: enable it with `vmig-agent mig mode -i 0 --enable`"
            ),
            "{cmd:?}: {err}"
        );
    }
    let err = host.fails(&["mig", "lgip", "-i", "3"], 2);
    assert!(
        err.contains("no GPU matches '3'; GPUs on this host: 0: NVIDIA A100-PCIE-40GB GPU-"),
        "{err}"
    );
    let err = host.fails(
        &[
            "mig",
            "lgip",
            "-i",
            "GPU-00000000-dead-beef-0000-000000000000",
        ],
        2,
    );
    assert!(
        err.contains("no GPU matches 'GPU-00000000-dead-beef-0000-000000000000'"),
        "{err}"
    );
    let err = host.fails(&["mig", "lgip", "-i", "ff:00.0"], 2);
    assert!(err.contains("no GPU matches '00000000:FF:00.0'"), "{err}");
    let err = host.fails(&["mig", "lgip", "-i", "MIG-1234"], 2);
    assert!(err.contains("MIG device UUID"), "{err}");
}

/// Driver 580 lists GI profiles and placements with MIG disabled (seen on a real H100,
/// docs/mig-model.md §7): `lgip`/`lgipp` list them, Free = Total as nvidia-smi 580 prints
/// it; everything that needs MIG still refuses. A GPU with MIG on beside it shows what is left.
#[test]
fn driver_580_lists_profiles_with_mig_disabled() {
    let host = Host::with_args(
        &["h100-sxm5-80gb", "h100-sxm5-80gb"],
        &["--driver-version", "580.159.04"],
    );
    let lgip = host.ok(&["mig", "lgip", "-i", "0"]);
    assert!(
        lgip.contains(
            "|   0  MIG 1g.10gb         19     7/7        9.75       No     16     1     0   |"
        ),
        "{lgip}"
    );
    assert!(lgip.contains("MIG 7g.80gb"), "{lgip}");
    let lgipp = host.ok(&["mig", "lgipp", "-i", "0"]);
    assert!(
        lgipp.contains("GPU  0 Profile ID  9 Placements: {0,4}:4"),
        "{lgipp}"
    );
    let j = host.json(&["mig", "lgip"]);
    let rows = j.as_array().expect("rows");
    assert_eq!(rows.len(), 14, "both GPUs' 7 profiles: {j}");
    // As nvidia-smi 580.173.02 prints it with MIG disabled: Free = Total.
    assert!(
        rows.iter()
            .all(|r| r["instances_free"] == r["instances_total"]),
        "{j}"
    );
    for cmd in [
        vec!["mig", "cgi", "-i", "0", "9"],
        vec!["mig", "lgi"],
        vec!["mig", "lci", "-i", "0"],
    ] {
        let err = host.fails(&cmd, 3);
        assert!(
            err.contains("MIG mode is disabled on GPU 0"),
            "{cmd:?}: {err}"
        );
    }
    // MIG on GPU 1 only, and a GI there: GPU 1 shows what is left, GPU 0 everything.
    host.ok(&["mig", "mode", "-i", "1", "--enable"]);
    host.sim(&["reset", "-i", "1"]);
    host.ok(&["mig", "cgi", "-i", "1", "19"]);
    let j = host.json(&["mig", "lgip"]);
    let free = |gpu: u64, id: u64| {
        j.as_array()
            .into_iter()
            .flatten()
            .find(|r| r["gpu"] == gpu && r["profile_id"] == id)
            .map(|r| r["instances_free"].clone())
    };
    assert_eq!(free(0, 19), Some(7.into()), "{j}");
    assert_eq!(free(1, 19), Some(6.into()), "{j}");
    assert_eq!(free(1, 0), Some(0.into()), "{j}");
}

#[test]
fn gpus_are_addressed_by_uuid_pci_bus_id_or_index() {
    let host = Host::with_mig(&["a100-pcie-40gb", "h100-sxm5-80gb"]);
    let list = host.json(&["list"]);
    let h100 = &rows(&list["gpus"])[1];
    let uuid = s(h100, "uuid").to_string();
    let pci = s(&host.json(&["mig", "mode", "-i", "1"]), "pci_bus_id").to_string();
    let short_pci = pci.trim_start_matches('0').to_lowercase(); // e.g. "3c:00.0" style
    let short_pci = if short_pci.starts_with(':') {
        format!("0{short_pci}")
    } else {
        short_pci
    };
    for sel in [
        uuid.as_str(),
        &uuid.to_lowercase().replacen("gpu-", "GPU-", 1),
        pci.as_str(),
        &short_pci,
        "1",
    ] {
        let j = host.json(&["mig", "cgi", "-i", sel, "19"]);
        assert_eq!(u(&rows(&j)[0], "gpu"), 1, "-i {sel}");
    }
    // Without -i, listings cover every MIG-enabled GPU.
    let lgi = host.json(&["mig", "lgi"]);
    assert_eq!(rows(&lgi).len(), 5);
    assert!(rows(&lgi).iter().all(|r| u(r, "gpu") == 1));
    let lgip = host.json(&["mig", "lgip"]);
    assert!(
        rows(&lgip).iter().any(|r| u(r, "gpu") == 0)
            && rows(&lgip).iter().any(|r| u(r, "gpu") == 1)
    );
}

#[test]
fn unknown_profiles_and_illegal_placements_are_usage_errors() {
    let host = Host::with_mig(&["a100-pcie-40gb"]);
    let err = host.fails(&["mig", "cgi", "-i", "0", "9,42"], 2);
    assert!(
        err.contains("unknown GPU instance profile '42' on GPU 0; valid profiles: 1g.5gb (ID 19)"),
        "{err}"
    );
    assert!(err.contains("3g.20gb (ID 9)"), "{err}");
    // Nothing was created: profiles are all resolved before the first create.
    assert_eq!(
        host.ok(&["mig", "lgi"]),
        "No GPU instances found: Not Found\n"
    );
    let err = host.fails(&["mig", "cgi", "-i", "0", "5g.bogus"], 2);
    assert!(
        err.contains("unknown GPU instance profile '5g.bogus'"),
        "{err}"
    );
    let err = host.fails(&["mig", "cgi", "-i", "0", "9", "--placement", "2"], 2);
    assert!(err.contains("placement start 2 is not legal for profile 3g.20gb (ID 9) on GPU 0; legal placements (start:size): 0:4, 4:4"), "{err}");
    let err = host.fails(&["mig", "cgi", "-i", "0", "9,19", "--placement", "0"], 2);
    assert!(
        err.contains("--placement has 1 start(s) but PROFILES has 2"),
        "{err}"
    );
    let err = host.fails(&["mig", "cgi", "-i", "0"], 2);
    assert!(err.contains("PROFILES"), "{err}");

    let j = host.json(&["mig", "cgi", "-i", "0", "3g.20gb"]);
    let gi = u(&rows(&j)[0], "gi_id").to_string();
    let err = host.fails(&["mig", "cci", "-i", "0", "--gi", &gi, "7g.40gb"], 2);
    assert!(err.contains(&format!("unknown compute instance profile '7g.40gb' in GPU instance {gi} on GPU 0; valid profiles: 1c.3g.20gb (ID 0)")), "{err}");
}

#[test]
fn insufficient_resources_says_what_is_free_and_what_fits() {
    let host = Host::with_mig(&["a100-pcie-40gb"]);
    host.ok(&["mig", "cgi", "-i", "0", "9", "--placement", "4"]);
    host.ok(&["mig", "cgi", "-i", "0", "19", "--placement", "0"]);
    // The other 3g region (0:4) now overlaps the 1g at 0:1.
    let err = host.fails(&["mig", "cgi", "-i", "0", "9"], 3);
    assert!(err.contains("cannot create a GPU instance of profile 3g.20gb (ID 9) on GPU 0: insufficient resources"), "{err}");
    assert!(
        err.contains("Free placements for 3g.20gb (ID 9): none"),
        "{err}"
    );
    assert!(
        err.contains("at 4:4") && err.contains("at 0:1"),
        "occupied regions named: {err}"
    );
    assert!(
        err.contains("Profiles that still fit: 1g.5gb (ID 19, 3 free)"),
        "{err}"
    );
    assert!(err.contains("2g.10gb (ID 14, 1 free)"), "{err}");
    // An occupied but legal placement is a state conflict, not a usage error.
    let err = host.fails(&["mig", "cgi", "-i", "0", "14", "--placement", "4"], 3);
    assert!(
        err.contains("at placement 4:2: insufficient resources"),
        "{err}"
    );
    assert!(
        err.contains("Free placements for 2g.10gb (ID 14): 2:2"),
        "{err}"
    );
    // A cgi list stops at the first failure and reports what it already created.
    let r = host.agent(&["mig", "cgi", "-i", "0", "14,14"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("Successfully created GPU instance"))
            .count(),
        1,
        "{r:?}"
    );
}

#[test]
fn no_such_instances() {
    let host = Host::with_mig(&["a100-pcie-40gb"]);
    let j = host.json(&["mig", "cgi", "-i", "0", "19,19", "-C"]);
    let ids: Vec<String> = rows(&j).iter().map(|r| u(r, "gi_id").to_string()).collect();
    let err = host.fails(&["mig", "dgi", "-i", "0", "--gi", "99"], 3);
    assert!(
        err.contains(&format!(
            "GPU instance 99 not found on GPU 0; existing GPU instances: {}",
            ids.join(", ")
        )),
        "{err}"
    );
    let err = host.fails(&["mig", "dci", "-i", "0", "--gi", &ids[0], "--ci", "5"], 3);
    assert!(err.contains(&format!("compute instance 5 not found in GPU instance {} on GPU 0; existing compute instances: 0", ids[0])), "{err}");
    let err = host.fails(&["mig", "lcip", "-i", "0", "--gi", "99"], 3);
    assert!(err.contains("GPU instance 99 not found"), "{err}");
    let err = host.fails(&["mig", "cci", "-i", "0", "--gi", "99", "0"], 3);
    assert!(err.contains("GPU instance 99 not found"), "{err}");
}

#[test]
fn instances_in_use_are_never_destroyed() {
    let host = Host::with_mig(&["a100-pcie-40gb"]);
    let j = host.json(&["mig", "cgi", "-i", "0", "9,9", "-C"]);
    let (a, b) = (
        u(&rows(&j)[0], "gi_id").to_string(),
        u(&rows(&j)[1], "gi_id").to_string(),
    );

    // A CUDA process on GI a / CI 0.
    host.sim(&[
        "occupy", "-i", "0", "--gi", &a, "--ci", "0", "--pid", "4242", "--name", "python",
    ]);
    let err = host.fails(&["mig", "dci", "-i", "0", "--gi", &a, "--ci", "0"], 3);
    assert!(
        err.contains(&format!(
            "compute instance 0 in GPU instance {a} on GPU 0 is in use by process 4242 (python)"
        )),
        "{err}"
    );
    let err = host.fails(&["mig", "dgi", "-i", "0", "--gi", &a], 3);
    assert!(
        err.contains(&format!(
            "GPU instance {a} on GPU 0 is in use by process 4242 (python)"
        )),
        "{err}"
    );
    assert!(err.contains("on compute instance 0"), "{err}");
    host.sim(&["release", "--pid", "4242"]);
    host.ok(&["mig", "dci", "-i", "0", "--gi", &a, "--ci", "0"]);
    host.ok(&["mig", "dgi", "-i", "0", "--gi", &a]);

    // A VM's MIG-backed vGPU on GI b.
    host.sim(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &b,
        "--vgpu",
        "grid_a100-3-20c",
        "--vm",
        "vm-42",
    ]);
    let err = host.fails(&["mig", "dci", "-i", "0", "--gi", &b, "--ci", "0"], 3);
    assert!(err.contains("is in use by VM"), "{err}");
    let err = host.fails(&["mig", "dgi", "-i", "0", "--gi", &b], 3);
    assert!(
        err.contains(&format!("GPU instance {b} on GPU 0 is in use by VM")),
        "{err}"
    );
    assert!(err.contains("grid_a100-3-20c"), "{err}");
    host.sim(&["release", "--vm", "vm-42"]);
    host.ok(&["mig", "dci", "-i", "0", "--gi", &b, "--ci", "0"]);
    host.ok(&["mig", "dgi", "-i", "0", "--gi", &b]);
}

#[test]
fn mig_mode_changes_and_refusals() {
    let host = Host::with_mig(&["a100-pcie-40gb"]);
    host.ok(&["mig", "cgi", "-i", "0", "19"]);
    // Disabling while GPU instances exist is accepted as pending (the reset would drop them).
    let r = host.agent(&["mig", "mode", "-i", "0", "--disable"]);
    assert!(r.code == 0 || r.code == 3, "{r:?}");
    if r.code == 0 {
        assert!(
            r.stdout.contains("MIG mode is pending disable on GPU 0"),
            "{r:?}"
        );
        let j = host.json(&["mig", "mode", "-i", "0"]);
        assert_eq!(j["mig_mode"]["pending"], "disabled");
        assert_eq!(j["reset_required"], true);
        // MIG stays usable until the reset.
        host.ok(&["mig", "lgi", "-i", "0"]);
        host.ok(&["mig", "mode", "-i", "0", "--enable"]);
    }
    let err = host.fails(&["mig", "mode", "-i", "0", "--enable", "--disable"], 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn nvml_library_problems_are_exit_4() {
    let host = Host::new(&["a100-pcie-40gb"]);
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_vmig-agent"))
        .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", "list"])
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(4));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("cannot load the NVML library (tried /nonexistent/libnvidia-ml.so.1)"),
        "{err}"
    );
    assert!(err.contains("--nvml-lib"), "{err}");
    // The environment variable works like the flag.
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_vmig-agent"))
        .env("VMIG_NVML_LIB", &host.lib)
        .env("NVML_SIM_STATE", &host.state)
        .args(["list"])
        .output()
        .expect("run");
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}
