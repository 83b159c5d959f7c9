//! How commands write their answers on stdout: one text line with vCenter's names escaped,
//! or pretty JSON; a failed write is an [`AdminError::Output`] naming stdout. Shared by
//! `cli.rs` and every command module, so that commands do not reach back into the router.

use std::io::Write;

use serde::Serialize;

use crate::AdminError;

/// One line of a command's text answer, with control characters from vCenter's names shown
/// escaped (as every report format does).
pub fn line(out: &mut dyn Write, text: &str) -> Result<(), AdminError> {
    writeln!(out, "{}", crate::render::escape_controls(text)).map_err(stdout_error)
}

/// A failed write to stdout (a closed pipe, a full disk behind a redirect).
pub fn stdout_error(source: std::io::Error) -> AdminError {
    AdminError::Output {
        what: "stdout".into(),
        source,
    }
}

/// `value` as pretty JSON and a newline.
pub fn write_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), AdminError> {
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(std::io::Error::other)
        .and_then(|()| writeln!(out))
        .map_err(stdout_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_answers_show_control_characters_escaped() {
        let mut out = Vec::new();
        line(&mut out, "assigned to VM evil\u{1b}[2Jvm\u{202e}").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "assigned to VM evil\\u{1b}[2Jvm\\u{202e}\n"
        );
    }
}
