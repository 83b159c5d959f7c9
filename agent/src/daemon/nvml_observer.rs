//! The real [`Observer`]: the agent's NVML module (`crate::nvml`, `crate::observe`) turned
//! into the published per-GPU reports.
//!
//! NVML is loaded once and kept; if listing GPUs fails the library is unloaded and loaded
//! again at the next poll (driver reloaded, VIB upgraded). Each GPU is read on its own, so one
//! failing GPU becomes an `error` in its report while the others are reported in full.
//! What cannot change while a GPU's MIG mode stays the same (names, profiles, placements) is
//! kept in an [`ObserveCache`] so that a poll asks NVML only for the dynamic parts
//! (`crate::observe` says which). Derived figures that need the `mig` model (fragmentation, which is a search over
//! re-layouts) are cached per layout: the layout rarely changes, the poll runs every 5 s.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use mig::report::{
    CiReport, GiProfileGeometry, GiReport, GpuReport, MigModeReport, ModelGeometry, ProcessReport,
};

use super::config::LayoutRef;
use super::observe::Observer;
use super::timesliced::{VgpuTypes, add_vgpus};
use crate::layout::{ApplyOptions, LayoutSelection};
use crate::nvml::{Driver, Gpu, VgpuTypeInfo};
use crate::observe::{GpuMigState, ObserveCache, observe_gpu_cached};

use super::worker::{Progress, Worker};

/// How long an NVML read or layout may take before it counts as stalled, unless set with
/// [`NvmlObserver::with_stall_timeout`]. A poll takes milliseconds.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Observes the GPUs through NVML, on a thread of its own ([`Worker`]).
#[derive(Debug)]
pub struct NvmlObserver {
    worker: Result<Worker<NvmlCore>, String>,
    stall_timeout: Duration,
}

impl NvmlObserver {
    /// An observer that loads NVML from `lib` (or the standard names) when first used.
    pub fn new(lib: Option<PathBuf>) -> Self {
        let worker = Worker::spawn("nvml", move |progress| NvmlCore::new(lib, progress))
            .map_err(|e| format!("cannot start the NVML thread: {e}"));
        NvmlObserver {
            worker,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }

    /// Sets how long a call may take before it is reported as stalled.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    fn worker(&mut self) -> anyhow::Result<&mut Worker<NvmlCore>> {
        self.worker.as_mut().map_err(|e| anyhow::anyhow!("{e}"))
    }
}

impl Observer for NvmlObserver {
    async fn observe(&mut self) -> anyhow::Result<Vec<GpuReport>> {
        let timeout = self.stall_timeout;
        self.worker()?
            .call("reading the GPUs", timeout, NvmlCore::observe)
            .await?
    }

    async fn reconcile(
        &mut self,
        desired: std::sync::Arc<super::desired::DesiredInForce>,
    ) -> anyhow::Result<super::desired::States> {
        let timeout = self.stall_timeout;
        self.worker()?
            .call("reconciling the layout", timeout, move |core| {
                let driver = core.driver()?;
                Ok(super::reconcile::reconcile_gpus(driver, &desired))
            })
            .await?
    }

    async fn enforce_layout(&mut self, layout: &LayoutRef) -> anyhow::Result<String> {
        let timeout = self.stall_timeout;
        let layout = layout.clone();
        self.worker()?
            .call("applying the layout", timeout, move |core| {
                core.enforce_layout(&layout)
            })
            .await?
    }
}

/// The NVML state of [`NvmlObserver`], on its thread.
#[derive(Debug)]
struct NvmlCore {
    progress: Progress,
    lib: Option<PathBuf>,
    driver: Option<Driver>,
    /// Static per-GPU NVML data, by GPU UUID; emptied whenever the library is (re)loaded.
    cache: ObserveCache,
    /// fragmentation by (model, layout) key.
    fragmentation: HashMap<String, f64>,
    /// The vGPU types each GPU supports, by GPU UUID, with the MIG mode they were read in:
    /// fixed while the mode stays, so a poll reads them once (emptied with `cache`).
    vgpu_types: HashMap<String, (bool, Vec<VgpuTypeInfo>)>,
}

