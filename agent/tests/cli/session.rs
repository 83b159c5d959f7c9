//! The seed-style admin session, as an ESXi admin types it with nvidia-smi today, on an
//! A100-PCIE-40GB and on an H100 80GB: enable MIG, reset, list profiles, create a mixed set of
//! GPU instances with and without placements, default and explicit compute instances, list,
//! destroy in the wrong order (refused) and the right order.
use serde_json::Value;

use crate::harness::{Host, rows, s, u};

fn profile(lgip: &Value, id: u32) -> &Value {
    rows(lgip)
        .iter()
        .find(|r| u(r, "profile_id") == id)
        .unwrap_or_else(|| panic!("no profile {id} in {lgip}"))
}

fn gi_ids(host: &Host) -> Vec<u32> {
    rows(&host.json(&["mig", "lgi", "-i", "0"]))
        .iter()
        .map(|r| u(r, "gi_id"))
        .collect()
}

/// GPU instance profile names of one model: the 3g, 1g and 2g profiles (ids 9, 19, 14).
struct Names {
    three: String,
    one: String,
    two: String,
}

fn seed_session(model: &str, board: &str) {
    let host = Host::new(&[model]);
    enable_mig(&host, board);
    let names = list_profiles(&host);
    create_mixed_set(&host, &names);
    destroy_in_both_orders(&host);
    placements_and_compute_instances(&host, &names);
}

/// `nvidia-smi -L` before MIG, then `-mig 1`, pending until the GPU is reset.
fn enable_mig(host: &Host, board: &str) {
    // nvidia-smi -L before MIG.
    let list = host.ok(&["list"]);
    assert!(
        list.starts_with(&format!("GPU 0: {board} (UUID: GPU-")),
        "{list}"
    );
    let j = host.json(&["list"]);
    assert_eq!(j["gpus"][0]["mig_mode"]["current"], "disabled");
    assert_eq!(rows(&j["gpus"][0]["mig_devices"]).len(), 0);

    // nvidia-smi -i 0 -mig 1: accepted, pending until the GPU is reset.
    let out = host.ok(&["mig", "mode", "-i", "0", "--enable"]);
    assert!(out.contains("current Disabled, pending Enabled"), "{out}");
    assert!(out.contains("MIG mode is pending enable on GPU 0"), "{out}");
    assert!(out.contains("maintenance mode"), "{out}");
    let err = host.fails(&["mig", "lgip", "-i", "0"], 3);
    assert!(
        err.contains("MIG mode is pending enable on GPU 0: "),
        "{err}"
    );
    host.sim(&["reset", "-i", "0"]);
    let mode = host.json(&["mig", "mode", "-i", "0"]);
    assert_eq!(mode["mig_mode"]["current"], "enabled");
    assert_eq!(mode["reset_required"], false);
}

/// `-lgip` / `-lgipp`: tables, JSON keys, and the profile names of this model.
fn list_profiles(host: &Host) -> Names {
    let table = host.ok(&["mig", "lgip", "-i", "0"]);
    assert!(table.contains("| GPU instance profiles:"), "{table}");
    let lgip = host.json(&["mig", "lgip", "-i", "0"]);
    let three = s(profile(&lgip, 9), "name").to_string();
    let one = s(profile(&lgip, 19), "name").to_string();
    let two = s(profile(&lgip, 14), "name").to_string();
    assert!(
        three.starts_with("3g.") && one.starts_with("1g.") && two.starts_with("2g."),
        "{lgip}"
    );
    assert_eq!(u(profile(&lgip, 9), "instances_free"), 2);
    assert_eq!(u(profile(&lgip, 9), "instances_total"), 2);
    for key in [
        "gpu",
        "profile_id",
        "name",
        "instances_free",
        "instances_total",
        "memory_mib",
        "sm",
        "ce",
        "dec",
        "enc",
        "jpeg",
        "ofa",
        "p2p",
    ] {
        assert!(profile(&lgip, 0).get(key).is_some(), "lgip row lacks {key}");
    }
    assert!(table.contains(&format!("MIG {three}")), "{table}");
    let lgipp = host.ok(&["mig", "lgipp", "-i", "0"]);
    assert!(
        lgipp.contains("GPU  0 Profile ID  9 Placements: {0,4}:4"),
        "{lgipp}"
    );
    assert!(
        lgipp.contains("GPU  0 Profile ID  0 Placement : {0}:8"),
        "{lgipp}"
    );
    Names { three, one, two }
}

