//! A vCenter for tests: govmomi's simulator (tests/vcsim) as a child process.
//!
//! Each [`Vcsim`] has its own directory (certificates, GPU config, log, and the simulator's
//! `TMPDIR`, where it writes VM files), its own port on 127.0.0.1 and, by default, its own CA.
//! The simulator prints its URL once it accepts connections, so `start` returns a server
//! that is ready. Dropping the handle stops the process and deletes the directory.
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use tempfile::TempDir;

use crate::binaries::try_vcsim_binary;
use crate::certs::TestCa;
use crate::process::ChildGuard;
use crate::{Error, Result, io_err};

/// How the simulator serves `/sdk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// HTTPS with a server certificate for 127.0.0.1/localhost from a CA generated for this
    /// instance (the default): clients verify it like a real vCenter's.
    #[default]
    GeneratedCa,
    /// Plain HTTP, for tests of something other than transport security.
    Plain,
    /// HTTPS with govmomi's own built-in test certificate, what a stock `vcsim` serves: a
    /// self-signed 1024-bit RSA certificate for 127.0.0.1 (`simulator/internal/testcert.go`).
    /// vmig must connect to it with `--insecure` and refuse it, with a sentence naming the
    /// key size, when it verifies the server. [`Vcsim::ca_pem_path`] is that certificate
    /// itself (it is its own CA), [`Vcsim::thumbprint`] its SHA-256.
    StockRsa1024,
}

/// The TLS material of a running simulator (absent with [`TlsMode::Plain`]).
#[derive(Debug, Clone)]
pub struct VcsimTls {
    /// The CA certificate (PEM file) clients must trust.
    pub ca_pem_path: PathBuf,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server certificate (PEM file).
    pub cert_path: PathBuf,
    /// The server certificate's SHA-256 thumbprint, `AB:CD:...` as vSphere shows it.
    pub thumbprint: String,
}

/// A GPU board the simulator does not know yet (or a changed built-in one), e.g. to test a
/// PCI device id >= 0x8000. See docs/testing.md for the built-in models.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuModelSpec {
    /// PCI device name, also `HostGraphicsInfo.deviceName`, e.g. `NVIDIA A100-PCIE-40GB`.
    pub name: String,
    /// PCI device id, e.g. `0x20F1`.
    pub device_id: u16,
    /// PCI subsystem device id; must not be 0 (govc takes 0 for a vGPU pseudo-device).
    pub sub_device_id: u16,
    /// Framebuffer in MiB.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: i64,
    /// The vGPU type names the host offers for this board, e.g. `grid_a100-3-20c`.
    pub vgpu_types: Vec<String>,
}

/// `count` boards of catalog model `model` (e.g. `a100-pcie-40gb`) on one host.
#[derive(Debug, Clone, Serialize)]
pub struct GpuCount {
    /// A built-in model key (mig's catalog keys) or one defined in [`GpuConfig::models`].
    pub model: String,
    /// How many boards; at most 8 GPUs per host in all.
    pub count: u32,
}

/// Which hosts carry which GPUs. For each host the last matching rule wins.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuRule {
    /// Glob on the host name (`DC0_C0_H*`, `DC0_H0`); `None` matches every host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Glob on the cluster name (`DC0_C1`); when set, standalone hosts never match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The boards, in PCI order; empty removes GPUs an earlier rule gave.
    pub gpus: Vec<GpuCount>,
    /// Replaces the offered vGPU types that the boards imply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vgpu_types: Option<Vec<String>>,
    /// `performance` (default) or `consolidation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_policy: Option<String>,
}

impl GpuRule {
    /// A rule for hosts whose name matches `glob`.
    pub fn hosts(glob: &str) -> GpuRule {
        GpuRule {
            host: Some(glob.to_owned()),
            ..GpuRule::default()
        }
    }

    /// A rule for every host of the clusters whose name matches `glob`.
    pub fn clusters(glob: &str) -> GpuRule {
        GpuRule {
            cluster: Some(glob.to_owned()),
            ..GpuRule::default()
        }
    }

    /// Adds `count` boards of `model`.
    pub fn gpu(mut self, model: &str, count: u32) -> GpuRule {
        self.gpus.push(GpuCount {
            model: model.to_owned(),
            count,
        });
        self
    }

