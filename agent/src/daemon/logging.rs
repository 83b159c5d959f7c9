//! Logging for the daemon: `tracing` events to stderr, or to syslog with `--syslog` (how
//! ESXi's init scripts run daemons; the lines then land in `/var/log/syslog.log`).
//!
//! Levels come from `--log-level` (default `info`), or `VMIG_LOG` in `tracing`'s filter syntax
//! (`vmig_agent=debug`). Nothing secret is ever logged: the password is only read where a
//! session is opened and its type prints as `<redacted>`.
use std::io::Write;

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::sys::{self, Priority};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stderr,
    Syslog,
}

/// Install the global subscriber. Calling it twice is harmless (the second is ignored), so
/// tests and `check-config` can share it.
pub fn init(target: Target, level: &str) {
    let filter = std::env::var("VMIG_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match target {
        Target::Stderr => builder.with_writer(std::io::stderr).try_init(),
        Target::Syslog => {
            sys::syslog_open();
            // syslog stamps time and host itself.
            builder
                .with_ansi(false)
                .without_time()
                .with_level(true)
                .with_writer(SyslogWriter)
                .try_init()
        }
    };
}

/// Makes one [`SyslogLine`] per event, at the event's priority.
#[derive(Debug, Clone, Copy)]
struct SyslogWriter;

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            priority: Priority::Info,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        let priority = match *meta.level() {
            Level::ERROR => Priority::Error,
            Level::WARN => Priority::Warning,
            Level::INFO => Priority::Info,
            _ => Priority::Debug,
        };
        SyslogLine {
            priority,
            buf: Vec::new(),
        }
    }
}

/// Collects one formatted event and hands it to syslog when dropped.
#[derive(Debug)]
struct SyslogLine {
    priority: Priority,
    buf: Vec<u8>,
}

impl Write for SyslogLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if !text.is_empty() {
            sys::syslog(self.priority, text);
        }
    }
}
