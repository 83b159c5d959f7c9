//! The harness against the real simulator: TLS verified by the generated CA, SOAP calls,
//! injected GPU data and custom values, restart on the same port, and cleanup on drop.
use reqwest::blocking::Client;
use vmig_testkit::{
    GpuConfig, GpuModelSpec, GpuRule, TlsMode, Vcsim, process_alive, sha256_thumbprint,
    unrelated_ca_pem,
};

/// A client that trusts only `ca_pem`, like vcenter-client configured with a CA file.
fn client_trusting(ca_pem: &[u8]) -> Client {
    let ca = reqwest::Certificate::from_pem(ca_pem).expect("CA PEM");
    Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .tls_info(true)
        .build()
        .expect("HTTP client")
}

fn client_for(sim: &Vcsim) -> Client {
    client_trusting(sim.tls().expect("TLS mode").ca_pem.as_bytes())
}

/// Sends one SOAP request; returns the body and the session cookie the server set, if any.
fn soap(
    client: &Client,
    sim: &Vcsim,
    cookie: Option<&str>,
    body: &str,
) -> (String, Option<String>) {
    let envelope = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    );
    let mut req = client
        .post(sim.url())
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "urn:vim25/6.5")
        .body(envelope);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let resp = req.send().expect("SOAP request");
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (resp.text().expect("SOAP body"), set_cookie)
}

fn login(client: &Client, sim: &Vcsim, user: &str, password: &str) -> (String, Option<String>) {
    soap(
        client,
        sim,
        None,
        &format!(
            r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>{user}</userName><password>{password}</password></Login>"#
        ),
    )
}

/// The text from the end of the first `marker` up to the next `<`.
fn text_after<'a>(xml: &'a str, marker: &str) -> Option<&'a str> {
    let from = xml.find(marker)? + marker.len();
    Some(&xml[from..from + xml[from..].find('<')?])
}

