//! One self-contained HTML page: inline CSS, an inline SVG diagram per GPU and a few lines
//! of inline JavaScript that make the tables sortable. No external asset of any kind, so the
//! file can be mailed, archived and opened offline. Every text from vCenter or an agent is
//! HTML-escaped.
//!
//! The diagram has one column per memory slice of the GPU (8 on A100/H100, 4 on A30). The
//! upper band is the GPU instances at their memory-slice placements, coloured by occupant
//! (a VM, idle, reserved by a VM, or free); the lower band splits each GI into its compute
//! slices and shows its compute instances.

use std::fmt::Write as _;
use std::io::Write;

use crate::analysis::AgentStatus;
use crate::report::{GpuView, HostView, Report};

use super::capacity_sentence;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2630;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#57606a;font-size:13px}
.cap{background:#e8f4ea;border:1px solid #b7dfbf;border-radius:6px;padding:6px 10px;display:inline-block;margin:4px 0;font-size:14px}
.host{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 14px;margin:10px 0}
.host h4{margin:0 0 6px;font-size:15px}.gpu{margin:8px 0 12px 4px}.gpu .title{font-size:13px;margin-bottom:4px}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;margin-left:6px;color:#fff}
.ok{background:#2e7d32}.stale{background:#b26a00}.missing,.invalid{background:#c62828}.na{background:#8c959f}
.free{font-size:12px;color:#444}.warn{color:#b26a00}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px;background:#fff}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}th{background:#f0f3f6;cursor:pointer;user-select:none}
th:after{content:" \2195";color:#8c959f}th.asc:after{content:" \2191"}th.desc:after{content:" \2193"}
.legend span{display:inline-block;margin-right:12px;font-size:12px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px;border:1px solid #888}
"#;

const SCRIPT: &str = r#"
(function(){
  function key(td){var t=td.getAttribute('data-sort')||td.textContent.trim();var n=parseFloat(t);return isNaN(n)||!/^-?[0-9.]+$/.test(t)?t.toLowerCase():n;}
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th,col){
      th.addEventListener('click',function(){
        var asc=!th.classList.contains('asc');
        table.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
        th.classList.add(asc?'asc':'desc');
        var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);return (x<y?-1:x>y?1:0)*(asc?1:-1);});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  document.body.setAttribute('data-ready','1');
})();
"#;

const IN_USE: &str = "#2e7d32";
const IDLE: &str = "#90caf9";
const FREE: &str = "#eceff1";

/// Writes the page.
pub fn render(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut h = String::new();
    page(r, &mut h).map_err(|e| std::io::Error::other(e.to_string()))?;
    out.write_all(h.as_bytes())
}

/// The whole page: header, the sortable tables, one section per vCenter, warnings.
fn page(r: &Report, h: &mut String) -> std::fmt::Result {
    header(r, h)?;
    flagged_table(r, h)?;
    capacity_table(r, h)?;
    vms_table(r, h)?;
    gpus_table(r, h)?;
    vcenter_sections(r, h)?;
    if !r.warnings.is_empty() {
        h.push_str("<h2>Warnings</h2><ul>");
        for w in &r.warnings {
            write!(h, "<li class=\"warn\">{}</li>", esc(w))?;
        }
        h.push_str("</ul>");
    }
    writeln!(h, "<script>{SCRIPT}</script></body></html>")
}

/// `<head>`, title, scope, total capacity and the colour legend.
fn header(r: &Report, h: &mut String) -> std::fmt::Result {
    write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vmig report {}</title><style>{STYLE}</style></head><body>",
        esc(&r.generated_at)
    )?;
    write!(
        h,
        "<h1>vmig MIG report</h1><div class=\"meta\">generated {}",
        esc(&r.generated_at)
    )?;
    if let Some(d) = &r.scope.datacenter {
        write!(h, " · datacenter {}", esc(d))?;
    }
    if let Some(c) = &r.scope.cluster {
        write!(h, " · cluster {}", esc(c))?;
    }
    write!(
        h,
        " · {} vCenter(s)</div><div class=\"cap\"><b>Can still place:</b> {}</div>",
        r.vcenters.len(),
        esc(&capacity_sentence(&r.capacity))
    )?;
    h.push_str(concat!(
        "<div class=\"legend\"><span><i style=\"background:#2e7d32\"></i>GI in use (VM)</span>",
        "<span><i style=\"background:#90caf9\"></i>GI idle</span>",
        "<span><i style=\"background:#ffb74d\"></i>reserved by vmig assign</span>",
        "<span><i style=\"background:#eceff1\"></i>free memory slice</span></div>"
    ));
    Ok(())
}

fn flagged_table(r: &Report, h: &mut String) -> std::fmt::Result {
    if !r.flagged_hosts.is_empty() {
        h.push_str("<h2>Hosts needing attention</h2><table class=\"sortable\" id=\"flagged\"><thead><tr><th>host</th><th>status</th><th>cluster</th><th>datacenter</th><th>vCenter</th><th>reason</th></tr></thead><tbody>");
        for f in &r.flagged_hosts {
            write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.host),
                status_badge(f.status),
                esc(&f.cluster),
                esc(&f.datacenter),
                esc(&f.vcenter),
                esc(&f.reason)
            )?;
        }
        h.push_str("</tbody></table>");
    }
    Ok(())
}

fn capacity_table(r: &Report, h: &mut String) -> std::fmt::Result {
    h.push_str("<h2>Capacity by cluster</h2><table class=\"sortable\" id=\"capacity\"><thead><tr><th>vCenter</th><th>datacenter</th><th>cluster</th><th>vGPU type</th><th>GI profile</th><th>can still place</th></tr></thead><tbody>");
    for vc in &r.vcenters {
        for dc in &vc.datacenters {
            for cl in &dc.clusters {
                for c in &cl.capacity {
                    write!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&vc.name),
                        esc(&dc.name),
                        esc(&cl.name),
                        esc(&c.vgpu_type),
                        esc(&c.profile),
                        c.count
                    )?;
                }
            }
        }
    }
    h.push_str("</tbody></table>");
    Ok(())
}

