//! Simulated load: what a VM's vGPU does over time (utilization of SM, memory controller,
//! encoder, decoder, and framebuffer used) and each GPU's ECC error counts, as set by
//! `nvml-sim load`.
//!
//! A load is a cycle of phases, each held for some seconds and repeated from the moment it
//! was set, so a test can make a vGPU busy in bursts and an agent sampling it sees a mean
//! below its peak. The level at a time is a pure function of that time and the schedule:
//! every process reading the state file sees the same load, and the clock the sampler uses
//! (the time of the NVML call) decides which phase it gets. No I/O here.
use serde::{Deserialize, Serialize};

/// Utilization in percent (0–100) and framebuffer used at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LoadLevel {
    /// SM (3D/compute) utilization, %.
    pub sm: u32,
    /// Memory-controller (framebuffer bandwidth) utilization, %.
    pub mem: u32,
    /// Video encoder utilization, %.
    pub enc: u32,
    /// Video decoder utilization, %.
    pub dec: u32,
    /// Framebuffer in use, MiB.
    pub fb_mib: u64,
}

/// One phase of a cycle: `level` for `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadPhase {
    pub seconds: u64,
    pub level: LoadLevel,
}

/// A vGPU's load: phases repeated in order from `since_unix_s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSchedule {
    /// Wall-clock second (Unix) the cycle started.
    pub since_unix_s: u64,
    pub phases: Vec<LoadPhase>,
}

impl LoadSchedule {
    /// The level at `now_unix_s`; before the start, the first phase.
    pub fn level_at(&self, now_unix_s: u64) -> LoadLevel {
        let cycle: u64 = self.phases.iter().map(|p| p.seconds.max(1)).sum();
        if cycle == 0 {
            return LoadLevel::default();
        }
        let mut t = now_unix_s.saturating_sub(self.since_unix_s) % cycle;
        for phase in &self.phases {
            let len = phase.seconds.max(1);
            if t < len {
                return phase.level;
            }
            t -= len;
        }
        LoadLevel::default()
    }
}

/// Activity accumulated by a load since it was set, in percent-seconds: what a GPM sample
/// (`nvmlGpmMigSampleGet`) carries, so the mean utilization between two samples is the
/// difference divided by the time between them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Accumulated {
    /// SM utilization integrated over time, %·s.
    pub sm: f64,
    /// Memory-controller utilization integrated over time, %·s.
    pub mem: f64,
}

impl LoadSchedule {
    /// Activity accumulated from the start of the cycle to `now_us` (Unix µs). Each phase
    /// holds its level over whole seconds, as [`LoadSchedule::level_at`] answers, so the
    /// integral agrees with the per-vGPU samples taken in the same seconds.
    pub fn accumulated_until(&self, now_us: u64) -> Accumulated {
        let cycle_s: u64 = self.phases.iter().map(|p| p.seconds.max(1)).sum();
        let start_us = self.since_unix_s.saturating_mul(1_000_000);
        if cycle_s == 0 || now_us <= start_us {
            return Accumulated::default();
        }
        let elapsed_us = now_us - start_us;
        let cycle_us = cycle_s * 1_000_000;
        let over = |len_us: u64, level: LoadLevel, acc: &mut Accumulated| {
            let secs = len_us as f64 / 1e6;
            acc.sm += f64::from(level.sm) * secs;
            acc.mem += f64::from(level.mem) * secs;
        };
        let mut acc = Accumulated::default();
        let cycles = elapsed_us / cycle_us;
        for phase in &self.phases {
            over(phase.seconds.max(1) * 1_000_000, phase.level, &mut acc);
        }
        acc.sm *= cycles as f64;
        acc.mem *= cycles as f64;
        let mut rest_us = elapsed_us % cycle_us;
        for phase in &self.phases {
            let len_us = (phase.seconds.max(1) * 1_000_000).min(rest_us);
            over(len_us, phase.level, &mut acc);
            rest_us -= len_us;
        }
        acc
    }
}

/// Volatile (since the last driver load) ECC error counts of one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EccCounts {
    pub corrected: u64,
    pub uncorrected: u64,
}

