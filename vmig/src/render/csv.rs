//! CSV output for spreadsheets: one row per GPU, and one row (with empty GPU columns) for
//! every host whose agent status is not `not_applicable` but that has no GPU rows. Fields
//! follow RFC 4180 (quoted when they contain `,`, `"` or a line break). Lists inside a field
//! are `;`-separated, counts as `name=count`; `gi_usage` holds `GI:window: SM mean/p95/max% …`
//! per sampled GPU instance and window.
//!
//! Names come from vCenter and from the agents' documents, which any host can write: a cell
//! that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula by
//! a spreadsheet, so such a cell gets a leading `'` (the usual spreadsheet neutraliser).

use std::io::Write;

use crate::analysis::AgentStatus;
use crate::report::{GpuView, Report};

/// The header row.
pub const COLUMNS: [&str; 24] = [
    "vcenter",
    "datacenter",
    "cluster",
    "host",
    "agent_status",
    "agent_observed_at",
    "gpu_index",
    "gpu_uuid",
    "gpu_name",
    "gpu_model",
    "mig_current",
    "mig_pending",
    "gpu_instances",
    "in_use_by",
    "reservations",
    "free_profiles",
    "free_vgpu_types",
    "largest_placeable",
    "fragmentation",
    "stranded_slices",
    "largest_after_relayout",
    "gpu_errors",
    "gi_usage",
    "agent_detail",
];

fn field(s: &str) -> String {
    let neutralised;
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutralised = format!("'{s}");
        neutralised.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn gpu_columns(g: &GpuView) -> Vec<String> {
    let gis: Vec<String> = g
        .instances
        .iter()
        .map(|gi| format!("{}:{}@{}", gi.gi_id, gi.profile, gi.placement))
        .collect();
    // A GI running time-sliced vGPUs has one user per vGPU.
    let users: Vec<String> = g
        .instances
        .iter()
        .flat_map(|gi| {
            let sliced: Vec<String> = gi.vgpus.iter().filter_map(|v| v.vm.clone()).collect();
            if sliced.is_empty() {
                gi.vm.clone().into_iter().collect()
            } else {
                sliced
            }
        })
        .collect();
    // `GI:window SM mean/p95/max …` per sampled GI and window.
    let usage: Vec<String> = g
        .instances
        .iter()
        .filter_map(|gi| Some((gi.gi_id, gi.usage.as_ref()?)))
        .flat_map(|(id, u)| {
            u.windows
                .iter()
                .map(move |w| format!("{id}:{}", super::usage_text(w)))
        })
        .collect();
    let res: Vec<String> = g
        .reservations
        .iter()
        .map(|r| {
            format!(
                "{}:{}@{}",
                r.vm,
                r.profile,
                r.placement.map_or_else(|| "-".into(), |p| p.to_string())
            )
        })
        .collect();
    let free: Vec<String> = g
        .free_profiles
        .iter()
        .map(|p| format!("{}={}", p.profile, p.count))
        .collect();
    let types: Vec<String> = g
        .free_vgpu_types
        .iter()
        .filter(|t| t.offered)
        .map(|t| format!("{}={}", t.vgpu_type, t.count))
        .collect();
    vec![
        g.index.to_string(),
        g.uuid.clone(),
        g.name.clone(),
        g.model.clone().unwrap_or_default(),
        g.mig_mode
            .map(|m| m.current.to_string())
            .unwrap_or_default(),
        g.mig_mode
            .map(|m| m.pending.to_string())
            .unwrap_or_default(),
        gis.join(";"),
        users.join(";"),
        res.join(";"),
        free.join(";"),
        types.join(";"),
        g.largest_placeable.clone().unwrap_or_default(),
        format!("{:.3}", g.fragmentation),
        g.stranded
            .as_ref()
            .map(|s| s.stranded_slices.to_string())
            .unwrap_or_default(),
        g.stranded
            .as_ref()
            .and_then(|s| s.largest_after_relayout.clone())
            .unwrap_or_default(),
        super::health_text(g).unwrap_or_default(),
        usage.join(";"),
    ]
}

/// Writes the CSV.
pub fn render(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))?;
    for vc in &r.vcenters {
        for dc in &vc.datacenters {
            for cl in &dc.clusters {
                for h in &cl.hosts {
                    let lead = [
                        vc.name.clone(),
                        dc.name.clone(),
                        cl.name.clone(),
                        h.name.clone(),
                        h.agent.status.as_str().to_string(),
                        h.agent.observed_at.clone().unwrap_or_default(),
                    ];
                    let mut rows: Vec<Vec<String>> = h.gpus.iter().map(gpu_columns).collect();
                    if rows.is_empty() {
                        if h.agent.status == AgentStatus::NotApplicable {
                            continue;
                        }
                        rows.push(vec![String::new(); COLUMNS.len() - lead.len() - 1]);
                    }
                    let detail = h.agent.detail.clone().unwrap_or_default();
                    for mut row in rows {
                        row.push(detail.clone());
                        let all: Vec<String> =
                            lead.iter().chain(row.iter()).map(|c| field(c)).collect();
                        writeln!(out, "{}", all.join(","))?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_rfc_4180() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for s in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(field(s).trim_start_matches('"').starts_with('\''), "{s:?}");
        }
        assert_eq!(field("a-1"), "a-1");
    }
}