    /// Offers exactly these vGPU types instead of the boards' lists.
    pub fn vgpu_types(mut self, types: &[&str]) -> GpuRule {
        self.vgpu_types = Some(types.iter().map(|t| (*t).to_owned()).collect());
        self
    }
}

/// The simulator's `-gpu-config` file (format: docs/testing.md).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GpuConfig {
    /// Extra or replaced GPU models by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, GpuModelSpec>,
    /// Applied in order; the last rule matching a host decides its GPUs.
    pub rules: Vec<GpuRule>,
}

impl GpuConfig {
    /// Appends a rule.
    pub fn rule(mut self, rule: GpuRule) -> GpuConfig {
        self.rules.push(rule);
        self
    }

    /// Defines (or overrides) a model.
    pub fn model(mut self, key: &str, model: GpuModelSpec) -> GpuConfig {
        self.models.insert(key.to_owned(), model);
        self
    }
}

/// Settings for [`Vcsim::start`]; defaults are govmomi's VPX model.
#[derive(Debug, Clone)]
pub struct VcsimBuilder {
    datacenters: u32,
    clusters: u32,
    hosts_per_cluster: u32,
    standalone_hosts: u32,
    vms: u32,
    gpu_config: Option<serde_json::Value>,
    custom_values: BTreeMap<String, BTreeMap<String, String>>,
    tls: TlsMode,
    credentials: Option<(String, String)>,
    api_version: Option<String>,
    start_timeout: Duration,
    method_delays: BTreeMap<String, u32>,
    reboots: Option<Duration>,
}

impl Default for VcsimBuilder {
    fn default() -> Self {
        VcsimBuilder {
            datacenters: 1,
            clusters: 1,
            hosts_per_cluster: 3,
            standalone_hosts: 1,
            vms: 2,
            gpu_config: None,
            custom_values: BTreeMap::new(),
            tls: TlsMode::GeneratedCa,
            credentials: None,
            api_version: None,
            start_timeout: Duration::from_secs(180),
            method_delays: BTreeMap::new(),
            reboots: None,
        }
    }
}

