//! The three C library calls the daemon needs and `std` does not offer: `gethostname` (to find
//! the host in vCenter by DNS name) and `openlog`/`syslog` (ESXi's init scripts expect daemons
//! to log to syslog, and ESXi's glibc knows where its syslog daemon listens).
//!
//! Why `unsafe` here, outside `nvml::ffi`: these are plain glibc calls that ESXi's user world
//! supports (research vib-esxi.md §5: go through glibc, no raw syscalls, no child processes);
//! crates offering them either spawn `logger`/`hostname` processes or talk to `/dev/log`
//! directly, which ESXi does not promise. Each call is wrapped once, with its safety argument,
//! and everything above this module is safe code.
#![allow(
    unsafe_code,
    reason = "glibc's gethostname/openlog/syslog, which std lacks; each block states its SAFETY"
)]

use std::ffi::{CStr, CString, c_int};

/// The host's name as the C library reports it (`gethostname(2)`), if any.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call, and
    // gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    // POSIX leaves truncated names possibly unterminated: stop at the first NUL or the end.
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8(buf[..end].to_vec()).ok()?;
    (!name.is_empty()).then_some(name)
}

/// Syslog priorities used by the logging layer (facility `daemon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Error,
    Warning,
    Info,
    Debug,
}

impl Priority {
    fn to_c(self) -> c_int {
        match self {
            Priority::Error => libc::LOG_ERR,
            Priority::Warning => libc::LOG_WARNING,
            Priority::Info => libc::LOG_INFO,
            Priority::Debug => libc::LOG_DEBUG,
        }
    }
}

/// The identity syslog lines carry. `openlog` keeps the pointer, so it must live forever.
static IDENT: &CStr = c"vmig-agent";

/// Open the syslog connection once, tagging lines `vmig-agent[PID]` in facility `daemon`.
pub fn syslog_open() {
    // SAFETY: IDENT is a NUL-terminated string with 'static lifetime, as openlog requires
    // (it stores the pointer); the option and facility are valid constants.
    unsafe {
        libc::openlog(
            IDENT.as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    }
}

/// Send one message to syslog.
pub fn syslog(priority: Priority, message: &str) {
    // Interior NULs would truncate the C string; drop them rather than lose the line.
    let Ok(text) = CString::new(message.replace('\0', "")) else {
        return;
    };
    // SAFETY: the format is a constant "%s" taking exactly one C string argument, and `text`
    // is a valid NUL-terminated string that outlives the call. Using "%s" (never the message
    // as format) means `%` in messages cannot be interpreted.
    unsafe { libc::syslog(priority.to_c(), c"%s".as_ptr(), text.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_read() {
        let name = hostname().expect("a test machine has a host name");
        assert!(!name.contains('\0'));
    }
}
