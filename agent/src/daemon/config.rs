//! The daemon's configuration file (`/etc/vmig/agent.toml`): parsed once into typed values and
//! validated before anything touches NVML or the network, so a bad file is one clear error at
//! start (or at `SIGHUP`, where the old configuration stays in force).
//!
//! The TOML keys are part of the product's interface (docs/operations.md) and are exactly:
//! `[vcenter] url, username, password_file, ca_file, thumbprint, insecure`; `[host] uuid`;
//! `[agent] poll_interval_s, heartbeat_interval_s, nvml_stall_timeout_s, sample_interval_s,
//! nvml_lib, layout_file, layout_name`; `[layout] source`.
//! Unknown keys are refused so that a typo never silently falls back to a default.
//!
//! The password is never part of [`Config`]: it is read from `password_file` only when a
//! session is opened ([`read_password`]), after checking that the file is private.
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use std::time::Duration;
use vcenter_client::PasswordFileError;

/// Where `run` and `check-config` look when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vmig/agent.toml";
/// Default seconds between two NVML observations.
pub const DEFAULT_POLL_INTERVAL_S: u64 = 5;
/// Default seconds between two utilization samples (`sample_interval_s`; 0 turns sampling off).
pub const DEFAULT_SAMPLE_INTERVAL_S: u64 = 10;
/// Longest sampling interval: a 1-minute bucket of the 1-hour window should see a sample.
pub const MAX_SAMPLE_INTERVAL_S: u64 = 60;
/// Default seconds between two publications of an unchanged state.
pub const DEFAULT_HEARTBEAT_INTERVAL_S: u64 = 300;

/// The longest `[agent] nvml_stall_timeout_s` accepted: a hung driver would go unreported (and
/// its GPUs look healthy in vCenter) for that long.
pub const MAX_NVML_STALL_TIMEOUT_S: u64 = 3600;

/// A configuration that could not be used, naming the file, the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read password file {path}: {source}")]
    PasswordRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "password file {path} is readable by {who} (mode {mode:04o}); it holds the vCenter \
         service account's password, so vmig-agent refuses to use it until only its owner can \
         read it: chmod 600 {path}"
    )]
    PasswordPermissions {
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
    #[error("password file {path} is empty; write the vCenter service account's password into it")]
    PasswordEmpty { path: PathBuf },
}

/// How the agent checks vCenter's certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// The operating system's trust store.
    SystemRoots,
    /// Trust only the CA certificates in this PEM bundle.
    CaFile(PathBuf),
    /// Pin the SHA-256 thumbprint of the server certificate (`AA:BB:…`, 32 bytes, upper case).
    Thumbprint(String),
    /// No verification at all; only when `insecure = true` is written explicitly.
    Insecure,
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::SystemRoots => f.write_str("system trust store"),
            TlsMode::CaFile(path) => write!(f, "CA bundle {}", path.display()),
            TlsMode::Thumbprint(t) => write!(f, "pinned SHA-256 thumbprint {t}"),
            TlsMode::Insecure => f.write_str("INSECURE (no certificate verification)"),
        }
    }
}

/// The `[vcenter]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcenterConfig {
    /// vCenter's SDK URL (`https://vc.example.com/sdk`; a bare host gets `/sdk`).
    pub url: String,
    pub username: String,
    pub password_file: PathBuf,
    pub tls: TlsMode,
}

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this was read from (state and messages refer to it).
    pub path: PathBuf,
    pub vcenter: VcenterConfig,
    /// `[host] uuid`: the host's BIOS UUID, when set; otherwise it is discovered.
    pub host_uuid: Option<String>,
    pub poll_interval: Duration,
    pub heartbeat_interval: Duration,
    /// `[agent] nvml_stall_timeout_s`: how long an NVML call may take before the daemon reports
    /// "NVML stalled"; by default twice the poll interval, within 5..=60 s.
    pub nvml_stall_timeout: Duration,
    /// `[agent] sample_interval_s`: utilization sampling period; `None` when turned off (0).
    pub sample_interval: Option<Duration>,
    /// `[agent] nvml_lib`; `None` means NVML's standard library names.
    pub nvml_lib: Option<PathBuf>,
    /// `[agent] layout_file` + `layout_name`, both or neither.
    pub layout: Option<LayoutRef>,
    /// `[layout] source`: whether the daemon reconciles a desired layout (default: observe).
    pub layout_source: LayoutSourceMode,
}

