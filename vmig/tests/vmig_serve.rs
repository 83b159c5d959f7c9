//! `vmig serve` against a simulator: the real binary is started, its endpoints are read over
//! plain HTTP, a document written to a host reaches `/metrics` within 2 s through the
//! incremental property collector, the token is enforced, `/metrics` passes the exposition
//! check, `/events` announces snapshots, and a vCenter restart is followed by a full re-read.

mod vmig_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use vmig_support::{Env, doc, gi, gpu, host_ref};
use vmig_testkit::{GpuConfig, GpuRule, TestCa, Vcsim};

const A100: &str = "a100-pcie-40gb";
const TOKEN: &str = "s3cret-t0ken";

/// Stops the server when the test ends, however it ends.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(env: &Env) -> Server {
    start_server_with(env, &[])
}

/// `vmig serve` on a free loopback port with the test token and `extra` arguments; its
/// address once it says where it listens (http or https).
fn start_server_with(env: &Env, extra: &[&str]) -> Server {
    let token_file = env.path("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        token_file.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let mut child = env
        .vmig_cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmig serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[vmig serve] {line}");
            if let Some(addr) = line
                .strip_prefix("vmig serve: listening on http://")
                .or_else(|| line.strip_prefix("vmig serve: listening on https://"))
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("vmig serve says where it listens");
    Server { child, addr }
}

/// One `GET`: status and body.
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

/// The value of the `vmig_gpu_instances` sample of `host` with `in_use="true"`.
fn in_use(metrics: &str, host: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("vmig_gpu_instances{"))
        .filter(|l| l.contains(&format!("host=\"{host}\"")) && l.contains("in_use=\"true\""))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(-1.0)
        })
        .reduce(|a, b| a + b)
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn a_document_change_reaches_metrics_and_a_restart_is_followed() {
    let h0 = vec![gpu(0, A100, true, true, &[gi("3g.20gb", 4, Some("vm-a"))])];
    let builder = Vcsim::builder()
        .clusters(1)
        .hosts_per_cluster(2)
        .vms(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 1)))
        .custom_value("DC0_C0_H0", "vmig.mig", &doc(5, 3600, h0));
    let mut env = Env::start(builder, "vmig-serve");
    let server = start_server(&env);
    let addr = server.addr.clone();

    wait_for("the first read", Duration::from_secs(60), || {
        get(&addr, "/healthz", Some(TOKEN)).0 == 200
    });

    // The token is required everywhere.
    for path in ["/", "/metrics", "/api/v1/report", "/healthz", "/events"] {
        assert_eq!(get(&addr, path, None).0, 401, "{path} without a token");
        assert_eq!(
            get(&addr, path, Some("wrong")).0,
            401,
            "{path} with a wrong token"
        );
    }
    assert_eq!(get(&addr, &format!("/healthz?token={TOKEN}"), None).0, 200);

    let (status, metrics) = get(&addr, "/metrics", Some(TOKEN));
    assert_eq!(status, 200);
    vmig::serve::metrics::check(&metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    assert_eq!(in_use(&metrics, "DC0_C0_H0"), Some(1.0), "{metrics}");
    assert!(metrics.contains("vmig_placeable_vgpus{"), "{metrics}");
    assert!(
        metrics.contains("vmig_gpu_stranded_compute_slices{"),
        "{metrics}"
    );
    assert!(metrics.contains("vmig_agent_status{"), "{metrics}");
    assert!(metrics.contains("vmig_vcenter_up{"), "{metrics}");

    let (status, report) = get(&addr, "/api/v1/report", Some(TOKEN));
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    assert_eq!(report["schema"], "vmig.report/v1");

    let (status, page) = get(&addr, "/", Some(TOKEN));
    assert_eq!(status, 200);
    assert!(page.contains("id=\"vmig-live\"") && page.contains("EventSource"));
    assert!(!page.contains("src=\"http"), "no external assets");

    // /events announces the current snapshot at once.
    let mut ev = TcpStream::connect(&addr).expect("connect");
    ev.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        ev,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .expect("send");
    let mut buf = vec![0; 4096];
    let mut seen = String::new();
    while !seen.contains("event: report\ndata: ") {
        let n = ev.read(&mut buf).expect("an event");
        assert!(n > 0, "event stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("text/event-stream"), "{seen}");

    // A second instance in use, written as an agent would: in /metrics within 2 s.
    let rt = Env::runtime();
    let c = env.client(&rt);
    let host = host_ref(&rt, &c, "DC0_C0_H0");
    let key = rt
        .block_on(c.custom_field_defs())
        .expect("field definitions")
        .into_iter()
        .find(|d| d.name == "vmig.mig")
        .expect("vmig.mig defined")
        .key;
    let h0b = vec![gpu(
        0,
        A100,
        true,
        true,
        &[
            gi("3g.20gb", 4, Some("vm-a")),
            gi("2g.10gb", 0, Some("vm-b")),
        ],
    )];
    rt.block_on(c.set_custom_value(host.as_moref(), key, &doc(1, 3600, h0b)))
        .expect("write the document");
    let took = wait_for(
        "the new document in /metrics",
        Duration::from_secs(2),
        || in_use(&get(&addr, "/metrics", Some(TOKEN)).1, "DC0_C0_H0") == Some(2.0),
    );
    eprintln!("document change visible in /metrics after {took:?}");

    // An open page follows a change without a reload (headless Chromium).
    if let Some(browser) = chromium(&format!("http://{addr}/?token={TOKEN}&once=1")) {
        let streams = || {
            let (_, h) = get(&addr, "/healthz", Some(TOKEN));
            serde_json::from_str::<serde_json::Value>(&h).expect("health JSON")["event_streams"]
                .as_u64()
                .unwrap_or(0)
        };
        wait_for("the page's event stream", Duration::from_secs(30), || {
            streams() >= 2
        });
        let h0c = vec![gpu(
            0,
            A100,
            true,
            true,
            &[
                gi("3g.20gb", 4, Some("vm-a")),
                gi("2g.10gb", 0, Some("vm-b")),
                gi("1g.5gb", 2, Some("vm-live")),
            ],
        )];
        rt.block_on(c.set_custom_value(host.as_moref(), key, &doc(1, 3600, h0c)))
            .expect("write the document");
        let out = browser.wait_with_output().expect("chromium");
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains("data-live-updates=\"1\"") || dom.contains("data-live-updates=\"2\""),
            "the page did not update itself:\n{}\n{dom}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            dom.contains("vm-live"),
            "the new occupant is not on the page:\n{dom}"
        );
    }

    // A vCenter restart: the simulator comes back with its initial documents, and the server
    // reads everything again.
    let syncs = || {
        let (_, health) = get(&addr, "/healthz", Some(TOKEN));
        serde_json::from_str::<serde_json::Value>(&health).expect("health JSON")["vcenters"][0]
            ["syncs"]
            .as_u64()
            .unwrap_or(0)
    };
    assert_eq!(syncs(), 1);
    env.vc.restart().expect("restart vcsim");
    let took = wait_for(
        "the re-read after the restart",
        Duration::from_secs(90),
        || syncs() >= 2 && in_use(&get(&addr, "/metrics", Some(TOKEN)).1, "DC0_C0_H0") == Some(1.0),
    );
    eprintln!("re-read {took:?} after vcsim was back");
    drop(server);
}

/// Headless Chromium dumping the DOM of `url` after a few seconds of the page's time (its
/// clock stands still while it waits for the network); `None` when Chromium is not
/// installed, which fails under CI.
fn chromium(url: &str) -> Option<Child> {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(bin) = bin else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed; CI needs it (scripts/deps.d/50-chromium.sh)"
        );
        eprintln!("SKIPPED the live page check: chromium is not installed");
        return None;
    };
    let profile = vmig_testkit::temp_dir("chromium-serve");
    let child = std::process::Command::new(bin)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args([
            "--disable-background-networking",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // The profile directory must outlive the browser.
    std::mem::forget(profile);
    Some(child)
}

/// Writes `text` to `path` with `mode`.
fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `vmig serve ARGS` that must refuse to start: its stderr.
fn refused(env: &Env, args: &[&str]) -> String {
    let out = env.vmig_cmd(args).output().expect("run vmig serve");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "vmig serve started: {err}");
    assert!(
        !err.contains("listening on"),
        "it opened the listener first: {err}"
    );
    err
}