/// `-cgi 9,19,14,19 -C`, a full GPU refusing more, and `-L` showing the MIG devices.
fn create_mixed_set(host: &Host, Names { three, one, .. }: &Names) {
    // -cgi 9,19,14,19 -C: the mixed set the MIG guide says works when 3g comes first.
    let out = host.ok(&["mig", "cgi", "-i", "0", "9,19,14,19", "-C"]);
    let created: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Successfully created GPU instance ID"))
        .collect();
    assert_eq!(created.len(), 4, "{out}");
    assert!(
        created[0].ends_with(&format!("on GPU  0 using profile MIG {three} (ID  9)")),
        "{out}"
    );
    let cis: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Successfully created compute instance ID"))
        .collect();
    assert_eq!(cis.len(), 4, "{out}");
    assert!(
        cis[0].contains(&format!("using profile MIG {three} (ID  2)")),
        "default CI of a 3g GI: {out}"
    );

    // The GPU is full now: another GI is refused, saying why.
    let err = host.fails(&["mig", "cgi", "-i", "0", one], 3);
    assert!(err.contains("insufficient resources"), "{err}");
    assert!(
        err.contains(&format!("Free placements for {one} (ID 19): none")),
        "{err}"
    );

    // -L shows one MIG device per compute instance.
    let list = host.ok(&["list"]);
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("Device ") && l.contains("(UUID: MIG-"))
            .count(),
        4,
        "{list}"
    );
    assert!(list.contains(&format!("  MIG {three}")), "{list}");
    let j = host.json(&["list"]);
    let devs = rows(&j["gpus"][0]["mig_devices"]);
    assert_eq!(devs.len(), 4);
    for d in devs {
        assert!(s(d, "uuid").starts_with("MIG-"), "{d}");
        for key in ["gi_id", "ci_id", "name", "memory_mib"] {
            assert!(d.get(key).is_some(), "mig device lacks {key}: {d}");
        }
    }
}

/// `-lgi` / `-lci`, then destroying GIs before their CIs (refused) and in the right order.
fn destroy_in_both_orders(host: &Host) {
    // -lgi / -lci.
    let lgi = host.json(&["mig", "lgi", "-i", "0"]);
    assert_eq!(rows(&lgi).len(), 4);
    let mut slices: Vec<(u32, u32)> = rows(&lgi)
        .iter()
        .map(|r| (u(&r["placement"], "start"), u(&r["placement"], "size")))
        .collect();
    slices.sort();
    assert_eq!(
        slices.iter().map(|p| p.1).sum::<u32>(),
        8,
        "GIs cover the GPU: {lgi}"
    );
    let table = host.ok(&["mig", "lgi", "-i", "0"]);
    assert!(table.contains("| GPU instances:"), "{table}");
    let lci = host.json(&["mig", "lci", "-i", "0"]);
    assert_eq!(rows(&lci).len(), 4);

    // Destroy in the wrong order: the GIs still have compute instances.
    let big = rows(&lgi)
        .iter()
        .find(|r| u(r, "profile_id") == 9)
        .expect("3g GI");
    let big_gi = u(big, "gi_id").to_string();
    let err = host.fails(&["mig", "dgi", "-i", "0", "--gi", &big_gi], 3);
    assert!(
        err.contains(&format!(
            "GPU instance {big_gi} on GPU 0 still has compute instances 0"
        )),
        "{err}"
    );
    assert!(err.contains("vmig-agent mig dci"), "{err}");

    // The right order: every CI, then every GI.
    for ci in rows(&lci) {
        let (gi, c) = (u(ci, "gi_id").to_string(), u(ci, "ci_id").to_string());
        let out = host.ok(&["mig", "dci", "-i", "0", "--gi", &gi, "--ci", &c]);
        assert_eq!(
            out.trim_end(),
            format!(
                "Successfully destroyed compute instance ID {:>2} from GPU  0 GPU instance ID {:>2}",
                c, gi
            )
        );
    }
    assert_eq!(
        host.ok(&["mig", "lci", "-i", "0"]),
        "No compute instances found: Not Found\n"
    );
    for gi in gi_ids(host) {
        let out = host.ok(&["mig", "dgi", "-i", "0", "--gi", &gi.to_string()]);
        assert_eq!(
            out.trim_end(),
            format!("Successfully destroyed GPU instance ID {gi:>2} from GPU  0")
        );
    }
    assert_eq!(
        host.ok(&["mig", "lgi", "-i", "0"]),
        "No GPU instances found: Not Found\n"
    );
}

