//! Behaviour vcsim 0.24 cannot show, against a scripted HTTP server that
//! answers like real vCenter 8: a quoted `vmware_soap_session` cookie marked
//! `Secure` (sent back verbatim even over plain http), property-collector
//! paging through `ContinueRetrievePropertiesEx` with the token before the
//! objects, cancelling the remaining pages, a task that is queued and running
//! before it succeeds, and a fault-only HTTP 500.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use vcenter_client::{
    Client, ConnectOptions, Credentials, FaultKind, FilterSpec, MoRef, RetrieveOptions, TaskRef,
    TaskState, TaskWait, TlsPolicy,
};

const COOKIE: &str = r#"vmware_soap_session="6898e317c3fdc0c061e9a5f6ee8b200e2561852d""#;

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn vm(id: u32) -> String {
    format!(
        r#"<objects><obj type="VirtualMachine">vm-{id}</obj><propSet><name>name</name><val xsi:type="xsd:string">vm{id}</val></propSet></objects>"#
    )
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    methods: Vec<String>,
    cookies: Vec<Option<String>>,
    actions: Vec<String>,
    task_polls: usize,
}

fn answer(method: &str, seen: &mut Seen) -> (u16, String, bool) {
    let ok = |b: String| (200, envelope(&b), false);
    match method {
        "RetrieveServiceContent" => ok(r#"<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><name>VMware vCenter Server</name><fullName>VMware vCenter Server 8.0.3 build-24022515</fullName><vendor>VMware, Inc.</vendor><version>8.0.3</version><build>24022515</build><apiType>VirtualCenter</apiType><apiVersion>8.0.3.0</apiVersion><instanceUuid>x</instanceUuid></about><sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex><customFieldsManager type="CustomFieldsManager">CustomFieldsManager</customFieldsManager></returnval></RetrieveServiceContentResponse>"#.into()),
        "Login" => (200, envelope(r#"<LoginResponse xmlns="urn:vim25"><returnval><key>52a1</key><userName>VSPHERE.LOCAL\svc</userName><fullName>svc </fullName><loginTime>2026-11-24T10:00:00Z</loginTime></returnval></LoginResponse>"#), true),
        // Page 1: token first, as vCenter writes it.
        "RetrievePropertiesEx" => ok(format!(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>p2</token>{}{}</returnval></RetrievePropertiesExResponse>"#,
            vm(1),
            vm(2)
        )),
        "ContinueRetrievePropertiesEx:p2" => ok(format!(
            r#"<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>p3</token>{}</returnval></ContinueRetrievePropertiesExResponse>"#,
            vm(3)
        )),
        "ContinueRetrievePropertiesEx:p3" => ok(format!(
            r#"<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>{}</returnval></ContinueRetrievePropertiesExResponse>"#,
            vm(4)
        )),
        "CancelRetrievePropertiesEx" => ok(r#"<CancelRetrievePropertiesExResponse xmlns="urn:vim25"></CancelRetrievePropertiesExResponse>"#.into()),
        "RetrievePropertiesEx:task" => {
            seen.task_polls += 1;
            let state = match seen.task_polls {
                1 => "queued",
                2 => "running",
                _ => "success",
            };
            ok(format!(
                r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="Task">task-7</obj><propSet><name>info</name><val xsi:type="TaskInfo"><key>task-7</key><task type="Task">task-7</task><descriptionId>VirtualMachine.reconfigure</descriptionId><entity type="VirtualMachine">vm-1</entity><state>{state}</state><cancelled>false</cancelled><cancelable>false</cancelable><progress>50</progress></val></propSet></objects></returnval></RetrievePropertiesExResponse>"#
            ))
        }
        _ => (
            500,
            envelope(&format!(
                r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Unable to resolve WSDL method name {method}</faultstring><detail><InvalidRequestFault xmlns="urn:vim25" xsi:type="InvalidRequest"></InvalidRequestFault></detail></soapenv:Fault>"#
            )),
            false,
        ),
    }
}

/// Serves HTTP/1.1 keep-alive connections until the test ends.
async fn serve(listener: TcpListener, seen: Arc<Mutex<Seen>>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let (r, mut w) = sock.into_split();
            let mut r = BufReader::new(r);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let (mut len, mut cookie, mut action) = (0usize, None, String::new());
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).await.unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => len = v.trim().parse().unwrap(),
                        "cookie" => cookie = Some(v.trim().to_string()),
                        "soapaction" => action = v.trim().to_string(),
                        _ => {}
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).await.unwrap();
                let body = String::from_utf8(body).unwrap();
                let (status, text, set_cookie) = if path.ends_with("vimServiceVersions.xml") {
                    (200, r#"<?xml version="1.0" encoding="UTF-8"?><namespaces version="1.0"><namespace><name>urn:vim25</name><version>8.0.3.0</version><priorVersions><version>8.0.2.0</version></priorVersions></namespace></namespaces>"#.to_string(), false)
                } else {
                    let method = body
                        .split(r#" xmlns="urn:vim25">"#)
                        .next()
                        .and_then(|s| s.rsplit('<').next())
                        .unwrap_or("")
                        .to_string();
                    let key = if method == "ContinueRetrievePropertiesEx" {
                        let t = body
                            .split("<token>")
                            .nth(1)
                            .and_then(|s| s.split('<').next())
                            .unwrap_or("");
                        format!("{method}:{t}")
                    } else if method == "RetrievePropertiesEx"
                        && body.contains(r#"<obj type="Task">"#)
                    {
                        format!("{method}:task")
                    } else {
                        method.clone()
                    };
                    let mut s = seen.lock().unwrap();
                    s.methods.push(key.clone());
                    s.cookies.push(cookie.clone());
                    s.actions.push(action.clone());
                    answer(&key, &mut s)
                };
                let mut resp = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n",
                    if status == 200 {
                        "OK"
                    } else {
                        "Internal Server Error"
                    },
                    text.len()
                );
                if set_cookie {
                    resp.push_str(&format!(
                        "Set-Cookie: {COOKIE}; Path=/; HttpOnly; Secure;\r\n"
                    ));
                    resp.push_str("Set-Cookie: other=1; Path=/\r\n");
                }
                resp.push_str("\r\n");
                resp.push_str(&text);
                if w.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn mock() -> (Client, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sdk", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    tokio::spawn(serve(listener, seen.clone()));
    let client = Client::connect(ConnectOptions::new(
        url,
        Credentials::new("svc", "pw"),
        TlsPolicy::Insecure,
    ))
    .await
    .unwrap();
    (client, seen)
}

fn spec() -> FilterSpec {
    FilterSpec::objects(
        "VirtualMachine",
        [&MoRef::new("VirtualMachine", "vm-1")],
        &["name"],
    )
}

#[tokio::test]
async fn pages_are_followed_and_the_quoted_secure_cookie_is_sent_back() {
    let (c, seen) = mock().await;
    assert_eq!(c.api_version().as_str(), "8.0.3.0");
    let mut names = Vec::new();
    let stats = c
        .retrieve_properties(&spec(), RetrieveOptions::default(), |oc| {
            names.push(oc.get("name").unwrap().text().to_string());
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(names, ["vm1", "vm2", "vm3", "vm4"]);
    assert_eq!((stats.objects, stats.pages, stats.stopped), (4, 3, false));
    let s = seen.lock().unwrap();
    assert_eq!(
        s.methods,
        [
            "RetrieveServiceContent",
            "Login",
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx:p2",
            "ContinueRetrievePropertiesEx:p3"
        ]
    );
    // No cookie before login; afterwards exactly vCenter's quoted value, even over http.
    assert_eq!(s.cookies[..2], [None, None]);
    assert!(
        s.cookies[2..].iter().all(|c| c.as_deref() == Some(COOKIE)),
        "{:?}",
        s.cookies
    );
    assert!(
        s.actions.iter().all(|a| a == "urn:vim25/8.0.3.0"),
        "{:?}",
        s.actions
    );
}

#[tokio::test]
async fn stopping_early_cancels_the_remaining_pages() {
    let (c, seen) = mock().await;
    let stats = c
        .retrieve_properties(&spec(), RetrieveOptions::default(), |_| {
            ControlFlow::Break(())
        })
        .await
        .unwrap();
    assert_eq!((stats.objects, stats.pages, stats.stopped), (1, 1, true));
    assert_eq!(
        seen.lock().unwrap().methods.last().map(String::as_str),
        Some("CancelRetrievePropertiesEx")
    );
}

#[tokio::test]
async fn tasks_are_polled_through_queued_and_running() {
    let (c, seen) = mock().await;
    let wait = TaskWait {
        initial_interval: std::time::Duration::from_millis(1),
        ..TaskWait::default()
    };
    let info = c
        .wait_for_task(&TaskRef::new("task-7"), wait)
        .await
        .unwrap();
    assert_eq!(info.state, TaskState::Success);
    assert_eq!(info.operation, "VirtualMachine.reconfigure");
    assert_eq!(seen.lock().unwrap().task_polls, 3);
}

#[tokio::test]
async fn http_500_faults_are_typed() {
    let (c, _) = mock().await;
    let err = c.current_time().await.unwrap_err();
    assert_eq!(err.fault_kind(), Some(&FaultKind::Other));
    assert_eq!(err.fault().unwrap().type_name, "InvalidRequest");
    assert!(err.to_string().contains("CurrentTime"), "{err}");
}