impl NvmlCore {
    fn new(lib: Option<PathBuf>, progress: Progress) -> Self {
        NvmlCore {
            progress,
            lib,
            driver: None,
            cache: ObserveCache::default(),
            fragmentation: HashMap::new(),
            vgpu_types: HashMap::new(),
        }
    }

    fn driver(&mut self) -> anyhow::Result<&Driver> {
        if self.driver.is_none() {
            let driver = Driver::load(self.lib.as_deref())?;
            tracing::info!(lib = %driver.lib_path().display(), driver = ?driver.driver_version(), "NVML loaded");
            self.cache.clear();
            self.vgpu_types.clear();
            self.driver = Some(driver);
        }
        self.driver.as_ref().context("NVML not loaded")
    }
}

impl NvmlCore {
    fn observe(&mut self) -> anyhow::Result<Vec<GpuReport>> {
        self.progress.set("the NVML library");
        self.driver()?;
        let Some(driver) = self.driver.as_ref() else {
            anyhow::bail!("NVML not loaded");
        };
        let gpus = match driver.gpus() {
            Ok(gpus) => gpus,
            Err(e) => {
                self.driver = None;
                return Err(e).context("cannot list the GPUs");
            }
        };
        let mut states = Vec::with_capacity(gpus.len());
        let mut types = Vec::with_capacity(gpus.len());
        for gpu in &gpus {
            self.progress.set(format!("GPU {}", gpu.index()));
            let state = observe_gpu_cached(gpu, &mut self.cache)
                .map_err(|e| failed_report(gpu, &e.to_string()));
            types.push(match &state {
                Ok(st) => vgpu_types_of(gpu, st, &mut self.vgpu_types),
                Err(_) => VgpuTypes::default(),
            });
            states.push(state);
        }
        drop(gpus);
        self.vgpu_types.retain(|uuid, _| {
            states
                .iter()
                .any(|s| s.as_ref().is_ok_and(|st| st.uuid == *uuid))
        });
        // A GPU that is gone (or failed) is read in full if it comes back.
        self.cache.retain_gpus(|uuid| {
            states
                .iter()
                .any(|s| s.as_ref().is_ok_and(|state| state.uuid == uuid))
        });
        let cache = &mut self.fragmentation;
        if cache.len() > 256 {
            cache.clear();
        }
        let mut seen: Vec<String> = Vec::new();
        Ok(states
            .into_iter()
            .zip(types)
            .map(|(s, types)| match s {
                Ok(state) => {
                    let mut report = gpu_report(&state, cache);
                    add_vgpus(&mut report, &state, &types);
                    // The geometry once per model: later GPUs of the same name omit it.
                    if !seen.contains(&state.name) {
                        report.geometry = geometry_of(&state);
                        if report.geometry.is_some() {
                            seen.push(state.name.clone());
                        }
                    }
                    report
                }
                Err(report) => report,
            })
            .collect())
    }

    /// `vmig-agent apply -f FILE -c NAME` without `--allow-partial`: a layout that would touch
    /// an instance in use is refused as a whole and the GPUs stay as they are.
    fn enforce_layout(&mut self, layout: &LayoutRef) -> anyhow::Result<String> {
        let driver = self.driver()?;
        let selection = LayoutSelection {
            file: Some(layout.file.clone()),
            config: Some(layout.name.clone()),
            gpu: None,
        };
        let mut report = String::new();
        let outcome = crate::layout::apply(
            driver,
            &selection,
            &ApplyOptions::default(),
            false,
            &mut report,
        );
        let report = report
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match outcome {
            Ok(()) => Ok(report),
            Err(e) => Err(anyhow::anyhow!("{e}").context(report)),
        }
    }
}

