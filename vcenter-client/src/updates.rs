//! The incremental property collector: `WaitForUpdatesEx` on a private
//! `PropertyCollector` with one `PropertyFilter`, so that a long-running
//! reader (`vmig serve`) learns about changes within seconds without reading
//! the inventory again.
//!
//! The collector is private (`CreatePropertyCollector`) so its filter and
//! version never mix with other users of the session's default collector. It
//! belongs to the session: after a re-login (or a vCenter restart) it is gone,
//! and so is the meaning of its version. Callers therefore treat *any* error
//! from [`Client::wait_for_updates`] (notably `InvalidCollectorVersion`,
//! `ManagedObjectNotFound` for the collector, or a network error) as "start
//! over": create a new collector and read the full state again.

use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::moref::{ContainerViewRef, MoRef};
use crate::property::{FilterSpec, MissingProperty, PropertySpec};
use std::ops::ControlFlow;

use crate::soap::decode::{self, Mode, Node};
use crate::soap::encode::Request;
use crate::soap::fault::Fault;

/// A private property collector with one filter, and the version reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateCollector {
    /// The collector (`CreatePropertyCollector`).
    pub collector: MoRef,
    /// Its filter (`CreateFilter`).
    pub filter: MoRef,
    /// The `UpdateSet.version` of the last answer; empty before the first.
    pub version: String,
}

/// `ObjectUpdate.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// The object entered the filter's set (also: every object in the first answer).
    Enter,
    /// Properties of the object changed.
    Modify,
    /// The object left the set (deleted or moved out).
    Leave,
}

/// One `PropertyChange`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyChange {
    /// The property path.
    pub name: String,
    /// `assign`, `add`, `remove`, `indirectRemove`.
    pub op: String,
    /// The new value (absent for removals and for a property that became unset).
    pub val: Option<Node>,
}

/// One `ObjectUpdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUpdate {
    /// What happened.
    pub kind: UpdateKind,
    /// The object.
    pub obj: MoRef,
    /// Its changed properties.
    pub changes: Vec<PropertyChange>,
    /// Properties that could not be read.
    pub missing: Vec<MissingProperty>,
}

impl ObjectUpdate {
    /// The new value of `name`, when it changed to a set value.
    pub fn value(&self, name: &str) -> Option<&Node> {
        self.changes
            .iter()
            .rev()
            .find(|c| c.name == name)
            .and_then(|c| c.val.as_ref())
    }

    /// Whether `name` is among the changes (set or unset).
    pub fn changed(&self, name: &str) -> bool {
        self.changes.iter().any(|c| c.name == name)
    }
}

/// One `UpdateSet`: every object update of the collector's filter since the version asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateSet {
    /// The version to ask for next.
    pub version: String,
    /// The updates, in server order.
    pub objects: Vec<ObjectUpdate>,
    /// Whether the server cut the set short (more follows at once with `version`).
    pub truncated: bool,
}

impl UpdateSet {
    /// Decodes a `WaitForUpdatesExResponse/returnval`.
    pub fn from_node(n: &Node) -> Result<Self> {
        let mut set = UpdateSet {
            version: n.child_string("version").unwrap_or_default(),
            objects: Vec::new(),
            truncated: n.child_bool("truncated")?.unwrap_or(false),
        };
        for fs in n.children_named("filterSet") {
            for os in fs.children_named("objectSet") {
                set.objects.push(object_update(os)?);
            }
        }
        Ok(set)
    }
}

fn object_update(os: &Node) -> Result<ObjectUpdate> {
    let kind = match os.child_text("kind") {
        Some("enter") => UpdateKind::Enter,
        Some("modify") => UpdateKind::Modify,
        Some("leave") => UpdateKind::Leave,
        other => {
            return Err(Error::Decode {
                context: "ObjectUpdate.kind".into(),
                detail: format!("unknown kind {other:?}"),
            });
        }
    };
    let obj = os
        .child("obj")
        .ok_or_else(|| os.bad("ObjectUpdate with obj"))?
        .to_moref()?;
    let changes = os
        .children_named("changeSet")
        .map(|c| PropertyChange {
            name: c.child_string("name").unwrap_or_default(),
            op: c.child_string("op").unwrap_or_else(|| "assign".into()),
            val: c.child("val").cloned(),
        })
        .collect();
    let missing = os
        .children_named("missingSet")
        .map(|c| MissingProperty {
            path: c.child_string("path").unwrap_or_default(),
            fault: c
                .child("fault")
                .map(Fault::from_localized)
                .unwrap_or_else(|| Fault::from_detail(c, String::new())),
        })
        .collect();
    Ok(ObjectUpdate {
        kind,
        obj,
        changes,
        missing,
    })
}

