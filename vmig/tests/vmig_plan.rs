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

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use vcenter_client::{Client, VmProperty, VmRef};
use vmig_support::{Env, doc, gi, gpu, park, text, vms};
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

    // vMotion of vGPU VMs is off in vCenter (vgpu.hotmigrate.enabled unset): no live move
    // is offered, and the plan says why.
    let p = env.vmig_json(
        &["plan", "--fit", "grid_a100-4-20cx3", "--allow", "cold,live"],
        4,
    );
    let why = p["live_not_offered"].to_string();
    assert!(why.contains("vgpu.hotmigrate.enabled"), "{p:#}");
    assert!(p["moves"].as_array().is_some_and(Vec::is_empty), "{p:#}");
    let rt = Env::runtime();
    let c = env.client(&rt);
    rt.block_on(c.update_option("vgpu.hotmigrate.enabled", "true"))
        .expect("enable vGPU vMotion");

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

    // --apply cannot re-lay out idle GIs (that is the host's agent's job, not vCenter's):
    // they are pinned, so the plan above does not exist for --apply and nothing changes.
    let p = env.vmig_json(&["plan", "--fit", "grid_a100-4-20cx2", "--apply"], 4);
    assert_eq!(p["dry_run"], false, "{p:#}");
    assert!(
        p["no_plan"]
            .as_str()
            .expect("why")
            .contains("no plan exists"),
        "{p:#}"
    );

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

/// `two_free_one_full_a100`: H0 and H1 with an empty A100 each, H2 full. VMs p and q get a
/// `1g.5gb` slice each, p on H0, q on H1 (powered off): no `7g.40gb` fits until one of them
/// moves to the other's GPU.
fn apply_scene(
    name: &str,
    delays: &[(&str, u32)],
) -> (Env, tokio::runtime::Runtime, Client, Vec<(String, VmRef)>) {
    let (env, rt, c, all) = vmig_support::parked_scene(name, 4, delays);
    for ((vm, _), host) in all.iter().zip(["DC0_C0_H0", "DC0_C0_H1"]) {
        env.vmig_json(
            &[
                "assign",
                "--vm",
                vm,
                "--profile",
                "grid_a100-1-5c",
                "--host",
                host,
            ],
            0,
        );
    }
    (env, rt, c, all)
}

/// The one cold move a `7g.40gb` plan makes on the apply scene: (VM, from host, to host).
fn the_move(plan: &serde_json::Value) -> (String, String, String) {
    let moves = plan["moves"].as_array().expect("moves");
    assert_eq!(moves.len(), 1, "{plan:#}");
    let m = &moves[0];
    assert_eq!(m["kind"], "cold", "{plan:#}");
    let what = m["what"].as_str().expect("what");
    let vm = what
        .strip_prefix("reservation of VM ")
        .and_then(|w| w.strip_suffix(" (powered off)"))
        .unwrap_or_else(|| panic!("{what}"));
    let host = |k: &str| {
        m[k].as_str()
            .and_then(|g| g.split(" GPU").next())
            .expect("gpu")
            .to_string()
    };
    (vm.to_string(), host("from_gpu"), host("to_gpu"))
}

/// (host name, reservation JSON) of `vm`.
fn where_is(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    vm: &VmRef,
) -> (String, Option<serde_json::Value>) {
    rt.block_on(async {
        let defs = c.custom_field_defs().await.expect("defs");
        let key = defs
            .iter()
            .find(|d| d.name == "vmig.reservation")
            .map(|d| d.key);
        let v = c
            .vm(vm, &[VmProperty::Host, VmProperty::CustomValues])
            .await
            .expect("vm");
        let hosts = c
            .hosts(&[vcenter_client::HostProperty::Name])
            .await
            .expect("hosts");
        let host = hosts
            .into_iter()
            .find(|h| Some(&h.moref) == v.host.as_ref())
            .and_then(|h| h.name)
            .unwrap_or_default();
        let res = key
            .and_then(|k| v.custom_values.get(k))
            .filter(|t| !t.is_empty())
            .map(|t| serde_json::from_str(t).expect("reservation JSON"));
        (host, res)
    })
}