/// The vGPU types of `gpu` (read once per MIG mode, kept in `cache`) and, on a GPU not in
/// MIG mode that has some, which may start now. A driver that does not answer, or fails,
/// leaves them empty: the types never fail a GPU's report.
fn vgpu_types_of(
    gpu: &Gpu<'_>,
    state: &GpuMigState,
    cache: &mut HashMap<String, (bool, Vec<VgpuTypeInfo>)>,
) -> VgpuTypes {
    let mig = state.mig_mode.is_some_and(|m| m.current);
    let supported = match cache.get(&state.uuid) {
        Some((mode, types)) if *mode == mig => types.clone(),
        _ => {
            let types = gpu.vgpu_types().unwrap_or_else(|e| {
                tracing::debug!(gpu = gpu.index(), error = %e, "no vGPU types");
                Vec::new()
            });
            cache.insert(state.uuid.clone(), (mig, types.clone()));
            types
        }
    };
    let creatable = if mig || supported.is_empty() {
        Vec::new()
    } else {
        gpu.creatable_vgpu_types().unwrap_or_else(|e| {
            tracing::debug!(gpu = gpu.index(), error = %e, "no creatable vGPU types");
            Vec::new()
        })
    };
    VgpuTypes {
        supported,
        creatable,
    }
}

/// What can still be said about a GPU whose MIG state could not be read.
fn failed_report(gpu: &Gpu<'_>, error: &str) -> GpuReport {
    let name = gpu.name().unwrap_or_default();
    GpuReport {
        sliced_types: Vec::new(),
        timesliced: None,
        index: gpu.index(),
        uuid: gpu.uuid().unwrap_or_default(),
        model: mig::GpuModel::by_nvml_name(&name).map(|m| m.key.to_string()),
        name,
        pci_bus_id: gpu.pci_bus_id().unwrap_or_default(),
        mig_mode: gpu.mig_mode().ok().map(|m| MigModeReport {
            current: m.current,
            pending: m.pending,
        }),
        gpu_instances: Vec::new(),
        free: Default::default(),
        largest_placeable: None,
        fragmentation: 0.0,
        placeable_vgpu_types: Vec::new(),
        nvml_free: None,
        layout_state: None,
        geometry: None,
        error: Some(error.to_string()),
    }
}

/// The GI profiles and placements NVML listed for this GPU (`None` while MIG is off, when
/// NVML lists none).
fn geometry_of(state: &GpuMigState) -> Option<ModelGeometry> {
    if state.gi_profiles.is_empty() {
        return None;
    }
    let gi_profiles = state
        .gi_profiles
        .iter()
        .map(|p| GiProfileGeometry {
            id: p.profile.id,
            index: p.profile.index,
            name: p.profile.name.clone(),
            slices: p.profile.slice_count,
            instances: p.profile.instance_count,
            memory_mib: p.profile.memory_mib,
            engines: p.profile.engines,
            starts: p.placements.iter().map(|pl| pl.start).collect(),
            size: p.placements.first().map_or(0, |pl| pl.size),
        })
        .collect();
    Some(ModelGeometry { gi_profiles })
}

/// NVML's remaining capacity per profile, published only when it differs from the geometry's
/// (the seed's ESXi host read 0 for every profile of an empty GPU); `vmig` flags it.
fn nvml_free_if_different(state: &GpuMigState) -> Option<BTreeMap<String, u32>> {
    state
        .gi_profiles
        .iter()
        .any(|p| p.instances_free != p.instances_placeable)
        .then(|| {
            state
                .gi_profiles
                .iter()
                .map(|p| (p.profile.name.clone(), p.instances_free))
                .collect()
        })
}