/// `[layout] source`: where the daemon takes a layout to reconcile from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutSourceMode {
    /// `"off"` (the default): observe and publish only; a local `[agent] layout_file` is
    /// enforced at start and after a pending MIG mode applies, as before.
    #[default]
    Off,
    /// `"vcenter"`: every poll, read the desired layout `vmig layout set` wrote (host over
    /// cluster), apply it and publish per-GPU layout states. A local layout still wins.
    Vcenter,
}

/// A named layout in a layout file, to enforce at start and after a pending MIG mode applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    pub file: PathBuf,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    vcenter: RawVcenter,
    #[serde(default)]
    host: RawHost,
    #[serde(default)]
    agent: RawAgent,
    #[serde(default)]
    layout: RawLayout,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    #[serde(default)]
    source: LayoutSourceMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVcenter {
    url: String,
    username: String,
    password_file: PathBuf,
    ca_file: Option<PathBuf>,
    thumbprint: Option<String>,
    #[serde(default)]
    insecure: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    uuid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    poll_interval_s: Option<u64>,
    heartbeat_interval_s: Option<u64>,
    nvml_stall_timeout_s: Option<u64>,
    sample_interval_s: Option<u64>,
    nvml_lib: Option<PathBuf>,
    layout_file: Option<PathBuf>,
    layout_name: Option<String>,
}

impl Config {
    /// Read and validate a configuration file. Relative paths inside it are resolved against
    /// the file's directory, so a config and its password file can travel together.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Validate configuration text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };

        let url = normalise_url(&raw.vcenter.url).map_err(invalid)?;
        if raw.vcenter.username.trim().is_empty() {
            return Err(invalid("[vcenter] username is empty; set the service account, e.g. \"svc-vmig@vsphere.local\"".into()));
        }
        let tls = match (
            raw.vcenter.ca_file,
            raw.vcenter.thumbprint,
            raw.vcenter.insecure,
        ) {
            (None, None, false) => TlsMode::SystemRoots,
            (Some(ca), None, false) => TlsMode::CaFile(resolve(ca)),
            (None, Some(t), false) => TlsMode::Thumbprint(parse_thumbprint(&t).map_err(invalid)?),
            (None, None, true) => TlsMode::Insecure,
            _ => {
                return Err(invalid(
                    "[vcenter] ca_file, thumbprint and insecure = true are alternatives; set at most one".into(),
                ));
            }
        };
        if url.starts_with("http://") && tls != TlsMode::Insecure {
            return Err(invalid(format!(
                "[vcenter] url {url} is plain HTTP: credentials would travel unencrypted; use https:// \
                 (or, for a lab simulator only, also set insecure = true)"
            )));
        }
        let host_uuid = match raw.host.uuid {
            None => None,
            Some(u) => Some(parse_uuid(&u).map_err(|m| invalid(format!("[host] uuid: {m}")))?),
        };
        let poll = raw.agent.poll_interval_s.unwrap_or(DEFAULT_POLL_INTERVAL_S);
        let heartbeat = raw
            .agent
            .heartbeat_interval_s
            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL_S);
        if poll == 0 {
            return Err(invalid("[agent] poll_interval_s must be at least 1".into()));
        }
        if heartbeat < poll {
            return Err(invalid(format!(
                "[agent] heartbeat_interval_s ({heartbeat}) must not be shorter than poll_interval_s ({poll})"
            )));
        }
        // Readers refuse documents with a longer heartbeat (mig::report validation).
        let max = mig::report::MAX_HEARTBEAT_INTERVAL_S;
        if heartbeat > max {
            return Err(invalid(format!(
                "[agent] heartbeat_interval_s ({heartbeat}) must be at most {max} (one day): vmig treats a longer one as an invalid report"
            )));
        }
        let nvml_stall_timeout = match raw.agent.nvml_stall_timeout_s {
            None => stall_timeout_for(Duration::from_secs(poll)),
            Some(0) => {
                return Err(invalid(
                    "[agent] nvml_stall_timeout_s must be at least 1: with 0 every NVML call would count as stalled".into(),
                ));
            }
            Some(s) if s > MAX_NVML_STALL_TIMEOUT_S => {
                return Err(invalid(format!(
                    "[agent] nvml_stall_timeout_s ({s}) must be at most {MAX_NVML_STALL_TIMEOUT_S} (one hour): \
                     a hung driver would go unreported that long; leave it out for the default (twice \
                     poll_interval_s, within 5..=60 s)"
                )));
            }
            Some(s) => Duration::from_secs(s),
        };
        let sample = raw
            .agent
            .sample_interval_s
            .unwrap_or(DEFAULT_SAMPLE_INTERVAL_S);
        if sample > MAX_SAMPLE_INTERVAL_S {
            return Err(invalid(format!(
                "[agent] sample_interval_s ({sample}) must be at most {MAX_SAMPLE_INTERVAL_S} (0 turns utilization sampling off)"
            )));
        }
        let layout = match (raw.agent.layout_file, raw.agent.layout_name) {
            (None, None) => None,
            (Some(file), Some(name)) if !name.trim().is_empty() => Some(LayoutRef {
                file: resolve(file),
                name,
            }),
            _ => {
                return Err(invalid(
                    "[agent] layout_file and layout_name go together: set both to enforce a layout, or neither".into(),
                ));
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            vcenter: VcenterConfig {
                url,
                username: raw.vcenter.username,
                password_file: resolve(raw.vcenter.password_file),
                tls,
            },
            host_uuid,
            poll_interval: Duration::from_secs(poll),
            heartbeat_interval: Duration::from_secs(heartbeat),
            nvml_stall_timeout,
            sample_interval: (sample > 0).then(|| Duration::from_secs(sample)),
            nvml_lib: raw.agent.nvml_lib.map(resolve),
            layout,
            layout_source: raw.layout.source,
        })
    }
}

