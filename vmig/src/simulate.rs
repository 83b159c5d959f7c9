//! `vmig simulate`: replay a stream of VM arrivals and departures against today's inventory
//! (`mig::simulate`) and compare first fit, vmig's best fit, and both with planned
//! defragmentation. Nothing is changed in vCenter.
//!
//! Arrivals file: one event per line, `#` starts a comment:
//! `arrive TYPE [N]` (N VMs of a MIG-backed vGPU type; VMs are numbered 1, 2, … in order of
//! arrival) and `depart K` (VM number K stops).
use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use mig::defrag::FleetGpu;
use mig::simulate::{Event, Policy, SimResult, compare, random_events};

use crate::Connection;
use crate::capacity::parse_type;
use crate::error::AdminError;
use crate::exit::ExitCode;
use crate::inventory::{Progress, Scope};
use crate::output::{stdout_error, write_json};
use crate::snapshot::analyse;

/// `vmig simulate`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("stream").required(true).args(["arrivals", "random"]))]
pub struct SimulateArgs {
    /// Events file: `arrive TYPE [N]` and `depart K` lines.
    #[arg(long, value_name = "FILE")]
    pub arrivals: Option<std::path::PathBuf>,
    /// A random stream with this seed (reproducible).
    #[arg(long, value_name = "SEED")]
    pub random: Option<u64>,
    /// Arrivals in the random stream.
    #[arg(long, default_value_t = 1000)]
    pub count: u32,
    /// Only this datacenter.
    #[arg(long, value_name = "NAME")]
    pub datacenter: Option<String>,
    /// Only this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Also write the comparison as an HTML page with a chart.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
}

/// `vmig simulate`.
pub async fn run_cmd(
    conns: &[Connection],
    a: SimulateArgs,
    json: bool,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let file_events = match &a.arrivals {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AdminError::Usage(format!("cannot read {}: {e}", path.display())))?;
            Some(parse_arrivals(&text)?)
        }
        None => None,
    };
    let scope = Scope {
        datacenter: a.datacenter,
        cluster: a.cluster,
    };
    let analysis = analyse(conns, &scope, progress).await?;
    let fleet = crate::plan::fleet(&analysis).gpus;
    let events = match (file_events, a.random) {
        (Some(e), _) => e,
        (None, seed) => random_stream(&fleet, seed.unwrap_or(0), a.count),
    };
    let rows = run(&fleet, &events);
    if let Some(path) = &a.html {
        std::fs::write(path, render_html(&rows, fleet.len())).map_err(|source| {
            AdminError::Output {
                what: path.display().to_string(),
                source,
            }
        })?;
        eprintln!("vmig: wrote {}", path.display());
    }
    if json {
        write_json(out, &rows)?;
    } else {
        render_text(&rows, fleet.len(), out).map_err(stdout_error)?;
    }
    Ok(ExitCode::Ok)
}

/// Parse an arrivals file (see the module documentation) into events on GI profile names.
pub fn parse_arrivals(text: &str) -> Result<Vec<Event>, AdminError> {
    let mut events = Vec::new();
    let mut next_vm = 1u32;
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad =
            |why: &str| AdminError::Usage(format!("arrivals line {}: {why}: {line:?}", i + 1));
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["arrive", ty, rest @ ..] => {
                let n: u32 = match rest {
                    [] => 1,
                    [n] => n.parse().map_err(|_| bad("the count is not a number"))?,
                    _ => return Err(bad("expected `arrive TYPE [N]`")),
                };
                let vtype = parse_type(ty)?;
                let profile = vtype
                    .gpu_models()
                    .find_map(|m| vtype.gi_profile(m))
                    .ok_or_else(|| bad("the type names no MIG GI profile"))?;
                for _ in 0..n {
                    events.push(Event::Arrive {
                        vm: next_vm,
                        profile: profile.name.to_string(),
                    });
                    next_vm += 1;
                }
            }
            ["depart", k] => events.push(Event::Depart {
                vm: k
                    .parse()
                    .map_err(|_| bad("the VM number is not a number"))?,
            }),
            _ => return Err(bad("expected `arrive TYPE [N]` or `depart K`")),
        }
    }
    Ok(events)
}

