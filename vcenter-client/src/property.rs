//! PropertyCollector reads and ViewManager container views.
//!
//! `RetrievePropertiesEx` answers are parsed while they arrive: each
//! `ObjectContent` is handed to the caller's visitor and dropped before the
//! next one is read, and pages are followed through
//! `ContinueRetrievePropertiesEx` while the server returns a `token`. vcsim
//! 0.24 never pages (no token, and no `ContinueRetrievePropertiesEx` at all);
//! real vCenter pages even when `maxObjects` is unset.

use std::num::NonZeroU32;
use std::ops::ControlFlow;

use serde::Serialize;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::moref::{ContainerViewRef, MoRef};
use crate::soap::decode::{self, Mode, Node};
use crate::soap::encode::Request;
use crate::soap::fault::Fault;

/// Which properties to read on objects of one type (`PropertySpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertySpec {
    /// Managed object type, e.g. `HostSystem`.
    pub type_name: String,
    /// Property paths, e.g. `summary.hardware`. Never ask for all properties:
    /// `config` alone is huge.
    pub paths: Vec<String>,
}

/// A traversal from a starting object (`TraversalSpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraversalSpec {
    /// Optional name, for `SelectionSpec` references.
    pub name: Option<String>,
    /// Type the traversal starts from.
    pub type_name: String,
    /// Property to follow.
    pub path: String,
    /// Whether to skip the object reached (false: report it).
    pub skip: bool,
    /// Traversals from the objects reached (nested `selectSet`).
    pub select: Vec<TraversalSpec>,
}

impl TraversalSpec {
    /// Follow `type_name.path` and report the objects reached.
    pub fn to(type_name: &str, path: &str) -> Self {
        TraversalSpec {
            name: None,
            type_name: type_name.to_string(),
            path: path.to_string(),
            skip: false,
            select: Vec::new(),
        }
    }

    /// Then follow `next` from the objects reached.
    pub fn then(mut self, next: TraversalSpec) -> Self {
        self.select.push(next);
        self
    }

    fn encode(&self, r: &mut Request) -> Result<()> {
        r.open_typed("selectSet", "TraversalSpec");
        if let Some(n) = &self.name {
            r.text("name", n)?;
        }
        r.text("type", &self.type_name)?;
        r.text("path", &self.path)?;
        r.bool("skip", self.skip);
        for t in &self.select {
            t.encode(r)?;
        }
        r.close("selectSet");
        Ok(())
    }
}

/// Where to start collecting (`ObjectSpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSpec {
    /// Starting object.
    pub obj: MoRef,
    /// Whether to leave the starting object itself out of the results.
    pub skip: bool,
    /// Traversals from it.
    pub select: Vec<TraversalSpec>,
}

/// A `PropertyFilterSpec`: what to read from which objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    /// Properties per type.
    pub props: Vec<PropertySpec>,
    /// Objects to start from.
    pub objects: Vec<ObjectSpec>,
}

impl FilterSpec {
    /// All objects of `type_name` in a container view, the standard inventory
    /// pattern (`ObjectSpec.skip=true` plus a traversal over `view`).
    pub fn container_view(view: &ContainerViewRef, type_name: &str, paths: &[&str]) -> Self {
        FilterSpec {
            props: vec![PropertySpec {
                type_name: type_name.to_string(),
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }],
            objects: vec![ObjectSpec {
                obj: view.as_moref().clone(),
                skip: true,
                select: vec![TraversalSpec {
                    name: Some("traverseEntities".into()),
                    type_name: "ContainerView".into(),
                    path: "view".into(),
                    skip: false,
                    select: Vec::new(),
                }],
            }],
        }
    }

