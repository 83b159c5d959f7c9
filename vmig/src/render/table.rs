//! The terminal view: an indented tree vCenter → datacenter → cluster → host → GPU with a
//! one-line slice map per GPU, then the vGPU VMs and the hosts that need attention. Hosts
//! without GPUs are only counted, so a 2,500-host report stays readable.
//!
//! Names, VM ids and reasons come from vCenter and from documents any host can write, so
//! every line goes through `outln!`: control characters (escape sequences, carriage returns,
//! newlines inside a value) and bidirectional overrides are shown escaped (`\u{1b}`), never
//! sent to the terminal.

use std::io::Write;

use super::escape_controls;

/// `writeln!` with the line's control characters escaped (see the module comment).
macro_rules! outln {
    ($out:expr) => {
        $out.write_all(b"\n")
    };
    ($out:expr, $($arg:tt)*) => {
        write_line($out, &format!($($arg)*))
    };
}

fn write_line(out: &mut dyn Write, text: &str) -> std::io::Result<()> {
    out.write_all(escape_controls(text).as_bytes())?;
    out.write_all(b"\n")
}

use crate::analysis::AgentStatus;
use crate::report::{GpuView, HostView, Report};

use super::capacity_sentence;

/// "stranded: …" under a cluster or the total, only when something is stranded.
fn stranded_line(
    t: &mig::defrag::StrandedTotals,
    indent: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if t.stranded_slices == 0 {
        return Ok(());
    }
    writeln!(
        out,
        "{indent}stranded: {} of {} free slices on {} of {} GPUs (a re-layout would free them; see vmig plan)",
        t.stranded_slices, t.free_slices, t.gpus_with_stranded, t.gpus
    )
}