/// Why a `--phase` argument was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhaseError {
    #[error(
        "bad load phase `{spec}`: {why}; write KEY=VALUE pairs separated by commas, keys sm, mem, enc, dec (percent 0-100), fb (MiB), s (seconds), e.g. sm=40,mem=20,fb=3000,s=60"
    )]
    Bad { spec: String, why: String },
}

impl LoadPhase {
    /// Parse `sm=40,mem=20,enc=0,dec=0,fb=3000,s=60` (any subset; missing keys are 0, `s`
    /// defaults to 60).
    pub fn parse(spec: &str) -> Result<LoadPhase, PhaseError> {
        let bad = |why: String| PhaseError::Bad {
            spec: spec.to_string(),
            why,
        };
        let mut phase = LoadPhase {
            seconds: 60,
            level: LoadLevel::default(),
        };
        for pair in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("`{pair}` has no `=`")))?;
            let value: u64 = value
                .trim()
                .parse()
                .map_err(|_| bad(format!("`{value}` is not a whole number")))?;
            let percent = |v: u64| {
                u32::try_from(v)
                    .ok()
                    .filter(|v| *v <= 100)
                    .ok_or_else(|| bad(format!("{key}={v} is not a percentage")))
            };
            match key.trim() {
                "sm" => phase.level.sm = percent(value)?,
                "mem" => phase.level.mem = percent(value)?,
                "enc" => phase.level.enc = percent(value)?,
                "dec" => phase.level.dec = percent(value)?,
                "fb" => phase.level.fb_mib = value,
                "s" if value > 0 => phase.seconds = value,
                "s" => return Err(bad("s must be at least 1".into())),
                other => return Err(bad(format!("unknown key `{other}`"))),
            }
        }
        Ok(phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(sm: u32) -> LoadLevel {
        LoadLevel {
            sm,
            ..LoadLevel::default()
        }
    }

    #[test]
    fn phases_repeat_from_the_start() {
        let s = LoadSchedule {
            since_unix_s: 100,
            phases: vec![
                LoadPhase {
                    seconds: 10,
                    level: level(20),
                },
                LoadPhase {
                    seconds: 5,
                    level: level(90),
                },
            ],
        };
        assert_eq!(s.level_at(50).sm, 20, "before the start: first phase");
        assert_eq!(s.level_at(100).sm, 20);
        assert_eq!(s.level_at(109).sm, 20);
        assert_eq!(s.level_at(110).sm, 90);
        assert_eq!(s.level_at(114).sm, 90);
        assert_eq!(s.level_at(115).sm, 20, "the cycle repeats");
    }

    #[test]
    fn accumulated_activity_integrates_the_phases() {
        let s = LoadSchedule {
            since_unix_s: 100,
            phases: vec![
                LoadPhase {
                    seconds: 10,
                    level: level(20),
                },
                LoadPhase {
                    seconds: 5,
                    level: level(80),
                },
            ],
        };
        let at = |s_: f64| s.accumulated_until((s_ * 1e6) as u64).sm;
        assert_eq!(at(50.0), 0.0, "nothing before the start");
        assert!((at(105.0) - 100.0).abs() < 1e-6);
        assert!((at(112.0) - (200.0 + 160.0)).abs() < 1e-6);
        // One full cycle (200 + 400) plus 2.5 s of the first phase.
        assert!((at(117.5) - (600.0 + 50.0)).abs() < 1e-6);
        let mean = (at(130.0) - at(115.0)) / 15.0;
        assert!((mean - 40.0).abs() < 1e-6, "mean over a cycle: {mean}");
    }

    #[test]
    fn phase_specs_parse_and_refuse_nonsense() {
        let p = LoadPhase::parse("sm=40,mem=20,fb=3000,s=30").expect("valid");
        assert_eq!(p.seconds, 30);
        assert_eq!(p.level.sm, 40);
        assert_eq!(p.level.mem, 20);
        assert_eq!(p.level.fb_mib, 3000);
        assert_eq!(
            LoadPhase::parse("").expect("empty is idle").level,
            LoadLevel::default()
        );
        for bad in ["sm=101", "sm", "gpu=3", "s=0", "fb=-1"] {
            assert!(LoadPhase::parse(bad).is_err(), "{bad} must be refused");
        }
    }
}
