//! vmig's exit statuses: one [`ExitCode`] enum, and the "Exit status" part of
//! `vmig --help` written from it, so the numbers, their meaning and the help cannot drift
//! apart. The numbers are part of vmig's interface (scripts test them; docs/admin-guide.md
//! lists them) and never change.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

/// How a `vmig` run ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// Success (`capacity`: the requested count fits).
    Ok = 0,
    /// vCenter, network, file or other I/O failure; a change that stopped part-way.
    Failure = 1,
    /// Bad command line or settings (unknown vGPU type, no URL, no password).
    Usage = 2,
    /// `assign`/`unassign` refused by a check (VM, host or type).
    Refused = 3,
    /// Not enough free MIG capacity (also: another admin booked the last slice first).
    NoCapacity = 4,
    /// `plan --apply` stopped because the inventory changed since the plan: plan again.
    Replan = 5,
    /// `rollout` stopped at a host that failed (named in the message); nothing after it ran.
    RolloutStopped = 6,
    /// `rollout` put a host in maintenance mode and waits for its reboot (`--reboot admin`).
    WaitingForReboot = 7,
}

impl ExitCode {
    /// Every code, in numeric order (the order `--help` lists them in).
    pub const ALL: [ExitCode; 8] = [
        ExitCode::Ok,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::Refused,
        ExitCode::NoCapacity,
        ExitCode::Replan,
        ExitCode::RolloutStopped,
        ExitCode::WaitingForReboot,
    ];

    /// The numeric status.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as `vmig --help` says it. Lines after the first continue the
    /// sentence (the help indents them under it).
    pub const fn help(self) -> &'static str {
        match self {
            ExitCode::Ok => "success (capacity: the requested count fits)",
            ExitCode::Failure => {
                "vCenter, network or file error; a change stopped part-way (run vmig repair)"
            }
            ExitCode::Usage => {
                "bad command line or connection settings (unknown vGPU type, no URL, no password)"
            }
            ExitCode::Refused => {
                "assign/unassign refused by a check (VM not found or powered on, other vGPU type,\n\
                 host not found or not offering the type, no current agent report, nothing to do,\n\
                 VM busy with another vmig, this vmig's lock broken while it stalled)"
            }
            ExitCode::NoCapacity => {
                "not enough free MIG capacity (capacity: fewer than --count fit; assign: no free\n\
                 slice, or another admin reserved the last one first)"
            }
            ExitCode::Replan => {
                "plan --apply stopped before a move because the inventory changed since the plan\n\
                 (the moves before it are done): run vmig plan again"
            }
            ExitCode::RolloutStopped => {
                "rollout stopped at a failed host (named); fix it and run the same rollout again"
            }
            ExitCode::WaitingForReboot => {
                "rollout waits for a host in maintenance mode to be rebooted (--reboot admin);\n\
                 reboot it, then run the same rollout again"
            }
        }
    }

    /// The "Exit status:" block of `vmig --help`, one entry per code.
    pub fn help_text() -> String {
        let mut out = String::from("Exit status:");
        for code in Self::ALL {
            for (i, line) in code.help().lines().enumerate() {
                // Writing to a String cannot fail.
                let _ = if i == 0 {
                    write!(out, "\n  {}  {line}", code.code())
                } else {
                    write!(out, "\n     {line}")
                };
            }
        }
        out
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Serialised as its number (`"exit_code": 3` in `--json` errors).
impl Serialize for ExitCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable() {
        let numbers: Vec<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(serde_json::to_string(&ExitCode::Refused).unwrap(), "3");
    }

    #[test]
    fn help_lists_every_code() {
        assert_eq!(
            ExitCode::help_text(),
            "\
Exit status:
  0  success (capacity: the requested count fits)
  1  vCenter, network or file error; a change stopped part-way (run vmig repair)
  2  bad command line or connection settings (unknown vGPU type, no URL, no password)
  3  assign/unassign refused by a check (VM not found or powered on, other vGPU type,
     host not found or not offering the type, no current agent report, nothing to do,
     VM busy with another vmig, this vmig's lock broken while it stalled)
  4  not enough free MIG capacity (capacity: fewer than --count fit; assign: no free
     slice, or another admin reserved the last one first)
  5  plan --apply stopped before a move because the inventory changed since the plan
     (the moves before it are done): run vmig plan again
  6  rollout stopped at a failed host (named); fix it and run the same rollout again
  7  rollout waits for a host in maintenance mode to be rebooted (--reboot admin);
     reboot it, then run the same rollout again"
        );
    }
}
