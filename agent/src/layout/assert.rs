//! `vmig-agent assert`: whether the GPUs match a layout, and the differences when not.
use serde::Serialize;

use super::error::LayoutError;
use super::host;
use super::plan::{emit_json, plan_all};
use super::read::{LayoutSelection, load, read_host};
use crate::nvml::Driver;

#[derive(Serialize)]
struct AssertRow {
    gpu: u32,
    uuid: String,
    matches: bool,
    differences: Vec<String>,
}

/// `vmig-agent assert`: one line per GPU (and its differences) appended to `out`; `Err` on
/// a mismatch.
pub fn assert(
    driver: &Driver,
    layout: &LayoutSelection,
    json: bool,
    out: &mut String,
) -> Result<(), LayoutError> {
    let file = load(layout)?;
    let (_, views) = read_host(driver)?;
    let (name, plans) = plan_all(&file, layout, &views, false)?;
    let rows: Vec<AssertRow> = plans
        .iter()
        .map(|(pos, p)| {
            let d = host::differences(p, &views[*pos]);
            AssertRow {
                gpu: p.gpu,
                uuid: p.uuid.clone(),
                matches: d.is_empty(),
                differences: d,
            }
        })
        .collect();
    let bad = rows.iter().filter(|r| !r.matches).count();
    if json {
        emit_json(out, &rows);
    } else {
        for (r, (pos, _)) in rows.iter().zip(&plans) {
            let label = views[*pos].label();
            if r.matches {
                out.push_str(&format!("{label}: matches config `{name}`\n"));
            } else {
                out.push_str(&format!("{label}: does NOT match config `{name}`\n"));
                for d in &r.differences {
                    out.push_str(&format!("  {d}\n"));
                }
            }
        }
    }
    if bad == 0 {
        Ok(())
    } else {
        Err(LayoutError::Mismatch(format!(
            "{bad} GPU(s) do not match config `{name}`"
        )))
    }
}