/// Explicit GI placements, then explicit and default compute instances.
fn placements_and_compute_instances(host: &Host, Names { three, one, two }: &Names) {
    // Now with explicit placements: 3g at 0, then 2g and 1g at 4 and 6 (names, not ids).
    let j = host.json(&["mig", "cgi", "-i", "0", "9", "--placement", "0"]);
    assert_eq!(
        rows(&j)[0]["placement"],
        serde_json::json!({"start": 0, "size": 4})
    );
    assert!(rows(&j)[0].get("compute_instance").is_none());
    let big_gi = u(&rows(&j)[0], "gi_id");
    let j = host.json(&[
        "mig",
        "cgi",
        "-i",
        "0",
        &format!("{two},{one}"),
        "--placement",
        "4,6",
    ]);
    let got: Vec<(u32, u32)> = rows(&j)
        .iter()
        .map(|r| (u(r, "profile_id"), u(&r["placement"], "start")))
        .collect();
    assert_eq!(got, vec![(14, 4), (19, 6)]);

    // Explicit compute instances: -lcip, then three 1c CIs in the 3g GI, by id and by name.
    let gi = big_gi.to_string();
    let lcip = host.json(&["mig", "lcip", "-i", "0", "--gi", &gi]);
    let small = rows(&lcip)
        .iter()
        .find(|r| u(r, "profile_id") == 0)
        .expect("CI profile 0");
    let small_name = s(small, "name").to_string();
    assert_eq!(small_name, format!("1c.{three}"));
    assert_eq!(u(small, "instances_free"), 3);
    let default = rows(&lcip)
        .iter()
        .find(|r| r["default"] == true)
        .expect("a default CI profile");
    assert_eq!(u(default, "profile_id"), 2);
    let table = host.ok(&["mig", "lcip", "-i", "0", "--gi", &gi]);
    assert!(table.contains("      2*     1/1"), "{table}");
    let out = host.ok(&[
        "mig",
        "cci",
        "-i",
        "0",
        "--gi",
        &gi,
        &format!("0,{small_name}"),
    ]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains(&format!("using profile MIG {small_name} (ID  0)")),
        "{out}"
    );
    let j = host.json(&["mig", "cci", "-i", "0", "--gi", &gi, "0"]);
    assert_eq!(u(&rows(&j)[0], "gi_id"), big_gi);
    let err = host.fails(&["mig", "cci", "-i", "0", "--gi", &gi, "0"], 3);
    assert!(err.contains("insufficient resources"), "{err}");
    assert!(err.contains("Existing compute instances: CI 0"), "{err}");
    let lci = host.json(&["mig", "lci", "-i", "0", "--gi", &gi]);
    assert_eq!(rows(&lci).len(), 3);
    let starts: Vec<u32> = rows(&lci)
        .iter()
        .map(|r| u(&r["placement"], "start"))
        .collect();
    assert_eq!(starts, vec![0, 1, 2]);

    // Default CI via cci without PROFILES on the 2g GI.
    let two_gi = u(
        &rows(&host.json(&["mig", "lgi", "-i", "0"]))
            .iter()
            .find(|r| u(r, "profile_id") == 14)
            .cloned()
            .expect("2g GI"),
        "gi_id",
    );
    let out = host.ok(&["mig", "cci", "-i", "0", "--gi", &two_gi.to_string()]);
    assert!(
        out.contains(&format!("using profile MIG {two} (ID  1)")),
        "{out}"
    );
}

#[test]
fn seed_session_a100_pcie_40gb() {
    seed_session("a100-pcie-40gb", "NVIDIA A100-PCIE-40GB");
}

#[test]
fn seed_session_h100_sxm5_80gb() {
    seed_session("h100-sxm5-80gb", "NVIDIA H100 80GB HBM3");
}