/// The published form of one GPU's observed state.
pub fn gpu_report(
    state: &GpuMigState,
    fragmentation_cache: &mut HashMap<String, f64>,
) -> GpuReport {
    let model = state.model.as_deref().and_then(mig::GpuModel::by_key);
    let gpu_instances = state
        .gpu_instances
        .iter()
        .map(|gi| {
            let vgpu = state.vgpus.iter().find(|v| v.gi_id == Some(gi.gi_id));
            GiReport {
                vgpus: Vec::new(),
                gi_id: gi.gi_id,
                profile_id: gi.profile_id,
                profile: gi.name.clone(),
                placement: gi.placement,
                compute_instances: gi
                    .compute_instances
                    .iter()
                    .map(|ci| CiReport {
                        ci_id: ci.ci_id,
                        profile_id: Some(ci.profile_id),
                        profile: ci.name.clone(),
                        uuid: ci.mig_device_uuid.clone().unwrap_or_default(),
                    })
                    .collect(),
                in_use: gi.in_use,
                vm: vgpu.map(|v| v.vm_id.clone()),
                vgpu_type: vgpu.and_then(|v| v.vgpu_type.clone()),
                processes: state
                    .processes
                    .iter()
                    .filter(|p| p.gi_id == Some(gi.gi_id))
                    .map(|p| ProcessReport {
                        pid: p.pid,
                        name: p.name.clone(),
                        ci_id: p.ci_id,
                    })
                    .collect(),
            }
        })
        .collect();
    let free_profiles: Vec<_> = state
        .gi_profiles
        .iter()
        .filter(|p| p.instances_placeable > 0)
        .collect();
    // `rev`: among equally large profiles keep the first in NVML order (`1g.5gb` before
    // `1g.5gb+me`), as `mig::MigState::largest_placeable` does; `max_by_key` keeps the last.
    let largest_placeable = free_profiles
        .iter()
        .rev()
        .max_by_key(|p| (p.profile.slice_count, p.profile.memory_mib))
        .map(|p| p.profile.name.clone());
    let placeable_vgpu_types = match model {
        Some(model) => {
            let mut types: Vec<String> = free_profiles
                .iter()
                .filter_map(|p| model.gi_profile(p.profile.id))
                .flat_map(|gp| mig::vgpu::vgpu_types_for(model, gp))
                .collect();
            types.sort();
            types.dedup();
            types
        }
        None => Vec::new(),
    };
    let fragmentation = match state.to_mig_state() {
        Some(ms) if state.mig_mode.is_some_and(|m| m.current) => {
            let key = serde_json::to_string(&ms).unwrap_or_default();
            *fragmentation_cache
                .entry(key)
                .or_insert_with(|| ms.fragmentation())
        }
        _ => 0.0,
    };
    GpuReport {
        sliced_types: Vec::new(),
        timesliced: None,
        index: state.index,
        uuid: state.uuid.clone(),
        name: state.name.clone(),
        pci_bus_id: state.pci_bus_id.clone().unwrap_or_default(),
        model: state.model.clone(),
        mig_mode: state.mig_mode.map(|m| MigModeReport {
            current: m.current,
            pending: m.pending,
        }),
        gpu_instances,
        free: free_profiles
            .iter()
            .map(|p| (p.profile.name.clone(), p.instances_placeable))
            .collect(),
        nvml_free: nvml_free_if_different(state),
        layout_state: None,
        geometry: None,
        largest_placeable,
        fragmentation,
        placeable_vgpu_types,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    //! The simulated NVML counts calls per process, so these tests run their body in a child
    //! process of their own (the test binary re-run with `--exact … --ignored`): other tests
    //! of this binary load the same library in parallel threads.
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use mig::GiProfileId;

    use super::*;

    /// Awaits `f` on a runtime of its own (the observer is async; these tests are not).
    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    const CHILD_LIB: &str = "VMIG_TEST_OBSERVER_NVML_LIB";

    fn run_child(test: &str, models: &[&str]) {
        run_child_with(test, models, &[]);
    }

    fn run_child_with(test: &str, models: &[&str], extra: &[&str]) {
        let dir = vmig_testkit::temp_dir("agent-observer-calls");
        let state = dir.path().join("nvml-sim.json");
        let mut init = Command::new(vmig_testkit::workspace_bin("nvml-sim"));
        init.arg("--state")
            .arg(&state)
            .args(["init", "--mig"])
            .args(extra);
        for m in models {
            init.args(["--gpu", m]);
        }
        let out = init.output().expect("run nvml-sim init");
        assert!(out.status.success(), "{out:?}");
        vmig_testkit::run_child_test(
            test,
            [
                ("NVML_SIM_STATE", state),
                (CHILD_LIB, vmig_testkit::nvml_sim_lib()),
            ],
        );
    }

    fn child_lib() -> PathBuf {
        PathBuf::from(std::env::var_os(CHILD_LIB).expect("started by the parent test"))
    }

    /// nvml-sim's own counter of NVML calls made by this process (`nvmlSimGetCallCount`).
    fn calls(lib: &Path) -> u64 {
        crate::nvml::sim_call_count(lib)
    }

    /// Split every GPU into its smallest GI profile, one CI each (the most NVML objects).
    fn split(driver: &Driver) {
        for gpu in driver.gpus().expect("gpus") {
            let profiles = gpu.gi_profiles().expect("profiles");
            let smallest = profiles
                .iter()
                .min_by_key(|p| (p.slice_count, p.memory_mib, p.id))
                .expect("a profile");
            while gpu.gi_remaining_capacity(smallest.id).expect("capacity") > 0 {
                let gi = gpu.create_gi(smallest.id, None).expect("create GI");
                let cis = gi.ci_profiles().expect("CI profiles");
                let ci = crate::nvml::default_ci_profile(smallest.slice_count, &cis)
                    .expect("default CI profile");
                gi.create_ci(ci.id, None).expect("create CI");
            }
        }
    }

    #[test]
    fn published_capacity_comes_from_geometry_not_from_nvml() {
        run_child_with(
            "daemon::nvml_observer::tests::child_published_capacity_comes_from_geometry_not_from_nvml",
            &["a100-pcie-40gb"],
            &["--driver-version", "510.47.03", "--platform", "esxi"],
        );
    }

    #[test]
    #[ignore = "runs inside published_capacity_comes_from_geometry_not_from_nvml"]
    fn child_published_capacity_comes_from_geometry_not_from_nvml() {
        let lib = child_lib();
        let mut observer = NvmlObserver::new(Some(lib.clone()));
        // The seed's ESXi host: NVML reads 0 for every profile of the empty GPU.
        let empty = block(observer.observe()).expect("poll");
        let free: Vec<(&str, u32)> = empty[0]
            .free
            .iter()
            .map(|(p, n)| (p.as_str(), *n))
            .collect();
        assert_eq!(
            free,
            [
                ("1g.5gb", 7),
                ("1g.5gb+me", 1),
                ("2g.10gb", 3),
                ("3g.20gb", 2),
                ("4g.20gb", 1),
                ("7g.40gb", 1)
            ]
        );
        assert_eq!(empty[0].largest_placeable.as_deref(), Some("7g.40gb"));
        assert!(
            empty[0]
                .placeable_vgpu_types
                .contains(&"grid_a100-7-40c".to_string())
        );
        let nvml = empty[0]
            .nvml_free
            .as_ref()
            .expect("the disagreement is published");
        assert_eq!(nvml.len(), 6);
        assert!(nvml.values().all(|n| *n == 0), "{nvml:?}");
        // After the first GI NVML and the geometry agree again: nothing extra is published.
        let driver = Driver::load(Some(&lib)).expect("load nvml-sim");
        let gpu = driver.gpu_by_index(0).expect("GPU 0");
        gpu.create_gi(GiProfileId(9), None).expect("create 3g.20gb");
        let one = block(observer.observe()).expect("poll");
        assert_eq!(one[0].free.get("3g.20gb"), Some(&1));
        assert_eq!(one[0].free.get("4g.20gb"), Some(&1));
        assert_eq!(one[0].free.get("7g.40gb"), None);
        assert_eq!(one[0].nvml_free, None);
        // The geometry NVML gave, published with the GPU: driver 510 has no profile 15.
        let geo = one[0].geometry.as_ref().expect("geometry published");
        let ids: Vec<u32> = geo.gi_profiles.iter().map(|p| p.id.0).collect();
        assert_eq!(ids, [19, 14, 9, 5, 0, 20]);
        let three = &geo.gi_profiles[2];
        assert_eq!(
            (three.starts.as_slice(), three.size, three.memory_mib),
            (&[0, 4][..], 4, 20096)
        );
    }

    #[test]
    fn polls_ask_nvml_only_for_what_can_change() {
        run_child(
            "daemon::nvml_observer::tests::child_polls_ask_nvml_only_for_what_can_change",
            &["h100-sxm5-80gb", "a100-pcie-40gb"],
        );
    }

    #[test]
    #[ignore = "runs inside polls_ask_nvml_only_for_what_can_change, which sets NVML_SIM_STATE"]
    fn child_polls_ask_nvml_only_for_what_can_change() {
        let lib = child_lib();
        let driver = Driver::load(Some(&lib)).expect("load nvml-sim");
        split(&driver);
        let mut observer = NvmlObserver::new(Some(lib.clone()));

        let c0 = calls(&lib);
        let first = block(observer.observe()).expect("first poll");
        let c1 = calls(&lib);
        let second = block(observer.observe()).expect("second poll");
        let c2 = calls(&lib);
        let (cold, warm) = (c1 - c0, c2 - c1);
        eprintln!("NVML calls per poll of 2 split GPUs: first {cold}, then {warm}");
        assert_eq!(
            first, second,
            "nothing changed, so the report must not either"
        );
        assert!(
            first
                .iter()
                .all(|g| g.error.is_none() && g.gpu_instances.len() == 7),
            "{first:#?}"
        );
        // Per GPU with 7 GIs of one CI each: count, handle, UUID, MIG mode, processes (2),
        // vGPUs, the GI lists per profile and their infos, one CI list and info per GI,
        // capacity per profile, the MIG device slots and their UUIDs. The cold read also
        // asks for every profile, placement and MIG device detail.
        assert!(warm * 2 < cold, "cold {cold}, warm {warm}");
        assert!(warm <= 2 * 75, "{warm} NVML calls for 2 GPUs");

        // A fresh observer (no cache) reports exactly the same.
        let mut fresh = NvmlObserver::new(Some(lib.clone()));
        assert_eq!(block(fresh.observe()).expect("fresh poll"), second);

        // Changes made behind the observer's back are seen at the next poll: a destroyed GI…
        let gpu1 = driver.gpu_by_index(1).expect("GPU 1");
        let gis = gpu1.gpu_instances().expect("GIs");
        let victim = gis.last().expect("a GI");
        let victim_id = victim.id();
        for ci in victim.compute_instances().expect("CIs") {
            ci.destroy().expect("destroy CI");
        }
        gis.into_iter()
            .last()
            .expect("a GI")
            .destroy()
            .expect("destroy GI");
        let third = block(observer.observe()).expect("third poll");
        assert_eq!(third[1].gpu_instances.len(), 6);
        assert!(
            third[1]
                .gpu_instances
                .iter()
                .all(|gi| gi.gi_id != victim_id)
        );
        assert_eq!(third, block(fresh.observe()).expect("fresh poll"));
        // …a new one, with a new MIG device UUID…
        let profile = GiProfileId(second[1].gpu_instances[0].profile_id.0);
        let gi = gpu1.create_gi(profile, None).expect("create GI");
        let ci_profiles = gi.ci_profiles().expect("CI profiles");
        let ci_profile = ci_profiles.first().expect("a CI profile").id;
        gi.create_ci(ci_profile, None).expect("create CI");
        let fourth = block(observer.observe()).expect("fourth poll");
        assert_eq!(fourth[1].gpu_instances.len(), 7);
        assert_eq!(fourth, block(fresh.observe()).expect("fresh poll"));
        let old_uuids: Vec<_> = second[1]
            .gpu_instances
            .iter()
            .flat_map(|gi| gi.compute_instances.iter().map(|ci| ci.uuid.clone()))
            .collect();
        let new_gi = fourth[1]
            .gpu_instances
            .iter()
            .find(|g| g.gi_id == gi.id())
            .expect("the new GI is reported");
        assert!(!old_uuids.contains(&new_gi.compute_instances[0].uuid));
        // …and a MIG mode change, which drops the cached profiles of that GPU.
        for g in gpu1.gpu_instances().expect("GIs") {
            for ci in g.compute_instances().expect("CIs") {
                ci.destroy().expect("destroy CI");
            }
            g.destroy().expect("destroy GI");
        }
        gpu1.set_mig_mode(false).expect("disable MIG");
        let fifth = block(observer.observe()).expect("fifth poll");
        assert_eq!(fifth, block(fresh.observe()).expect("fresh poll"));
        let mode = fifth[1].mig_mode.as_ref().expect("MIG capable");
        assert!(!mode.pending, "{fifth:#?}");
    }
}