fn vm_ref(vms: &[(String, VmRef)], name: &str) -> VmRef {
    vms.iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| panic!("no VM {name}"))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {}", text(out)))
}

#[test]
fn apply_frees_a_slot_then_assign_succeeds() {
    let (env, rt, c, vms) = apply_scene("vmig-plan-apply", &[]);
    let fit = ["plan", "--fit", "grid_a100-7-40c"];
    let dry = env.vmig_json(&fit, 0);
    assert_eq!(dry["fits_before"], 0, "{dry:#}");
    let (vm, from, to) = the_move(&dry);
    assert_ne!(from, to);
    let mut args = fit.to_vec();
    args.push("--apply");
    let done = env.vmig_json(&args, 0);
    assert_eq!(done["plan"]["dry_run"], false, "{done:#}");
    let applied = done["apply"]["applied"].as_array().expect("applied");
    assert_eq!(applied.len(), 1, "{done:#}");
    assert_eq!(applied[0]["vm"], vm.as_str());
    assert!(done["apply"]["stopped"].is_null(), "{done:#}");
    // The VM and its slice are on the destination, the journal finished.
    let (host, res) = where_is(&rt, &c, &vm_ref(&vms, &vm));
    assert_eq!(host, to);
    let res = res.expect("reservation");
    assert_eq!(res["host_name"], to.as_str());
    assert_eq!(res["step"], "done");
    // The freed GPU takes a full-GPU VM.
    let (r, _) = &vms[2];
    let out = env.vmig_json(&["assign", "--vm", r, "--profile", "grid_a100-7-40c"], 0);
    assert_eq!(out["host"], from.as_str(), "{out:#}");
    // Text output names the move.
    let again = env.vmig(&["plan", "--fit", "grid_a100-7-40cx2", "--apply"]);
    assert_eq!(again.status.code(), Some(4), "{}", text(&again));
}