    /// Properties of an explicit list of objects, all of the same type.
    pub fn objects<'a>(
        type_name: &str,
        objs: impl IntoIterator<Item = &'a MoRef>,
        paths: &[&str],
    ) -> Self {
        FilterSpec {
            props: vec![PropertySpec {
                type_name: type_name.to_string(),
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }],
            objects: objs
                .into_iter()
                .map(|o| ObjectSpec {
                    obj: o.clone(),
                    skip: false,
                    select: Vec::new(),
                })
                .collect(),
        }
    }

    /// The `RetrievePropertiesEx` envelope for this spec, as [`Client::retrieve_properties`]
    /// sends it to the property collector `pc` (public so a benchmark can send the very same
    /// bytes with another HTTP client).
    pub fn retrieve_request(&self, pc: &MoRef, options: RetrieveOptions) -> Result<String> {
        let mut r = Request::new("RetrievePropertiesEx", pc);
        self.encode(&mut r, "specSet")?;
        r.open("options");
        if let Some(n) = options.max_objects {
            r.int("maxObjects", i64::from(n.get()));
        }
        r.close("options");
        Ok(r.finish())
    }

    /// Writes `<tag>` in WSDL order: propSet, objectSet.
    pub(crate) fn encode(&self, r: &mut Request, tag: &str) -> Result<()> {
        r.open(tag);
        for p in &self.props {
            r.open("propSet");
            r.text("type", &p.type_name)?;
            r.bool("all", false);
            for path in &p.paths {
                r.text("pathSet", path)?;
            }
            r.close("propSet");
        }
        for o in &self.objects {
            r.open("objectSet");
            r.moref("obj", &o.obj);
            r.bool("skip", o.skip);
            for t in &o.select {
                t.encode(r)?;
            }
            r.close("objectSet");
        }
        r.close(tag);
        Ok(())
    }
}

/// `RetrieveOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrieveOptions {
    /// Page size hint; the server may return fewer. `None` leaves it to the server.
    pub max_objects: Option<NonZeroU32>,
}

impl Default for RetrieveOptions {
    /// 1,000 objects per page: large enough to keep round trips few, small
    /// enough that a page of VMs with device lists stays a few MB.
    fn default() -> Self {
        Self {
            max_objects: NonZeroU32::new(1000),
        }
    }
}

/// One property value of an object (`DynamicProperty`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicProperty {
    /// The property path.
    pub name: String,
    /// The value as an XML tree (`xsi:type` tells the type).
    pub val: Node,
}

/// A property the server could not return (`MissingProperty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingProperty {
    /// The property path.
    pub path: String,
    /// Why (often `NotAuthenticated`, `NoPermission` or `InvalidProperty`).
    pub fault: Fault,
}

/// One object and the properties read from it (`ObjectContent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectContent {
    /// The object.
    pub obj: MoRef,
    /// The properties that were returned (unset ones are simply absent).
    pub props: Vec<DynamicProperty>,
    /// The properties that could not be returned.
    pub missing: Vec<MissingProperty>,
}

impl ObjectContent {
    /// The value of `path`, if returned.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.props.iter().find(|p| p.name == path).map(|p| &p.val)
    }

    /// Decodes an `<objects>` element.
    pub fn from_node(n: Node) -> Result<Self> {
        let mut obj = None;
        let mut props = Vec::new();
        let mut missing = Vec::new();
        for c in n.into_children() {
            match c.name() {
                "obj" => obj = Some(c.to_moref()?),
                "propSet" => {
                    let mut name = None;
                    let mut val = None;
                    for mut pc in c.into_children() {
                        match pc.name() {
                            // Moved, not copied: the node is dropped right after.
                            "name" => name = Some(std::mem::take(&mut pc.text)),
                            "val" => val = Some(pc),
                            _ => {}
                        }
                    }
                    props.push(DynamicProperty {
                        name: name.ok_or_else(|| Error::Decode {
                            context: "ObjectContent.propSet".into(),
                            detail: "a property without <name>".into(),
                        })?,
                        val: val.unwrap_or_default(),
                    });
                }
                "missingSet" => missing.push(MissingProperty {
                    path: c.child_string("path").unwrap_or_default(),
                    fault: c
                        .child("fault")
                        .map(Fault::from_localized)
                        .unwrap_or_else(|| Fault::from_detail(&c, String::new())),
                }),
                _ => {}
            }
        }
        Ok(ObjectContent {
            obj: obj.ok_or_else(|| Error::Decode {
                context: "ObjectContent".into(),
                detail: "an object without <obj>".into(),
            })?,
            props,
            missing,
        })
    }

    /// vcsim reports a missing session per property instead of faulting the
    /// call; surface that as the `NotAuthenticated` fault real vCenter sends.
    fn not_authenticated(&self) -> Option<&Fault> {
        self.missing
            .iter()
            .map(|m| &m.fault)
            .find(|f| f.is_not_authenticated())
    }
}