fn vms_table(r: &Report, h: &mut String) -> std::fmt::Result {
    h.push_str("<h2>VMs with MIG-backed vGPUs</h2><table class=\"sortable\" id=\"vms\"><thead><tr><th>VM</th><th>vGPU type</th><th>GI profile</th><th>power</th><th>host</th><th>cluster</th><th>reservation</th></tr></thead><tbody>");
    for v in &r.vgpu_vms {
        write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.vm),
            esc(&v.vgpu_types.join(", ")),
            esc(&v.profiles.join(", ")),
            esc(v.power_state.as_deref().unwrap_or("")),
            esc(v.host.as_deref().unwrap_or("")),
            esc(&v.cluster),
            esc(v.reservation.as_deref().unwrap_or(""))
        )?;
    }
    h.push_str("</tbody></table>");
    Ok(())
}

fn gpus_table(r: &Report, h: &mut String) -> std::fmt::Result {
    h.push_str("<h2>GPUs</h2><table class=\"sortable\" id=\"gpus\"><thead><tr><th>host</th><th>cluster</th><th>GPU</th><th>model</th><th>MIG</th><th>GIs</th><th>in use</th><th>largest placeable</th><th>fragmentation</th><th>stranded slices</th><th>largest after re-layout</th></tr></thead><tbody>");
    for vc in &r.vcenters {
        for dc in &vc.datacenters {
            for cl in &dc.clusters {
                for host in &cl.hosts {
                    for g in &host.gpus {
                        write!(
                            h,
                            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-sort=\"{:.4}\">{:.2}</td><td>{}</td><td>{}</td></tr>",
                            anchor(&host.moref, g.index),
                            esc(&host.name),
                            esc(&cl.name),
                            g.index,
                            esc(g.model.as_deref().unwrap_or(&g.name)),
                            mig_text(g),
                            g.instances.len(),
                            g.instances.iter().filter(|gi| gi.in_use).count(),
                            esc(g.largest_placeable.as_deref().unwrap_or("none")),
                            g.fragmentation,
                            g.fragmentation,
                            g.stranded.as_ref().map_or(0, |s| s.stranded_slices),
                            esc(g
                                .stranded
                                .as_ref()
                                .and_then(|s| s.largest_after_relayout.as_deref())
                                .unwrap_or("none")),
                        )?;
                    }
                }
            }
        }
    }
    h.push_str("</tbody></table>");
    Ok(())
}

