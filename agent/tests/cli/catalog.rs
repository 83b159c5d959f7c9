//! The interface on every GPU model of the catalog: for each GI profile NVML offers, create it
//! with its default CI, list it, and destroy CI then GI — all with ids read from NVML.
use crate::harness::{Host, rows, s, u};

#[test]
fn every_profile_of_every_catalog_model() {
    let models: Vec<&str> = mig::catalog().iter().map(|m| m.key).collect();
    assert!(models.len() >= 2, "catalog has models");
    for model in models {
        let host = Host::with_mig(&[model]);
        let lgip = host.json(&["mig", "lgip", "-i", "0"]);
        assert!(!rows(&lgip).is_empty(), "{model}: no profiles");
        let lgipp = host.json(&["mig", "lgipp", "-i", "0"]);
        for p in rows(&lgip) {
            let id = u(p, "profile_id");
            let name = s(p, "name");
            assert_eq!(
                u(p, "instances_free"),
                u(p, "instances_total"),
                "{model} {name}: empty GPU has all free"
            );
            let placements = rows(&lgipp)
                .iter()
                .find(|r| u(r, "profile_id") == id)
                .map(|r| rows(&r["placements"]).len())
                .unwrap_or(0);
            assert!(placements > 0, "{model} {name}: no placements");

            let j = host.json(&["mig", "cgi", "-i", "0", &id.to_string(), "-C"]);
            let created = &rows(&j)[0];
            assert_eq!(s(created, "name"), name, "{model}");
            let gi = u(created, "gi_id").to_string();
            let ci = &created["compute_instance"];
            assert_eq!(
                u(ci, "gi_id").to_string(),
                gi,
                "{model} {name}: -C made the CI in the new GI"
            );
            let lgi = host.json(&["mig", "lgi", "-i", "0"]);
            assert_eq!(rows(&lgi).len(), 1, "{model} {name}");
            let lci = host.json(&["mig", "lci", "-i", "0", "--gi", &gi]);
            assert_eq!(rows(&lci).len(), 1, "{model} {name}");
            let ci_id = u(&rows(&lci)[0], "ci_id").to_string();
            assert_eq!(u(&rows(&lci)[0], "profile_id"), u(ci, "profile_id"));
            let lcip = host.json(&["mig", "lcip", "-i", "0", "--gi", &gi]);
            assert!(
                rows(&lcip).iter().any(|r| r["default"] == true),
                "{model} {name}: a default CI profile"
            );
            let list = host.json(&["list"]);
            assert_eq!(
                rows(&list["gpus"][0]["mig_devices"]).len(),
                1,
                "{model} {name}"
            );
            host.ok(&["mig", "dci", "-i", "0", "--gi", &gi, "--ci", &ci_id]);
            host.ok(&["mig", "dgi", "-i", "0", "--gi", &gi]);
        }
        assert_eq!(
            host.ok(&["mig", "lgi", "-i", "0"]),
            "No GPU instances found: Not Found\n",
            "{model}"
        );
    }
}

/// The data rows of an `-lgip` table, each as its whitespace-separated fields: the H20's output
/// names no driver, and newer drivers print a wider name column (docs/mig-model.md §7).
fn lgip_fields(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with('|') && !l.contains("GPU") && !l.contains("Free/Total"))
        .filter(|l| !l.starts_with("|="))
        .map(|l| {
            l.trim_matches('|')
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Real `nvidia-smi mig -lgip` outputs replayed on nvml-sim, value for value: an H20 with MIG
/// on (docs/mig-model.md, "H20") and an H100 80GB HBM3 with MIG disabled on driver 580.173.02
/// (Free = Total, §7).
#[test]
fn real_lgip_outputs_replay_value_for_value() {
    const H20: &str = "\
|   0  MIG 1g.12gb         19     7/7        11.75      No      8     1     0   |
|                                                               1     1     0   |
|   0  MIG 1g.12gb+me      20     1/1        11.75      No      8     1     0   |
|                                                               1     1     1   |
|   0  MIG 1g.24gb         15     4/4        23.62      No     12     1     0   |
|                                                               1     1     0   |
|   0  MIG 2g.24gb         14     3/3        23.62      No     16     2     0   |
|                                                               2     2     0   |
|   0  MIG 3g.48gb          9     2/2        47.38      No     32     3     0   |
|                                                               3     3     0   |
|   0  MIG 4g.48gb          5     1/1        47.38      No     34     4     0   |
|                                                               4     4     0   |
|   0  MIG 7g.96gb          0     1/1        95.12      No     78     7     0   |
|                                                               8     7     1   |
";
    const H100_580_MIG_OFF: &str = "\
|   0  MIG 1g.10gb         19     7/7        9.75       No     16     1     0   |
|                                                               1     1     0   |
|   0  MIG 1g.10gb+me      20     1/1        9.75       No     16     1     0   |
|                                                               1     1     1   |
|   0  MIG 1g.20gb         15     4/4        19.62      No     26     1     0   |
|                                                               1     1     0   |
|   0  MIG 2g.20gb         14     3/3        19.62      No     32     2     0   |
|                                                               2     2     0   |
|   0  MIG 3g.40gb          9     2/2        39.50      No     60     3     0   |
|                                                               3     3     0   |
|   0  MIG 4g.40gb          5     1/1        39.50      No     64     4     0   |
|                                                               4     4     0   |
|   0  MIG 7g.80gb          0     1/1        79.25      No     132    7     0   |
|                                                               8     7     1   |
";
    assert_eq!(lgip_fields(H20).len(), 14);
    assert_eq!(lgip_fields(H100_580_MIG_OFF).len(), 14);
    let h20 = Host::with_mig(&["h20-96gb"]);
    assert_eq!(
        lgip_fields(&h20.ok(&["mig", "lgip", "-i", "0"])),
        lgip_fields(H20)
    );
    // Driver 580 prints the wide layout: the rows match character for character.
    let h100 = Host::with_args(&["h100-sxm5-80gb"], &["--driver-version", "580.173.02"]);
    let lgip = h100.ok(&["mig", "lgip", "-i", "0"]);
    assert_eq!(lgip_fields(&lgip), lgip_fields(H100_580_MIG_OFF));
    for line in H100_580_MIG_OFF.lines() {
        assert!(lgip.contains(line), "{line}\n{lgip}");
    }
}

/// The CI of a double-memory 1g GI has the plain 1g's SMs, as MIG devices created on a real
/// H100 NVL (16, where `-lgip` lists 26 for the GI) and H20 (8, not 12) report them
/// (docs/mig-model.md, "Compute-instance profiles").
#[test]
fn a_double_memory_1g_ci_has_the_plain_1g_sms() {
    for (model, gi_sms, ci_sms) in [("h100-nvl-94gb", 26, 16), ("h20-96gb", 12, 8)] {
        let host = Host::with_mig(&[model]);
        let created = host.json(&["mig", "cgi", "-i", "0", "1g.24gb", "-C"]);
        let gi = u(&rows(&created)[0], "gi_id").to_string();
        let lgip = host.json(&["mig", "lgip", "-i", "0"]);
        let gi_row = rows(&lgip)
            .iter()
            .find(|r| s(r, "name") == "1g.24gb")
            .expect("1g.24gb listed");
        assert_eq!(u(gi_row, "sm"), gi_sms, "{model}");
        let lcip = host.json(&["mig", "lcip", "-i", "0", "--gi", &gi]);
        let default = rows(&lcip)
            .iter()
            .find(|r| r["default"] == true)
            .expect("a default CI profile");
        assert_eq!(u(default, "sm"), ci_sms, "{model}: {lcip}");
    }
}
