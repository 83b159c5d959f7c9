//! Reading a layout file: the duplicate-key walk (pass 1), the typed shape (pass 2) turned
//! into the model with every error at its line, and lookups of configs and positions.
use serde::de::DeserializeSeed;

use super::error::{ConfigError, KeyPath};
use super::keys::parse_key;
use super::locate::{Walk, locate, strip_position};
use super::model::{
    DeviceFilter, DeviceSpec, Devices, Entry, LayoutFile, NamedConfig, SpecKind, VERSION,
};
use super::raw::{RawCount, RawDevices, RawEntry, RawFile};

impl LayoutFile {
    /// Parse and check a layout file's text (syntax, shape, key grammar and, for entries with
    /// a `device-filter`, everything that can be checked against the catalog models that
    /// filter names). `origin` names the file in errors.
    pub fn parse(origin: &str, text: &str) -> Result<LayoutFile, ConfigError> {
        let yaml_err = |e: serde_norway::Error| {
            let loc = e.location();
            ConfigError {
                origin: origin.to_string(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                path: KeyPath::default(),
                message: strip_position(&e.to_string()),
            }
        };
        Walk { target: None }
            .deserialize(serde_norway::Deserializer::from_str(text))
            .map_err(yaml_err)?;
        let raw: RawFile = serde_norway::from_str(text).map_err(yaml_err)?;
        let mut file = LayoutFile {
            origin: origin.to_string(),
            text: text.to_string(),
            configs: Vec::new(),
        };
        match raw.version.as_deref() {
            Some(VERSION) => {}
            Some(v) => {
                return Err(file.error(
                    KeyPath::default().key("version"),
                    format!("unknown version `{v}`; this format is `version: v1`"),
                ));
            }
            None => {
                return Err(file.error(
                    KeyPath::default(),
                    "missing `version: v1` at the top of the file".into(),
                ));
            }
        }
        let configs = raw.mig_configs.map(|c| c.0).unwrap_or_default();
        if configs.is_empty() {
            return Err(file.error(
                KeyPath::default().key("mig-configs"),
                "`mig-configs` needs at least one named config".into(),
            ));
        }
        for (name, raw_entries) in configs {
            let cpath = KeyPath::default().key("mig-configs").key(name.clone());
            if raw_entries.is_empty() {
                return Err(file.error(
                    cpath,
                    format!(
                        "config `{name}` has no entries; give at least one `- devices: …` item"
                    ),
                ));
            }
            let mut entries = Vec::new();
            for (index, raw) in raw_entries.into_iter().enumerate() {
                entries.push(file.entry(cpath.clone().index(index), index, raw)?);
            }
            file.configs.push(NamedConfig { name, entries });
        }
        for c in &file.configs {
            for e in &c.entries {
                for f in &e.device_filter {
                    for model in f.catalog_models() {
                        file.target_for(&c.name, e, model)?;
                    }
                }
            }
        }
        Ok(file)
    }

    /// The name errors use for this file.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The named config, or an error listing the names there are. `None` picks the only
    /// config of a one-config file (as mig-parted does).
    pub fn config(&self, name: Option<&str>) -> Result<&NamedConfig, ConfigError> {
        let names = || {
            self.configs
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => self.configs.iter().find(|c| c.name == n).ok_or_else(|| {
                self.error(
                    KeyPath::default(),
                    format!("no config named `{n}`; configs in this file: {}", names()),
                )
            }),
            None if self.configs.len() == 1 => Ok(&self.configs[0]),
            None => Err(self.error(
                KeyPath::default(),
                format!(
                    "the file has several configs; pick one with -c NAME: {}",
                    names()
                ),
            )),
        }
    }

    /// An error about `path`, with its line if it can be found (else the line of the
    /// nearest enclosing key: `device-filter[0]` of a one-string filter is the filter itself).
    pub fn error(&self, path: KeyPath, message: String) -> ConfigError {
        let mut pos = None;
        for len in (1..=path.0.len()).rev() {
            pos = locate(&self.text, &KeyPath(path.0[..len].to_vec()));
            if pos.is_some() {
                break;
            }
        }
        ConfigError {
            origin: self.origin.clone(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            path,
            message,
        }
    }

    /// The path of config `config`.
    pub fn config_path(config: &str) -> KeyPath {
        KeyPath::default().key("mig-configs").key(config)
    }

    /// The path of entry `index` of config `config`.
    pub fn entry_path(config: &str, index: usize) -> KeyPath {
        KeyPath::default()
            .key("mig-configs")
            .key(config)
            .index(index)
    }

    /// 1-based line of entry `index` of `config`, for reports.
    pub fn entry_line(&self, config: &str, index: usize) -> Option<usize> {
        locate(&self.text, &Self::entry_path(config, index)).map(|p| p.0)
    }

    fn entry(&self, path: KeyPath, index: usize, raw: RawEntry) -> Result<Entry, ConfigError> {
        let devices = match raw.devices {
            Some(RawDevices::All) => Devices::All,
            Some(RawDevices::List(l)) => Devices::List(l),
            None => {
                return Err(self.error(
                    path,
                    "missing required field `devices` (write `devices: all` or a list of GPU indices)".into(),
                ));
            }
        };
        let Some(mig_enabled) = raw.mig_enabled else {
            return Err(self.error(
                path,
                "missing required field `mig-enabled` (true or false)".into(),
            ));
        };
        let mut device_filter = Vec::new();
        for (i, f) in raw
            .device_filter
            .map(|f| f.0)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let fpath = path.clone().key("device-filter");
            device_filter.push(DeviceFilter::parse(f).ok_or_else(|| {
                self.error(
                    fpath.index(i),
                    format!("`{f}` is not a PCI device id; write it as mig-parted does, e.g. \"0x20B010DE\" (device 0x20B0, vendor 0x10DE)"),
                )
            })?);
        }
        let mpath = path.clone().key("mig-devices");
        let mig_devices = match (mig_enabled, raw.mig_devices) {
            (true, None) => {
                return Err(self.error(
                    path,
                    "missing `mig-devices` while `mig-enabled: true` (write `mig-devices: {}` for MIG on with no instances)".into(),
                ));
            }
            (false, Some(m)) if m.0.iter().any(|(_, c)| !matches!(c, RawCount::Count(0))) => {
                return Err(self.error(
                    mpath,
                    "`mig-devices` lists instances while `mig-enabled: false`; remove them or enable MIG".into(),
                ));
            }
            (_, m) => m.map(|m| m.0).unwrap_or_default(),
        };
        let mut specs = Vec::new();
        for (key, count) in mig_devices {
            let kpath = mpath.clone().key(key.clone());
            let kind = parse_key(&key).map_err(|m| self.error(kpath.clone(), m))?;
            let (count, compute) = match count {
                RawCount::Count(n) => (n, None),
                RawCount::Split(s) => (s.count, s.compute),
            };
            if compute.is_some() && matches!(kind, SpecKind::Ci { .. }) {
                return Err(self.error(
                    kpath,
                    format!("`{key}` is a CI profile; `compute` goes on a GI profile key such as `3g.20gb`"),
                ));
            }
            if matches!(kind, SpecKind::Gi { start: Some(_), .. }) && count > 1 {
                return Err(self.error(
                    kpath,
                    format!("`{key}` asks for {count} GIs at one placement; a placement holds one GI (use count 1, or several keys with different @starts)"),
                ));
            }
            specs.push(DeviceSpec {
                key,
                kind,
                count,
                compute,
            });
        }
        if !specs.is_empty() && specs.iter().all(|s| s.count == 0) {
            return Err(self.error(
                mpath,
                "every count is 0; give at least one count above 0, or write `mig-devices: {}`"
                    .into(),
            ));
        }
        Ok(Entry {
            index,
            devices,
            device_filter,
            mig_enabled,
            mig_devices: specs,
        })
    }
}
