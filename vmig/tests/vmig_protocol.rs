//! The assign protocol under stress (issue 15), on a simulator with the real `vmig` binary:
//! admins whose clocks are 5 minutes off (Debian's `faketime`), a lock holder stalled past
//! the stale time (SIGSTOP), the same VM assigned to two hosts at once, and `vmig assign`
//! killed while vCenter relocates or reconfigures the VM, then `vmig repair`.
//!
//! The stale time is shortened through `VMIG_LOCK_STALE_S`; the simulator's per-method delay
//! on `SetField` keeps a holder inside its critical section long enough to meet or stop it.

mod vmig_support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vcenter_client::{Client, VmProperty, VmRef};
use vmig_support::{Env, faketime, park, text, vms};

const A100: &str = "a100-pcie-40gb";
const FULL: &str = "grid_a100-7-40c";

/// Cluster DC0_C0: H0 and H1 each have an empty A100 (room for one 7g.40gb), H2 a full one.
fn scene(
    name: &str,
    delays: &[(&str, u32)],
) -> (Env, tokio::runtime::Runtime, Client, Vec<(String, VmRef)>) {
    vmig_support::parked_scene(name, 4, delays)
}

/// `vmig --json ARGS` with a short stale time, stdout and stderr piped, not yet started.
fn vmig(env: &Env, args: &[&str]) -> Command {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let mut cmd = env.vmig_cmd(&all);
    cmd.env("VMIG_LOCK_STALE_S", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn assign_cmd(env: &Env, vm: &str, host: &str) -> Command {
    vmig(
        env,
        &["assign", "--vm", vm, "--profile", FULL, "--host", host],
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {}", text(out)))
}

/// (vGPU profiles, reservation JSON) of a VM.
fn vm_state(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    vm: &VmRef,
) -> (Vec<String>, Option<serde_json::Value>) {
    rt.block_on(async {
        let defs = c.custom_field_defs().await.expect("defs");
        let key = defs
            .iter()
            .find(|d| d.name == "vmig.reservation")
            .map(|d| d.key);
        let v = c
            .vm(vm, &[VmProperty::Vgpus, VmProperty::CustomValues])
            .await
            .expect("vm");
        let res = key
            .and_then(|k| v.custom_values.get(k))
            .filter(|t| !t.is_empty())
            .map(|t| serde_json::from_str(t).expect("reservation JSON"));
        (
            v.vgpus
                .iter()
                .map(|d| d.profile.as_str().to_string())
                .collect(),
            res,
        )
    })
}

/// The VM names of every reservation the report counts (held or moved), and all listed.
fn counted_reservations(env: &Env) -> Vec<(String, String)> {
    let r = env.vmig_json(&["report"], 0);
    r["vcenters"][0]["datacenters"][0]["clusters"][0]["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .flat_map(|h| h["gpus"].as_array().cloned().unwrap_or_default())
        .flat_map(|g| g["reservations"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["vm"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Waits until `cond` holds (polling), panicking after `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig}");
}

#[test]
fn same_vm_on_two_hosts_concurrently_exactly_one_succeeds() {
    let (env, rt, c, vms) = scene("vmig-same-vm", &[]);
    let (vm, vm_ref) = &vms[0];
    // The default stale time: the loser waits for the winner's VM lock, never breaks it.
    let spawn = |host: &str| {
        assign_cmd(&env, vm, host)
            .env_remove("VMIG_LOCK_STALE_S")
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn("DC0_C0_H0"), spawn("DC0_C0_H1"));
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = (oa.status.code(), ob.status.code());
    assert!(
        codes == (Some(0), Some(3)) || codes == (Some(3), Some(0)),
        "exactly one must succeed:\n{}\n{}",
        text(&oa),
        text(&ob)
    );
    let loser = if codes.0 == Some(3) { &oa } else { &ob };
    let j = json(loser);
    let msg = j["refusal"]["message"].as_str().unwrap_or("");
    assert!(msg.contains(vm.as_str()), "{msg}");
    let (vgpus, res) = vm_state(&rt, &c, vm_ref);
    assert_eq!(vgpus, [FULL], "exactly one vGPU");
    let res = res.expect("a reservation");
    assert_eq!(res["step"], "done");
    assert_eq!(counted_reservations(&env).len(), 1);
}

#[test]
fn stalled_lock_holder_stops_without_writing() {
    // Each AddCustomFieldDef takes 3 s. The holder creates the `vmig.reservation` field
    // (the simulator starts without it) after its capacity re-check under the host lock and
    // before its fenced write: that call is where it is stopped.
    let (env, rt, c, vms) = scene("vmig-stalled", &[("AddCustomFieldDef", 3000)]);
    let ((a, a_ref), (b, b_ref)) = (&vms[0], &vms[1]);
    let host = vmig_support::host_ref(&rt, &c, "DC0_C0_H0");
    let lock_name = format!("vmig.lock.{}", host.value());
    let mut holder = assign_cmd(&env, a, "DC0_C0_H0").spawn().expect("spawn");
    let stderr = holder.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut all);
        all
    });
    // The host lock is claimed once its holder value is written.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let claimed = rt.block_on(async {
            let defs = c.custom_field_defs().await.expect("defs");
            let Some(def) = defs.iter().find(|d| d.name == lock_name) else {
                return false;
            };
            let values = c.custom_values(host.as_moref()).await.expect("values");
            values.get(def.key).is_some_and(|v| !v.is_empty())
        });
        if claimed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the holder never claimed the host lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A few reads later it waits on the 3 s creation of the reservation field.
    std::thread::sleep(Duration::from_millis(1200));
    signal(&holder, "STOP");
    // Past the stale time by vCenter's clock (2 s), another admin breaks it and assigns.
    std::thread::sleep(Duration::from_millis(2500));
    let other = assign_cmd(&env, b, "DC0_C0_H0").output().expect("run");
    assert_eq!(other.status.code(), Some(0), "{}", text(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("breaking a stale vmig lock"),
        "the break is announced: {}",
        text(&other)
    );
    signal(&holder, "CONT");
    let mut out = holder.wait_with_output().expect("wait");
    out.stderr = reader.join().expect("stderr reader").into_bytes();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let j = json(&out);
    assert_eq!(j["refusal"]["kind"], "lock_lost", "{j:#}");
    let msg = j["refusal"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("DC0_C0_H0") && msg.contains("broken") && msg.contains("nothing was written"),
        "{msg}"
    );
    assert_eq!(
        vm_state(&rt, &c, a_ref),
        (vec![], None),
        "the stalled holder wrote nothing"
    );
    assert_eq!(vm_state(&rt, &c, b_ref).0, [FULL]);
    assert_eq!(
        counted_reservations(&env),
        [(b.clone(), "held".to_string())]
    );
}

#[test]
fn admins_with_skewed_clocks_never_double_book() {
    let Some(faketime) = faketime() else {
        return;
    };
    // Each SetField takes 0.4 s, so each admin holds the host lock a while and the other
    // meets it and judges its age.
    let (env, rt, c, vms) = scene("vmig-skew", &[("SetField", 400)]);
    let ((a, a_ref), (b, b_ref)) = (&vms[0], &vms[1]);
    let skewed = |offset: &str, vm: &str| {
        let plain = assign_cmd(&env, vm, "DC0_C0_H0");
        let mut cmd = Command::new(&faketime);
        cmd.arg("-f")
            .arg(offset)
            .arg(plain.get_program())
            .args(plain.get_args());
        for (k, v) in plain.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        // A stale time of 60 s is far below the 10 minutes between the two clocks (judged
        // by a workstation clock the lock would be broken) yet never reached by a live holder.
        cmd.env("VMIG_LOCK_STALE_S", "60")
            .current_dir(env.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    for round in 0..2 {
        let behind = skewed("-5m", a).spawn().expect("spawn");
        let ahead = skewed("+5m", b).spawn().expect("spawn");
        let (ob, oa) = (
            behind.wait_with_output().unwrap(),
            ahead.wait_with_output().unwrap(),
        );
        let codes = (ob.status.code(), oa.status.code());
        assert!(
            codes == (Some(0), Some(4)) || codes == (Some(4), Some(0)),
            "round {round}: exactly one wins the last slice:\n{}\n{}",
            text(&ob),
            text(&oa)
        );
        for o in [&ob, &oa] {
            assert!(
                !String::from_utf8_lossy(&o.stderr).contains("breaking"),
                "round {round}: no live lock is broken: {}",
                text(o)
            );
        }
        let counted = counted_reservations(&env);
        assert_eq!(counted.len(), 1, "round {round}: {counted:?}");
        let (winner, w_ref) = if codes.0 == Some(0) {
            (a, a_ref)
        } else {
            (b, b_ref)
        };
        assert_eq!(counted[0].0, *winner);
        env.vmig_json(&["unassign", "--vm", winner], 0);
        park(&rt, &c, w_ref, "DC0_C0_H2");
    }
}

/// Kills `vmig assign` of `vm` once its journal reaches `step`.
fn kill_at_step(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    c: &Client,
    vm: &str,
    vm_ref: &VmRef,
    host: &str,
    step: &str,
) {
    let mut child = assign_cmd(env, vm, host).spawn().expect("spawn");
    wait_until(Duration::from_secs(60), step, || {
        vm_state(rt, c, vm_ref).1.is_some_and(|r| r["step"] == step)
    });
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

#[test]
fn killed_during_relocate_or_reconfigure_then_repair_completes() {
    let delays = [("RelocateVM_Task", 2000), ("ReconfigVM_Task", 2000)];
    let (env, rt, c, vms) = scene("vmig-kill", &delays);
    let ((a, a_ref), (b, b_ref)) = (&vms[0], &vms[1]);
    kill_at_step(&env, &rt, &c, a, a_ref, "DC0_C0_H0", "relocating");
    kill_at_step(&env, &rt, &c, b, b_ref, "DC0_C0_H1", "configuring");
    // Half-done assignments are reported...
    let r = env.vmig_json(&["report"], 0);
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("vmig repair --vm"), "{warnings}");
    // ...and a dry run changes nothing.
    let dry = env.vmig_json(&["repair", "--dry-run"], 0);
    assert_eq!(dry["vms"].as_array().map(Vec::len), Some(2), "{dry:#}");
    // Let the calls in flight at the kill land (the simulator runs them after the delay).
    std::thread::sleep(Duration::from_millis(2200));
    let out = vmig(&env, &["repair"]).output().expect("repair");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = json(&out);
    for v in j["vms"].as_array().expect("vms") {
        assert_eq!(v["action"], "finished", "{j:#}");
    }
    for (vm, host) in [(a_ref, "DC0_C0_H0"), (b_ref, "DC0_C0_H1")] {
        let (vgpus, res) = vm_state(&rt, &c, vm);
        assert_eq!(vgpus, [FULL], "{vm}: fully assigned");
        let res = res.expect("reservation kept");
        assert_eq!(res["step"], "done");
        let on = rt.block_on(c.vm(vm, &[VmProperty::Host])).expect("vm").host;
        assert_eq!(on, Some(vmig_support::host_ref(&rt, &c, host)));
    }
    // A relocation that never reached vCenter: the journal says `relocating`, the VM is
    // still on its host. Repair rolls it back: no reservation, VM unchanged.
    let (cvm, c_ref) = &vms[2];
    let h0 = vmig_support::host_ref(&rt, &c, "DC0_C0_H0");
    let h2 = vmig_support::host_ref(&rt, &c, "DC0_C0_H2");
    let journal = serde_json::json!({
        "schema": "vmig.reservation/v1", "host": h0.value(), "host_name": "DC0_C0_H0",
        "gpu_uuid": format!("GPU-{A100}-0000"), "vgpu_type": FULL, "profile": "7g.40gb",
        "profile_id": 0, "placement": {"start": 0, "size": 8},
        "reserved_at": "2026-01-01T00:00:00Z", "by": "test", "token": 1,
        "step": "relocating", "from_host": h2.value(),
    });
    rt.block_on(async {
        let def = c
            .ensure_custom_field("vmig.reservation", Some(VmRef::KIND))
            .await
            .expect("field");
        c.set_custom_value(c_ref.as_moref(), def.key, &journal.to_string())
            .await
            .expect("set");
    });
    let out = vmig(&env, &["repair", "--vm", cvm])
        .output()
        .expect("repair");
    assert_eq!(
        json(&out)["vms"][0]["action"],
        "rolled_back",
        "{}",
        text(&out)
    );
    assert_eq!(vm_state(&rt, &c, c_ref), (vec![], None));
    let on = rt
        .block_on(c.vm(c_ref, &[VmProperty::Host]))
        .expect("vm")
        .host;
    assert_eq!(on, Some(h2));
    // Repair again: nothing left.
    let again = vmig(&env, &["repair"]).output().expect("repair");
    assert_eq!(
        json(&again)["vms"],
        serde_json::json!([]),
        "{}",
        text(&again)
    );
}

#[test]
fn interrupted_assign_stops_with_advice_then_repair_finishes() {
    let delays = [("RelocateVM_Task", 1500), ("ReconfigVM_Task", 500)];
    let (env, rt, c, vms) = scene("vmig-sigint", &delays);
    let (a, a_ref) = &vms[0];
    let child = assign_cmd(&env, a, "DC0_C0_H0").spawn().expect("spawn");
    wait_until(Duration::from_secs(60), "relocating", || {
        vm_state(&rt, &c, a_ref)
            .1
            .is_some_and(|r| r["step"] == "relocating")
    });
    signal(&child, "INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("vmig repair --vm {a}")),
        "{}",
        text(&out)
    );
    // The relocation in flight was finished and recorded; the vGPU was not started.
    let (vgpus, res) = vm_state(&rt, &c, a_ref);
    assert!(vgpus.is_empty(), "{vgpus:?}");
    assert_eq!(res.expect("journal")["step"], "relocated");
    let out = vmig(&env, &["repair", "--vm", a]).output().expect("repair");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["vms"][0]["action"], "finished", "{}", text(&out));
    let (vgpus, res) = vm_state(&rt, &c, a_ref);
    assert_eq!(vgpus, [FULL]);
    assert_eq!(res.expect("reservation")["step"], "done");
}

#[test]
fn expired_and_orphaned_reservations_are_listed_not_counted() {
    let (env, rt, c, vms) = scene("vmig-expiry", &[]);
    let ((a, _), (b, b_ref)) = (&vms[0], &vms[1]);
    let out = vmig(
        &env,
        &[
            "assign",
            "--vm",
            a,
            "--profile",
            FULL,
            "--host",
            "DC0_C0_H0",
            "--reserve-for",
            "1s",
        ],
    )
    .output()
    .expect("assign");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = assign_cmd(&env, b, "DC0_C0_H1").output().expect("assign");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // b loses its vGPU behind vmig's back: its reservation is orphaned.
    rt.block_on(async {
        let v = c.vm(b_ref, &[VmProperty::Vgpus]).await.expect("vm");
        let spec = vcenter_client::VmConfigSpec::new().remove_vgpu(&v.vgpus[0]);
        let t = c.reconfigure_vm(b_ref, &spec).await.expect("reconfigure");
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .expect("task");
    });
    std::thread::sleep(Duration::from_millis(2100));
    let r = env.vmig_json(&["report"], 0);
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("expired"), "{warnings}");
    assert!(warnings.contains("orphaned"), "{warnings}");
    let statuses = counted_reservations(&env);
    assert!(
        statuses.contains(&(a.clone(), "expired".to_string())),
        "{statuses:?}"
    );
    // H0's slice is free again (a's reservation expired); H1's is still held by b's.
    let cap = env.vmig_json(&["capacity", "--profile", FULL], 0);
    assert_eq!(cap["available"], 1, "{cap:#}");
}

/// Writes `journal` as `vm`'s reservation, as a vmig that stopped would have left it.
fn put_reservation(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    vm: &VmRef,
    journal: &serde_json::Value,
) {
    rt.block_on(async {
        let def = c
            .ensure_custom_field("vmig.reservation", Some(VmRef::KIND))
            .await
            .expect("field");
        c.set_custom_value(vm.as_moref(), def.key, &journal.to_string())
            .await
            .expect("set");
    });
}

/// A full-GPU reservation on `host` (GPU 0 of the scene) at `step`, fenced with `token`.
fn journal(
    host: &vcenter_client::HostRef,
    host_name: &str,
    step: &str,
    token: i64,
) -> serde_json::Value {
    serde_json::json!({
        "schema": "vmig.reservation/v1", "host": host.value(), "host_name": host_name,
        "gpu_uuid": format!("GPU-{A100}-0000"), "vgpu_type": FULL, "profile": "7g.40gb",
        "profile_id": 0, "placement": {"start": 0, "size": 8},
        "reserved_at": "2026-01-01T00:00:00Z", "by": "test", "token": token, "step": step,
    })
}

fn host_of(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    vm: &VmRef,
) -> Option<vcenter_client::HostRef> {
    rt.block_on(c.vm(vm, &[VmProperty::Host])).expect("vm").host
}

#[test]
fn killed_or_interrupted_unassign_then_repair_releases() {
    let (env, rt, c, vms) = scene("vmig-unassign-kill", &[("ReconfigVM_Task", 2000)]);
    let ((a, a_ref), (b, b_ref)) = (&vms[0], &vms[1]);
    for (vm, host) in [(a, "DC0_C0_H0"), (b, "DC0_C0_H1")] {
        let out = assign_cmd(&env, vm, host).output().expect("assign");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // SIGKILL while vCenter holds the ReconfigVM_Task call that removes a's vGPU.
    let mut child = vmig(&env, &["unassign", "--vm", a]).spawn().expect("spawn");
    wait_until(Duration::from_secs(60), "unassigning", || {
        vm_state(&rt, &c, a_ref)
            .1
            .is_some_and(|r| r["step"] == "unassigning")
    });
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // SIGINT during b's: like assign, it finishes the call in flight, records it and stops
    // before the next change (the release).
    let child = vmig(&env, &["unassign", "--vm", b]).spawn().expect("spawn");
    wait_until(Duration::from_secs(60), "unassigning", || {
        vm_state(&rt, &c, b_ref)
            .1
            .is_some_and(|r| r["step"] == "unassigning")
    });
    signal(&child, "INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unassign stopped at step unassigned")
            && err.contains(&format!("vmig repair --vm {b}")),
        "{}",
        text(&out)
    );
    let (vgpus, res) = vm_state(&rt, &c, b_ref);
    assert!(vgpus.is_empty(), "{vgpus:?}");
    assert_eq!(res.expect("journal kept")["step"], "unassigned");
    // Both are listed by a dry run, which changes nothing.
    let dry = env.vmig_json(&["repair", "--dry-run"], 0);
    let listed = dry["vms"].as_array().expect("vms");
    assert_eq!(listed.len(), 2, "{dry:#}");
    let steps: Vec<&str> = listed.iter().filter_map(|v| v["step"].as_str()).collect();
    assert!(
        steps.contains(&"unassigning") && steps.contains(&"unassigned"),
        "{dry:#}"
    );
    for v in listed {
        assert_eq!(v["action"], "would_finish", "{dry:#}");
    }
    assert!(vm_state(&rt, &c, a_ref).1.is_some());
    // Let the call in flight at the kill land, then repair finishes both.
    std::thread::sleep(Duration::from_millis(2200));
    let out = vmig(&env, &["repair"]).output().expect("repair");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = json(&out);
    assert_eq!(j["vms"].as_array().map(Vec::len), Some(2), "{j:#}");
    for v in j["vms"].as_array().expect("vms") {
        assert_eq!(v["action"], "finished", "{j:#}");
    }
    for vm in [a_ref, b_ref] {
        assert_eq!(vm_state(&rt, &c, vm), (vec![], None), "{vm}: released");
    }
    assert!(counted_reservations(&env).is_empty());
}

#[test]
fn killed_unassign_before_its_call_is_finished_by_repair() {
    // The kill lands before ReconfigVM_Task reached vCenter (the journal says
    // `unassigning`, no task): repair removes the vGPU itself, then releases the slice.
    let (env, rt, c, vms) = scene("vmig-unassign-early", &[]);
    let (a, a_ref) = &vms[0];
    let out = assign_cmd(&env, a, "DC0_C0_H0").output().expect("assign");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_, res) = vm_state(&rt, &c, a_ref);
    let mut res = res.expect("reservation");
    res["step"] = "unassigning".into();
    put_reservation(&rt, &c, a_ref, &res);
    let out = vmig(&env, &["repair", "--vm", a]).output().expect("repair");
    assert_eq!(json(&out)["vms"][0]["action"], "finished", "{}", text(&out));
    assert_eq!(vm_state(&rt, &c, a_ref), (vec![], None));
}

#[test]
fn repair_never_rolls_a_superseded_journal_forward() {
    let (env, rt, c, vms) = scene("vmig-superseded", &[]);
    let ((a, a_ref), (b, b_ref)) = (&vms[0], &vms[1]);
    let h0 = vmig_support::host_ref(&rt, &c, "DC0_C0_H0");
    let h2 = vmig_support::host_ref(&rt, &c, "DC0_C0_H2");
    // a's assign (token 3) was stalled after moving a to H0; its lock was broken and b's
    // assign (token 9) booked the same slice: a's journal is the late one.
    park(&rt, &c, a_ref, "DC0_C0_H0");
    let mut late = journal(&h0, "DC0_C0_H0", "relocated", 3);
    late["from_host"] = h2.value().into();
    put_reservation(&rt, &c, a_ref, &late);
    put_reservation(&rt, &c, b_ref, &journal(&h0, "DC0_C0_H0", "done", 9));
    let dry = env.vmig_json(&["repair", "--dry-run", "--vm", a], 0);
    let v = &dry["vms"][0];
    assert_eq!(v["action"], "would_roll_back", "{dry:#}");
    let detail = v["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("superseded")
            && detail.contains(&format!("VM {b}"))
            && detail.contains("token 9"),
        "{detail}"
    );
    let out = vmig(&env, &["repair"]).output().expect("repair");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = json(&out);
    assert_eq!(j["vms"].as_array().map(Vec::len), Some(1), "{j:#}");
    assert_eq!(j["vms"][0]["action"], "rolled_back", "{j:#}");
    assert!(
        j["vms"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not rolled forward")),
        "{j:#}"
    );
    // a got no vGPU, lost its stale reservation and went back where it came from; b's
    // booking is untouched.
    assert_eq!(vm_state(&rt, &c, a_ref), (vec![], None));
    assert_eq!(host_of(&rt, &c, a_ref), Some(h2));
    let (_, b_res) = vm_state(&rt, &c, b_ref);
    assert_eq!(b_res.expect("b keeps its reservation")["token"], 9);
    // The same journal with the higher token of the two is completed.
    park(&rt, &c, a_ref, "DC0_C0_H0");
    put_reservation(&rt, &c, a_ref, &journal(&h0, "DC0_C0_H0", "relocated", 12));
    let out = vmig(&env, &["repair", "--vm", a]).output().expect("repair");
    assert_eq!(json(&out)["vms"][0]["action"], "finished", "{}", text(&out));
    assert_eq!(vm_state(&rt, &c, a_ref).0, [FULL]);
    // A late journal whose vGPU was already added (its task ran before the lock was
    // broken): neither completed nor undone, but left with a sentence.
    let (cvm, c_ref) = &vms[2];
    park(&rt, &c, c_ref, "DC0_C0_H0");
    rt.block_on(async {
        let spec = vcenter_client::VmConfigSpec::new()
            .add_vgpu(vcenter_client::VgpuProfile::new(FULL).expect("profile"));
        let t = c.reconfigure_vm(c_ref, &spec).await.expect("reconfigure");
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .expect("task");
    });
    put_reservation(&rt, &c, c_ref, &journal(&h0, "DC0_C0_H0", "configuring", 5));
    let out = vmig(&env, &["repair", "--vm", cvm])
        .output()
        .expect("repair");
    let j = json(&out);
    assert_eq!(j["vms"][0]["action"], "left", "{}", text(&out));
    let detail = j["vms"][0]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("superseded") && detail.contains("promised twice"),
        "{detail}"
    );
    let (vgpus, res) = vm_state(&rt, &c, c_ref);
    assert_eq!(vgpus, [FULL], "the vGPU stays");
    assert_eq!(res.expect("journal kept")["step"], "configuring");
}

/// The root resource pool of `host`'s cluster.
fn cluster_pool(rt: &tokio::runtime::Runtime, c: &Client, host: &str) -> vcenter_client::MoRef {
    let h = vmig_support::host_ref(rt, c, host);
    rt.block_on(async {
        let parent = c
            .host(&h, &[vcenter_client::HostProperty::Parent])
            .await
            .expect("host")
            .parent
            .expect("parent");
        c.retrieve_object(&parent, &["resourcePool"])
            .await
            .expect("cluster")
            .get("resourcePool")
            .expect("resourcePool")
            .to_moref()
            .expect("moref")
    })
}

fn pool_of(rt: &tokio::runtime::Runtime, c: &Client, vm: &VmRef) -> vcenter_client::MoRef {
    rt.block_on(c.retrieve_object(vm.as_moref(), &["resourcePool"]))
        .expect("vm")
        .get("resourcePool")
        .expect("resourcePool")
        .to_moref()
        .expect("moref")
}

#[test]
fn roll_back_across_clusters_returns_the_vm_to_its_clusters_pool() {
    let env = Env::start(
        vmig_support::two_free_one_full_a100(2).clusters(2),
        "vmig-two-clusters",
    );
    let rt = Env::runtime();
    let c = env.client(&rt);
    let (a, a_ref) = vms(&rt, &c)
        .into_iter()
        .find(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .map(|(n, r, _)| (n, r))
        .expect("a VM of cluster DC0_C0");
    park(&rt, &c, &a_ref, "DC0_C0_H2");
    let home_pool = cluster_pool(&rt, &c, "DC0_C0_H2");
    assert_eq!(pool_of(&rt, &c, &a_ref), home_pool);
    // An assign moved a into cluster DC0_C1 (with that cluster's pool, as assign does) and
    // stopped; its reservation has expired since.
    let far = vmig_support::host_ref(&rt, &c, "DC0_C1_H0");
    let far_pool = cluster_pool(&rt, &c, "DC0_C1_H0");
    rt.block_on(async {
        let spec = vcenter_client::RelocateSpec {
            host: far.clone(),
            pool: Some(vcenter_client::ResourcePoolRef::try_from(far_pool.clone()).expect("pool")),
        };
        let t = c.relocate_vm(&a_ref, &spec).await.expect("relocate");
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .expect("relocate task");
    });
    assert_eq!(pool_of(&rt, &c, &a_ref), far_pool);
    let h2 = vmig_support::host_ref(&rt, &c, "DC0_C0_H2");
    let mut stopped = journal(&far, "DC0_C1_H0", "relocated", 4);
    stopped["from_host"] = h2.value().into();
    stopped["expires_at"] = "2026-01-02T00:00:00Z".into();
    put_reservation(&rt, &c, &a_ref, &stopped);
    let out = vmig(&env, &["repair", "--vm", &a])
        .output()
        .expect("repair");
    let j = json(&out);
    assert_eq!(j["vms"][0]["action"], "rolled_back", "{}", text(&out));
    assert!(
        j["vms"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired") && d.contains("moved the VM back")),
        "{j:#}"
    );
    assert_eq!(vm_state(&rt, &c, &a_ref), (vec![], None));
    assert_eq!(host_of(&rt, &c, &a_ref), Some(h2));
    assert_eq!(
        pool_of(&rt, &c, &a_ref),
        home_pool,
        "back in its own cluster's pool"
    );
}
