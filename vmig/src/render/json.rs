//! JSON output: the report model itself, pretty-printed (schema `vmig.report/v1`).

use std::io::Write;

use crate::report::Report;
use crate::stream::StreamedReport;

/// Writes the report as pretty JSON with a final newline.
pub fn render(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

/// Writes a [`StreamedReport`] exactly as [`render`] writes the same report, one compute
/// resource at a time.
pub fn render_streamed(report: &StreamedReport, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