/// What a streamed retrieval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RetrieveStats {
    /// Objects handed to the visitor.
    pub objects: usize,
    /// Pages fetched (1 when the server does not page).
    pub pages: usize,
    /// Whether the visitor stopped the retrieval early.
    pub stopped: bool,
}

struct Page {
    token: Option<String>,
    stopped: bool,
}

impl Client {
    /// `PropertyCollector.RetrievePropertiesEx` plus
    /// `ContinueRetrievePropertiesEx` while a token comes back, handing each
    /// object to `visit` as soon as it is parsed. `ControlFlow::Break` stops
    /// (and cancels the remaining pages). Privilege `System.Read` on the objects.
    ///
    /// A `NotAuthenticated` fault (or vcsim's per-property equivalent) on the
    /// first page leads to one re-login and a retry. If the session expires
    /// between pages the tokens are gone with it: the error is returned after
    /// logging in again, so the caller can start over.
    pub async fn retrieve_properties(
        &self,
        spec: &FilterSpec,
        options: RetrieveOptions,
        mut visit: impl FnMut(ObjectContent) -> ControlFlow<()> + Send,
    ) -> Result<RetrieveStats> {
        let pc = self.service_content().property_collector.clone();
        let first = spec.retrieve_request(&pc, options)?;

        let mut stats = RetrieveStats::default();
        let generation = self.transport().cookie_generation();
        let page = match self
            .page(
                "RetrievePropertiesEx",
                first.clone(),
                &mut visit,
                &mut stats,
            )
            .await
        {
            Err(e) if e.is_not_authenticated() && stats.objects == 0 && self.may_relogin() => {
                self.relogin(generation).await?;
                self.page("RetrievePropertiesEx", first, &mut visit, &mut stats)
                    .await?
            }
            other => other?,
        };
        let mut token = page.token;
        let mut stopped = page.stopped;
        while let Some(t) = token.take() {
            if stopped {
                let mut r = Request::new("CancelRetrievePropertiesEx", &pc);
                r.text("token", &t)?;
                // Best effort: the server drops the result set on its own at session end.
                let _ = self
                    .call_once("CancelRetrievePropertiesEx", r.finish())
                    .await;
                break;
            }
            let mut r = Request::new("ContinueRetrievePropertiesEx", &pc);
            r.text("token", &t)?;
            let generation = self.transport().cookie_generation();
            match self
                .page(
                    "ContinueRetrievePropertiesEx",
                    r.finish(),
                    &mut visit,
                    &mut stats,
                )
                .await
            {
                Ok(p) => {
                    token = p.token;
                    stopped = p.stopped;
                }
                Err(e) => {
                    if e.is_not_authenticated() && self.may_relogin() {
                        self.relogin(generation).await?;
                    }
                    return Err(e);
                }
            }
        }
        stats.stopped = stopped;
        Ok(stats)
    }

    async fn page(
        &self,
        method: &'static str,
        body: String,
        visit: &mut (impl FnMut(ObjectContent) -> ControlFlow<()> + Send),
        stats: &mut RetrieveStats,
    ) -> Result<Page> {
        let mut token = None;
        let mut stopped = false;
        let mut emit = |n: Node| -> Result<ControlFlow<()>> {
            match n.name() {
                "token" => token = Some(n.text().to_string()),
                "objects" => {
                    let oc = ObjectContent::from_node(n)?;
                    if let Some(f) = oc.not_authenticated() {
                        return Err(Error::Fault {
                            method: method.to_string(),
                            fault: Box::new(f.clone()),
                        });
                    }
                    stats.objects += 1;
                    if visit(oc).is_break() {
                        stopped = true;
                        return Ok(ControlFlow::Break(()));
                    }
                }
                _ => {}
            }
            Ok(ControlFlow::Continue(()))
        };
        let root = self
            .transport()
            .call(method, body, Mode::Stream, &mut emit)
            .await?;
        stats.pages += 1;
        if let Some(root) = root {
            // Only faults and the (now empty) response wrapper are left.
            decode::into_response(root, method)?;
        }
        Ok(Page { token, stopped })
    }

