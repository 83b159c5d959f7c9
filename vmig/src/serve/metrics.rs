//! `/metrics` in the Prometheus text exposition format (version 0.0.4), written from the
//! report view. Hand-written rather than through a client library: every value is a gauge
//! recomputed per snapshot (there is nothing to register or increment), and the format is
//! a few lines of escaping; [`check`] validates it in the tests.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;

use crate::report::{GpuView, Report};

use super::VcenterState;

/// One metric family: its samples must be written together, after its `# TYPE`.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }

    fn write(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            out.push_str(self.name);
            out.push_str(&label_set(labels));
            let _ = writeln!(out, " {}", number(*value));
        }
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Memory slices not taken by a GPU instance or a counted reservation.
pub fn free_memory_slices(g: &GpuView) -> u32 {
    let used: u32 = g.instances.iter().map(|gi| gi.placement.size).sum::<u32>()
        + g.reservations
            .iter()
            .filter_map(|r| r.placement.map(|p| p.size))
            .sum::<u32>();
    g.memory_slices.saturating_sub(used)
}

/// The families, in a fixed order.
struct Families {
    placeable: Family,
    slices: Family,
    free: Family,
    fragmentation: Family,
    stranded: Family,
    instances: Family,
    age: Family,
    status: Family,
    utilization: Family,
    framebuffer: Family,
    ecc: Family,
    xid: Family,
}

impl Families {
    fn new() -> Self {
        Families {
            placeable: Family::new(
                "vmig_placeable_vgpus",
                "gauge",
                "How many more VMs of a MIG-backed vGPU type fit in a cluster, reservations included.",
            ),
            slices: Family::new(
                "vmig_gpu_memory_slices",
                "gauge",
                "Memory slices of a GPU's model.",
            ),
            free: Family::new(
                "vmig_gpu_free_memory_slices",
                "gauge",
                "Memory slices of a GPU not taken by a GPU instance or a reservation.",
            ),
            fragmentation: Family::new(
                "vmig_gpu_fragmentation",
                "gauge",
                "Fragmentation of a GPU's free memory slices in [0, 1], reservations included.",
            ),
            stranded: Family::new(
                "vmig_gpu_stranded_compute_slices",
                "gauge",
                "Free compute slices of a GPU that only a re-layout of its movable GPU instances would make usable (vmig plan).",
            ),
            instances: Family::new(
                "vmig_gpu_instances",
                "gauge",
                "GPU instances on a GPU, by whether a VM uses them.",
            ),
            age: Family::new(AGE, "gauge", AGE_HELP),
            status: Family::new(
                "vmig_agent_status",
                "gauge",
                "1 for the state of a host's agent report (ok, stale, missing, invalid, not_applicable).",
            ),
            utilization: Family::new(
                "vmig_gi_utilization_percent",
                "gauge",
                "Utilization of the vGPU on a GPU instance over the agent's shortest window (mean, p95, max; engine sm or mem, enc/dec when used).",
            ),
            ecc: Family::new(
                "vmig_gpu_ecc_errors",
                "gauge",
                "Volatile ECC error counts of a GPU since the driver loaded (type corrected or uncorrected).",
            ),
            xid: Family::new(
                "vmig_gpu_xid_errors",
                "gauge",
                "XID errors of a GPU since its agent started (resets when the agent restarts).",
            ),
            framebuffer: Family::new(
                "vmig_gi_framebuffer_used_mib",
                "gauge",
                "Framebuffer used by the vGPU on a GPU instance over the agent's shortest window, MiB (mean, p95, max).",
            ),
        }
    }

