//! Finding the cluster or host a `vmig layout` command names, and reading what vCenter holds
//! for it: the `vmig.layout` values of the host and its cluster and the agent's `vmig.mig`.
use mig::desired_layout::{DesiredLayoutDoc, FIELD_DESIRED_LAYOUT};
use mig::layout_file::LayoutFile;
use mig::report::{FIELD_DOCUMENT, HostReport};
use vcenter_client::{
    Cluster, ClusterRef, CustomFieldKey, CustomValues, HostProperty, HostRef, HostSystem, MoRef,
};

use super::{TargetArgs, vc_err};
use crate::{AdminError, Connection};

/// Whether a desired layout is set on a cluster or on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Cluster,
    Host,
}

/// The object a `set` or `clear` writes to, found on one of the connections.
#[derive(Debug, Clone)]
pub struct Target<'c> {
    pub conn: &'c Connection,
    pub kind: TargetKind,
    pub moref: MoRef,
    pub name: String,
    /// The hosts that follow this object's value (the cluster's members, or the host).
    pub hosts: Vec<HostRef>,
}

/// The keys of the fields vmig reads (several definitions of one name can exist: a global
/// one and typed ones; any of them may hold the value).
#[derive(Debug, Clone, Default)]
pub struct FieldKeys {
    pub desired: Vec<CustomFieldKey>,
    pub document: Vec<CustomFieldKey>,
}

impl FieldKeys {
    /// Reads the field definitions of `c`.
    pub async fn read(c: &Connection) -> Result<FieldKeys, AdminError> {
        let defs = c.client.custom_field_defs().await.map_err(vc_err(c))?;
        let keys = |name: &str| {
            defs.iter()
                .filter(|d| d.name == name)
                .map(|d| d.key)
                .collect::<Vec<_>>()
        };
        Ok(FieldKeys {
            desired: keys(FIELD_DESIRED_LAYOUT),
            document: keys(FIELD_DOCUMENT),
        })
    }
}

/// The first non-empty value among `keys` (an empty string is how `clear` removes a value).
pub fn value<'v>(values: &'v CustomValues, keys: &[CustomFieldKey]) -> Option<&'v str> {
    keys.iter()
        .filter_map(|k| values.get(*k))
        .find(|v| !v.trim().is_empty())
}

/// A `vmig.layout` value as read: absent, usable, or refused with the reason.
#[derive(Debug, Clone)]
pub enum Desired {
    None,
    Valid(Box<(DesiredLayoutDoc, LayoutFile)>),
    Invalid(String),
}

impl Desired {
    /// Parses and bounds a value (`mig::desired_layout`).
    pub fn read(values: &CustomValues, keys: &[CustomFieldKey]) -> Desired {
        match value(values, keys) {
            None => Desired::None,
            Some(text) => match DesiredLayoutDoc::parse(text) {
                Ok(v) => Desired::Valid(Box::new(v)),
                Err(e) => Desired::Invalid(e.to_string()),
            },
        }
    }

    /// The document, when valid.
    pub fn doc(&self) -> Option<&DesiredLayoutDoc> {
        match self {
            Desired::Valid(v) => Some(&v.0),
            _ => None,
        }
    }
}

/// The agent's document of a host: absent, valid, or refused with the reason.
pub fn agent_report(values: &CustomValues, keys: &FieldKeys) -> Result<Option<HostReport>, String> {
    match value(values, &keys.document) {
        None => Ok(None),
        Some(text) => HostReport::from_json(text)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// Everything `show`, `set` and `rollout` need about one vCenter's hosts and clusters.
#[derive(Debug)]
pub struct Inventory<'c> {
    pub conn: &'c Connection,
    pub keys: FieldKeys,
    pub clusters: Vec<(Cluster, CustomValues)>,
    pub hosts: Vec<HostSystem>,
}

impl<'c> Inventory<'c> {
    /// Reads clusters (with their custom values) and hosts (name, parent, custom values).
    pub async fn read(c: &'c Connection) -> Result<Inventory<'c>, AdminError> {
        let keys = FieldKeys::read(c).await?;
        let mut clusters = Vec::new();
        for cl in c.client.clusters().await.map_err(vc_err(c))? {
            let values = c
                .client
                .custom_values(cl.moref.as_moref())
                .await
                .map_err(vc_err(c))?;
            clusters.push((cl, values));
        }
        let hosts = c
            .client
            .hosts(&[
                HostProperty::Name,
                HostProperty::Parent,
                HostProperty::CustomValues,
            ])
            .await
            .map_err(vc_err(c))?;
        Ok(Inventory {
            conn: c,
            keys,
            clusters,
            hosts,
        })
    }

    /// The cluster of `host`, with its values.
    pub fn cluster_of(&self, host: &HostSystem) -> Option<&(Cluster, CustomValues)> {
        let cref: ClusterRef = host.cluster()?;
        self.clusters.iter().find(|(c, _)| c.moref == cref)
    }

    /// The desired layout in force on `host` and where it comes from (host over cluster).
    pub fn desired_for(&self, host: &HostSystem) -> (Desired, Option<TargetKind>) {
        let own = Desired::read(&host.custom_values, &self.keys.desired);
        if !matches!(own, Desired::None) {
            return (own, Some(TargetKind::Host));
        }
        match self.cluster_of(host) {
            Some((_, values)) => match Desired::read(values, &self.keys.desired) {
                Desired::None => (Desired::None, None),
                d => (d, Some(TargetKind::Cluster)),
            },
            None => (Desired::None, None),
        }
    }
}

/// Finds the object `args` names on one of the connections; exactly one must match.
pub async fn find<'c>(
    conns: &'c [Connection],
    args: &TargetArgs,
) -> Result<Target<'c>, AdminError> {
    let mut found = Vec::new();
    for c in conns {
        if let Some(name) = &args.cluster {
            for cl in c.client.clusters().await.map_err(vc_err(c))? {
                if &cl.name == name {
                    found.push(Target {
                        conn: c,
                        kind: TargetKind::Cluster,
                        moref: cl.moref.as_moref().clone(),
                        name: cl.name.clone(),
                        hosts: cl.hosts.clone(),
                    });
                }
            }
        } else if let Some(name) = &args.host {
            for h in c
                .client
                .hosts(&[HostProperty::Name])
                .await
                .map_err(vc_err(c))?
            {
                if h.name.as_deref() == Some(name.as_str()) {
                    found.push(Target {
                        conn: c,
                        kind: TargetKind::Host,
                        moref: h.moref.as_moref().clone(),
                        name: name.clone(),
                        hosts: vec![h.moref.clone()],
                    });
                }
            }
        }
    }
    let (what, name) = match (&args.cluster, &args.host) {
        (Some(n), _) => ("cluster", n.as_str()),
        (None, Some(n)) => ("host", n.as_str()),
        (None, None) => {
            return Err(AdminError::Usage(
                "name the object: --cluster NAME or --host NAME".into(),
            ));
        }
    };
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(AdminError::LayoutRefused(format!(
            "no {what} named `{name}` in the vCenter(s) given; nothing was written (check the name with vmig report)"
        ))),
        n => Err(AdminError::LayoutRefused(format!(
            "{n} {what}s are named `{name}`; nothing was written (rename one or use one --url per vCenter)"
        ))),
    }
}