#[test]
fn serves_gpu_hosts_over_verified_tls() {
    let fake = GpuModelSpec {
        name: "NVIDIA Test GPU".into(),
        device_id: 0x9A1B,
        sub_device_id: 0x8001,
        memory_mib: 1024,
        vgpu_types: vec!["grid_test-1-1c".into()],
    };
    let sim = Vcsim::builder()
        .clusters(1)
        .hosts_per_cluster(2)
        .standalone_hosts(1)
        .vms(1)
        .gpu_hosts(
            GpuConfig::default()
                .model("test-gpu", fake)
                .rule(GpuRule::clusters("DC0_C*").gpu("a100-pcie-40gb", 2))
                .rule(GpuRule::hosts("DC0_H0").gpu("test-gpu", 1)),
        )
        .custom_value("DC0_C0_H1", "vmig.test", r#"{"v":1}"#)
        .tls(TlsMode::GeneratedCa)
        .start()
        .expect("vcsim starts");
    assert!(sim.url().starts_with("https://127.0.0.1:"), "{}", sim.url());
    assert!(sim.url().ends_with("/sdk"));
    let client = client_for(&sim);

    // TLS: verified against the generated CA, and the server presents the certificate whose
    // thumbprint the harness reports.
    let resp = client
        .get(format!("{}/sdk/vimServiceVersions.xml", sim.base_url()))
        .send()
        .expect("vimServiceVersions.xml over verified TLS");
    assert!(resp.status().is_success());
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("peer certificate")
        .to_vec();
    assert_eq!(Some(sha256_thumbprint(&der).as_str()), sim.thumbprint());
    assert!(resp.text().unwrap().contains("urn:vim25"));

    let (content, _) = soap(
        &client,
        &sim,
        None,
        r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#,
    );
    assert_eq!(
        text_after(&content, r#"<rootFolder type="Folder">"#),
        Some("group-d1"),
        "{content}"
    );

    let (body, cookie) = login(&client, &sim, sim.username(), sim.password());
    assert!(body.contains("LoginResponse"), "{body}");
    let cookie = cookie.expect("session cookie");
    let (view, _) = soap(
        &client,
        &sim,
        Some(&cookie),
        r#"<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">group-d1</container><type>HostSystem</type><recursive>true</recursive></CreateContainerView>"#,
    );
    let view = text_after(&view, r#"<returnval type="ContainerView">"#)
        .expect("ContainerView")
        .to_owned();
    let (props, _) = soap(
        &client,
        &sim,
        Some(&cookie),
        &format!(
            r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>HostSystem</type><pathSet>name</pathSet><pathSet>config.sharedPassthruGpuTypes</pathSet><pathSet>config.graphicsInfo</pathSet><pathSet>config.graphicsConfig</pathSet><pathSet>config.sharedGpuCapabilities</pathSet><pathSet>customValue</pathSet><pathSet>hardware.pciDevice</pathSet></propSet><objectSet><obj type="ContainerView">{view}</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path></selectSet></objectSet></specSet><options/></RetrievePropertiesEx>"#
        ),
    );
    let hosts: Vec<&str> = props.split("<objects>").skip(1).collect();
    assert_eq!(hosts.len(), 3, "{props}");
    let host = |name: &str| {
        *hosts
            .iter()
            .find(|h| h.contains(&format!(">{name}</val>")))
            .unwrap_or_else(|| panic!("host {name} in {props}"))
    };

    let a100 = host("DC0_C0_H0");
    assert!(a100.contains("<string>grid_a100-3-20c</string>"));
    assert!(a100.contains("<deviceName>NVIDIA A100-PCIE-40GB</deviceName>"));
    assert!(a100.contains("<pciId>0000:5e:00.0</pciId>"), "two boards");
    assert!(a100.contains("<graphicsType>sharedDirect</graphicsType>"));
    assert!(
        a100.contains(
            "<sharedPassthruAssignmentPolicy>performance</sharedPassthruAssignmentPolicy>"
        )
    );
    assert!(a100.contains("<vgpu>grid_a100-7-40c</vgpu>"));
    assert!(a100.contains("<vendorId>4318</vendorId><subVendorId>4318</subVendorId>"));
    assert!(a100.contains("<deviceId>8433</deviceId>"), "0x20F1");

    // PCI ids >= 0x8000 travel as negative xsd:short, as on a real host.
    let fake = host("DC0_H0");
    assert!(
        fake.contains("<deviceId>-26085</deviceId><subDeviceId>-32767</subDeviceId>"),
        "{fake}"
    );
    assert!(fake.contains("<string>grid_test-1-1c</string>"));

    let annotated = host("DC0_C0_H1");
    assert!(
        annotated.contains(r#"<value>{&#34;v&#34;:1}</value>"#),
        "{annotated}"
    );
}

#[test]
fn an_unrelated_ca_is_rejected() {
    let sim = Vcsim::builder().vms(0).start().expect("vcsim starts");
    let dir = vmig_testkit::temp_dir("wrong-ca");
    let wrong = std::fs::read(unrelated_ca_pem(dir.path()).unwrap()).unwrap();
    let err = client_trusting(&wrong)
        .get(format!("{}/sdk/vimServiceVersions.xml", sim.base_url()))
        .send()
        .expect_err("TLS must fail with a CA that did not sign the server certificate");
    assert!(err.is_connect(), "{err:?}");
}

#[test]
fn restart_keeps_port_and_certificate_and_drop_kills() {
    let mut sim = Vcsim::builder().vms(0).start().expect("vcsim starts");
    let (url, port, thumbprint) = (
        sim.url().to_owned(),
        sim.port(),
        sim.thumbprint().map(str::to_owned),
    );
    let first = sim.pid().expect("running");
    let dir = sim.dir().to_path_buf();

    sim.kill().expect("kill");
    assert_eq!(sim.pid(), None);
    assert!(!process_alive(first), "pid {first} alive after kill");
    let client = client_for(&sim);
    assert!(
        client
            .get(format!("{}/sdk/vimServiceVersions.xml", sim.base_url()))
            .send()
            .is_err()
    );

    sim.restart().expect("restart");
    let second = sim.pid().expect("running again");
    assert_ne!(first, second);
    assert_eq!((sim.url(), sim.port()), (url.as_str(), port));
    assert_eq!(sim.thumbprint().map(str::to_owned), thumbprint);
    let resp = client
        .get(format!("{}/sdk/vimServiceVersions.xml", sim.base_url()))
        .send();
    assert!(resp.expect("same CA still verifies").status().is_success());

    // The VM files went to this instance's TMPDIR; SIGTERM made vcsim delete them.
    sim.kill().expect("kill");
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("tmp")).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "vcsim left {leftovers:?}; its log:\n{}",
        sim.log()
    );

    sim.restart().expect("restart after kill");
    let third = sim.pid().expect("running");
    drop(sim);
    assert!(!process_alive(third), "pid {third} alive after drop");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn plain_http_and_strict_credentials() {
    let sim = Vcsim::builder()
        .tls(TlsMode::Plain)
        .credentials("administrator@vsphere.local", "s3cret!")
        .api_version("7.0.3.0")
        .vms(0)
        .start()
        .expect("vcsim starts");
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    assert_eq!(sim.thumbprint(), None);
    let client = Client::new();
    let versions = client
        .get(format!("{}/sdk/vimServiceVersions.xml", sim.base_url()))
        .send()
        .and_then(|r| r.text())
        .expect("versions");
    assert!(versions.contains("7.0.3.0"), "{versions}");
    let (wrong, _) = login(&client, &sim, "administrator@vsphere.local", "nope");
    assert!(wrong.contains("InvalidLogin"), "{wrong}");
    let (right, cookie) = login(&client, &sim, sim.username(), sim.password());
    assert!(
        right.contains("LoginResponse") && cookie.is_some(),
        "{right}"
    );
}

#[test]
fn a_bad_gpu_config_fails_fast_with_the_simulators_message() {
    let err = Vcsim::builder()
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts("*").gpu("a100-pcie-4gb", 1)))
        .start()
        .expect_err("unknown model");
    let text = err.to_string();
    assert!(text.contains("unknown model \"a100-pcie-4gb\""), "{text}");
}

#[test]
fn builds_workspace_binaries_with_the_tests_profile() {
    let probe = vmig_testkit::workspace_bin("testkit-probe");
    assert!(
        probe.starts_with(&vmig_testkit::target_layout().profile_dir),
        "{}",
        probe.display()
    );
    let out = std::process::Command::new(&probe)
        .output()
        .expect("run testkit-probe");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("testkit-probe "));
    // Cached: the second call neither builds nor moves the binary.
    assert_eq!(
        vmig_testkit::workspace_bin_in("vmig-testkit", "testkit-probe"),
        probe
    );
}