    fn add_report(&mut self, report: &Report) {
        for vc in &report.vcenters {
            for dc in &vc.datacenters {
                for cl in &dc.clusters {
                    let place = || {
                        vec![
                            ("vcenter", vc.name.clone()),
                            ("datacenter", dc.name.clone()),
                            ("cluster", cl.name.clone()),
                        ]
                    };
                    for c in &cl.capacity {
                        let mut l = place();
                        l.push(("vgpu_type", c.vgpu_type.clone()));
                        l.push(("profile", c.profile.clone()));
                        self.placeable.add(l, f64::from(c.count));
                    }
                    for h in &cl.hosts {
                        let mut host = place();
                        host.push(("host", h.name.clone()));
                        if let Some(age) = h.agent.age_s {
                            // Whole seconds: exact in an f64 for any real age.
                            #[allow(clippy::cast_precision_loss, reason = "seconds fit in f64")]
                            self.age.add(host.clone(), age as f64);
                        }
                        let mut st = host.clone();
                        st.push(("status", h.agent.status.as_str().to_string()));
                        self.status.add(st, 1.0);
                        for g in &h.gpus {
                            let mut gpu = host.clone();
                            gpu.push(("gpu", g.uuid.clone()));
                            gpu.push(("gpu_index", g.index.to_string()));
                            self.add_gpu(gpu, g);
                        }
                    }
                }
            }
        }
    }

    fn add_gpu(&mut self, gpu: Vec<(&'static str, String)>, g: &GpuView) {
        self.slices.add(gpu.clone(), f64::from(g.memory_slices));
        self.free.add(gpu.clone(), f64::from(free_memory_slices(g)));
        self.fragmentation.add(gpu.clone(), g.fragmentation);
        if let Some(st) = &g.stranded {
            self.stranded
                .add(gpu.clone(), f64::from(st.stranded_slices));
        }
        let used = g.instances.iter().filter(|gi| gi.in_use).count();
        let idle = g.instances.len() - used;
        for (in_use, n) in [("true", used), ("false", idle)] {
            let mut l = gpu.clone();
            l.push(("in_use", in_use.to_string()));
            #[allow(clippy::cast_precision_loss, reason = "a handful of instances")]
            self.instances.add(l, n as f64);
        }
        #[allow(clippy::cast_precision_loss, reason = "counts are bounded by 2^53 - 1")]
        {
            if let Some(e) = g.ecc {
                for (kind, n) in [("corrected", e.corrected), ("uncorrected", e.uncorrected)] {
                    let mut l = gpu.clone();
                    l.push(("type", kind.to_string()));
                    self.ecc.add(l, n as f64);
                }
            }
            if let Some(x) = &g.xid {
                self.xid.add(gpu.clone(), x.total as f64);
            }
        }
        for gi in &g.instances {
            if let Some(u) = &gi.usage {
                let mut l = gpu.clone();
                l.push(("gi", gi.gi_id.to_string()));
                l.push(("profile", gi.profile.clone()));
                l.push(("vm", gi.vm.clone().unwrap_or_default()));
                self.add_usage(&l, u);
            }
        }
    }

    /// Only the shortest window (the agent's 1 h): Prometheus keeps the history itself, and
    /// one window keeps the series per GI at nine (docs/admin-guide.md, `vmig serve`).
    fn add_usage(&mut self, gi: &[(&'static str, String)], u: &mig::report::GiUsage) {
        let Some(w) = u.windows.iter().min_by_key(|w| w.window_s) else {
            return;
        };
        let window = format!("{}s", w.window_s);
        let mut engines = vec![("sm", w.sm), ("mem", w.mem)];
        if w.enc.max() > 0 {
            engines.push(("enc", w.enc));
        }
        if w.dec.max() > 0 {
            engines.push(("dec", w.dec));
        }
        for (engine, st) in engines {
            for (stat, v) in [("mean", st.mean()), ("p95", st.p95()), ("max", st.max())] {
                let mut l = gi.to_vec();
                l.push(("window", window.clone()));
                l.push(("engine", engine.to_string()));
                l.push(("stat", stat.to_string()));
                self.utilization.add(l, f64::from(v));
            }
        }
        if let Some(fb) = w.fb_mib {
            for (stat, v) in [("mean", fb.mean()), ("p95", fb.p95()), ("max", fb.max())] {
                let mut l = gi.to_vec();
                l.push(("window", window.clone()));
                l.push(("stat", stat.to_string()));
                #[allow(
                    clippy::cast_precision_loss,
                    reason = "MiB figures are bounded by 2^20"
                )]
                self.framebuffer.add(l, v as f64);
            }
        }
    }

    fn write(&self, out: &mut String) {
        for f in [
            &self.placeable,
            &self.slices,
            &self.free,
            &self.fragmentation,
            &self.stranded,
            &self.instances,
            &self.status,
            &self.utilization,
            &self.framebuffer,
            &self.ecc,
            &self.xid,
        ] {
            f.write(out);
        }
    }
}

/// `/metrics` made once per snapshot: everything but the values that grow with time alone,
/// which [`Exposition::write`] adds per scrape, so a scrape between two analyses still shows
/// each agent's report age and the uptime as they are then.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Every family but the ages and the uptime, written.
    fixed: Bytes,
    /// Each agent's report age when the snapshot was made: the label set written, the age.
    ages: Vec<(String, f64)>,
}