#[test]
fn concurrent_assign_between_plan_and_apply_stops_it_with_replan() {
    // Every lock creation takes 3 s: the concurrent assign (VM lock, then host lock) books
    // its slice about 6 s after it starts; the apply, started 1.5 s later, plans at once and
    // re-checks under its two locks about 6 s later, after that booking.
    let (env, rt, c, vms) = apply_scene("vmig-plan-race", &[("AddCustomFieldDef", 3000)]);
    let dry = env.vmig_json(&["plan", "--fit", "grid_a100-7-40c"], 0);
    let (vm, from, _) = the_move(&dry);
    // Another admin gives VM r a slice on the very GPU the plan frees.
    let (r, r_ref) = &vms[2];
    let other = env
        .vmig_cmd(&[
            "--json",
            "assign",
            "--vm",
            r,
            "--profile",
            "grid_a100-1-5c",
            "--host",
            &from,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("assign");
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let apply = env
        .vmig_cmd(&["--json", "plan", "--fit", "grid_a100-7-40c", "--apply"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("apply");
    let other = other.wait_with_output().expect("assign");
    assert_eq!(other.status.code(), Some(0), "{}", text(&other));
    assert_eq!(apply.status.code(), Some(5), "{}", text(&apply));
    let j = json(&apply);
    assert!(
        j["apply"]["applied"].as_array().is_some_and(Vec::is_empty),
        "{j:#}"
    );
    let reason = j["apply"]["stopped"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("would fit"), "{j:#}");
    assert!(started.elapsed() > Duration::from_secs(3));
    // Nothing of the move happened; r holds its slice.
    let (host, res) = where_is(&rt, &c, &vm_ref(&vms, &vm));
    assert_eq!(host, from);
    assert_eq!(res.expect("reservation")["step"], "done");
    let (r_host, r_res) = where_is(&rt, &c, r_ref);
    assert_eq!(r_host, from);
    assert!(r_res.is_some());
    // Planned again on the new state, the fit still exists (another VM moves).
    let again = env.vmig_json(&["plan", "--fit", "grid_a100-7-40c"], 0);
    assert_eq!(again["fits_after"], 1, "{again:#}");
    assert_ne!(the_move(&again).0, vm, "{again:#}");
}

#[test]
fn killed_during_an_applied_move_then_repair_finishes_it() {
    let (env, rt, c, vms) = apply_scene("vmig-plan-kill", &[("RelocateVM_Task", 2000)]);
    let dry = env.vmig_json(&["plan", "--fit", "grid_a100-7-40c"], 0);
    let (vm, from, to) = the_move(&dry);
    let vm_r = vm_ref(&vms, &vm);
    // A killed vmig's locks go stale after 2 s (instead of 120 s) for the repair below.
    let mut child = env
        .vmig_cmd(&["--json", "plan", "--fit", "grid_a100-7-40c", "--apply"])
        .env("VMIG_LOCK_STALE_S", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apply");
    let start = Instant::now();
    while where_is(&rt, &c, &vm_r)
        .1
        .is_none_or(|r| r["step"] != "moving")
    {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            panic!("apply ended before step moving: {}", text(&out));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never reached step moving"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // The stopped move is reported and listed by a dry run...
    let r = env.vmig_json(&["report"], 0);
    assert!(
        r["warnings"]
            .to_string()
            .contains("plan --apply is at step moving"),
        "{r:#}"
    );
    let dry = env.vmig_json(&["repair", "--dry-run"], 0);
    assert_eq!(dry["vms"][0]["vm"], vm.as_str(), "{dry:#}");
    assert_eq!(dry["vms"][0]["step"], "moving", "{dry:#}");
    assert_eq!(dry["vms"][0]["action"], "would_finish", "{dry:#}");
    // ...and repair finishes it once the relocation in flight has landed.
    std::thread::sleep(Duration::from_millis(2200));
    let out = env
        .vmig_cmd(&["--json", "repair"])
        .env("VMIG_LOCK_STALE_S", "2")
        .output()
        .expect("repair");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = json(&out);
    assert_eq!(out["vms"][0]["action"], "finished", "{out:#}");
    let (host, res) = where_is(&rt, &c, &vm_r);
    assert_eq!(host, to);
    assert_eq!(res.expect("reservation")["step"], "done");
    // The freed GPU takes a full-GPU VM.
    let (r, _) = &vms[2];
    let out = env.vmig_json(&["assign", "--vm", r, "--profile", "grid_a100-7-40c"], 0);
    assert_eq!(out["host"], from.as_str(), "{out:#}");
}

/// The admin guide's worked example: the inventory `cargo xtask demo` builds (2 clusters of
/// 2 hosts: DC0_C0_H0 with two A100-PCIE-40GB, DC0_C0_H1 an A100 80GB PCIe, DC0_C1_H0 an
/// H100 SXM5 with the `all-balanced` layout's idle GIs, DC0_C1_H1 an H100 SXM5 running a VM's
/// `3g.40gb`), a day later: GPU 0 of DC0_C0_H0 no longer carries the demo's `seed-mixed`
/// test layout, and VMs come and go. The transcript goes to stderr
/// (`cargo test -p vmig --test vmig_plan worked_example -- --nocapture`).
#[test]
fn worked_example_on_the_demo_inventory() {
    const A40: &str = "a100-pcie-40gb";
    const A80: &str = "a100-pcie-80gb";
    const H100: &str = "h100-sxm5-80gb";
    let balanced = [
        gi("2g.20gb", 0, None),
        gi("1g.10gb", 2, None),
        gi("1g.10gb", 3, None),
        gi("3g.40gb", 4, None),
    ];
    let docs = [
        (
            "DC0_C0_H0",
            A40,
            vec![gpu(0, A40, true, true, &[]), gpu(1, A40, true, true, &[])],
        ),
        ("DC0_C0_H1", A80, vec![gpu(0, A80, true, true, &[])]),
        ("DC0_C1_H0", H100, vec![gpu(0, H100, true, true, &balanced)]),
        (
            "DC0_C1_H1",
            H100,
            vec![gpu(
                0,
                H100,
                true,
                true,
                &[gi("3g.40gb", 4, Some("DC0_C1_RP0_VM0"))],
            )],
        ),
    ];
    let mut gpus = GpuConfig::default();
    let mut builder = Vcsim::builder()
        .clusters(2)
        .hosts_per_cluster(2)
        .standalone_hosts(0)
        .vms(4);
    for (host, model, d) in docs {
        let n = u32::try_from(d.len()).expect("count");
        gpus = gpus.rule(GpuRule::hosts(host).gpu(model, n));
        builder = builder.custom_value(host, "vmig.mig", &doc(1, 3600, d));
    }
    let env = Env::start(builder.gpu_hosts(gpus), "vmig-worked-example");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let c0: Vec<String> = vms(&rt, &c)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .map(|(n, r, _)| {
            park(&rt, &c, &r, "DC0_C0_H0");
            n
        })
        .collect();
    let (a, b, cc, d) = (&c0[0], &c0[1], &c0[2], &c0[3]);
    let run = |args: &[&str], code: i32| -> String {
        let out = env.vmig(args);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out));
        let shown = String::from_utf8_lossy(&out.stdout).to_string();
        eprintln!("$ vmig {}\n{shown}", args.join(" "));
        shown
    };
    // The demo's assign, then two more: best fit fills GPU 0, the small VM goes to GPU 1.
    run(&["assign", "--vm", a, "--profile", "grid_a100-3-20c"], 0);
    run(&["assign", "--vm", b, "--profile", "grid_a100-4-20c"], 0);
    run(&["assign", "--vm", cc, "--profile", "grid_a100-1-5c"], 0);
    // The first VM is retired: 4 slices free on GPU 0, 7 on GPU 1, no full GPU.
    run(&["unassign", "--vm", a], 0);
    let cap = run(&["capacity", "--profile", "grid_a100-7-40c"], 4);
    assert!(cap.contains('0'), "{cap}");
    let plan = run(&["plan", "--fit", "grid_a100-7-40c"], 0);
    assert!(plan.contains("1 move, 1 fit after"), "{plan}");
    assert!(
        plan.contains("cold") && plan.contains("(powered off)"),
        "{plan}"
    );
    let applied = run(&["plan", "--fit", "grid_a100-7-40c", "--apply"], 0);
    assert!(applied.contains("applied move 1"), "{applied}");
    assert!(applied.contains("the move was applied"), "{applied}");
    let assigned = run(&["assign", "--vm", d, "--profile", "grid_a100-7-40c"], 0);
    assert!(assigned.contains("DC0_C0_H0"), "{assigned}");
    // Live moves on the H100s: off until vCenter allows vGPU vMotion.
    let live = run(
        &[
            "plan",
            "--fit",
            "nvidia_h100xm-7-80c",
            "--allow",
            "cold,live",
        ],
        4,
    );
    assert!(
        live.contains("vgpu.hotmigrate.enabled is not set"),
        "{live}"
    );
}

/// Moves `vm` (powered on, as the simulator starts it) to `host`.
fn place_running(rt: &tokio::runtime::Runtime, c: &Client, vm: &VmRef, host: &str) {
    let h = vmig_support::host_ref(rt, c, host);
    rt.block_on(async {
        let t = c
            .relocate_vm(
                vm,
                &vcenter_client::RelocateSpec {
                    host: h,
                    pool: None,
                },
            )
            .await
            .expect("relocate");
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .expect("relocate task");
    });
}

#[test]
fn live_moves_need_vgpu_vmotion_and_the_type_on_the_destination() {
    // H0 runs VM b's 1g.5gb at 0:1, H1 VM d's; H1 does not offer grid_a100-1-5c. A full-GPU
    // VM fits only after one of them leaves its GPU, and only by vMotion.
    const T: &str = "grid_a100-1-5c";
    let b = "DC0_C0_RP0_VM0";
    let d = "DC0_C0_RP0_VM1";
    let gpus = GpuConfig::default()
        .rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 1))
        .rule(
            GpuRule::hosts("DC0_C0_H1")
                .gpu(A100, 1)
                .vgpu_types(&["grid_a100-7-40c", "grid_a100-4-20c"]),
        );
    let builder = Vcsim::builder()
        .hosts_per_cluster(2)
        .standalone_hosts(0)
        .vms(2)
        .gpu_hosts(gpus)
        .custom_value(
            "DC0_C0_H0",
            "vmig.mig",
            &doc(
                1,
                3600,
                vec![gpu(0, A100, true, true, &[gi("1g.5gb", 0, Some(b))])],
            ),
        )
        .custom_value(
            "DC0_C0_H1",
            "vmig.mig",
            &doc(
                1,
                3600,
                vec![gpu(0, A100, true, true, &[gi("1g.5gb", 0, Some(d))])],
            ),
        );
    let env = Env::start(builder, "vmig-plan-live");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let all: Vec<(String, VmRef)> = vms(&rt, &c).into_iter().map(|(n, r, _)| (n, r)).collect();
    let (b_ref, d_ref) = (vm_ref(&all, b), vm_ref(&all, d));
    place_running(&rt, &c, &b_ref, "DC0_C0_H0");
    place_running(&rt, &c, &d_ref, "DC0_C0_H1");
    let fit = ["plan", "--fit", "grid_a100-7-40c", "--allow", "cold,live"];
    // vCenter does not allow vGPU vMotion yet: no live move, and the answer says so.
    let p = env.vmig_json(&fit, 4);
    assert!(
        p["live_not_offered"]
            .to_string()
            .contains("vgpu.hotmigrate.enabled is not set"),
        "{p:#}"
    );
    rt.block_on(c.update_option("vgpu.hotmigrate.enabled", "true"))
        .expect("enable vGPU vMotion");
    // Now the only live move offered takes d to H0: b cannot go to H1, which does not offer
    // its type.
    let p = env.vmig_json(&fit, 0);
    let moves = p["moves"].as_array().expect("moves");
    assert_eq!(moves.len(), 1, "{p:#}");
    assert_eq!(moves[0]["kind"], "live", "{p:#}");
    assert_eq!(moves[0]["what"], format!("VM {d} (running)"), "{p:#}");
    assert_eq!(moves[0]["to_gpu"], "DC0_C0_H0 GPU 0", "{p:#}");
    // (The planner first tried b to H1, deterministically: the answer says why not.)
    let why = p["live_not_offered"].to_string();
    assert!(
        why.contains(&format!(
            "VM {b}: host DC0_C0_H1 does not offer its vGPU type {T}"
        )),
        "{p:#}"
    );
    // Applied: d is moved by vMotion (it stays powered on) and its slice re-booked on H0.
    let mut args = fit.to_vec();
    args.push("--apply");
    let done = env.vmig_json(&args, 0);
    assert_eq!(
        done["apply"]["applied"].as_array().map(Vec::len),
        Some(1),
        "{done:#}"
    );
    let (host, res) = where_is(&rt, &c, &d_ref);
    assert_eq!(host, "DC0_C0_H0");
    let res = res.expect("reservation");
    assert_eq!(res["host_name"], "DC0_C0_H0");
    assert_eq!(res["step"], "done");
    assert_eq!(res["vgpu_type"], T);
    let power = rt
        .block_on(c.vm(&d_ref, &[VmProperty::PowerState]))
        .expect("vm")
        .power_state;
    assert_eq!(power, Some(vcenter_client::PowerState::PoweredOn));
}

#[test]
fn interrupted_apply_finishes_the_call_in_flight_and_records_it() {
    // SIGINT while vCenter holds the (last) move's RelocateVM_Task call: like `assign`, the
    // call is finished and its end recorded (a relocation is never abandoned half-way);
    // with no further move there is nothing to stop before.
    let (env, rt, c, vms) = apply_scene("vmig-plan-sigint", &[("RelocateVM_Task", 1500)]);
    let dry = env.vmig_json(&["plan", "--fit", "grid_a100-7-40c"], 0);
    let (vm, _, to) = the_move(&dry);
    let vm_r = vm_ref(&vms, &vm);
    let child = env
        .vmig_cmd(&["plan", "--fit", "grid_a100-7-40c", "--apply"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apply");
    let start = Instant::now();
    while where_is(&rt, &c, &vm_r)
        .1
        .is_none_or(|r| r["step"] != "moving")
    {
        assert!(start.elapsed() < Duration::from_secs(60), "never moving");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signal received"),
        "{}",
        text(&out)
    );
    let (host, res) = where_is(&rt, &c, &vm_r);
    assert_eq!(host, to);
    assert_eq!(res.expect("reservation")["step"], "done");
    let r = env.vmig_json(&["repair", "--dry-run"], 0);
    assert_eq!(r["vms"], serde_json::json!([]), "{r:#}");
}
