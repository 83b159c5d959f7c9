//! Renderers of the [`Report`]: a terminal table, JSON (the model as is), CSV (one row per
//! GPU, for spreadsheets) and one self-contained HTML page. Renderers only format: every
//! number they print was computed in [`crate::analysis`] and shaped in [`crate::report`].

pub mod csv;
pub mod html;
pub mod json;
pub mod table;

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