const AGE: &str = "vmig_agent_report_age_seconds";
const AGE_HELP: &str = "Age of a host's agent report (vCenter time).";
const UPTIME: &str = "vmig_serve_uptime_seconds";

impl Exposition {
    /// The exposition `since` after the snapshot, `uptime` after the server started.
    pub fn write(&self, since: Duration, uptime: Duration) -> Bytes {
        let mut tail = String::with_capacity(self.ages.len() * 160 + 256);
        let _ = writeln!(tail, "# HELP {AGE} {AGE_HELP}");
        let _ = writeln!(tail, "# TYPE {AGE} gauge");
        let grown = since.as_secs_f64().floor();
        for (labels, age) in &self.ages {
            let _ = writeln!(tail, "{AGE}{labels} {}", number(age + grown));
        }
        let _ = writeln!(tail, "# HELP {UPTIME} Seconds since vmig serve started.");
        let _ = writeln!(tail, "# TYPE {UPTIME} gauge");
        let _ = writeln!(tail, "{UPTIME} {}", number(uptime.as_secs_f64().floor()));
        // The fixed part is already text: copied as bytes, not checked again per scrape.
        let mut out = Vec::with_capacity(self.fixed.len() + tail.len());
        out.extend_from_slice(&self.fixed);
        out.extend_from_slice(tail.as_bytes());
        Bytes::from(out)
    }
}

/// The exposition for `report` and the watchers' states.
pub fn render(report: &Report, vcenters: &[VcenterState]) -> Exposition {
    let mut fams = Families::new();
    fams.add_report(report);
    let mut up = Family::new(
        "vmig_vcenter_up",
        "gauge",
        "1 while the model of a vCenter is in step with it (0 while re-reading or after an error).",
    );
    let mut updates = Family::new(
        "vmig_vcenter_updates_total",
        "counter",
        "Property-collector update sets received from a vCenter.",
    );
    let mut syncs = Family::new(
        "vmig_vcenter_syncs_total",
        "counter",
        "Full inventory reads of a vCenter (the first one included).",
    );
    for v in vcenters {
        let l = vec![("vcenter", v.name.clone())];
        up.add(l.clone(), if v.up { 1.0 } else { 0.0 });
        #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^53")]
        {
            updates.add(l.clone(), v.updates as f64);
            syncs.add(l, v.syncs as f64);
        }
    }
    let mut out = String::new();
    fams.write(&mut out);
    for f in [&up, &updates, &syncs] {
        f.write(&mut out);
    }
    let ages = fams
        .age
        .samples
        .iter()
        .map(|(labels, age)| (label_set(labels), *age))
        .collect();
    Exposition {
        fixed: Bytes::from(out),
        ages,
    }
}

