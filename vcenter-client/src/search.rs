//! `SearchIndex` lookups of hosts (and VMs) by BIOS UUID, DNS name or IP.
//!
//! The vmig agent finds its own HostSystem by the BIOS UUID it reads from
//! SMBIOS, which needs no inventory walk. All lookups need `System.View` and
//! return `None` when nothing matches (the server sends an empty response).

use std::net::IpAddr;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::moref::{BiosUuid, HostRef, MoRef, VmRef};
use crate::soap::encode::Request;

impl Client {
    async fn search(
        &self,
        method: &'static str,
        build: impl FnOnce(&mut Request) -> Result<()>,
    ) -> Result<Option<MoRef>> {
        let mut r = Request::new(method, &self.service_content().search_index);
        build(&mut r)?;
        let resp = self.invoke(method, r.finish()).await?;
        resp.child("returnval").map(|n| n.to_moref()).transpose()
    }

    /// `SearchIndex.FindByUuid` with `vmSearch=false`: the host whose
    /// `hardware.systemInfo.uuid` is `uuid`.
    pub async fn find_host_by_uuid(&self, uuid: &BiosUuid) -> Result<Option<HostRef>> {
        // FindByUuid order: datacenter?, uuid, vmSearch, instanceUuid?
        let found = self
            .search("FindByUuid", |r| {
                r.text("uuid", uuid.as_str())?;
                r.bool("vmSearch", false);
                Ok(())
            })
            .await?;
        typed(found, "FindByUuid")
    }

    /// `SearchIndex.FindByUuid` with `vmSearch=true`: the VM whose BIOS
    /// `config.uuid` is `uuid`.
    pub async fn find_vm_by_uuid(&self, uuid: &BiosUuid) -> Result<Option<VmRef>> {
        let found = self
            .search("FindByUuid", |r| {
                r.text("uuid", uuid.as_str())?;
                r.bool("vmSearch", true);
                Ok(())
            })
            .await?;
        typed(found, "FindByUuid")
    }

    /// `SearchIndex.FindByDnsName` for a host (its configured DNS host name).
    pub async fn find_host_by_dns_name(&self, dns_name: &str) -> Result<Option<HostRef>> {
        let found = self
            .search("FindByDnsName", |r| {
                r.text("dnsName", dns_name)?;
                r.bool("vmSearch", false);
                Ok(())
            })
            .await?;
        typed(found, "FindByDnsName")
    }

    /// `SearchIndex.FindByIp` for a host (a VMkernel NIC address).
    pub async fn find_host_by_ip(&self, ip: IpAddr) -> Result<Option<HostRef>> {
        let found = self
            .search("FindByIp", |r| {
                r.text("ip", &ip.to_string())?;
                r.bool("vmSearch", false);
                Ok(())
            })
            .await?;
        typed(found, "FindByIp")
    }
}

fn typed<T: TryFrom<MoRef, Error = crate::WrongKind>>(
    found: Option<MoRef>,
    method: &str,
) -> Result<Option<T>> {
    found
        .map(|r| {
            T::try_from(r).map_err(|e| Error::Decode {
                context: method.into(),
                detail: e.to_string(),
            })
        })
        .transpose()
}
