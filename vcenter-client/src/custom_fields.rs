//! Custom attributes (`CustomFieldsManager`): how the vmig agent publishes a
//! host's MIG layout where every vCenter client can read it.
//!
//! Definitions are created idempotently (an existing one of the same name is
//! reused). Values are read from `customValue` with the *last* entry per key
//! winning, because vcsim 0.24's `SetField` appends a duplicate instead of
//! replacing (fixed in govmomi 0.28).

use serde::Serialize;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::moref::{CustomFieldKey, MoRef};
use crate::soap::decode::Node;
use crate::soap::encode::Request;
use crate::soap::fault::FaultKind;

/// A custom field definition (`CustomFieldDef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomFieldDef {
    /// The key used by `SetField` and in `customValue`.
    pub key: CustomFieldKey,
    /// The field name, e.g. `vmig.mig`.
    pub name: String,
    /// The managed object type it applies to; `None` means global (all types).
    pub managed_object_type: Option<String>,
}

impl CustomFieldDef {
    fn from_node(n: &Node) -> Result<Self> {
        Ok(CustomFieldDef {
            key: CustomFieldKey(
                n.child_parse("key")?
                    .ok_or_else(|| n.bad("a CustomFieldDef with a key"))?,
            ),
            name: n.child_string("name").unwrap_or_default(),
            managed_object_type: n
                .child_string("managedObjectType")
                .filter(|s| !s.is_empty()),
        })
    }
}

/// The custom values of one object (`customValue`), one per key, the last
/// one the server listed winning.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CustomValues(Vec<(CustomFieldKey, String)>);

impl CustomValues {
    /// Decodes an `ArrayOfCustomFieldValue`.
    pub fn from_node(n: &Node) -> Result<Self> {
        let mut out = CustomValues::default();
        for v in n.children() {
            let Some(key) = v.child_parse::<i32>("key")? else {
                continue;
            };
            // Only string values exist in practice (CustomFieldStringValue).
            out.insert(
                CustomFieldKey(key),
                v.child_string("value").unwrap_or_default(),
            );
        }
        Ok(out)
    }

