//! vCenter's event log: post an event about a host (`EventManager.PostEvent` with an
//! `EventEx`), and read a host's recent events back (`EventManager.QueryEvents`).
//!
//! Why `PostEvent` + `EventEx` and not `LogUserEvent`: `LogUserEvent` only takes a free text
//! (it becomes a `UserEvent`), so an alarm could match it only by type "user event" — every
//! script's log line. An `EventEx` carries an `eventTypeId` (`com.vmig.mig.gi.created`, …) and a
//! severity, which vCenter alarms can trigger on and the vSphere Client shows under the host's
//! Monitor › Events. Both need the privilege `Global.LogEvent` on the entity. govmomi's
//! simulator implements `PostEvent` (and not `LogUserEvent`), so this is also what tests can
//! read back. What vCenter does not guarantee: that events are kept (its event retention
//! setting decides), or that `createdTime` is the caller's (vCenter stamps its own).
use crate::client::Client;
use crate::error::{Error, Result};
use crate::moref::MoRef;
use crate::soap::decode::Node;
use crate::soap::encode::Request;

/// `EventEx.severity` (vim25 `EventEventSeverity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSeverity {
    Info,
    Warning,
    Error,
    User,
}

impl EventSeverity {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventSeverity::Info => "info",
            EventSeverity::Warning => "warning",
            EventSeverity::Error => "error",
            EventSeverity::User => "user",
        }
    }
}

/// An event about one host, to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent<'a> {
    /// The HostSystem.
    pub host: &'a MoRef,
    /// Its name (the event's `host.name`, shown by the client).
    pub host_name: &'a str,
    /// Dotted, vendor-prefixed id alarms match on, e.g. `com.vmig.mig.gi.created`.
    pub event_type_id: &'a str,
    pub severity: EventSeverity,
    /// One sentence, shown as the event's description.
    pub message: &'a str,
    /// RFC 3339 UTC time of what happened (vCenter replaces it with its own clock).
    pub created_time: &'a str,
}

/// An event read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedEvent {
    /// `Event.key`.
    pub key: i64,
    /// The `xsi:type` (`EventEx`, `UserEvent`, …).
    pub kind: String,
    pub created_time: Option<String>,
    /// `EventEx.eventTypeId`, when an `EventEx`.
    pub event_type_id: Option<String>,
    pub severity: Option<String>,
    /// `EventEx.message`, else `fullFormattedMessage`.
    pub message: Option<String>,
    /// The host the event names.
    pub host: Option<MoRef>,
}

impl PostedEvent {
    fn from_node(n: &Node) -> Result<Self> {
        Ok(PostedEvent {
            key: n.child_parse("key")?.unwrap_or_default(),
            kind: n.xsi_type().unwrap_or_default().to_string(),
            created_time: n.child_string("createdTime"),
            event_type_id: n.child_string("eventTypeId"),
            severity: n.child_string("severity"),
            message: n
                .child_string("message")
                .or_else(|| n.child_string("fullFormattedMessage")),
            host: n
                .child("host")
                .and_then(|h| h.child("host"))
                .and_then(|m| m.to_moref().ok()),
        })
    }
}

/// The `PostEvent` body (pure, so the element order is unit-tested: vCenter is strict about
/// the XSD sequence of `Event` then `EventEx`).
pub(crate) fn post_event_request(manager: &MoRef, e: &HostEvent<'_>) -> Result<String> {
    let mut r = Request::new("PostEvent", manager);
    r.open_typed("eventToPost", "EventEx");
    // Event: key, chainId, createdTime, userName, (datacenter, computeResource,) host, …
    r.int("key", 0);
    r.int("chainId", 0);
    r.text("createdTime", e.created_time)?;
    r.text("userName", "")?;
    r.open("host");
    r.text("name", e.host_name)?;
    r.moref("host", e.host);
    r.close("host");
    r.text("fullFormattedMessage", e.message)?;
    // EventEx: eventTypeId, severity, message, (arguments,) objectId, objectType, objectName.
    r.text("eventTypeId", e.event_type_id)?;
    r.text("severity", e.severity.as_str())?;
    r.text("message", e.message)?;
    r.text("objectId", e.host.value())?;
    r.text("objectType", "HostSystem")?;
    r.text("objectName", e.host_name)?;
    r.close("eventToPost");
    Ok(r.finish())
}

/// Most events read back by [`Client::host_events`] (vCenter pages at 1000 anyway).
pub const MAX_EVENTS_READ: u32 = 1000;

impl Client {
    fn event_manager(&self) -> Result<MoRef> {
        self.service_content()
            .event_manager
            .clone()
            .ok_or_else(|| Error::Decode {
                context: "ServiceContent".into(),
                detail: "no eventManager: events need vCenter (not a standalone ESXi host)".into(),
            })
    }

    /// `EventManager.PostEvent` of an `EventEx` about a host. Privilege `Global.LogEvent`.
    pub async fn post_host_event(&self, event: &HostEvent<'_>) -> Result<()> {
        let body = post_event_request(&self.event_manager()?, event)?;
        self.invoke("PostEvent", body).await.map(drop)
    }

    /// `EventManager.QueryEvents` for events about `host` (and its children), newest page.
    pub async fn host_events(&self, host: &MoRef) -> Result<Vec<PostedEvent>> {
        let mgr = self.event_manager()?;
        let mut r = Request::new("QueryEvents", &mgr);
        r.open("filter");
        r.open("entity");
        r.moref("entity", host);
        r.text("recursion", "self")?;
        r.close("entity");
        r.int("maxCount", i64::from(MAX_EVENTS_READ));
        r.close("filter");
        let resp = self.invoke("QueryEvents", r.finish()).await?;
        resp.children_named("returnval")
            .take(MAX_EVENTS_READ as usize)
            .map(PostedEvent::from_node)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_event_follows_the_xsd_order_and_escapes() {
        let host = MoRef::new("HostSystem", "host-21");
        let mgr = MoRef::new("EventManager", "EventManager");
        let body = post_event_request(
            &mgr,
            &HostEvent {
                host: &host,
                host_name: "esx<1>",
                event_type_id: "com.vmig.mig.gi.created",
                severity: EventSeverity::Info,
                message: "GPU 0: GI 1 (3g.20gb) created & ready",
                created_time: "2026-12-02T16:00:00Z",
            },
        )
        .expect("encodes");
        let order = [
            "<eventToPost xsi:type=\"EventEx\">",
            "<key>0</key>",
            "<chainId>0</chainId>",
            "<createdTime>",
            "<userName>",
            "<host><name>esx&lt;1&gt;</name><host type=\"HostSystem\">host-21</host></host>",
            "<fullFormattedMessage>",
            "<eventTypeId>com.vmig.mig.gi.created</eventTypeId>",
            "<severity>info</severity>",
            "<message>GPU 0: GI 1 (3g.20gb) created &amp; ready</message>",
            "<objectId>host-21</objectId>",
            "<objectType>HostSystem</objectType>",
        ];
        let mut at = 0;
        for part in order {
            let found = body[at..]
                .find(part)
                .unwrap_or_else(|| panic!("{part} after {at} in {body}"));
            at += found + part.len();
        }
    }
}
