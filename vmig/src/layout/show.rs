//! `vmig layout show`: desired against actual, per host and GPU. Desired is the host's own
//! `vmig.layout` value or else its cluster's; actual is each GPU's `layout_state` in the
//! agent's `vmig.mig` document (what the agent did with that same desired version).
use std::io::Write;

use mig::report::{GpuReport, LayoutSource};
use serde::Serialize;

use super::ShowArgs;
use super::target::{Desired, Inventory, TargetKind, agent_report};
use crate::render::escape_controls;
use crate::{AdminError, Connection, ExitCode, output};

/// The desired layout in force on a host.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredView {
    pub name: String,
    pub version: u64,
    /// Set on the host itself or inherited from its cluster.
    pub from: TargetKind,
    pub set_by: String,
    pub set_at: String,
}

/// One GPU: what the agent reports against the desired layout.
#[derive(Debug, Clone, Serialize)]
pub struct GpuRow {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    /// `applied`, `pending-reset`, `blocked-in-use`, `failed`, `invalid-layout`, or
    /// `waiting-for-agent` (the agent has not reported on this desired version yet),
    /// `local-override` (the host's own agent config wins), `none` (no layout anywhere).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
}

/// One host.
#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub desired: Option<DesiredView>,
    /// Why the `vmig.layout` value in force cannot be used (agents report `invalid-layout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_error: Option<String>,
    /// `ok`, `no report`, or why the agent's document was refused.
    pub agent: String,
    pub gpus: Vec<GpuRow>,
}

/// The state of one GPU against `desired`.
pub fn gpu_row(gpu: &GpuReport, desired: Option<&DesiredView>) -> GpuRow {
    let mut row = GpuRow {
        index: gpu.index,
        uuid: gpu.uuid.clone(),
        name: gpu.name.clone(),
        state: "none".into(),
        agent_layout: None,
        reason: None,
        action: None,
        blocked_by: Vec::new(),
    };
    let Some(ls) = &gpu.layout_state else {
        if desired.is_some() {
            row.state = "waiting-for-agent".into();
            row.reason = Some("the agent reports no layout state for this GPU".into());
            row.action = Some(
                "check that the agent reconciles (`[layout] source = \"vcenter\"` in agent.toml) and is running"
                    .into(),
            );
        }
        return row;
    };
    row.agent_layout = Some(match ls.version {
        Some(v) => format!("{} v{v} ({})", ls.layout, ls.source.as_str()),
        None => format!("{} ({})", ls.layout, ls.source.as_str()),
    });
    let current = desired.is_some_and(|d| {
        ls.source != LayoutSource::Local && ls.layout == d.name && ls.version == Some(d.version)
    });
    if desired.is_some() && ls.source == LayoutSource::Local {
        row.state = "local-override".into();
        row.reason = Some(format!(
            "the host's agent config sets layout `{}`, which wins over vCenter",
            ls.layout
        ));
        row.action = Some(
            "remove layout_file/layout_name from the host's agent.toml to follow vCenter".into(),
        );
    } else if desired.is_some() && !current {
        row.state = "waiting-for-agent".into();
        row.reason = Some("the agent has not reported on this desired version yet".into());
    } else {
        row.state = ls.state.as_str().into();
        row.reason.clone_from(&ls.reason);
        row.action.clone_from(&ls.action);
        row.blocked_by.clone_from(&ls.blocked_by);
    }
    row
}

/// Every host of `inv` in scope, with its desired layout and GPU states.
pub fn rows(inv: &Inventory<'_>, cluster: Option<&str>, host: Option<&str>) -> Vec<HostRow> {
    let mut out = Vec::new();
    for h in &inv.hosts {
        let name = h.name.clone().unwrap_or_else(|| h.moref.to_string());
        let cl = inv.cluster_of(h).map(|(c, _)| c.name.clone());
        if cluster.is_some_and(|c| cl.as_deref() != Some(c)) || host.is_some_and(|n| n != name) {
            continue;
        }
        let (desired, from) = inv.desired_for(h);
        let (view, desired_error) = match (&desired, from) {
            (Desired::Valid(v), Some(from)) => (
                Some(DesiredView {
                    name: v.0.name.clone(),
                    version: v.0.version,
                    from,
                    set_by: v.0.set_by.clone(),
                    set_at: v.0.set_at.clone(),
                }),
                None,
            ),
            (Desired::Invalid(e), _) => (None, Some(e.clone())),
            _ => (None, None),
        };
        let (agent, gpus) = match agent_report(&h.custom_values, &inv.keys) {
            Ok(Some(r)) => (
                "ok".to_string(),
                r.gpus.iter().map(|g| gpu_row(g, view.as_ref())).collect(),
            ),
            Ok(None) => ("no report".to_string(), Vec::new()),
            Err(e) => (format!("report refused: {e}"), Vec::new()),
        };
        out.push(HostRow {
            host: name,
            cluster: cl,
            desired: view,
            desired_error,
            agent,
            gpus,
        });
    }
    out.sort_by(|a, b| a.host.cmp(&b.host));
    out
}

/// `vmig layout show`.
pub async fn run(
    conns: &[Connection],
    a: ShowArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let mut all = Vec::new();
    for c in conns {
        let inv = Inventory::read(c).await?;
        all.extend(rows(&inv, a.cluster.as_deref(), a.host.as_deref()));
    }
    if json {
        #[derive(Serialize)]
        struct Shown<'a> {
            hosts: &'a [HostRow],
        }
        output::write_json(out, &Shown { hosts: &all })?;
    } else {
        render_table(&all, out).map_err(output::stdout_error)?;
    }
    Ok(ExitCode::Ok)
}

fn render_table(rows: &[HostRow], out: &mut dyn Write) -> std::io::Result<()> {
    let mut lines = vec![[
        "HOST".to_string(),
        "GPU".into(),
        "DESIRED".into(),
        "STATE".into(),
        "DETAIL".into(),
    ]];
    for r in rows {
        let desired = match (&r.desired, &r.desired_error) {
            (Some(d), _) => format!(
                "{} v{} ({})",
                d.name,
                d.version,
                match d.from {
                    TargetKind::Host => "host",
                    TargetKind::Cluster => "cluster",
                }
            ),
            (None, Some(_)) => "unreadable".into(),
            (None, None) => "-".into(),
        };
        if r.gpus.is_empty() {
            let detail = r.desired_error.clone().unwrap_or_else(|| r.agent.clone());
            lines.push([
                r.host.clone(),
                "-".into(),
                desired.clone(),
                "-".into(),
                detail,
            ]);
        }
        for g in &r.gpus {
            let mut detail = g.reason.clone().unwrap_or_default();
            if !g.blocked_by.is_empty() {
                detail = format!("{detail} (in use by {})", g.blocked_by.join(", "));
            }
            if let Some(a) = &g.action {
                detail = format!("{detail}; {a}");
            }
            lines.push([
                r.host.clone(),
                g.index.to_string(),
                desired.clone(),
                g.state.clone(),
                detail.trim_start_matches("; ").to_string(),
            ]);
        }
    }
    let lines: Vec<[String; 5]> = lines
        .into_iter()
        .map(|l| l.map(|c| escape_controls(&c).into_owned()))
        .collect();
    let mut width = [0usize; 4];
    for l in &lines {
        for (w, c) in width.iter_mut().zip(l.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    for l in &lines {
        writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        )?;
    }
    Ok(())
}