    /// Collects a retrieval into memory. Fine for small sets; for the whole
    /// inventory prefer [`Client::retrieve_properties`] with a visitor.
    pub async fn retrieve_all(
        &self,
        spec: &FilterSpec,
        options: RetrieveOptions,
    ) -> Result<Vec<ObjectContent>> {
        let mut out = Vec::new();
        self.retrieve_properties(spec, options, |oc| {
            out.push(oc);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(out)
    }

    /// Reads `paths` of one object. An unknown object is
    /// [`crate::FaultKind::ManagedObjectNotFound`].
    pub async fn retrieve_object(&self, obj: &MoRef, paths: &[&str]) -> Result<ObjectContent> {
        let spec = FilterSpec::objects(obj.kind(), [obj], paths);
        let mut found = self.retrieve_all(&spec, RetrieveOptions::default()).await?;
        found
            .pop()
            .ok_or_else(|| Error::NotFound(format!("{obj} returned no properties")))
    }

    /// `ViewManager.CreateContainerView` (privilege `System.View`). The view
    /// lives until [`Client::destroy_view`] or the end of the session.
    pub async fn create_container_view(
        &self,
        container: &MoRef,
        types: &[&str],
        recursive: bool,
    ) -> Result<ContainerViewRef> {
        let vm = self
            .service_content()
            .view_manager
            .clone()
            .ok_or_else(|| Error::NotFound("this server has no ViewManager".into()))?;
        let mut r = Request::new("CreateContainerView", &vm);
        r.moref("container", container);
        for t in types {
            r.text("type", t)?;
        }
        r.bool("recursive", recursive);
        let resp = self.invoke("CreateContainerView", r.finish()).await?;
        let view = resp
            .child("returnval")
            .ok_or_else(|| resp.bad("CreateContainerView returnval"))?
            .to_moref()?;
        ContainerViewRef::try_from(view).map_err(|e| Error::Decode {
            context: "CreateContainerView".into(),
            detail: e.to_string(),
        })
    }

    /// `View.DestroyView`.
    pub async fn destroy_view(&self, view: &ContainerViewRef) -> Result<()> {
        let r = Request::new("DestroyView", view.as_moref());
        self.invoke("DestroyView", r.finish()).await.map(drop)
    }

    /// Streams `paths` of every object of `type_name` under the root folder
    /// through a temporary recursive container view (destroyed afterwards,
    /// also on error).
    pub async fn for_each_object(
        &self,
        type_name: &str,
        paths: &[&str],
        options: RetrieveOptions,
        visit: impl FnMut(ObjectContent) -> ControlFlow<()> + Send,
    ) -> Result<RetrieveStats> {
        let root = self.service_content().root_folder.as_moref().clone();
        self.for_each_object_in(&root, type_name, paths, options, visit)
            .await
    }

    /// Like [`Client::for_each_object`], below `container` (a folder, datacenter, compute
    /// resource, …) instead of the root folder.
    pub async fn for_each_object_in(
        &self,
        container: &MoRef,
        type_name: &str,
        paths: &[&str],
        options: RetrieveOptions,
        visit: impl FnMut(ObjectContent) -> ControlFlow<()> + Send,
    ) -> Result<RetrieveStats> {
        let view = self
            .create_container_view(container, &[type_name], true)
            .await?;
        let spec = FilterSpec::container_view(&view, type_name, paths);
        let out = self.retrieve_properties(&spec, options, visit).await;
        let destroyed = self.destroy_view(&view).await;
        let stats = out?;
        destroyed?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::decode::parse_sync;

    /// The envelope `retrieve_properties` would send for `spec`.
    fn request(spec: &FilterSpec) -> String {
        let pc = MoRef::new("PropertyCollector", "propertyCollector");
        spec.retrieve_request(&pc, RetrieveOptions::default())
            .unwrap()
    }

    #[test]
    fn container_view_spec_is_in_wsdl_order() {
        let view = ContainerViewRef::new("session[1]2");
        let spec = FilterSpec::container_view(&view, "VirtualMachine", &["name", "runtime.host"]);
        let xml = request(&spec);
        assert!(xml.contains(concat!(
            r#"<specSet><propSet><type>VirtualMachine</type><all>false</all><pathSet>name</pathSet><pathSet>runtime.host</pathSet></propSet>"#,
            r#"<objectSet><obj type="ContainerView">session[1]2</obj><skip>true</skip>"#,
            r#"<selectSet xsi:type="TraversalSpec"><name>traverseEntities</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet>"#
        )), "{xml}");
    }

    #[test]
    fn nested_traversals_are_nested_select_sets() {
        let spec = FilterSpec {
            props: Vec::new(),
            objects: vec![ObjectSpec {
                obj: MoRef::new("ClusterComputeResource", "domain-c7"),
                skip: true,
                select: vec![
                    TraversalSpec::to("ComputeResource", "host")
                        .then(TraversalSpec::to("HostSystem", "vm")),
                ],
            }],
        };
        let xml = request(&spec);
        assert!(xml.contains(concat!(
            r#"<objectSet><obj type="ClusterComputeResource">domain-c7</obj><skip>true</skip>"#,
            r#"<selectSet xsi:type="TraversalSpec"><type>ComputeResource</type><path>host</path><skip>false</skip>"#,
            r#"<selectSet xsi:type="TraversalSpec"><type>HostSystem</type><path>vm</path><skip>false</skip></selectSet>"#,
            r#"</selectSet></objectSet>"#
        )), "{xml}");
    }

    /// A paged real-vCenter answer: the token comes before the objects.
    const PAGED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>1</token>
<objects><obj type="VirtualMachine">vm-57</obj><propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>
<propSet><name>runtime.host</name><val xsi:type="ManagedObjectReference" type="HostSystem">host-21</val></propSet>
<missingSet><path>noSuchProp</path><fault><fault xsi:type="InvalidProperty"><name>noSuchProp</name></fault></fault></missingSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn paged_response_yields_token_and_objects() {
        let mut token = None;
        let mut objs = Vec::new();
        parse_sync(PAGED.as_bytes(), Mode::Stream, &mut |n: Node| {
            match n.name() {
                "token" => token = Some(n.text().to_string()),
                _ => objs.push(ObjectContent::from_node(n)?),
            }
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        assert_eq!(token.as_deref(), Some("1"));
        assert_eq!(objs.len(), 1);
        let oc = &objs[0];
        assert_eq!(oc.obj, MoRef::new("VirtualMachine", "vm-57"));
        assert_eq!(oc.get("runtime.powerState").unwrap().text(), "poweredOn");
        assert_eq!(
            oc.get("runtime.host").unwrap().to_moref().unwrap(),
            MoRef::new("HostSystem", "host-21")
        );
        assert_eq!(oc.missing[0].path, "noSuchProp");
        assert_eq!(oc.missing[0].fault.type_name, "InvalidProperty");
    }

    #[test]
    fn vcsim_missing_session_is_seen_as_not_authenticated() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="HostSystem">host-21</obj><missingSet><path>name</path><fault><fault xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="NotAuthenticated"><object type="HostSystem">host-21</object><privilegeId>System.Read</privilegeId></fault><localizedMessage></localizedMessage></fault></missingSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
        let mut got = None;
        parse_sync(doc.as_bytes(), Mode::Stream, &mut |n: Node| {
            got = Some(ObjectContent::from_node(n)?);
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        assert!(got.unwrap().not_authenticated().is_some());
    }
}