/// Accept `https://vc`, `https://vc/` or `https://vc/sdk`; always return the `/sdk` endpoint.
fn normalise_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("[vcenter] url {url:?} must start with https://, e.g. \"https://vc.example.com/sdk\""))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() || authority.contains('@') {
        return Err(format!(
            "[vcenter] url {url:?} must name the vCenter host (and no user: set [vcenter] username instead)"
        ));
    }
    let path = path.trim_end_matches('/');
    let scheme = &url[..url.len() - rest.len()];
    Ok(match path {
        "" => format!("{scheme}{authority}/sdk"),
        p => format!("{scheme}{authority}/{p}"),
    })
}

/// SHA-256 thumbprint as vSphere shows it: 32 bytes as colon-separated hex. Also accepts plain
/// hex and lower case; returns the canonical upper-case colon form.
pub fn parse_thumbprint(text: &str) -> Result<String, String> {
    let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&hex).map_err(|_| {
        format!("[vcenter] thumbprint {text:?} is not hex; write it as vSphere shows it, e.g. \"AB:CD:…\" (32 bytes)")
    })?;
    match bytes.len() {
        32 => Ok(bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")),
        20 => Err(format!(
            "[vcenter] thumbprint {text:?} has 20 bytes, which is a SHA-1 thumbprint; vmig pins SHA-256 (32 bytes)"
        )),
        n => Err(format!(
            "[vcenter] thumbprint {text:?} has {n} bytes; a SHA-256 thumbprint has 32"
        )),
    }
}

/// A BIOS UUID in its canonical lower-case 8-4-4-4-12 form (as `hardware.systemInfo.uuid`).
pub fn parse_uuid(text: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    let groups: Vec<&str> = t.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12]
        || !groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(format!(
            "{text:?} is not a UUID like \"4c4c4544-0042-3510-8052-b4c04f4d4e32\""
        ));
    }
    Ok(t)
}