/// `{k="v",…}`, escaped; empty for no labels.
fn label_set(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
    out
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A parsed label set.
type LabelSet = Vec<(String, String)>;

/// Parses a label set `{k="v",…}` (starting after `{`); returns the rest after `}`.
fn labels(mut s: &str) -> Result<(LabelSet, &str), String> {
    let mut out = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((out, rest));
        }
        let eq = s.find('=').ok_or("a label without '='")?;
        let name = &s[..eq];
        if !valid_name(name) || name.contains(':') {
            return Err(format!("bad label name {name:?}"));
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("an unquoted label value")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err("a bad escape in a label value".into()),
                },
                Some((_, '\n')) | None => return Err("an unterminated label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        out.push((name.to_string(), value));
        s = &s[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

/// Checks `text` against the text exposition format: `# HELP`/`# TYPE` lines, one
/// `# TYPE` per family before its samples, families not interleaved, valid metric and
/// label names, escaped label values, numeric values, no duplicate series. What
/// `promtool check metrics` checks for syntax (not its naming lints).
pub fn check(text: &str) -> Result<(), String> {
    let mut typed: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without a type".into()))?;
            if !valid_name(name) {
                return Err(at("bad metric name".into()));
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind}")));
            }
            if typed.iter().any(|t| t == name) {
                return Err(at("a second TYPE for a family".into()));
            }
            typed.push(name.to_string());
            current = Some(name.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at("bad metric name".into()));
        }
        let (ls, rest) = match line[name_end..].strip_prefix('{') {
            Some(r) => labels(r).map_err(at)?,
            None => (Vec::new(), &line[name_end..]),
        };
        let value = rest
            .trim()
            .split(' ')
            .next()
            .ok_or_else(|| at("no value".into()))?;
        let ok = matches!(value, "NaN" | "+Inf" | "-Inf") || value.parse::<f64>().is_ok();
        if !ok {
            return Err(at(format!("bad value {value:?}")));
        }
        if current.as_deref() != Some(name) {
            if typed.iter().any(|t| t == name) {
                return Err(at("samples of a family are not together".into()));
            }
            current = Some(name.to_string());
            typed.push(name.to_string());
        }
        let mut key = ls;
        key.sort();
        if !seen.insert((name.to_string(), key)) {
            return Err(at("a duplicate series".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_checked() {
        let mut f = Family::new("vmig_x", "gauge", "x.");
        f.add(vec![("host", "a\"b\\c\nd".into())], 1.5);
        f.add(vec![("host", "plain".into())], f64::NAN);
        let mut out = String::new();
        f.write(&mut out);
        assert!(out.contains(r#"vmig_x{host="a\"b\\c\nd"} 1.5"#), "{out}");
        check(&out).unwrap();
    }

    #[test]
    fn the_checker_refuses_broken_expositions() {
        for bad in [
            "# TYPE a gauge\na{x=\"1} 1\n",
            "# TYPE a gauge\na{x=1} 1\n",
            "# TYPE a gauge\na one\n",
            "# TYPE a gauge\na 1\na 2\n",
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n",
            "# TYPE a wobbly\na 1\n",
            "# TYPE 1a gauge\n",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_model_renders_valid_metrics() {
        let report = crate::analysis::analyse(Vec::new(), time::OffsetDateTime::UNIX_EPOCH)
            .report(crate::report::ScopeView::default());
        let v = VcenterState {
            name: "vc\"1".into(),
            up: true,
            ..VcenterState::default()
        };
        let out = render(&report, &[v]).write(Duration::ZERO, Duration::from_secs(3));
        let out = String::from_utf8(out.to_vec()).unwrap();
        check(&out).unwrap();
        assert!(
            out.contains("vmig_vcenter_up{vcenter=\"vc\\\"1\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("vmig_serve_uptime_seconds 3\n"), "{out}");
    }

    #[test]
    fn ages_and_uptime_grow_between_snapshots() {
        let e = Exposition {
            fixed: Bytes::from_static(b"# HELP a A.\n# TYPE a gauge\na 1\n"),
            ages: vec![(label_set(&[("host", "h\"1".into())]), 12.0)],
        };
        let out = e.write(Duration::from_millis(30_900), Duration::from_secs(100));
        let out = String::from_utf8(out.to_vec()).unwrap();
        check(&out).unwrap();
        assert!(
            out.contains("vmig_agent_report_age_seconds{host=\"h\\\"1\"} 42\n"),
            "{out}"
        );
        assert!(out.ends_with("vmig_serve_uptime_seconds 100\n"), "{out}");
    }
}