/// Per vCenter, datacenter and cluster: capacity and a card per host with GPUs.
fn vcenter_sections(r: &Report, h: &mut String) -> std::fmt::Result {
    for vc in &r.vcenters {
        write!(
            h,
            "<h2>vCenter {} <span class=\"meta\">{}</span></h2>",
            esc(&vc.name),
            esc(&vc.product)
        )?;
        for dc in &vc.datacenters {
            for cl in &dc.clusters {
                let kind = if cl.kind == "cluster" {
                    "Cluster"
                } else {
                    "Standalone host"
                };
                write!(
                    h,
                    "<h3>{} / {kind} {}</h3><div class=\"cap\">can still place {}</div>",
                    esc(&dc.name),
                    esc(&cl.name),
                    esc(&capacity_sentence(&cl.capacity))
                )?;
                let mut hidden = 0;
                for host in &cl.hosts {
                    if host.gpus.is_empty() && host.agent.status == AgentStatus::NotApplicable {
                        hidden += 1;
                        continue;
                    }
                    host_card(host, h)?;
                }
                if hidden > 0 {
                    write!(h, "<div class=\"meta\">{hidden} host(s) without GPUs</div>")?;
                }
            }
        }
    }
    Ok(())
}

fn anchor(host_moref: &str, gpu: u32) -> String {
    format!("gpu-{}-{gpu}", esc(host_moref))
}

fn mig_text(g: &GpuView) -> String {
    match g.mig_mode {
        Some(m) if m.current != m.pending => {
            format!("{} (pending {})", on(m.current), on(m.pending))
        }
        Some(m) => on(m.current).to_string(),
        None => "n/a".into(),
    }
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn status_badge(s: AgentStatus) -> &'static str {
    match s {
        AgentStatus::Ok => "<span class=\"badge ok\">agent ok</span>",
        AgentStatus::Stale => "<span class=\"badge stale\">agent stale</span>",
        AgentStatus::Missing => "<span class=\"badge missing\">no agent report</span>",
        AgentStatus::Invalid => "<span class=\"badge invalid\">invalid report</span>",
        AgentStatus::NotApplicable => "<span class=\"badge na\">no GPUs</span>",
    }
}

fn host_card(host: &HostView, h: &mut String) -> std::fmt::Result {
    write!(
        h,
        "<div class=\"host\" data-host=\"{}\"><h4>{} {}",
        esc(&host.name),
        esc(&host.name),
        status_badge(host.agent.status)
    )?;
    if let Some(c) = host
        .connection_state
        .as_deref()
        .filter(|c| *c != "connected")
    {
        write!(h, " <span class=\"badge invalid\">{}</span>", esc(c))?;
    }
    h.push_str("</h4>");
    if let Some(d) = &host.agent.detail {
        write!(h, "<div class=\"warn\">{}</div>", esc(d))?;
    } else if let (Some(generation), Some(at)) = (host.agent.generation, &host.agent.observed_at) {
        write!(
            h,
            "<div class=\"meta\">agent {} · generation {generation} · observed {}</div>",
            esc(host.agent.agent_version.as_deref().unwrap_or("")),
            esc(at)
        )?;
    }
    for g in &host.gpus {
        // ECC/XID counts: in the title's tooltip, and named in the title when non-zero.
        let health = super::health_text(g).map(|t| esc(&t));
        write!(
            h,
            "<div class=\"gpu\" id=\"{}\"><div class=\"title\"{}><b>GPU {}</b> {} · MIG {} · {} · <span class=\"meta\">{}</span>{}</div>",
            anchor(&host.moref, g.index),
            health
                .as_ref()
                .map(|t| format!(" title=\"{t}\""))
                .unwrap_or_default(),
            g.index,
            esc(&g.name),
            mig_text(g),
            esc(&g.pci_bus_id),
            esc(&g.uuid),
            health
                .as_ref()
                .map(|t| format!(" · <span class=\"warn\">errors: {t}</span>"))
                .unwrap_or_default()
        )?;
        if let Some(e) = &g.error {
            write!(h, "<div class=\"warn\">{}</div>", esc(e))?;
        }
        if let Some(t) = g.timesliced.as_ref().and_then(super::timesliced_gpu_text) {
            write!(h, "<div class=\"meta\">{}</div>", esc(&t))?;
        }
        diagram(g, h)?;
        let free: Vec<String> = g
            .free_profiles
            .iter()
            .map(|p| format!("{}×{}", p.profile, p.count))
            .collect();
        let types: Vec<String> = g
            .free_vgpu_types
            .iter()
            .filter(|t| t.offered)
            .map(|t| format!("{}× {}", t.count, t.vgpu_type))
            .collect();
        write!(
            h,
            "<div class=\"free\">free: {} · vGPU: {} · largest placeable: {} · fragmentation {:.2}</div></div>",
            esc(&if free.is_empty() {
                "none".into()
            } else {
                free.join(", ")
            }),
            esc(&if types.is_empty() {
                "none".into()
            } else {
                types.join(", ")
            }),
            esc(g.largest_placeable.as_deref().unwrap_or("none")),
            g.fragmentation
        )?;
    }
    h.push_str("</div>");
    Ok(())
}

