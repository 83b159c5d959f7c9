//! The daemon's [`DesiredSource`]: the desired layout in vCenter (`vmig.layout` on this host's
//! HostSystem, else on its cluster), or the local `[agent] layout_file` + `layout_name`, which
//! wins where set (the host's admin chose it).
//!
//! It keeps a session of its own beside the publisher's, so reading the desired layout every
//! poll never waits behind a publication, and a failure here never delays one. Like the
//! publisher, every failure logs the session out before the next attempt (at most one
//! session each), and what is read is outside input: `mig::desired_layout` bounds it and the
//! layout file goes through the agent's own parsing.
use std::sync::Arc;

use mig::desired_layout::{DesiredLayoutDoc, FIELD_DESIRED_LAYOUT};
use mig::layout_file::LayoutFile;
use mig::report::LayoutSource;
use vcenter_client::{Client, ClusterRef, CustomValues, HostProperty, HostRef};

use super::config::{LayoutRef, VcenterConfig};
use super::desired::{DesiredInForce, DesiredSource, digest};
use super::vcenter::{HostIdentity, connect, find_host, logout_quietly};

/// Reads the desired layout from vCenter (or the local config).
#[derive(Debug)]
pub struct VcenterDesired {
    cfg: VcenterConfig,
    identity: HostIdentity,
    local: Option<LayoutRef>,
    session: Option<(Client, HostRef)>,
    warned_local: bool,
}

impl VcenterDesired {
    pub fn new(cfg: VcenterConfig, identity: HostIdentity, local: Option<LayoutRef>) -> Self {
        VcenterDesired {
            cfg,
            identity,
            local,
            session: None,
            warned_local: false,
        }
    }

    fn local_layout(&mut self, l: &LayoutRef) -> DesiredInForce {
        if !self.warned_local {
            tracing::warn!(file = %l.file.display(), layout = %l.name, "the local layout in the agent's config wins over any desired layout in vCenter on this host");
            self.warned_local = true;
        }
        let text = std::fs::read_to_string(&l.file)
            .map_err(|e| format!("cannot read layout file {}: {e}", l.file.display()));
        let digest = text.as_deref().map(digest).unwrap_or_default();
        let file = text
            .and_then(|text| {
                LayoutFile::parse(&l.file.display().to_string(), &text).map_err(|e| e.to_string())
            })
            .and_then(|f| {
                f.config(Some(&l.name)).map_err(|e| e.to_string())?;
                Ok(f)
            });
        DesiredInForce {
            source: LayoutSource::Local,
            name: l.name.clone(),
            version: None,
            file,
            digest,
        }
    }

    async fn read(
        &self,
        client: &Client,
        host: &HostRef,
    ) -> Result<Option<DesiredInForce>, String> {
        let vc = |e: vcenter_client::Error| e.to_string();
        let keys: Vec<_> = client
            .custom_field_defs()
            .await
            .map_err(vc)?
            .into_iter()
            .filter(|d| d.name == FIELD_DESIRED_LAYOUT)
            .map(|d| d.key)
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let h = client
            .host(host, &[HostProperty::Parent, HostProperty::CustomValues])
            .await
            .map_err(vc)?;
        if let Some(text) = first_value(&h.custom_values, &keys) {
            return Ok(Some(parse(LayoutSource::VcenterHost, text)));
        }
        let Some(cluster) = h.parent.and_then(|p| ClusterRef::try_from(p).ok()) else {
            return Ok(None);
        };
        let values = client.custom_values(cluster.as_moref()).await.map_err(vc)?;
        Ok(first_value(&values, &keys).map(|t| parse(LayoutSource::VcenterCluster, t)))
    }
}

fn first_value<'v>(
    values: &'v CustomValues,
    keys: &[vcenter_client::CustomFieldKey],
) -> Option<&'v str> {
    keys.iter()
        .filter_map(|k| values.get(*k))
        .find(|v| !v.trim().is_empty())
}

/// A `vmig.layout` value as the agent works from it; an unusable one becomes an
/// `invalid-layout` for every GPU (with the reason), never a change.
fn parse(source: LayoutSource, text: &str) -> DesiredInForce {
    match DesiredLayoutDoc::parse(text) {
        Ok((doc, file)) => DesiredInForce {
            source,
            name: doc.name,
            version: Some(doc.version),
            file: Ok(file),
            digest: digest(text),
        },
        Err(e) => DesiredInForce {
            source,
            name: "(unreadable)".into(),
            version: None,
            file: Err(e.to_string()),
            digest: digest(text),
        },
    }
}

impl DesiredSource for VcenterDesired {
    async fn fetch(&mut self) -> Result<Option<DesiredInForce>, String> {
        if let Some(l) = self.local.clone() {
            return Ok(Some(self.local_layout(&l)));
        }
        if self.session.is_none() {
            let client = connect(&self.cfg).await.map_err(|e| e.to_string())?;
            match find_host(&client, &self.cfg, &self.identity).await {
                Ok((host, _, _)) => self.session = Some((client, host)),
                Err(e) => {
                    logout_quietly(&client, &self.cfg.url).await;
                    return Err(e.to_string());
                }
            }
        }
        let Some((client, host)) = &self.session else {
            return Err("no vCenter session".into());
        };
        match self.read(client, host).await {
            Ok(d) => Ok(d),
            Err(e) => {
                if let Some((client, _)) = self.session.take() {
                    logout_quietly(&client, &self.cfg.url).await;
                }
                Err(e)
            }
        }
    }

    async fn close(&mut self) {
        if let Some((client, _)) = self.session.take() {
            logout_quietly(&client, &self.cfg.url).await;
        }
    }
}

/// The fetched layout, shareable with the observe loop.
pub fn share(d: Option<DesiredInForce>) -> Option<Arc<DesiredInForce>> {
    d.map(Arc::new)
}