/// A password read from its file. Never printed: Debug shows a placeholder.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The secret itself, for handing to the vCenter client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Read the service account's password, refusing a file that group or others can read.
/// Only the first line counts, without its line end, so `echo pw > file` works.
pub fn read_password(path: &Path) -> Result<Password, ConfigError> {
    vcenter_client::read_password_file(path)
        .map(Password)
        .map_err(ConfigError::from)
}

impl From<PasswordFileError> for ConfigError {
    fn from(e: PasswordFileError) -> Self {
        match e {
            PasswordFileError::Read { path, source } => ConfigError::PasswordRead { path, source },
            PasswordFileError::Mode { path, who, mode } => {
                ConfigError::PasswordPermissions { path, who, mode }
            }
            PasswordFileError::Empty { path } => ConfigError::PasswordEmpty { path },
        }
    }
}

/// The stall timeout for a poll interval: two polls, within 5..=60 s.
pub fn stall_timeout_for(poll_interval: Duration) -> Duration {
    (poll_interval * 2).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[vcenter]
url = "https://vc.example.com/sdk"
username = "svc-vmig@vsphere.local"
password_file = "password"
thumbprint = "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"

[host]
uuid = "4C4C4544-0042-3510-8052-B4C04F4D4E32"

[agent]
poll_interval_s = 2
heartbeat_interval_s = 60
nvml_lib = "/usr/lib64/libnvidia-ml.so.1"
layout_file = "layouts.yaml"
layout_name = "all-balanced"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/vmig/agent.toml"), text)
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(FULL).expect("valid");
        assert_eq!(c.vcenter.url, "https://vc.example.com/sdk");
        assert_eq!(c.vcenter.password_file, Path::new("/etc/vmig/password"));
        assert_eq!(
            c.vcenter.tls,
            TlsMode::Thumbprint(
                "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89".into()
            )
        );
        assert_eq!(
            c.host_uuid.as_deref(),
            Some("4c4c4544-0042-3510-8052-b4c04f4d4e32")
        );
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(
            c.nvml_lib.as_deref(),
            Some(Path::new("/usr/lib64/libnvidia-ml.so.1"))
        );
        let layout = c.layout.expect("layout");
        assert_eq!(layout.file, Path::new("/etc/vmig/layouts.yaml"));
        assert_eq!(layout.name, "all-balanced");
    }

    #[test]
    fn defaults_apply() {
        let c =
            parse("[vcenter]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/p\"\n")
                .expect("valid");
        assert_eq!(c.vcenter.url, "https://vc/sdk");
        assert_eq!(c.vcenter.tls, TlsMode::SystemRoots);
        assert_eq!(
            c.poll_interval,
            Duration::from_secs(DEFAULT_POLL_INTERVAL_S)
        );
        assert_eq!(
            c.heartbeat_interval,
            Duration::from_secs(DEFAULT_HEARTBEAT_INTERVAL_S)
        );
        assert!(c.host_uuid.is_none() && c.layout.is_none() && c.nvml_lib.is_none());
        // Unchanged default: twice the poll interval, within 5..=60 s.
        assert_eq!(c.nvml_stall_timeout, Duration::from_secs(10));
        // Observe only unless reconcile is asked for (docs/operations.md, safe defaults).
        assert_eq!(c.layout_source, LayoutSourceMode::Off);
        assert_eq!(
            c.sample_interval,
            Some(Duration::from_secs(DEFAULT_SAMPLE_INTERVAL_S))
        );
    }

    #[test]
    fn the_nvml_stall_timeout_is_bounded() {
        let with = |v: &str| {
            parse(&format!(
                "[vcenter]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/p\"\n\
                 [agent]\nnvml_stall_timeout_s = {v}\n"
            ))
        };
        assert_eq!(
            with("3").expect("valid").nvml_stall_timeout,
            Duration::from_secs(3)
        );
        assert_eq!(
            with("3600").expect("valid").nvml_stall_timeout,
            Duration::from_secs(3600)
        );
        let zero = with("0").expect_err("0 refused").to_string();
        assert!(
            zero.contains("nvml_stall_timeout_s must be at least 1"),
            "{zero}"
        );
        let huge = with("86400").expect_err("a day refused").to_string();
        assert!(huge.contains("must be at most 3600"), "{huge}");
        let negative = with("-1").expect_err("negative refused").to_string();
        assert!(negative.contains("nvml_stall_timeout_s"), "{negative}");
    }

    #[test]
    fn layout_source_is_off_or_vcenter() {
        let base = "[vcenter]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/p\"\n";
        let c = parse(&format!("{base}[layout]\nsource = \"vcenter\"\n")).expect("valid");
        assert_eq!(c.layout_source, LayoutSourceMode::Vcenter);
        let c = parse(&format!("{base}[layout]\nsource = \"off\"\n")).expect("valid");
        assert_eq!(c.layout_source, LayoutSourceMode::Off);
        for bad in [
            "[layout]\nsource = \"vCenter-ish\"\n",
            "[layout]\nsorce = \"vcenter\"\n",
        ] {
            let e = parse(&format!("{base}{bad}")).unwrap_err().to_string();
            assert!(e.contains("source") || e.contains("sorce"), "{e}");
        }
    }

    #[test]
    fn sampling_is_bounded_and_zero_turns_it_off() {
        let base = "[vcenter]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/p\"\n";
        let off = parse(&format!("{base}[agent]\nsample_interval_s = 0\n")).expect("valid");
        assert_eq!(off.sample_interval, None);
        let on = parse(&format!("{base}[agent]\nsample_interval_s = 30\n")).expect("valid");
        assert_eq!(on.sample_interval, Some(Duration::from_secs(30)));
        let err = parse(&format!("{base}[agent]\nsample_interval_s = 61\n"))
            .expect_err("too long")
            .to_string();
        assert!(
            err.contains("sample_interval_s") && err.contains("60"),
            "{err}"
        );
    }

    #[test]
    fn refusals_name_the_key() {
        let base = "[vcenter]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/p\"\n";
        let cases = [
            (format!("{base}pasword = \"x\"\n"), "pasword"),
            (
                format!("{base}insecure = true\nca_file = \"/ca\"\n"),
                "alternatives",
            ),
            (format!("{base}thumbprint = \"AB:CD\"\n"), "32"),
            (
                format!("{base}[agent]\npoll_interval_s = 0\n"),
                "poll_interval_s",
            ),
            (
                format!("{base}[agent]\nheartbeat_interval_s = 1\npoll_interval_s = 5\n"),
                "heartbeat_interval_s",
            ),
            (
                format!("{base}[agent]\nlayout_name = \"x\"\n"),
                "layout_file",
            ),
            (format!("{base}[host]\nuuid = \"nope\"\n"), "[host] uuid"),
            (base.replace("https://vc", "http://vc"), "plain HTTP"),
            (base.replace("https://vc", "vc"), "https://"),
        ];
        for (text, needle) in cases {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            assert!(
                err.contains("/etc/vmig/agent.toml"),
                "{err:?} should name the file"
            );
        }
    }

    #[test]
    fn sha1_thumbprint_is_explained() {
        let err = parse_thumbprint("AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01")
            .expect_err("sha1");
        assert!(err.contains("SHA-1"));
    }

    #[test]
    fn heartbeat_is_at_most_a_day() {
        let base = "[vcenter]\nurl = \"https://vc\"\nusername = \"u\"\npassword_file = \"/p\"\n";
        let e = Config::parse(
            Path::new("/etc/vmig/agent.toml"),
            &format!("{base}[agent]\nheartbeat_interval_s = 86401\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("at most 86400"), "{e}");
    }

    #[test]
    fn password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_password(&path).expect_err("0644 refused").to_string();
        assert!(
            err.contains("chmod 600") && err.contains("0644") && err.contains("other users"),
            "{err}"
        );
        assert!(!err.contains("s3cret"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let pw = read_password(&path).expect("0600 accepted");
        assert_eq!(pw.expose(), "s3cret");
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
    }
}