/// Shortens a label to about `max` characters for a cell of limited width.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Most columns a diagram draws (memory slices of a GPU, compute slices of a GI); real GPUs
/// have at most 8.
const MAX_COLUMNS: u32 = 64;

/// The part of `p` inside `cols` columns as (start, size), `None` when nothing is: the
/// drawing's arithmetic then stays within `cols` whatever a placement says.
fn clip(p: mig::Placement, cols: u32) -> Option<(u32, u32)> {
    let start = p.start;
    let end = p.end().min(cols);
    (start < end).then(|| (start, end - start))
}

/// A utilization bar along a GI's foot: SM p95 of the longest window, its max as a tick.
fn util_bar(
    gi: &crate::report::GiView,
    x: u32,
    w: u32,
    title: Option<&str>,
    h: &mut String,
) -> std::fmt::Result {
    let Some(win) = gi.usage.as_ref().and_then(|u| u.longest()) else {
        return Ok(());
    };
    let span = f64::from(w.saturating_sub(8));
    let p95 = span * f64::from(win.sm.p95()) / 100.0;
    let max = span * f64::from(win.sm.max()) / 100.0;
    write!(
        h,
        "<g class=\"util\"><rect x=\"{}\" y=\"66\" width=\"{span:.1}\" height=\"5\" fill=\"#000\" opacity=\"0.25\"></rect><rect x=\"{}\" y=\"66\" width=\"{p95:.1}\" height=\"5\" fill=\"#ffb300\"><title>{}</title></rect><rect x=\"{:.1}\" y=\"64\" width=\"2\" height=\"9\" fill=\"#ff6f00\"></rect></g>",
        x + 4,
        x + 4,
        title.unwrap_or_default(),
        (f64::from(x + 4) + max - 1.0).max(0.0),
    )
}

/// The vGPU part of a GI's tooltip: its type and, for time-sliced vGPUs, all of them and the
/// room left.
fn gi_title_vgpus(gi: &crate::report::GiView) -> String {
    let mut t = gi
        .vgpu_type
        .as_ref()
        .map(|t| format!(" ({})", esc(t)))
        .unwrap_or_default();
    if let Some(s) = super::sliced_gi_text(gi) {
        t.push('\n');
        t.push_str(&esc(&s));
    }
    t
}

