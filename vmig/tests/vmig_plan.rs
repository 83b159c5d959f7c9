//! `vmig plan`, `vmig simulate` and the report's stranded capacity, through the real binary
//! against vcsim with injected agent documents (issue 20).
//!
//! The scene, one A100-40GB per host, all in cluster DC0_C0:
//! - H0: an idle 1g at 0:1 (no VM) and VM a's 2g at 4:2: the idle GI strands the 0:4 range
//!   (largest now 2g, after moving the idle GI 4g: 2 stranded slices);
//! - H1: VM b's 1g at 0:1 (running: only vMotion can move it);
//! - H2: VM c's 3g at 4:4 (a 4g fits at 0:4);
//! - H3: VM d's 1g at 0:1.

mod vmig_support;

use vmig_support::{Env, doc, gi, gpu};
use vmig_testkit::{GpuConfig, GpuRule, Vcsim};

const A100: &str = "a100-pcie-40gb";

fn scene() -> Env {
    let docs = [
        vec![gpu(
            0,
            A100,
            true,
            true,
            &[gi("1g.5gb", 0, None), gi("2g.10gb", 4, Some("a"))],
        )],
        vec![gpu(0, A100, true, true, &[gi("1g.5gb", 0, Some("b"))])],
        vec![gpu(0, A100, true, true, &[gi("3g.20gb", 4, Some("c"))])],
        vec![gpu(0, A100, true, true, &[gi("1g.5gb", 0, Some("d"))])],
    ];
    let mut gpus = GpuConfig::default();
    let mut builder = Vcsim::builder().hosts_per_cluster(4).vms(1);
    for (i, d) in docs.into_iter().enumerate() {
        let host = format!("DC0_C0_H{i}");
        gpus = gpus.rule(GpuRule::hosts(&host).gpu(A100, 1));
        builder = builder.custom_value(&host, "vmig.mig", &doc(1, 3600, d));
    }
    Env::start(builder.gpu_hosts(gpus), "vmig-plan")
}

fn kinds(plan: &serde_json::Value) -> Vec<String> {
    plan["moves"]
        .as_array()
        .expect("moves")
        .iter()
        .map(|m| m["kind"].as_str().expect("kind").to_string())
        .collect()
}

#[test]
fn plan_simulate_and_stranded_capacity() {
    let env = scene();

    // Report: the idle GI on H0 strands 2 slices; nothing else is movable (in use).
    let r = env.vmig_json(&["report"], 0);
    let cluster = &r["vcenters"][0]["datacenters"][0]["clusters"][0];
    let h0 = cluster["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["name"] == "DC0_C0_H0")
        .expect("H0");
    let s = &h0["gpus"][0]["stranded"];
    assert_eq!(s["stranded_slices"], 2, "{s:#}");
    assert_eq!(s["largest_now"], "2g.10gb");
    assert_eq!(s["largest_after_relayout"], "4g.20gb");
    assert_eq!(cluster["stranded"]["stranded_slices"], 2);
    assert_eq!(cluster["stranded"]["gpus_with_stranded"], 1);
    assert_eq!(r["stranded"]["stranded_slices"], 2);
    assert_eq!(r["stranded"]["gpus"], 4);
    let text = String::from_utf8_lossy(&env.vmig(&["report"]).stdout).to_string();
    assert!(
        text.contains("stranded: 2 slices (largest after re-layout: 4g.20gb"),
        "{text}"
    );

    // One more 4g than fits (H2 has one): re-lay out the idle GI on H0.
    let p = env.vmig_json(&["plan", "--fit", "grid_a100-4-20cx2"], 0);
    assert_eq!(p["fits_before"], 1, "{p:#}");
    assert_eq!(p["fits_after"], 2);
    assert_eq!(kinds(&p), ["relayout"]);
    assert_eq!(p["moves"][0]["from_gpu"], "DC0_C0_H0 GPU 0");
    assert_eq!(p["minimal"], true);
    assert_eq!(p["dry_run"], true);

    // Three need H1's 0:4 range, where a running VM sits: not without vMotion (a proof).
    let p = env.vmig_json(&["plan", "--fit", "grid_a100-4-20cx3"], 4);
    assert!(
        p["no_plan"]
            .as_str()
            .expect("why")
            .contains("no plan exists"),
        "{p:#}"
    );

    // With vMotion: two moves, the idle re-layout and VM b to another host.
    let p = env.vmig_json(
        &["plan", "--fit", "grid_a100-4-20cx3", "--allow", "cold,live"],
        0,
    );
    let mut k = kinds(&p);
    k.sort();
    assert_eq!(k, ["live", "relayout"], "{p:#}");
    assert_eq!(p["fits_after"], 3);
    let text = String::from_utf8_lossy(
        &env.vmig(&["plan", "--fit", "grid_a100-4-20cx3", "--allow", "cold,live"])
            .stdout,
    )
    .to_string();
    assert!(
        text.contains("vmotion") && text.contains("VM b (running)"),
        "{text}"
    );
    assert!(
        text.contains("2 moves, 3 fit after (the fewest moves possible)"),
        "{text}"
    );

    // --apply is refused with a usage error (exit 2) until the assign journal exists.
    let out = env.vmig(&["plan", "--fit", "grid_a100-4-20c", "--apply"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not implemented yet"));

    // Simulate: three 4g arrivals; without defrag one fits, with defrag more.
    std::fs::write(
        env.path("arrivals.txt"),
        "# three large VMs\narrive grid_a100-4-20c 3\n",
    )
    .expect("write arrivals");
    let rows = env.vmig_json(&["simulate", "--arrivals", "arrivals.txt"], 0);
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert_eq!(row["arrivals"], 3);
        let placed = row["placed"].as_u64().expect("placed");
        if row["defrag"] == true {
            assert!(placed >= 2, "{row:#}");
        } else {
            assert_eq!(placed, 1, "{row:#}");
        }
    }
    let html = env.path("sim.html");
    let out = env.vmig(&[
        "simulate",
        "--random",
        "7",
        "--count",
        "200",
        "--html",
        html.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("simulated 200 arrivals on 4 GPUs"), "{text}");
    assert!(
        std::fs::read_to_string(&html)
            .expect("html")
            .contains("class=\"bar\"")
    );
}
