//! Sessions against vcsim: wrong password, keep-alive, expiry and transparent
//! re-login (also on the property collector path, where vcsim reports the
//! missing session per property), logout, and concurrent use of clones.

mod client_support;

use std::ops::ControlFlow;

use client_support::{connect, options, start};
use vcenter_client::{
    Client, ConnectOptions, Credentials, FaultKind, HostProperty, RetrieveOptions,
};
use vmig_testkit::Vcsim;

#[tokio::test]
async fn wrong_password_is_invalid_login() {
    let sim = start(Vcsim::builder().credentials("admin", "right-pass"));
    let ok = connect(&sim).await;
    assert_eq!(ok.session().unwrap().user_name, "admin");

    let mut opts: ConnectOptions = options(&sim);
    opts.credentials = Credentials::new("admin", "wrong-pass");
    let err = Client::connect(opts).await.unwrap_err();
    assert_eq!(err.fault_kind(), Some(&FaultKind::InvalidLogin), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-pass"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_is_renewed_transparently() {
    let sim = start(Vcsim::builder());
    let a = connect(&sim).await;
    let admin = connect(&sim).await;
    let first = a.session().unwrap();
    assert!(
        admin
            .session_is_active(&first.key, &first.user_name)
            .await
            .unwrap()
    );

    // Another session ends ours, as vCenter's idle timeout would.
    admin
        .terminate_sessions(std::slice::from_ref(&first.key))
        .await
        .unwrap();
    assert!(
        !admin
            .session_is_active(&first.key, &first.user_name)
            .await
            .unwrap()
    );

    // An ordinary call logs in again and succeeds.
    a.current_time().await.unwrap();
    let second = a.session().unwrap();
    assert_ne!(first.key, second.key);

    // The streaming property-collector path: vcsim answers a sessionless
    // RetrievePropertiesEx with NotAuthenticated per property, not a fault.
    admin
        .terminate_sessions(std::slice::from_ref(&second.key))
        .await
        .unwrap();
    let hosts = a.hosts(&[HostProperty::Name]).await.unwrap();
    assert_eq!(hosts.len(), 4);
    assert!(hosts.iter().all(|h| h.name.is_some()));
    let third = a.session().unwrap();
    assert_ne!(second.key, third.key);

    // Many clones hitting the expiry at once share one connection pool and
    // end up with one working session.
    admin
        .terminate_sessions(std::slice::from_ref(&third.key))
        .await
        .unwrap();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = a.clone();
            tokio::spawn(async move { c.current_time().await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let key = a.session().unwrap().key;
    assert!(
        admin
            .session_is_active(&key, &third.user_name)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn logout_ends_the_session_for_good() {
    let sim = start(Vcsim::builder());
    let c = connect(&sim).await;
    c.logout().await.unwrap();
    let err = c.current_time().await.unwrap_err();
    assert!(err.is_not_authenticated(), "{err}");
    let mut n = 0;
    let err = c
        .for_each_host(&[HostProperty::Name], RetrieveOptions::default(), |_| {
            n += 1;
            ControlFlow::Continue(())
        })
        .await
        .unwrap_err();
    assert!(err.is_not_authenticated(), "{err}");
    assert_eq!(n, 0);
    // An explicit login brings it back.
    c.login().await.unwrap();
    c.current_time().await.unwrap();
}
