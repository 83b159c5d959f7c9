//! `vmig layout set` and `vmig layout clear`: validate, then write (or empty) the `vmig.layout`
//! value of one cluster or host.
use std::io::Write;

use mig::desired_layout::{
    DesiredLayoutDoc, FIELD_DESIRED_LAYOUT, MAX_DESIRED_BYTES, MAX_VERSION, SCHEMA_V1,
};
use mig::layout_file::{DEFAULT_LAYOUTS_ORIGIN, DEFAULT_LAYOUTS_YAML, LayoutFile};
use serde::Serialize;

use super::target::{self, Desired, FieldKeys, Target, TargetKind};
use super::{ClearArgs, SetArgs, validate, vc_err};
use crate::render::escape_controls;
use crate::{AdminError, ExitCode, output};

/// What `set` and `clear` print with `--json`.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    action: &'a str,
    kind: TargetKind,
    target: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    layout: Option<&'a DesiredLayoutDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    notes: Vec<String>,
}

/// Reads the layout file text: `--file`, or the built-in layouts.
fn layout_text(a: &SetArgs) -> Result<(String, String), AdminError> {
    let Some(path) = &a.file else {
        return Ok((DEFAULT_LAYOUTS_ORIGIN.into(), DEFAULT_LAYOUTS_YAML.into()));
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        AdminError::Usage(format!("cannot read layout file {}: {e}", path.display()))
    })?;
    if meta.len() > MAX_DESIRED_BYTES as u64 {
        return Err(AdminError::LayoutRefused(format!(
            "layout file {} is {} bytes; a desired layout holds at most {MAX_DESIRED_BYTES} (keep only the configs you need)",
            path.display(),
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        AdminError::Usage(format!("cannot read layout file {}: {e}", path.display()))
    })?;
    Ok((path.display().to_string(), text))
}

/// The GPUs the target's agents report, for validation (hosts without a usable report add a
/// note instead).
async fn reported_gpus(
    t: &Target<'_>,
    keys: &FieldKeys,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, mig::report::GpuReport)>, AdminError> {
    let c = t.conn;
    let mut gpus = Vec::new();
    for h in &t.hosts {
        let host = c
            .client
            .host(
                h,
                &[
                    vcenter_client::HostProperty::Name,
                    vcenter_client::HostProperty::CustomValues,
                ],
            )
            .await
            .map_err(vc_err(c))?;
        let name = host.name.clone().unwrap_or_else(|| h.to_string());
        match target::agent_report(&host.custom_values, keys) {
            Ok(Some(r)) => gpus.extend(r.gpus.into_iter().map(|g| (name.clone(), g))),
            Ok(None) => notes.push(format!(
                "{name} has no agent report yet; the layout was checked against the catalog only"
            )),
            Err(e) => notes.push(format!(
                "{name}'s agent report is unreadable ({e}); the layout was checked against the catalog only"
            )),
        }
    }
    Ok(gpus)
}

/// `vmig layout set`.
pub async fn run_set(
    conns: &[crate::Connection],
    a: SetArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let (origin, text) = layout_text(&a)?;
    // Refused before any vCenter lookup: a bad file is the admin's to fix, whatever the target.
    let file = LayoutFile::parse(&origin, &text)
        .map_err(|e| AdminError::LayoutRefused(format!("{e}; nothing was written")))?;
    file.config(Some(&a.layout))
        .map_err(|e| AdminError::LayoutRefused(format!("{e}; nothing was written")))?;
    let t = target::find(conns, &a.target).await?;
    let c = t.conn;
    let keys = FieldKeys::read(c).await?;
    let mut notes = Vec::new();
    let gpus = reported_gpus(&t, &keys, &mut notes).await?;
    notes.extend(validate::check(&file, &a.layout, &gpus).map_err(|why| {
        AdminError::LayoutRefused(format!(
            "layout `{}` refused for {} {}: {why}; nothing was written",
            a.layout,
            kind_word(t.kind),
            t.name
        ))
    })?);
    let values = c.client.custom_values(&t.moref).await.map_err(vc_err(c))?;
    let previous = previous_version(&values, &keys);
    let now = crate::times::vcenter_now(&c.client)
        .await
        .map_err(vc_err(c))?;
    let doc = DesiredLayoutDoc {
        schema: SCHEMA_V1.into(),
        name: a.layout.clone(),
        file: text,
        origin,
        version: previous.saturating_add(1).min(MAX_VERSION),
        set_by: c.target.credentials.user().chars().take(200).collect(),
        set_at: crate::times::format_time(now),
    };
    // The written document must read back: the same check every agent runs.
    DesiredLayoutDoc::parse(&doc.to_json())
        .map_err(|e| AdminError::LayoutRefused(format!("{e}; nothing was written")))?;
    let def = c
        .client
        .ensure_custom_field(FIELD_DESIRED_LAYOUT, None)
        .await
        .map_err(vc_err(c))?;
    c.client
        .set_custom_value(&t.moref, def.key, &doc.to_json())
        .await
        .map_err(vc_err(c))?;
    // A stale value under another definition of the same name would otherwise win on read.
    for k in keys.desired.iter().filter(|k| **k != def.key) {
        c.client
            .set_custom_value(&t.moref, *k, "")
            .await
            .map_err(vc_err(c))?;
    }
    let answer = Answer {
        action: "set",
        kind: t.kind,
        target: &t.name,
        layout: Some(&doc),
        previous: (previous > 0).then(|| format!("v{previous}")),
        notes,
    };
    print(out, json, &answer, || {
        format!(
            "{} {}: desired layout {} (set by {} at {})",
            kind_word(t.kind),
            t.name,
            doc.label(),
            doc.set_by,
            doc.set_at
        )
    })
}

/// The version of the value there now (0 when none). An unreadable value still counts up
/// from the version it claims, so an agent never sees the counter go back.
fn previous_version(values: &vcenter_client::CustomValues, keys: &FieldKeys) -> u64 {
    match Desired::read(values, &keys.desired) {
        Desired::Valid(v) => v.0.version,
        Desired::None => 0,
        Desired::Invalid(_) => target::value(values, &keys.desired)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
            .unwrap_or(0)
            .min(MAX_VERSION),
    }
}

/// `vmig layout clear`.
pub async fn run_clear(
    conns: &[crate::Connection],
    a: ClearArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let t = target::find(conns, &a.target).await?;
    let c = t.conn;
    let keys = FieldKeys::read(c).await?;
    let values = c.client.custom_values(&t.moref).await.map_err(vc_err(c))?;
    let previous = match Desired::read(&values, &keys.desired) {
        Desired::Valid(v) => Some(v.0.label()),
        Desired::Invalid(_) => Some("an unreadable value".into()),
        Desired::None => None,
    };
    for k in &keys.desired {
        if target::value(&values, std::slice::from_ref(k)).is_some() {
            c.client
                .set_custom_value(&t.moref, *k, "")
                .await
                .map_err(vc_err(c))?;
        }
    }
    let answer = Answer {
        action: "clear",
        kind: t.kind,
        target: &t.name,
        layout: None,
        previous: previous.clone(),
        notes: Vec::new(),
    };
    print(out, json, &answer, || match &previous {
        Some(p) => format!(
            "{} {}: desired layout cleared (was {p}); the GPUs stay as they are",
            kind_word(t.kind),
            t.name
        ),
        None => format!(
            "{} {}: no desired layout was set; nothing changed",
            kind_word(t.kind),
            t.name
        ),
    })
}

fn kind_word(k: TargetKind) -> &'static str {
    match k {
        TargetKind::Cluster => "cluster",
        TargetKind::Host => "host",
    }
}

fn print(
    out: &mut dyn Write,
    json: bool,
    answer: &Answer<'_>,
    line: impl FnOnce() -> String,
) -> Result<ExitCode, AdminError> {
    if json {
        output::write_json(out, answer)?;
    } else {
        writeln!(out, "{}", escape_controls(&line())).map_err(output::stdout_error)?;
        for n in &answer.notes {
            writeln!(out, "  note: {}", escape_controls(n)).map_err(output::stdout_error)?;
        }
    }
    Ok(ExitCode::Ok)
}
