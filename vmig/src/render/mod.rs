//! Renderers of the [`Report`]: a terminal table, JSON (the model as is), CSV (one row per
//! GPU, for spreadsheets) and one self-contained HTML page. Renderers only format: every
//! number they print was computed in [`crate::analysis`] and shaped in [`crate::report`].

pub mod csv;
pub mod html;
pub mod json;
pub mod table;

use std::borrow::Cow;
use std::io::Write;

use crate::report::Report;

/// Output formats of `vmig report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Indented text for a terminal.
    Table,
    /// The report model as JSON (schema `vmig.report/v1`).
    Json,
    /// One row per GPU (hosts without GPU rows get one row).
    Csv,
    /// One self-contained HTML file with a diagram per GPU.
    Html,
}

/// Writes `report` in `format`.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Table => table::render(report, out),
        Format::Json => json::render(report, out),
        Format::Csv => csv::render(report, out),
        Format::Html => html::render(report, out),
    }
}

/// One window of a slice's measured utilization, e.g.
/// `24h: SM 23/90/90% mem 11/45/45% FB 3000/8000/8000 MiB` (mean/p95/max; enc/dec only when
/// used; `(12 min)` when the samples cover less than the window).
/// A GPU's error counts in one line, `None` when there is nothing to show (no ECC error and no
/// XID): `ECC corrected 2 uncorrected 0 · XID 3 since agent start (79×1, 13×2; last 79 on GI 1
/// at 2026-12-02T17:30:00Z)`.
pub fn health_text(g: &crate::report::GpuView) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(e) = g.ecc.filter(|e| e.corrected > 0 || e.uncorrected > 0) {
        parts.push(format!(
            "ECC corrected {} uncorrected {}",
            e.corrected, e.uncorrected
        ));
    }
    if let Some(x) = g.xid.as_ref().filter(|x| x.total > 0) {
        let codes: Vec<String> = x
            .codes
            .iter()
            .map(|c| format!("{}×{}", c.xid, c.count))
            .collect();
        let mut t = format!("XID {} since agent start ({}", x.total, codes.join(", "));
        if let Some(last) = &x.last {
            let on = last
                .gi_id
                .map(|g| format!(" on GI {g}"))
                .unwrap_or_default();
            t.push_str(&format!("; last {}{on} at {}", last.xid, last.at));
        }
        t.push(')');
        parts.push(t);
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// `2× NVIDIA DC-1-8C (vm-a, vm-b)`: vGPUs grouped by type in first-seen order, with the
/// VMs NVML names.
fn vgpu_groups(list: &[mig::report::VgpuReport]) -> String {
    let mut groups: Vec<(&str, u32, Vec<&str>)> = Vec::new();
    for v in list {
        let i = match groups.iter().position(|g| g.0 == v.vgpu_type) {
            Some(i) => i,
            None => {
                groups.push((v.vgpu_type.as_str(), 0, Vec::new()));
                groups.len() - 1
            }
        };
        groups[i].1 += 1;
        if let Some(vm) = &v.vm {
            groups[i].2.push(vm);
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(t, n, vms)| {
            if vms.is_empty() {
                format!("{n}\u{d7} {t}")
            } else {
                format!("{n}\u{d7} {t} ({})", vms.join(", "))
            }
        })
        .collect();
    parts.join(", ")
}

/// The time-sliced vGPUs a GI hosts and how many more fit (issue 18); `None` for a GI that
/// hosts at most one vGPU of a type that does not run time-sliced.
pub fn sliced_gi_text(gi: &crate::report::GiView) -> Option<String> {
    if gi.more_vgpus.is_none() && gi.vgpus.len() <= 1 {
        return None;
    }
    // An older agent lists no `vgpus`: its GI's one vGPU is `vm`/`vgpu_type`.
    let list = mig::report::vgpus_of(&gi.vgpus, gi.vm.as_deref(), gi.vgpu_type.as_deref());
    // Never empty here: `more_vgpus` is set only for a GI hosting a type, i.e. with a vGPU.
    let mut t = format!("time-sliced: {}", vgpu_groups(&list));
    match gi.more_vgpus {
        Some(0) => t.push_str("; full"),
        Some(1) => t.push_str("; 1 more fits"),
        Some(n) => t.push_str(&format!("; {n} more fit")),
        None => {}
    }
    Some(t)
}

/// Whole-GPU time-sliced vGPUs on a GPU without MIG: what runs and what more could start.
pub fn timesliced_gpu_text(ts: &mig::report::TimeslicedReport) -> Option<String> {
    let more: Vec<String> = ts
        .types
        .iter()
        .filter(|t| t.more > 0)
        .map(|t| format!("{}\u{d7} {}", t.more, t.vgpu_type))
        .collect();
    if ts.vgpus.is_empty() && more.is_empty() {
        return None;
    }
    let running = if ts.vgpus.is_empty() {
        "none running".to_string()
    } else {
        vgpu_groups(&ts.vgpus)
    };
    let more = if more.is_empty() {
        "no more fit".to_string()
    } else {
        format!("more fit: {}", more.join(", "))
    };
    Some(format!("time-sliced vGPUs: {running}; {more}"))
}

pub fn usage_text(w: &mig::report::UsageWindow) -> String {
    let name = match w.window_s {
        3600 => "1h".to_string(),
        86_400 => "24h".to_string(),
        s => format!("{s}s"),
    };
    let pct = |label: &str, st: mig::report::Stats<u8>| {
        format!(" {label} {}/{}/{}%", st.mean(), st.p95(), st.max())
    };
    let mut t = format!("{name}:{}{}", pct("SM", w.sm), pct("mem", w.mem));
    if w.enc.max() > 0 {
        t.push_str(&pct("enc", w.enc));
    }
    if w.dec.max() > 0 {
        t.push_str(&pct("dec", w.dec));
    }
    if let Some(fb) = w.fb_mib {
        t.push_str(&format!(" FB {}/{}/{} MiB", fb.mean(), fb.p95(), fb.max()));
    }
    if w.covered_s < w.window_s {
        t.push_str(&format!(" ({} min)", w.covered_s / 60));
    }
    t
}

/// `3× grid_a100-3-20c, 10× grid_a100-1-5c`, or `nothing` when empty.
pub fn capacity_sentence(c: &[crate::report::TypeCapacity]) -> String {
    if c.is_empty() {
        return "nothing".to_string();
    }
    c.iter()
        .map(|t| format!("{}\u{d7} {}", t.count, t.vgpu_type))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` with every control character (C0, DEL, C1) and every bidirectional or zero-width
/// format character shown as `\u{…}`: text from vCenter and from hosts' documents must not
/// move a terminal's cursor, recolour it, or reorder what an admin reads.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    fn hidden(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    }
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{escape_controls, sliced_gi_text};
    use crate::report::GiView;
    use mig::Placement;

    fn gi(vm: Option<&str>, vgpus: &[&str], more: Option<u32>) -> GiView {
        GiView {
            gi_id: 1,
            profile: "1g.24gb".into(),
            placement: Placement::new(0, 3),
            compute_slices: 1,
            compute_instances: Vec::new(),
            in_use: vm.is_some(),
            vm: vm.map(str::to_string),
            vgpu_type: vm.map(|_| "NVIDIA DC-1-8C".to_string()),
            usage: None,
            vgpus: vgpus
                .iter()
                .map(|vm| mig::report::VgpuReport {
                    vm: Some((*vm).to_string()),
                    vgpu_type: "NVIDIA DC-1-8C".into(),
                })
                .collect(),
            more_vgpus: more,
        }
    }

    #[test]
    fn time_sliced_gis_say_who_runs_and_what_fits() {
        assert_eq!(sliced_gi_text(&gi(Some("a"), &[], None)), None);
        assert_eq!(
            sliced_gi_text(&gi(Some("a"), &["a", "b", "c"], Some(0))).as_deref(),
            Some("time-sliced: 3\u{d7} NVIDIA DC-1-8C (a, b, c); full")
        );
        // An older agent: no vgpus list, its one vGPU is vm/vgpu_type.
        assert_eq!(
            sliced_gi_text(&gi(Some("a"), &[], Some(2))).as_deref(),
            Some("time-sliced: 1\u{d7} NVIDIA DC-1-8C (a); 2 more fit")
        );
    }

    #[test]
    fn controls_are_shown_escaped() {
        assert_eq!(escape_controls("plain ×"), "plain ×");
        assert_eq!(escape_controls("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(
            escape_controls("x\ny\rz\u{202e}"),
            "x\\u{a}y\\u{d}z\\u{202e}"
        );
    }
}