/// What [`Client::wait_for_updates_each`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamedUpdates {
    /// Object updates handed out.
    pub objects: usize,
    /// The server sent only part of the updates (`UpdateSet.truncated`): wait again, at
    /// once, for the rest.
    pub truncated: bool,
}

/// `WaitForUpdatesEx` from `c`'s version, waiting at most `max_wait`.
fn wait_request(c: &UpdateCollector, max_wait: Duration) -> Result<String> {
    let mut r = Request::new("WaitForUpdatesEx", &c.collector);
    if !c.version.is_empty() {
        r.text("version", &c.version)?;
    }
    r.open("options");
    r.int(
        "maxWaitSeconds",
        i64::try_from(max_wait.as_secs()).unwrap_or(i64::MAX),
    );
    r.close("options");
    Ok(r.finish())
}

impl FilterSpec {
    /// Several object types of one container view, each with its own properties (what
    /// an update collector over hosts *and* VMs watches).
    pub fn container_view_types(view: &ContainerViewRef, types: &[(&str, &[&str])]) -> Self {
        let mut spec = FilterSpec::container_view(view, types.first().map_or("", |t| t.0), &[]);
        spec.props = types
            .iter()
            .map(|(t, paths)| PropertySpec {
                type_name: (*t).to_string(),
                paths: paths.iter().map(|p| (*p).to_string()).collect(),
            })
            .collect();
        spec
    }
}

/// Whether `e` says the collector's version is no longer valid: the caller must read the
/// full state again (a new collector starts from an empty version).
pub fn is_invalid_collector_version(e: &Error) -> bool {
    e.fault()
        .is_some_and(|f| f.type_name == "InvalidCollectorVersion")
}

impl Client {
    /// Creates a private property collector with one filter over `spec`
    /// (`CreatePropertyCollector` + `CreateFilter`, privilege `System.View`).
    pub async fn create_update_collector(&self, spec: &FilterSpec) -> Result<UpdateCollector> {
        let pc = self.service_content().property_collector.clone();
        let r = Request::new("CreatePropertyCollector", &pc);
        let resp = self.invoke("CreatePropertyCollector", r.finish()).await?;
        let collector = resp
            .child("returnval")
            .ok_or_else(|| resp.bad("CreatePropertyCollector returnval"))?
            .to_moref()?;
        let mut r = Request::new("CreateFilter", &collector);
        spec.encode(&mut r, "spec")?;
        // Whole values: a changed customValue arrives as the full array, which the
        // reader decodes like a retrieved one.
        r.bool("partialUpdates", false);
        let filter = match self.invoke("CreateFilter", r.finish()).await {
            Ok(resp) => resp
                .child("returnval")
                .ok_or_else(|| resp.bad("CreateFilter returnval"))?
                .to_moref()?,
            Err(e) => {
                let r = Request::new("DestroyPropertyCollector", &collector);
                // Best effort: the session's end removes it anyway.
                let _ = self.call_once("DestroyPropertyCollector", r.finish()).await;
                return Err(e);
            }
        };
        Ok(UpdateCollector {
            collector,
            filter,
            version: String::new(),
        })
    }

    /// `WaitForUpdatesEx` from `c.version`, waiting at most `max_wait` for a change.
    /// `None` when nothing changed in that time. The first call (empty version) returns
    /// every object of the filter as `enter`. On success `c.version` moves on.
    ///
    /// Errors are not retried here (a re-login would not bring the collector back): see the
    /// module documentation.
    pub async fn wait_for_updates(
        &self,
        c: &mut UpdateCollector,
        max_wait: Duration,
    ) -> Result<Option<UpdateSet>> {
        let resp = self
            .call_once("WaitForUpdatesEx", wait_request(c, max_wait)?)
            .await?;
        let Some(rv) = resp.child("returnval") else {
            return Ok(None);
        };
        let set = UpdateSet::from_node(rv)?;
        if !set.version.is_empty() {
            c.version.clone_from(&set.version);
        }
        Ok(Some(set))
    }