#[test]
fn the_tls_listener_serves_https_and_refuses_wrong_files() {
    let builder = Vcsim::builder().clusters(1).hosts_per_cluster(1).vms(1);
    let env = Env::start(builder, "vmig-serve-tls");
    let ca = TestCa::generate("vmig serve test CA").expect("CA");
    let cert = ca
        .issue_server_cert(&["127.0.0.1", "localhost"])
        .expect("server certificate");
    let other = ca
        .issue_server_cert(&["127.0.0.1"])
        .expect("second certificate");
    let (cert_path, key_path) = (env.path("serve.pem"), env.path("serve.key"));
    write_mode(&cert_path, &cert.cert_pem, 0o644);
    write_mode(&key_path, &cert.key_pem, 0o600);
    let (cert_s, key_s) = (
        cert_path.to_str().expect("utf-8 path"),
        key_path.to_str().expect("utf-8 path"),
    );

    // Wrong files are refused at start, each with a sentence naming the file and the fix.
    let loose = env.path("loose.key");
    write_mode(&loose, &cert.key_pem, 0o644);
    let loose_s = loose.to_str().expect("utf-8 path");
    let err = refused(&env, &["serve", "--tls-cert", cert_s, "--tls-key", loose_s]);
    assert!(err.contains(loose_s) && err.contains("chmod 600"), "{err}");
    let wrong = env.path("other.key");
    write_mode(&wrong, &other.key_pem, 0o600);
    let wrong_s = wrong.to_str().expect("utf-8 path");
    let err = refused(&env, &["serve", "--tls-cert", cert_s, "--tls-key", wrong_s]);
    assert!(
        err.contains("the key does not belong to the certificate"),
        "{err}"
    );
    let missing = env.path("missing.key");
    let missing_s = missing.to_str().expect("utf-8 path");
    let err = refused(
        &env,
        &["serve", "--tls-cert", cert_s, "--tls-key", missing_s],
    );
    assert!(
        err.contains("cannot read the TLS key") && err.contains(missing_s),
        "{err}"
    );
    let err = refused(&env, &["serve", "--tls-cert", key_s, "--tls-key", key_s]);
    assert!(err.contains("holds no certificate"), "{err}");
    let err = refused(&env, &["serve", "--tls-cert", cert_s]);
    assert!(err.contains("--tls-key"), "{err}");

    let server = start_server_with(&env, &["--tls-cert", cert_s, "--tls-key", key_s]);
    let addr = server.addr.clone();
    let rt = Env::runtime();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA certificate"),
        )
        .build()
        .expect("HTTPS client");
    let https = |path: &str, token: Option<&str>| -> u16 {
        let mut req = client.get(format!("https://{addr}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        rt.block_on(req.send())
            .unwrap_or_else(|e| panic!("HTTPS GET {path}: {e:?}"))
            .status()
            .as_u16()
    };
    wait_for(
        "the first read, over HTTPS",
        Duration::from_secs(60),
        || https("/healthz", Some(TOKEN)) == 200,
    );
    assert_eq!(https("/metrics", Some(TOKEN)), 200);
    assert_eq!(https("/metrics", None), 401, "no token");
    assert_eq!(https("/metrics", Some("wrong")), 401, "wrong token");
    let body = rt
        .block_on(async {
            client
                .get(format!("https://{addr}/metrics"))
                .bearer_auth(TOKEN)
                .send()
                .await?
                .text()
                .await
        })
        .expect("metrics over HTTPS");
    assert!(body.contains("vmig_vcenter_up{"), "{body}");

    // Plain HTTP to the TLS listener gets no HTTP answer.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    // A reset is as good an answer as a close.
    let _ = s.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).contains("HTTP/1.1"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&raw)
    );
    drop(server);
}