impl VcsimBuilder {
    /// Datacenters, named `DC0`, `DC1`, ... (default 1).
    pub fn datacenters(mut self, n: u32) -> Self {
        self.datacenters = n;
        self
    }
    /// Clusters per datacenter, named `DC0_C0`, ... (default 1).
    pub fn clusters(mut self, n: u32) -> Self {
        self.clusters = n;
        self
    }
    /// Hosts per cluster, named `DC0_C0_H0`, ... (default 3).
    pub fn hosts_per_cluster(mut self, n: u32) -> Self {
        self.hosts_per_cluster = n;
        self
    }
    /// Standalone hosts per datacenter, named `DC0_H0`, ... (default 1).
    pub fn standalone_hosts(mut self, n: u32) -> Self {
        self.standalone_hosts = n;
        self
    }
    /// VMs **per resource pool** (default 2), as vcsim counts them: each cluster's root pool
    /// (VMs `DC0_C0_RP0_VM0`, ... on random hosts of the cluster) and each standalone host
    /// (`DC0_H0_VM0`, ...). Total = datacenters × (clusters + standalone hosts) × n.
    pub fn vms(mut self, n: u32) -> Self {
        self.vms = n;
        self
    }
    /// Which hosts carry which NVIDIA GPUs.
    pub fn gpu_hosts(mut self, config: GpuConfig) -> Self {
        // Serialising plain strings, numbers and maps cannot fail.
        self.gpu_config = Some(serde_json::to_value(config).unwrap_or_default());
        self
    }
    /// Which hosts carry which NVIDIA GPUs, as raw `-gpu-config` JSON.
    pub fn gpu_hosts_json(mut self, config: serde_json::Value) -> Self {
        self.gpu_config = Some(config);
        self
    }
    /// Pre-sets custom attribute `field` (a HostSystem custom field, defined as needed) to
    /// `value` on host `host`, e.g. an agent's document, so no agent has to run.
    pub fn custom_value(mut self, host: &str, field: &str, value: &str) -> Self {
        self.custom_values
            .entry(host.to_owned())
            .or_default()
            .insert(field.to_owned(), value.to_owned());
        self
    }
    /// HTTPS with a generated CA (default) or plain HTTP.
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.tls = mode;
        self
    }
    /// Accepts only this user and password (default: any non-empty pair).
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }
    /// The API version `/sdk/vimServiceVersions.xml` and `about` advertise (default `6.5`).
    pub fn api_version(mut self, version: &str) -> Self {
        self.api_version = Some(version.to_owned());
        self
    }
    /// How long to wait for the URL (default 180 s; vCenter's maximum inventory takes about
    /// a minute on two cores).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Delays every call of vim25 method `method` (e.g. `RelocateVM_Task`) by `ms` before it
    /// runs, so a test can interrupt a client mid-call.
    pub fn method_delay(mut self, method: &str, ms: u32) -> Self {
        self.method_delays.insert(method.to_owned(), ms);
        self
    }

    /// Announces every `RebootHost_Task` in [`Vcsim::reboots_dir`] (read with
    /// [`Vcsim::reboots`]), so a test can play the machine's side of the reboot: stop the
    /// host's agent when it goes down, reset its GPUs and start the agent when it is back.
    /// `downtime` is how long the host stays `notResponding` (vcsim's default is 1 s).
    /// Without this the simulator still reboots hosts; only the files are not written.
    pub fn announce_reboots(mut self, downtime: Duration) -> Self {
        self.reboots = Some(downtime);
        self
    }

    /// Builds the simulator if needed, starts it and waits until it serves.
    pub fn start(self) -> Result<Vcsim> {
        let binary = try_vcsim_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("vmig-vcsim-")
            .tempdir()
            .map_err(io_err("creating the vcsim temp dir"))?;
        let p = |name: &str| dir.path().join(name);
        let tmp = p("tmp");
        std::fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;

        let mut args: Vec<OsString> = vec![
            format!("-dc={}", self.datacenters).into(),
            format!("-cluster={}", self.clusters).into(),
            format!("-host={}", self.hosts_per_cluster).into(),
            format!("-standalone-host={}", self.standalone_hosts).into(),
            format!("-vm={}", self.vms).into(),
            "-exit-on-stdin-eof".into(),
        ];
        if let Some(config) = &self.gpu_config {
            args.push(flag("-gpu-config", &write_json(&p("gpus.json"), config)?));
        }
        if !self.custom_values.is_empty() {
            let path = write_json(&p("custom-values.json"), &self.custom_values)?;
            args.push(flag("-custom-values", &path));
        }
        let (username, password) = match &self.credentials {
            Some((u, pw)) => {
                args.push(format!("-username={u}").into());
                args.push(format!("-password={pw}").into());
                (u.clone(), pw.clone())
            }
            None => ("user".to_owned(), "pass".to_owned()),
        };
        if let Some(v) = &self.api_version {
            args.push(format!("-api-version={v}").into());
        }
        if !self.method_delays.is_empty() {
            let list: Vec<String> = self
                .method_delays
                .iter()
                .map(|(m, ms)| format!("{m}={ms}"))
                .collect();
            args.push(format!("-method-delay={}", list.join(",")).into());
        }
        let reboots_dir = match self.reboots {
            Some(downtime) => {
                let dir = p("reboots");
                std::fs::create_dir(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
                args.push(flag("-reboot-dir", &dir));
                args.push(format!("-reboot-downtime={}ms", downtime.as_millis()).into());
                Some(dir)
            }
            None => None,
        };
        let tls = match self.tls {
            TlsMode::Plain => None,
            TlsMode::GeneratedCa => {
                let ca = TestCa::generate("vmig test vCenter CA")?;
                let server = ca.issue_server_cert(&["127.0.0.1", "localhost", "::1"])?;
                let tls = VcsimTls {
                    ca_pem_path: p("ca.pem"),
                    ca_pem: ca.cert_pem(),
                    cert_path: p("server.pem"),
                    thumbprint: server.sha256_thumbprint(),
                };
                ca.write_pem(&tls.ca_pem_path)?;
                write(&tls.cert_path, &server.cert_pem)?;
                write(&p("server.key"), &server.key_pem)?;
                args.push(flag("-tlscert", &tls.cert_path));
                args.push(flag("-tlskey", &p("server.key")));
                Some(tls)
            }
            TlsMode::StockRsa1024 => {
                // The simulator writes the certificate it serves here before it prints its URL;
                // the PEM and thumbprint are read once it has started.
                args.push(flag("-stock-tls", &p("server.pem")));
                Some(VcsimTls {
                    ca_pem_path: p("server.pem"),
                    ca_pem: String::new(),
                    cert_path: p("server.pem"),
                    thumbprint: String::new(),
                })
            }
        };

        let mut sim = Vcsim {
            binary,
            args,
            port: 0,
            url: String::new(),
            username,
            password,
            tls,
            start_timeout: self.start_timeout,
            reboots_dir,
            process: None,
            stdin: None,
            dir,
        };
        sim.spawn()?;
        if let Some(tls) = sim.tls.as_mut()
            && tls.thumbprint.is_empty()
        {
            let pem = std::fs::read_to_string(&tls.cert_path)
                .map_err(io_err(format!("reading {}", tls.cert_path.display())))?;
            let der = crate::certs::pem_to_der(&pem).ok_or_else(|| Error::VcsimStart {
                reason: format!("{} is not a PEM certificate", tls.cert_path.display()),
                stderr: String::new(),
                log: tls.cert_path.clone(),
            })?;
            tls.thumbprint = crate::certs::sha256_thumbprint(&der);
            tls.ca_pem = pem;
        }
        Ok(sim)
    }
}