/// A random stream (seeded, reproducible) of the profiles the fleet's GPUs offer, sizes 1 to
/// 4 compute slices, with departures at `depart_percent`%.
pub fn random_stream(fleet: &[FleetGpu], seed: u64, arrivals: u32) -> Vec<Event> {
    let mut names: Vec<&'static str> = Vec::new();
    for g in fleet {
        if let Some(m) = g.state.try_gpu_model() {
            for p in m.gi_profiles {
                if p.compute_slices <= 4 && !p.name.contains(['+', '-']) && !names.contains(&p.name)
                {
                    names.push(p.name);
                }
            }
        }
    }
    random_events(seed, arrivals, &names, 50)
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct SimRow {
    pub policy: Policy,
    pub defrag: bool,
    #[serde(flatten)]
    pub result: SimResult,
}

/// The four runs.
pub fn run(fleet: &[FleetGpu], events: &[Event]) -> Vec<SimRow> {
    compare(fleet, events)
        .into_iter()
        .map(|(c, r)| SimRow {
            policy: c.policy,
            defrag: c.defrag,
            result: r,
        })
        .collect()
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::FirstFit => "first fit",
        Policy::BestFit => "best fit (vmig)",
    }
}

/// The comparison as a table.
pub fn render_text(rows: &[SimRow], gpus: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let arrivals = rows.first().map_or(0, |r| r.result.arrivals);
    writeln!(
        out,
        "simulated {arrivals} arrivals on {gpus} GPUs (nothing changed in vCenter)"
    )?;
    writeln!(
        out,
        "{:<16} {:<7} {:>7} {:>9} {:>15} {:>6} {:>9}",
        "policy", "defrag", "placed", "rejected", "thanks to moves", "moves", "vMotions"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<16} {:<7} {:>7} {:>9} {:>15} {:>6} {:>9}",
            policy_name(r.policy),
            if r.defrag { "yes" } else { "no" },
            r.result.placed,
            r.result.rejected,
            r.result.placed_after_defrag,
            r.result.moves,
            r.result.live_moves
        )?;
    }
    Ok(())
}

/// The comparison as a self-contained HTML page with a bar chart of VMs placed.
pub fn render_html(rows: &[SimRow], gpus: usize) -> String {
    let arrivals = rows.first().map_or(0, |r| r.result.arrivals).max(1);
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>vmig simulate</title><style>body{font-family:sans-serif}td{padding:2px 8px}.bar{background:#76b900;height:14px}</style></head><body><h1>vmig simulate</h1>",
    );
    let _ = write!(
        h,
        "<p>{} arrivals on {gpus} GPUs; bars: VMs placed out of all arrivals.</p><table><tr><th>policy</th><th>defrag</th><th>placed</th><th>rejected</th><th>moves</th><th></th></tr>",
        rows.first().map_or(0, |r| r.result.arrivals)
    );
    for r in rows {
        let pct = f64::from(r.result.placed) * 100.0 / f64::from(arrivals);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"width:320px\"><div class=\"bar\" style=\"width:{pct:.1}%\"></div></td></tr>",
            policy_name(r.policy),
            if r.defrag { "yes" } else { "no" },
            r.result.placed,
            r.result.rejected,
            r.result.moves
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_file_numbers_vms_in_order() {
        let ev =
            parse_arrivals("# demo\narrive grid_a100-3-20c 2\ndepart 1\narrive grid_a100-1-5c\n")
                .expect("parses");
        assert_eq!(
            ev,
            vec![
                Event::Arrive {
                    vm: 1,
                    profile: "3g.20gb".into()
                },
                Event::Arrive {
                    vm: 2,
                    profile: "3g.20gb".into()
                },
                Event::Depart { vm: 1 },
                Event::Arrive {
                    vm: 3,
                    profile: "1g.5gb".into()
                },
            ]
        );
        assert!(parse_arrivals("leave 3").is_err());
        assert!(parse_arrivals("arrive grid_a100-3-20c many").is_err());
    }
}
