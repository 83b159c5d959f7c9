//! vCenter advanced settings (`OptionManager` at `ServiceContent.setting`), e.g.
//! `vgpu.hotmigrate.enabled`, which turns on vMotion of vGPU VMs.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::moref::MoRef;
use crate::soap::encode::Request;

impl Client {
    fn option_manager(&self) -> Result<MoRef> {
        self.service_content()
            .setting
            .clone()
            .ok_or_else(|| Error::NotFound("this server has no OptionManager (setting)".into()))
    }

    /// `OptionManager.QueryOptions(name)`: the value of the advanced setting `name` as text
    /// (`true`, `42`, …), or `None` when the server does not have it (`InvalidName`: vCenter
    /// lists only settings that were set or have a default). A name ending in `.` would
    /// match a whole subtree; only the exact key is returned. Privilege `System.Read`.
    pub async fn query_option(&self, name: &str) -> Result<Option<String>> {
        let mut r = Request::new("QueryOptions", &self.option_manager()?);
        r.text("name", name)?;
        let resp = match self.invoke("QueryOptions", r.finish()).await {
            Ok(resp) => resp,
            Err(e) if e.fault().is_some_and(|f| f.type_name == "InvalidName") => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(resp
            .children_named("returnval")
            .find(|c| c.child_string("key").as_deref() == Some(name))
            .map(|c| c.child_string("value").unwrap_or_default()))
    }

    /// `OptionManager.UpdateOptions`: sets the advanced setting `name` to the string `value`.
    /// Privilege `Global.Settings`.
    pub async fn update_option(&self, name: &str, value: &str) -> Result<()> {
        let mut r = Request::new("UpdateOptions", &self.option_manager()?);
        r.open("changedValue");
        r.text("key", name)?;
        r.typed_text("value", "xsd:string", value)?;
        r.close("changedValue");
        self.invoke("UpdateOptions", r.finish()).await.map(drop)
    }
}