fn flag(name: &str, path: &Path) -> OsString {
    let mut f = OsString::from(format!("{name}="));
    f.push(path);
    f
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(io_err(format!("writing {}", path.display())))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<PathBuf> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    write(path, &text)?;
    Ok(path.to_path_buf())
}

/// A host reboot the simulator announced ([`VcsimBuilder::announce_reboots`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReboot {
    /// The host's reboots since the simulator started, this one included.
    pub count: u32,
    /// `false` while the host is down (`notResponding`), `true` once it is back.
    pub up: bool,
}

impl HostReboot {
    /// `N down` or `N up BOOTTIME`; `None` for anything else.
    fn parse(text: &str) -> Option<HostReboot> {
        let mut words = text.split_whitespace();
        let count = words.next()?.parse().ok()?;
        let up = match words.next()? {
            "down" => false,
            "up" => true,
            _ => return None,
        };
        Some(HostReboot { count, up })
    }
}

/// A running simulator; dropping it stops the process and removes its directory.
#[derive(Debug)]
pub struct Vcsim {
    binary: PathBuf,
    args: Vec<OsString>,
    port: u16,
    url: String,
    username: String,
    password: String,
    tls: Option<VcsimTls>,
    start_timeout: Duration,
    reboots_dir: Option<PathBuf>,
    // Field order matters: the process stops before the directory it writes to goes.
    process: Option<ChildGuard>,
    stdin: Option<ChildStdin>,
    dir: TempDir,
}

impl Vcsim {
    /// Settings for a new simulator.
    pub fn builder() -> VcsimBuilder {
        VcsimBuilder::default()
    }