/// Writes the report as text.
pub fn render(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for vc in &r.vcenters {
        outln!(out, "vCenter {} ({})", vc.name, vc.product)?;
        for dc in &vc.datacenters {
            outln!(out, "  Datacenter {}", dc.name)?;
            for cl in &dc.clusters {
                let shown: Vec<&HostView> = cl
                    .hosts
                    .iter()
                    .filter(|h| !h.gpus.is_empty() || h.agent.status != AgentStatus::NotApplicable)
                    .collect();
                let label = if cl.kind == "cluster" {
                    "Cluster"
                } else {
                    "Standalone"
                };
                outln!(
                    out,
                    "    {label} {}: can still place {}",
                    cl.name,
                    capacity_sentence(&cl.capacity)
                )?;
                stranded_line(&cl.stranded, "      ", out)?;
                for h in &shown {
                    host(h, out)?;
                }
                let hidden = cl.hosts.len() - shown.len();
                if hidden > 0 {
                    outln!(
                        out,
                        "      ({hidden} host{} without GPUs)",
                        if hidden == 1 { "" } else { "s" }
                    )?;
                }
            }
        }
        if r.vcenters.len() > 1 {
            outln!(
                out,
                "  vCenter {} can still place {}",
                vc.name,
                capacity_sentence(&vc.capacity)
            )?;
        }
    }
    outln!(out)?;
    outln!(
        out,
        "Total: can still place {}",
        capacity_sentence(&r.capacity)
    )?;
    stranded_line(&r.stranded, "  ", out)?;

    outln!(out)?;
    if r.vgpu_vms.is_empty() {
        outln!(out, "VMs with MIG-backed vGPUs: none")?;
    } else {
        outln!(out, "VMs with MIG-backed vGPUs")?;
        let rows: Vec<[String; 7]> = r
            .vgpu_vms
            .iter()
            .map(|v| {
                [
                    v.vm.clone(),
                    if v.vgpu_types.is_empty() {
                        "(reserved)".into()
                    } else {
                        v.vgpu_types.join(",")
                    },
                    v.profiles.join(","),
                    v.power_state.clone().unwrap_or_default(),
                    v.host.clone().unwrap_or_default(),
                    v.cluster.clone(),
                    v.reservation.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(
            out,
            [
                "VM",
                "vGPU",
                "profile",
                "power",
                "host",
                "cluster",
                "reservation",
            ],
            &rows,
        )?;
    }
    if !r.flagged_hosts.is_empty() {
        outln!(out)?;
        outln!(out, "Hosts needing attention")?;
        for f in &r.flagged_hosts {
            outln!(
                out,
                "  {} ({}/{}): {} — {}",
                f.host,
                f.datacenter,
                f.cluster,
                status_word(f.status),
                f.reason
            )?;
        }
    }
    if !r.warnings.is_empty() {
        outln!(out)?;
        outln!(out, "Warnings")?;
        for w in &r.warnings {
            outln!(out, "  {w}")?;
        }
    }
    Ok(())
}

fn status_word(s: AgentStatus) -> &'static str {
    match s {
        AgentStatus::Ok => "ok",
        AgentStatus::Stale => "STALE",
        AgentStatus::Missing => "MISSING",
        AgentStatus::Invalid => "INVALID",
        AgentStatus::NotApplicable => "-",
    }
}

fn host(h: &HostView, out: &mut dyn Write) -> std::io::Result<()> {
    let agent = match h.agent.status {
        AgentStatus::Ok => format!(
            "agent ok (generation {}, {} old)",
            h.agent.generation.unwrap_or(0),
            crate::times::human_age(h.agent.age_s.unwrap_or(0))
        ),
        s => format!(
            "agent {}: {}",
            status_word(s),
            h.agent.detail.clone().unwrap_or_default()
        ),
    };
    let conn = match h.connection_state.as_deref() {
        Some("connected") | None => String::new(),
        Some(c) => format!(" [{c}]"),
    };
    outln!(out, "      Host {}{conn}  {agent}", h.name)?;
    for g in &h.gpus {
        gpu(g, out)?;
    }
    Ok(())
}

/// Letter of the n-th GI in the slice map.
fn letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

fn gpu(g: &GpuView, out: &mut dyn Write) -> std::io::Result<()> {
    let mig = match g.mig_mode {
        Some(m) if m.current != m.pending => {
            format!("MIG {} (pending {})", on_off(m.current), on_off(m.pending))
        }
        Some(m) => format!("MIG {}", on_off(m.current)),
        None => "no MIG".into(),
    };
    outln!(
        out,
        "        GPU {}  {}  {}  {}  {}",
        g.index,
        g.name,
        mig,
        g.pci_bus_id,
        g.uuid
    )?;
    if let Some(e) = &g.error {
        outln!(out, "          problem: {e}")?;
    }
    if let Some(t) = super::health_text(g) {
        outln!(out, "          errors: {t}")?;
    }
    if let Some(t) = g.timesliced.as_ref().and_then(super::timesliced_gpu_text) {
        outln!(out, "          {t}")?;
    }
    // Slice map: one cell per memory slice; a letter per GI (upper case = in use), r for a
    // reservation, . for free.
    let mut cells = vec!['.'; g.memory_slices as usize];
    for (i, gi) in g.instances.iter().enumerate() {
        let c = if gi.in_use {
            letter(i)
        } else {
            letter(i).to_ascii_lowercase()
        };
        for cell in slice_cells(&mut cells, gi.placement) {
            *cell = c;
        }
    }
    for r in &g.reservations {
        if let Some(p) = r.placement {
            for cell in slice_cells(&mut cells, p).filter(|c| **c == '.') {
                *cell = 'r';
            }
        }
    }
    let map: String = cells.iter().map(|c| format!("{c} ")).collect();
    outln!(out, "          slices [ {}]", map)?;
    for (i, gi) in g.instances.iter().enumerate() {
        let who = match (&gi.vm, gi.in_use) {
            (Some(vm), _) => format!(
                "in use by {vm}{}",
                gi.vgpu_type
                    .as_ref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            ),
            (None, true) => "in use".into(),
            (None, false) => "idle".into(),
        };
        let who = match super::sliced_gi_text(gi) {
            Some(t) => format!("{who}; {t}"),
            None => who,
        };
        let cis: Vec<String> = gi
            .compute_instances
            .iter()
            .map(|c| format!("CI {} {}", c.ci_id, c.profile))
            .collect();
        outln!(
            out,
            "          {} GI {} {} @{}  {}{}",
            letter(i),
            gi.gi_id,
            gi.profile,
            gi.placement,
            who,
            if cis.is_empty() {
                String::new()
            } else {
                format!("  [{}]", cis.join(", "))
            }
        )?;
        if let Some(u) = &gi.usage {
            for w in &u.windows {
                outln!(out, "              {}", super::usage_text(w))?;
            }
        }
    }
    for r in &g.reservations {
        let at = r
            .placement
            .map_or_else(|| "-".to_string(), |p| format!("@{p}"));
        outln!(
            out,
            "          r reserved by {} {} {} {}  ({}, since {})",
            r.vm,
            r.vgpu_type,
            r.profile,
            at,
            r.status.as_str(),
            r.reserved_at
        )?;
    }
    if g.mig_mode.is_some_and(|m| m.current) {
        let free: Vec<String> = g
            .free_profiles
            .iter()
            .map(|p| format!("{}\u{d7}{}", p.profile, p.count))
            .collect();
        outln!(
            out,
            "          free: {}  largest placeable: {}  fragmentation {:.2}",
            if free.is_empty() {
                "none".into()
            } else {
                free.join(", ")
            },
            g.largest_placeable.as_deref().unwrap_or("none"),
            g.fragmentation
        )?;
        if let Some(st) = g.stranded.as_ref().filter(|s| s.stranded_slices > 0) {
            writeln!(
                out,
                "          stranded: {} slice{} (largest after re-layout: {}; see vmig plan)",
                st.stranded_slices,
                if st.stranded_slices == 1 { "" } else { "s" },
                st.largest_after_relayout.as_deref().unwrap_or("none")
            )?;
        }
        let types: Vec<String> = g
            .free_vgpu_types
            .iter()
            .filter(|t| t.offered)
            .map(|t| format!("{}\u{d7} {}", t.count, t.vgpu_type))
            .collect();
        if !types.is_empty() {
            outln!(out, "          vGPU: {}", types.join(", "))?;
        }
    }
    Ok(())
}

/// The cells `p` covers, clipped to the map: the loop is over at most the GPU's slices
/// whatever the placement says (a placement's `end()` saturates at `u32::MAX`).
fn slice_cells(cells: &mut [char], p: mig::Placement) -> impl Iterator<Item = &mut char> {
    let start = usize::try_from(p.start).unwrap_or(usize::MAX);
    let size = usize::try_from(p.size).unwrap_or(usize::MAX);
    cells.iter_mut().skip(start).take(size)
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// A left-aligned table with a header row.
pub fn table<const N: usize>(
    out: &mut dyn Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    // Escaped first, so the widths are those of what is shown.
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| r.clone().map(|c| escape_controls(&c).into_owned()))
        .collect();
    let rows = rows.as_slice();
    let mut widths = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::from(" ");
        for (c, w) in cells.iter().zip(widths) {
            s.push(' ');
            s.push_str(c);
            s.extend(std::iter::repeat_n(' ', w - c.chars().count() + 1));
        }
        s.trim_end().to_string()
    };
    outln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        outln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
