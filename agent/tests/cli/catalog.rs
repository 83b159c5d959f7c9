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