    fn insert(&mut self, key: CustomFieldKey, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value for `key`.
    pub fn get(&self, key: CustomFieldKey) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All `(key, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (CustomFieldKey, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Client {
    fn custom_fields_manager(&self) -> Result<MoRef> {
        self.service_content()
            .custom_fields_manager
            .clone()
            .ok_or_else(|| Error::NotFound("this server has no CustomFieldsManager (custom attributes need vCenter, not ESXi)".into()))
    }

    /// All custom field definitions (`CustomFieldsManager.field`).
    pub async fn custom_field_defs(&self) -> Result<Vec<CustomFieldDef>> {
        let mgr = self.custom_fields_manager()?;
        let oc = self.retrieve_object(&mgr, &["field"]).await?;
        match oc.get("field") {
            Some(arr) => arr
                .children()
                .iter()
                .map(CustomFieldDef::from_node)
                .collect(),
            None => Ok(Vec::new()),
        }
    }

    /// Returns the definition named `name` for `mo_type` (e.g. `HostSystem`;
    /// `None` = global), creating it with `AddCustomFieldDef` if needed. An
    /// existing global definition of that name is reused.
    /// Privilege `Global.ManageCustomFields` (only when it must be created).
    pub async fn ensure_custom_field(
        &self,
        name: &str,
        mo_type: Option<&str>,
    ) -> Result<CustomFieldDef> {
        // A global definition of the same name applies to every type, and the
        // server refuses a typed duplicate of it anyway.
        let matches = |d: &CustomFieldDef| {
            d.name == name
                && (d.managed_object_type.is_none() || d.managed_object_type.as_deref() == mo_type)
        };
        // Look first: a reader with only Global.SetCustomField must not need
        // the ManageCustomFields privilege for a field that already exists.
        if let Some(d) = self.custom_field_defs().await?.into_iter().find(matches) {
            return Ok(d);
        }
        match self.add_custom_field_def(name, mo_type).await {
            Ok(def) => Ok(def),
            // Someone created it between our read and our add.
            Err(e) if matches!(e.fault_kind(), Some(FaultKind::DuplicateName { .. })) => self
                .custom_field_defs()
                .await?
                .into_iter()
                .find(|d| d.name == name)
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// `CustomFieldsManager.AddCustomFieldDef`: creates the definition `name`
    /// for `mo_type` (e.g. `HostSystem`; `None` = global) and returns it. A
    /// name that exists already is [`FaultKind::DuplicateName`]: vCenter checks
    /// and adds under one lock, so this is an atomic create-if-absent (see
    /// [`Client::ensure_custom_field`] for the idempotent form).
    /// Privilege `Global.ManageCustomFields`.
    pub async fn add_custom_field_def(
        &self,
        name: &str,
        mo_type: Option<&str>,
    ) -> Result<CustomFieldDef> {
        let body = add_field_def_request(&self.custom_fields_manager()?, name, mo_type)?;
        let resp = self.invoke("AddCustomFieldDef", body).await?;
        CustomFieldDef::from_node(
            resp.child("returnval")
                .ok_or_else(|| resp.bad("AddCustomFieldDef returnval"))?,
        )
    }

    /// `CustomFieldsManager.RemoveCustomFieldDef`: removes the definition
    /// `key` and every value set for it. Keys are never reused, so removing by
    /// key cannot hit a later definition of the same name. An unknown key is a
    /// `NotFound` fault ([`crate::Fault::type_name`]).
    /// Privilege `Global.ManageCustomFields`.
    pub async fn remove_custom_field_def(&self, key: CustomFieldKey) -> Result<()> {
        let body = remove_field_def_request(&self.custom_fields_manager()?, key);
        self.invoke("RemoveCustomFieldDef", body).await.map(drop)
    }

    /// `CustomFieldsManager.SetField`: sets `entity`'s value for `key`.
    /// Privilege `Global.SetCustomField` on the entity.
    pub async fn set_custom_value(
        &self,
        entity: &MoRef,
        key: CustomFieldKey,
        value: &str,
    ) -> Result<()> {
        let mgr = self.custom_fields_manager()?;
        let mut r = Request::new("SetField", &mgr);
        r.moref("entity", entity);
        r.int("key", i64::from(key.0));
        r.text("value", value)?;
        self.invoke("SetField", r.finish()).await.map(drop)
    }

    /// Reads `entity`'s `customValue` (last value per key wins).
    pub async fn custom_values(&self, entity: &MoRef) -> Result<CustomValues> {
        let oc = self.retrieve_object(entity, &["customValue"]).await?;
        oc.get("customValue")
            .map(CustomValues::from_node)
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

/// `AddCustomFieldDef` in WSDL order (`name`, `moType`); the optional
/// privilege policies (`fieldDefPolicy`, `fieldPolicy`) are left out.
fn add_field_def_request(mgr: &MoRef, name: &str, mo_type: Option<&str>) -> Result<String> {
    let mut r = Request::new("AddCustomFieldDef", mgr);
    r.text("name", name)?;
    if let Some(t) = mo_type {
        r.text("moType", t)?;
    }
    Ok(r.finish())
}

fn remove_field_def_request(mgr: &MoRef, key: CustomFieldKey) -> String {
    let mut r = Request::new("RemoveCustomFieldDef", mgr);
    r.int("key", i64::from(key.0));
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::decode::parse_whole;

    #[test]
    fn field_definition_requests_are_in_wsdl_order() {
        let mgr = MoRef::new("CustomFieldsManager", "CustomFieldsManager");
        let this = r#"<_this type="CustomFieldsManager">CustomFieldsManager</_this>"#;
        let xml = add_field_def_request(&mgr, "vmig.lock.host-21", Some("HostSystem")).unwrap();
        assert!(
            xml.contains(&format!(
                r#"<AddCustomFieldDef xmlns="urn:vim25">{this}<name>vmig.lock.host-21</name><moType>HostSystem</moType></AddCustomFieldDef>"#
            )),
            "{xml}"
        );
        // Global: no moType at all (an empty one would name no type).
        let xml = add_field_def_request(&mgr, "a<b", None).unwrap();
        assert!(
            xml.contains(&format!("{this}<name>a&lt;b</name></AddCustomFieldDef>")),
            "{xml}"
        );
        let xml = remove_field_def_request(&mgr, CustomFieldKey(104));
        assert!(
            xml.contains(&format!(
                r#"<RemoveCustomFieldDef xmlns="urn:vim25">{this}<key>104</key></RemoveCustomFieldDef>"#
            )),
            "{xml}"
        );
    }

    #[test]
    fn last_duplicate_wins_like_vcsim_0_24_needs() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><R xmlns="urn:vim25"><returnval xsi:type="ArrayOfCustomFieldValue">
<CustomFieldValue xsi:type="CustomFieldStringValue"><key>0</key><value>{"v":1}</value></CustomFieldValue>
<CustomFieldValue xsi:type="CustomFieldStringValue"><key>1</key><value>other</value></CustomFieldValue>
<CustomFieldValue xsi:type="CustomFieldStringValue"><key>0</key><value>{"v":2}</value></CustomFieldValue>
</returnval></R></soapenv:Body></soapenv:Envelope>"#;
        let resp = parse_whole(doc.as_bytes(), "R").unwrap();
        let cv = CustomValues::from_node(resp.child("returnval").unwrap()).unwrap();
        assert_eq!(cv.get(CustomFieldKey(0)), Some(r#"{"v":2}"#));
        assert_eq!(cv.get(CustomFieldKey(1)), Some("other"));
        assert_eq!(cv.iter().count(), 2);
    }
}