    /// Like [`Client::wait_for_updates`], but each object update goes to `visit` as soon
    /// as it is read instead of into a set: a collector's first answer holds every object
    /// of its filter (over 40,000 at vCenter's maximum inventory), which, kept whole, takes
    /// about ten times its size in memory. `Ok(None)` when nothing changed in `max_wait`;
    /// `c.version` moves on as there.
    pub async fn wait_for_updates_each(
        &self,
        c: &mut UpdateCollector,
        max_wait: Duration,
        mut visit: impl FnMut(ObjectUpdate) + Send,
    ) -> Result<Option<StreamedUpdates>> {
        let mut seen = 0;
        let mut emit = |node: Node| -> Result<ControlFlow<()>> {
            visit(object_update(&node)?);
            seen += 1;
            Ok(ControlFlow::Continue(()))
        };
        let root = self
            .transport()
            .call(
                "WaitForUpdatesEx",
                wait_request(c, max_wait)?,
                Mode::StreamUpdates,
                &mut emit,
            )
            .await?
            .ok_or_else(|| Error::Decode {
                context: "WaitForUpdatesEx response".into(),
                detail: "parsing stopped early".into(),
            })?;
        let resp = decode::into_response(root, "WaitForUpdatesEx")?;
        let Some(rv) = resp.child("returnval") else {
            return Ok(None);
        };
        if let Some(v) = rv.child_string("version").filter(|v| !v.is_empty()) {
            c.version = v;
        }
        Ok(Some(StreamedUpdates {
            objects: seen,
            truncated: rv.child_bool("truncated")?.unwrap_or(false),
        }))
    }

    /// `DestroyPropertyCollector` (its filter goes with it).
    pub async fn destroy_update_collector(&self, c: &UpdateCollector) -> Result<()> {
        let r = Request::new("DestroyPropertyCollector", &c.collector);
        self.call_once("DestroyPropertyCollector", r.finish())
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::decode::parse_whole;

    const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>7</version>
<filterSet><filter type="PropertyFilter">session[x]1</filter>
<objectSet><kind>modify</kind><obj type="HostSystem">host-21</obj>
<changeSet><name>customValue</name><op>assign</op><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>101</key><value>{"a":1}</value></CustomFieldValue></val></changeSet>
</objectSet>
<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-9</obj></objectSet>
</filterSet></returnval></WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn streamed_updates_are_handed_out_one_by_one() {
        let mut objects = Vec::new();
        let root = decode::parse_sync(ANSWER.as_bytes(), Mode::StreamUpdates, &mut |n| {
            objects.push(object_update(&n)?);
            Ok(ControlFlow::Continue(()))
        })
        .unwrap()
        .unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].obj, MoRef::new("HostSystem", "host-21"));
        assert_eq!(objects[1].kind, UpdateKind::Leave);
        let resp = decode::into_response(root, "WaitForUpdatesEx").unwrap();
        let rv = resp.child("returnval").unwrap();
        assert_eq!(rv.child_string("version").as_deref(), Some("7"));
        // What is left of the set holds no object.
        assert_eq!(UpdateSet::from_node(rv).unwrap().objects.len(), 0);
    }

    #[test]
    fn decodes_an_update_set() {
        let resp = parse_whole(ANSWER.as_bytes(), "WaitForUpdatesEx").unwrap();
        let set = UpdateSet::from_node(resp.child("returnval").unwrap()).unwrap();
        assert_eq!(set.version, "7");
        assert!(!set.truncated);
        assert_eq!(set.objects.len(), 2);
        let host = &set.objects[0];
        assert_eq!(host.kind, UpdateKind::Modify);
        assert_eq!(host.obj, MoRef::new("HostSystem", "host-21"));
        let cv = crate::CustomValues::from_node(host.value("customValue").unwrap()).unwrap();
        assert_eq!(cv.get(crate::CustomFieldKey(101)), Some(r#"{"a":1}"#));
        assert_eq!(set.objects[1].kind, UpdateKind::Leave);
        assert!(set.objects[1].changes.is_empty());
    }

    #[test]
    fn unknown_kind_is_a_decode_error() {
        let doc = ANSWER.replace("<kind>leave</kind>", "<kind>sideways</kind>");
        let resp = parse_whole(doc.as_bytes(), "WaitForUpdatesEx").unwrap();
        assert!(UpdateSet::from_node(resp.child("returnval").unwrap()).is_err());
    }
}