    /// The SDK endpoint, `https://127.0.0.1:PORT/sdk` (`http://` with [`TlsMode::Plain`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL without the `/sdk` path, e.g. for `/rest` or `/sdk/vimServiceVersions.xml`.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches("/sdk")
    }

    /// The TCP port on 127.0.0.1; it stays the same across [`Vcsim::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A user name the simulator accepts (`user` unless set with `credentials`).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password for [`Vcsim::username`] (`pass` unless set with `credentials`).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// TLS material; `None` with [`TlsMode::Plain`].
    pub fn tls(&self) -> Option<&VcsimTls> {
        self.tls.as_ref()
    }

    /// Path of the CA certificate (PEM) to trust; `None` with [`TlsMode::Plain`].
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_pem_path.as_path())
    }

    /// The server certificate's SHA-256 thumbprint (`AB:CD:...`); `None` with plain HTTP.
    pub fn thumbprint(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.thumbprint.as_str())
    }

    /// The simulator's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ChildGuard::pid)
    }

    /// This instance's directory (certificates, config files, `vcsim.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the simulator announces reboots ([`VcsimBuilder::announce_reboots`]): one file
    /// per host name, `N down` while the host reboots, `N up BOOTTIME` once it is back.
    pub fn reboots_dir(&self) -> Option<&Path> {
        self.reboots_dir.as_deref()
    }

    /// The reboots announced so far, by host name (empty without
    /// [`VcsimBuilder::announce_reboots`]). Counts start at 1 again after [`Vcsim::restart`].
    pub fn reboots(&self) -> BTreeMap<String, HostReboot> {
        let mut out = BTreeMap::new();
        let Some(dir) = &self.reboots_dir else {
            return out;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if let Some(r) = HostReboot::parse(&text) {
                out.insert(name, r);
            }
        }
        out
    }

    /// Everything the simulator wrote to stderr so far (all its starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vcsim.log")).unwrap_or_default()
    }

    /// Stops the simulator (SIGTERM, then SIGKILL after 10 s) and reaps it. The inventory and
    /// everything set through the API are lost; [`Vcsim::restart`] starts a fresh one.
    pub fn kill(&mut self) -> Result<()> {
        // Closing stdin is also a shutdown signal; drop it so nothing holds the pipe.
        self.stdin = None;
        if let Some(mut process) = self.process.take() {
            process.stop()?;
        }
        Ok(())
    }

    /// Stops the simulator if it runs, then starts it again on the same port with the same
    /// certificate, inventory settings and GPU data (like a vCenter reboot). Announced
    /// reboots are forgotten: the new process counts from 1 again.
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        if let Some(dir) = &self.reboots_dir {
            for e in std::fs::read_dir(dir)
                .map_err(io_err(format!("reading {}", dir.display())))?
                .flatten()
            {
                std::fs::remove_file(e.path())
                    .map_err(io_err(format!("removing {}", e.path().display())))?;
            }
        }
        self.spawn()
    }

    fn spawn(&mut self) -> Result<()> {
        let log_path = self.dir.path().join("vcsim.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let listen = format!("-listen=127.0.0.1:{}", self.port);
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.args)
            .arg(&listen)
            .env("TMPDIR", self.dir.path().join("tmp"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut process = ChildGuard::spawn("vcsim", &mut cmd)?;
        let stdin = process.child_mut().stdin.take();
        let stdout = process.child_mut().stdout.take();

        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = stdout {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                let _ = tx.send(reader.read_line(&mut line).map(|_| line));
                // Keep draining so the simulator never blocks on a full pipe.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            });
        }
        let fail = |reason: String| Error::VcsimStart {
            reason,
            stderr: tail(&std::fs::read_to_string(&log_path).unwrap_or_default(), 40),
            log: log_path.clone(),
        };
        let line = match rx.recv_timeout(self.start_timeout) {
            Ok(Ok(line)) if !line.trim().is_empty() => line.trim().to_owned(),
            Ok(Ok(_)) | Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = process.stop()?;
                return Err(fail(format!(
                    "it exited ({status:?}) without printing its URL"
                )));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                process.stop()?;
                return Err(fail(format!("no URL within {:?}", self.start_timeout)));
            }
        };
        let port = line
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| fail(format!("unexpected first line {line:?}")))?;
        self.url = line;
        self.port = port;
        self.process = Some(process);
        self.stdin = stdin;
        Ok(())
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            eprintln!("vmig-testkit: {e}");
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_config_serialises_to_the_simulator_format() {
        let config = GpuConfig::default()
            .model(
                "fake",
                GpuModelSpec {
                    name: "Fake".into(),
                    device_id: 0x9A1B,
                    sub_device_id: 1,
                    memory_mib: 1024,
                    vgpu_types: vec![],
                },
            )
            .rule(GpuRule::clusters("DC0_C*").gpu("a100-pcie-40gb", 2))
            .rule(GpuRule::hosts("DC0_C0_H2"));
        let json = serde_json::to_value(config).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "models": {"fake": {"name": "Fake", "deviceId": 0x9A1B, "subDeviceId": 1,
                                    "memoryMiB": 1024, "vgpuTypes": []}},
                "rules": [
                    {"cluster": "DC0_C*", "gpus": [{"model": "a100-pcie-40gb", "count": 2}]},
                    {"host": "DC0_C0_H2", "gpus": []}
                ]
            })
        );
    }

    #[test]
    fn reboot_announcements_parse() {
        assert_eq!(
            HostReboot::parse("2 up 2026-12-03T09:00:00.5Z\n"),
            Some(HostReboot { count: 2, up: true })
        );
        assert_eq!(
            HostReboot::parse("1 down\n"),
            Some(HostReboot {
                count: 1,
                up: false
            })
        );
        for bad in ["", "1", "x down", "1 sideways"] {
            assert_eq!(HostReboot::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