fn diagram(g: &GpuView, h: &mut String) -> std::fmt::Result {
    const CW: u32 = 72; // column width
    const LEFT: u32 = 70;
    // Bounded whatever the view holds, so no coordinate below can overflow a u32.
    let cols = g.memory_slices.clamp(1, MAX_COLUMNS);
    let width = LEFT + cols * CW + 4;
    let height = 132;
    write!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"system-ui,sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"MIG layout of GPU {}\">",
        g.index
    )?;
    h.push_str("<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffb74d\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#e65100\" stroke-width=\"2\"/></pattern></defs>");
    // Column headers.
    for c in 0..cols {
        write!(
            h,
            "<text x=\"{}\" y=\"12\" text-anchor=\"middle\" fill=\"#57606a\">{c}</text>",
            LEFT + c * CW + CW / 2
        )?;
    }
    h.push_str("<text x=\"0\" y=\"48\" fill=\"#57606a\">memory</text><text x=\"0\" y=\"104\" fill=\"#57606a\">compute</text>");
    // Free memory slices first, as the background.
    for c in 0..cols {
        write!(
            h,
            "<rect x=\"{}\" y=\"18\" width=\"{}\" height=\"56\" fill=\"{FREE}\" stroke=\"#fff\"><title>memory slice {c}</title></rect>",
            LEFT + c * CW,
            CW
        )?;
    }
    let occupied = |s: u32| {
        g.instances
            .iter()
            .any(|gi| (gi.placement.start..gi.placement.end()).contains(&s))
            || g.reservations
                .iter()
                .any(|r| r.placement.is_some_and(|p| (p.start..p.end()).contains(&s)))
    };
    // Label each run of free slices once.
    let mut c = 0;
    while c < cols {
        if occupied(c) {
            c += 1;
            continue;
        }
        let start = c;
        while c < cols && !occupied(c) {
            c += 1;
        }
        let x = LEFT + start * CW + (c - start) * CW / 2;
        write!(
            h,
            "<text x=\"{x}\" y=\"50\" text-anchor=\"middle\" fill=\"#8c959f\">free</text>"
        )?;
    }
    for gi in &g.instances {
        let Some((start, size)) = clip(gi.placement, cols) else {
            continue;
        };
        let x = LEFT + start * CW;
        let w = size * CW;
        let (fill, who) = match (&gi.vm, gi.in_use) {
            (Some(vm), _) => (IN_USE, vm.clone()),
            (None, true) => (IN_USE, "in use".to_string()),
            (None, false) => (IDLE, "idle".to_string()),
        };
        let text_fill = if fill == IN_USE { "#fff" } else { "#1d2630" };
        let chars = (w / 7) as usize;
        let usage: Vec<String> = gi
            .usage
            .iter()
            .flat_map(|u| u.windows.iter().map(|w| esc(&super::usage_text(w))))
            .collect();
        write!(
            h,
            "<g class=\"gi\" data-vm=\"{}\"><rect x=\"{}\" y=\"18\" width=\"{}\" height=\"56\" rx=\"4\" fill=\"{fill}\" stroke=\"#fff\" stroke-width=\"2\"><title>GI {} {} @{} — {}{}{}</title></rect>",
            esc(gi.vm.as_deref().unwrap_or("")),
            x + 1,
            w - 2,
            gi.gi_id,
            esc(&gi.profile),
            gi.placement,
            esc(&who),
            gi_title_vgpus(gi),
            usage.iter().map(|u| format!("\n{u}")).collect::<String>()
        )?;
        util_bar(gi, x, w, usage.last().map(String::as_str), h)?;
        write!(
            h,
            "<text x=\"{}\" y=\"40\" text-anchor=\"middle\" fill=\"{text_fill}\" font-weight=\"600\">{}</text><text x=\"{}\" y=\"58\" text-anchor=\"middle\" fill=\"{text_fill}\">{}</text></g>",
            x + w / 2,
            esc(&fit(&gi.profile, chars)),
            x + w / 2,
            esc(&fit(&who, chars))
        )?;
        // Compute band: the GI's compute slices, CIs drawn over them.
        let slices = gi.compute_slices.clamp(1, MAX_COLUMNS);
        let cw = f64::from(w - 2) / f64::from(slices);
        for s in 0..slices {
            write!(
                h,
                "<rect x=\"{:.1}\" y=\"82\" width=\"{:.1}\" height=\"36\" fill=\"#f6f8fa\" stroke=\"#d0d7de\"><title>GI {} compute slice {s}</title></rect>",
                f64::from(x + 1) + cw * f64::from(s),
                cw,
                gi.gi_id
            )?;
        }
        for ci in &gi.compute_instances {
            let p = ci.placement.unwrap_or(mig::Placement::new(0, slices));
            let cx = f64::from(x + 1) + cw * f64::from(p.start);
            let cwid = cw * f64::from(p.size);
            write!(
                h,
                "<rect x=\"{:.1}\" y=\"84\" width=\"{:.1}\" height=\"32\" rx=\"3\" fill=\"{}\" opacity=\"0.85\"><title>CI {} {} {}</title></rect><text x=\"{:.1}\" y=\"104\" text-anchor=\"middle\" fill=\"#fff\">{}</text>",
                cx + 1.0,
                (cwid - 2.0).max(1.0),
                if gi.in_use { "#1b5e20" } else { "#1e88e5" },
                ci.ci_id,
                esc(&ci.profile),
                esc(&ci.uuid),
                cx + cwid / 2.0,
                esc(&fit(&format!("CI {}", ci.ci_id), (cwid / 7.0) as usize))
            )?;
        }
    }
    for r in &g.reservations {
        let Some((start, size)) = r.placement.and_then(|p| clip(p, cols)) else {
            continue;
        };
        let x = LEFT + start * CW;
        let w = size * CW;
        let chars = (w / 7) as usize;
        write!(
            h,
            "<g class=\"reservation\" data-vm=\"{}\"><rect x=\"{}\" y=\"18\" width=\"{}\" height=\"56\" rx=\"4\" fill=\"url(#hatch)\" stroke=\"#e65100\"><title>reserved for {} ({} {}) since {}</title></rect><text x=\"{}\" y=\"40\" text-anchor=\"middle\" font-weight=\"600\">{}</text><text x=\"{}\" y=\"58\" text-anchor=\"middle\">{}</text></g>",
            esc(&r.vm),
            x + 1,
            w - 2,
            esc(&r.vm),
            esc(&r.vgpu_type),
            esc(&r.profile),
            esc(&r.reserved_at),
            x + w / 2,
            esc(&fit(&r.profile, chars)),
            x + w / 2,
            esc(&fit(&format!("reserved: {}", r.vm), chars))
        )?;
    }
    h.push_str("</svg>");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }
}
