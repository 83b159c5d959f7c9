//! The layout file: NVIDIA mig-parted's `version: v1` config format, read unchanged, plus
//! vmig's extensions (explicit placements `"3g.20gb@4"`, CI splits `{count, compute}`, GPUs
//! named by UUID or PCI bus id). docs/layouts.md is the user-facing description.
//!
//! Reading happens in three passes so that every error carries the line and the key it is
//! about, and nothing is sent to a GPU before all of them passed:
//! 1. a structural walk of the YAML that refuses duplicate keys *at the key* (serde's derived
//!    maps would silently keep the last value, and the YAML library would only point at the
//!    enclosing map);
//! 2. typed deserialisation with unknown fields refused (mig-parted refuses them too);
//! 3. per-GPU-model resolution ([`LayoutFile::desired_for`]): profile names, placements, CI
//!    splits and the whole layout are checked against the catalog model and the planner from
//!    an empty GPU, so "more instances than fit" is proven before anything changes.
//!
//! YAML keeps no positions after parsing, so the line of a key found wrong in pass 3 is
//! recovered by parsing once more with a walker that fails exactly at that key: the YAML
//! library stamps its own error with the position, which is then read back ([`locate`]).
use std::collections::HashSet;
use std::fmt;

use mig::planner::PlanError;
use mig::{CiProfileId, DesiredGi, DesiredLayout, GiProfile, GpuModel, MigState, Placement};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::gpu_selector::GpuSelector;

/// The only config version mig-parted defines.
pub const VERSION: &str = "v1";

/// One step of a path into the YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A path into the document, displayed like `mig-configs.seed-mixed[0].mig-devices."3g.20gb@4"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<PathSeg>);

impl KeyPath {
    fn key(mut self, k: impl Into<String>) -> Self {
        self.0.push(PathSeg::Key(k.into()));
        self
    }

    fn index(mut self, i: usize) -> Self {
        self.0.push(PathSeg::Index(i));
        self
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        f.write_str(k)?;
                    } else {
                        write!(f, "\"{k}\"")?;
                    }
                }
                PathSeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem in a layout file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {}{message}",
    match (line, column) { (Some(l), Some(c)) => format!(":{l}:{c}"), (Some(l), None) => format!(":{l}"), _ => String::new() },
    if path.0.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ConfigError {
    /// The file name (or `<built-in vmig-layouts.yaml>`, `<stdin>`).
    pub origin: String,
    /// 1-based line, when the position could be recovered.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// The key the problem is about.
    pub path: KeyPath,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// How an entry names GPUs (`devices:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Devices {
    /// `all`.
    All,
    /// A list of NVML indices (mig-parted) or, as a vmig extension, GPU UUIDs and PCI bus ids.
    List(Vec<GpuSelector>),
}

/// One `device-filter` item: `0xDDDDVVVV` (PCI device id and vendor, the way NVML's
/// `pciDeviceId` packs them), optionally `:0xSSSSssss` for the subsystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Device id in the upper 16 bits, vendor id in the lower 16.
    pub device: u32,
    /// Subsystem device/vendor word, if the filter names one.
    pub subsystem: Option<u32>,
}

impl DeviceFilter {
    /// Parse `0x20B010DE` or `0x233010DE:0x16C110DE` (hex, any case, `0x` optional).
    pub fn parse(s: &str) -> Option<DeviceFilter> {
        let hex = |t: &str| {
            let t = t.trim();
            let t = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            if t.is_empty() || t.len() > 8 {
                return None;
            }
            u32::from_str_radix(t, 16).ok()
        };
        match s.split_once(':') {
            Some((d, sub)) => Some(DeviceFilter {
                device: hex(d)?,
                subsystem: Some(hex(sub)?),
            }),
            None => Some(DeviceFilter {
                device: hex(s)?,
                subsystem: None,
            }),
        }
    }

    /// Whether a GPU with this PCI device word (and subsystem word, if known) matches.
    pub fn matches(&self, device: u32, subsystem: Option<u32>) -> bool {
        self.device == device
            && match (self.subsystem, subsystem) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }

    /// The catalog models whose PCI device word matches (ignoring the subsystem).
    pub fn catalog_models(&self) -> impl Iterator<Item = &'static GpuModel> + '_ {
        mig::catalog()
            .iter()
            .filter(|m| m.pci_device_id_word() == self.device)
    }
}

impl fmt::Display for DeviceFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.device)?;
        if let Some(s) = self.subsystem {
            write!(f, ":0x{s:08X}")?;
        }
        Ok(())
    }
}

/// What one `mig-devices` key asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecKind {
    /// A GPU-instance profile (`3g.20gb`, `1g.5gb+me`), optionally pinned to a start slice
    /// (`3g.20gb@4`, vmig extension). Each GI gets its default CI unless `compute` says otherwise.
    Gi { profile: String, start: Option<u32> },
    /// A compute-instance profile with fewer compute slices than its GI (`1c.3g.20gb`,
    /// mig-parted form): that many CIs, packed into as few GIs of `gi` as hold them.
    Ci { ci: String, gi: String },
}

/// One `mig-devices` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The key as written.
    pub key: String,
    pub kind: SpecKind,
    /// How many GIs (or CIs for [`SpecKind::Ci`]).
    pub count: u32,
    /// vmig extension: the CI profiles inside each of these GIs (default: one full-GI CI).
    pub compute: Option<Vec<String>>,
}

/// One list item of a named config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the config's list (0-based).
    pub index: usize,
    pub devices: Devices,
    /// Empty: no filter.
    pub device_filter: Vec<DeviceFilter>,
    pub mig_enabled: bool,
    /// In file order; zero counts are kept (they ask for nothing).
    pub mig_devices: Vec<DeviceSpec>,
}

/// A named config (`mig-configs: NAME: [...]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedConfig {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// A parsed layout file. Keeps its text so that later errors can name lines.
#[derive(Debug, Clone)]
pub struct LayoutFile {
    origin: String,
    text: String,
    /// Named configs in file order.
    pub configs: Vec<NamedConfig>,
}

/// What an entry asks of one GPU, resolved for its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `mig-enabled: false`.
    Disabled,
    /// `mig-enabled: true` with this layout.
    Enabled(DesiredLayout),
}

// ---------------------------------------------------------------------------------------
// Raw serde shapes (pass 2)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<String>,
    #[serde(rename = "mig-configs")]
    mig_configs: Option<Ordered<Vec<RawEntry>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    devices: Option<RawDevices>,
    #[serde(rename = "device-filter")]
    device_filter: Option<OneOrMany>,
    #[serde(rename = "mig-enabled")]
    mig_enabled: Option<bool>,
    #[serde(rename = "mig-devices")]
    mig_devices: Option<Ordered<RawCount>>,
}

/// A mapping kept in file order.
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<ScalarKey>()? {
                    out.push((k.0, m.next_value()?));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// A mapping key: any scalar, as text (`1g.5gb`, but also a bare number or `true`).
struct ScalarKey(String);

impl<'de> Deserialize<'de> for ScalarKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarText).map(ScalarKey)
    }
}

struct ScalarText;

impl Visitor<'_> for ScalarText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
}

enum RawDevices {
    All,
    List(Vec<GpuSelector>),
}

impl<'de> Deserialize<'de> for RawDevices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDevices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`all` or a list of GPU indices (vmig also takes GPU UUIDs and PCI bus ids)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDevices, E> {
                if v == "all" {
                    Ok(RawDevices::All)
                } else {
                    Err(E::custom(format!(
                        "devices: '{v}' is not valid; write `all` or a list such as [0, 1]"
                    )))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawDevices, A::Error> {
                let mut out = Vec::new();
                while let Some(d) = s.next_element::<RawDevice>()? {
                    out.push(d.0);
                }
                Ok(RawDevices::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct RawDevice(GpuSelector);

impl<'de> Deserialize<'de> for RawDevice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDevice;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a GPU index, a GPU-… UUID or a PCI bus id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDevice, E> {
                u32::try_from(v)
                    .map(|i| RawDevice(GpuSelector::Index(i)))
                    .map_err(|_| E::custom(format!("GPU index {v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDevice, E> {
                Err(E::custom(format!(
                    "GPU index {v} is negative; indices start at 0"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDevice, E> {
                v.parse::<GpuSelector>().map(RawDevice).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PCI device id such as \"0x20B010DE\" or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element::<String>()? {
                    out.push(v);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `mig-devices` value: a count (mig-parted) or `{count, compute}` (vmig extension).
enum RawCount {
    Count(u32),
    Split(RawSplit),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSplit {
    count: u32,
    compute: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for RawCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a count (0 or more) or {count: N, compute: [CI profiles]}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawCount, E> {
                u32::try_from(v)
                    .map(RawCount::Count)
                    .map_err(|_| E::custom(format!("count {v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawCount, E> {
                Err(E::custom(format!(
                    "count {v} is negative; counts are 0 or more"
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<RawCount, A::Error> {
                RawSplit::deserialize(de::value::MapAccessDeserializer::new(m)).map(RawCount::Split)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Pass 1 (duplicate keys) and the locator: structural walks over any YAML.

/// Marker text of the locator's deliberate error.
const FOUND: &str = "vmig-layout-locate-marker";

/// Walks a node; fails at the first duplicate key (at that key), or at `target` if given.
struct Walk<'a> {
    /// Remaining path to the node to fail at; `None` = only check duplicates.
    target: Option<&'a [PathSeg]>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let more = match self.target {
                Some([PathSeg::Index(n), rest @ ..]) if *n == i => {
                    if rest.is_empty() {
                        s.next_element_seed(FailHere)?.is_some()
                    } else {
                        s.next_element_seed(Walk { target: Some(rest) })?.is_some()
                    }
                }
                Some(_) => s.next_element::<IgnoredAny>()?.is_some(),
                None => s.next_element_seed(Walk { target: None })?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        let (want, rest) = match self.target {
            Some([PathSeg::Key(k), rest @ ..]) => (Some(k.as_str()), rest),
            _ => (None, &[][..]),
        };
        while let Some(key) = m.next_key_seed(KeySeed {
            seen: &mut seen,
            fail_on: if rest.is_empty() { want } else { None },
        })? {
            if self.target.is_none() {
                m.next_value_seed(Walk { target: None })?;
            } else if want == Some(key.as_str()) {
                m.next_value_seed(Walk { target: Some(rest) })?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads one mapping key; fails (at the key) on a duplicate or when it is the located key.
struct KeySeed<'s> {
    seen: &'s mut HashSet<String>,
    fail_on: Option<&'s str>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        struct Check<'s>(KeySeed<'s>);
        impl Visitor<'_> for Check<'_> {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                self.check(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
                self.check(v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
                self.check(v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
                self.check(v.to_string())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
                self.check(v.to_string())
            }
            fn visit_unit<E: de::Error>(self) -> Result<String, E> {
                self.check("null".to_string())
            }
        }
        impl Check<'_> {
            fn check<E: de::Error>(self, key: String) -> Result<String, E> {
                if self.0.fail_on == Some(key.as_str()) {
                    return Err(E::custom(FOUND));
                }
                if !self.0.seen.insert(key.clone()) {
                    return Err(E::custom(format!(
                        "duplicate key `{key}`: each key may appear once in a mapping; merge the two entries"
                    )));
                }
                Ok(key)
            }
        }
        d.deserialize_any(Check(self))
    }
}

/// Fails as soon as the node starts, so the YAML library stamps the node's position.
struct FailHere;

impl<'de> DeserializeSeed<'de> for FailHere {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(FailHere)
    }
}

impl<'de> Visitor<'de> for FailHere {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

/// The 1-based (line, column) of the node or key at `path` in `text`, if it exists.
pub fn locate(text: &str, path: &KeyPath) -> Option<(usize, usize)> {
    if path.0.is_empty() {
        return None;
    }
    let de = serde_norway::Deserializer::from_str(text);
    match (Walk {
        target: Some(&path.0),
    })
    .deserialize(de)
    {
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

/// serde_norway appends " at line L column C" to messages that have a position.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Profile keys

/// Parse a `mig-devices` key into what it asks for (model-independent syntax only).
fn parse_key(key: &str) -> Result<SpecKind, String> {
    let (name, start) = match key.split_once('@') {
        Some((n, s)) => {
            let start = s.trim().parse::<u32>().map_err(|_| {
                format!(
                    "`{key}`: the placement after @ must be a memory-slice number, e.g. `{}@4`",
                    n.trim()
                )
            })?;
            (n.trim(), Some(start))
        }
        None => (key.trim(), None),
    };
    if let Some((c, rest)) = name.split_once("c.")
        && !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_digit())
    {
        if !is_gi_name(rest) {
            return Err(format!(
                "`{key}` is not a profile name; write a GI profile such as `3g.20gb` or a CI profile such as `1c.3g.20gb`"
            ));
        }
        if start.is_some() {
            return Err(format!(
                "`{key}`: a placement cannot be given on a CI profile key; pin the GI instead: `\"{rest}@N\": {{count: 1, compute: [\"{name}\"]}}`"
            ));
        }
        return Ok(SpecKind::Ci {
            ci: name.to_string(),
            gi: rest.to_string(),
        });
    }
    if !is_gi_name(name) {
        return Err(format!(
            "`{key}` is not a profile name; write a GI profile such as `3g.20gb` or `1g.5gb+me`, optionally pinned as `3g.20gb@4`"
        ));
    }
    Ok(SpecKind::Gi {
        profile: name.to_string(),
        start,
    })
}

/// `<n>g.<mem>gb[+attr…]` (case-insensitive), the shape of every MIG GI profile name.
fn is_gi_name(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    let Some((g, rest)) = s.split_once("g.") else {
        return false;
    };
    let base = rest.split(['+', '-']).next().unwrap_or("");
    !g.is_empty()
        && g.bytes().all(|b| b.is_ascii_digit())
        && base.len() > 2
        && base.ends_with("gb")
        && base[..base.len() - 2]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
}

// ---------------------------------------------------------------------------------------

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

    /// Resolve `entry` of `config` for a GPU of `model`: profile names, placements and CI
    /// splits against the catalog, then the whole layout against the planner on an empty GPU
    /// (so a layout that cannot exist on this model is refused before anything changes).
    pub fn target_for(
        &self,
        config: &str,
        entry: &Entry,
        model: &'static GpuModel,
    ) -> Result<Target, ConfigError> {
        if !entry.mig_enabled {
            return Ok(Target::Disabled);
        }
        let epath = Self::entry_path(config, entry.index);
        let mpath = epath.clone().key("mig-devices");
        let gpu = format!("{} ({})", model.nvml_name, model.key);
        let gi_names = || {
            model
                .gi_profiles
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut gis = Vec::new();
        // CI-form keys, per GI profile, in file order.
        let mut packed: Vec<(&'static GiProfile, Vec<&'static mig::CiProfile>)> = Vec::new();
        for spec in &entry.mig_devices {
            if spec.count == 0 {
                continue;
            }
            let kpath = mpath.clone().key(spec.key.clone());
            match &spec.kind {
                SpecKind::Gi { profile, start } => {
                    let p = model.gi_profile_by_name(profile).ok_or_else(|| {
                        self.error(
                            kpath.clone(),
                            format!("unknown GPU instance profile `{profile}` for {gpu}; valid profiles: {}", gi_names()),
                        )
                    })?;
                    let placement = match start {
                        None => None,
                        Some(s) => {
                            let legal = p.placements.iter().find(|pl| pl.start == *s).copied();
                            Some(legal.ok_or_else(|| {
                                self.error(
                                    kpath.clone(),
                                    format!(
                                        "`{}` cannot start at memory slice {s} on {gpu}; legal starts for {}: {}",
                                        spec.key,
                                        p.name,
                                        p.placements.iter().map(|pl| pl.start.to_string()).collect::<Vec<_>>().join(", ")
                                    ),
                                )
                            })?)
                        }
                    };
                    let mut compute = Vec::new();
                    if let Some(names) = &spec.compute {
                        if names.is_empty() {
                            return Err(self.error(
                                kpath.clone(),
                                format!("`compute: []` would leave the GI without compute instances; leave `compute` out for one full-GI CI, or list CI profiles of {}", p.name),
                            ));
                        }
                        for n in names {
                            let c = p.ci_profile_by_name(n).ok_or_else(|| {
                                self.error(
                                    kpath.clone(),
                                    format!(
                                        "unknown compute instance profile `{n}` inside {} on {gpu}; valid: {}",
                                        p.name,
                                        p.ci_profiles.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                                    ),
                                )
                            })?;
                            compute.push(c.id);
                        }
                    }
                    if spec.count > p.instance_count {
                        return Err(self.too_many(
                            &mpath,
                            &gpu,
                            spec,
                            p.instance_count,
                            "GPU instances",
                        ));
                    }
                    for _ in 0..spec.count {
                        gis.push((
                            kpath.clone(),
                            DesiredGi {
                                profile: p.id,
                                placement,
                                compute: compute.clone(),
                            },
                        ));
                    }
                }
                SpecKind::Ci { ci, gi } => {
                    let p = model.gi_profile_by_name(gi).ok_or_else(|| {
                        self.error(
                            kpath.clone(),
                            format!("unknown GPU instance profile `{gi}` (in `{}`) for {gpu}; valid profiles: {}", spec.key, gi_names()),
                        )
                    })?;
                    let c = p.ci_profile_by_name(ci).ok_or_else(|| {
                        self.error(
                            kpath.clone(),
                            format!(
                                "unknown compute instance profile `{ci}` inside {} on {gpu}; valid: {}",
                                p.name,
                                p.ci_profiles.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?;
                    let slot = match packed.iter().position(|(g, _)| g.id == p.id) {
                        Some(i) => i,
                        None => {
                            packed.push((p, Vec::new()));
                            packed.len() - 1
                        }
                    };
                    let most = p.instance_count.saturating_mul(c.instance_count);
                    if spec.count > most {
                        return Err(self.too_many(&mpath, &gpu, spec, most, "compute instances"));
                    }
                    for _ in 0..spec.count {
                        packed[slot].1.push(c);
                    }
                }
            }
        }
        for (gi, cis) in packed {
            let kpath = mpath.clone();
            for bin in pack_cis(gi, cis) {
                gis.push((
                    kpath.clone(),
                    DesiredGi {
                        profile: gi.id,
                        placement: None,
                        compute: bin,
                    },
                ));
            }
        }
        let desired = DesiredLayout {
            gpu_instances: gis.iter().map(|(_, g)| g.clone()).collect(),
        };
        // Per-GI problems (a CI split that cannot exist) name their own key.
        for (kpath, gi) in &gis {
            let single = DesiredLayout {
                gpu_instances: vec![gi.clone()],
            };
            if let Err(e) = mig::plan(&MigState::new(model), &single) {
                return Err(self.error(
                    kpath.clone(),
                    format!("on {gpu}: {}", plan_error_text(model, &e)),
                ));
            }
        }
        if let Err(e) = mig::plan(&MigState::new(model), &desired) {
            return Err(self.error(
                mpath,
                format!(
                    "this layout does not fit {gpu}: {}",
                    plan_error_text(model, &e)
                ),
            ));
        }
        Ok(Target::Enabled(desired))
    }

    /// A count above what any GPU of the model can hold. Refused before the entry is expanded
    /// into one desired instance per count: a `u32` count would otherwise build (and plan)
    /// billions of them. Worded and located like the planner's own "does not fit".
    fn too_many(
        &self,
        mpath: &KeyPath,
        gpu: &str,
        spec: &DeviceSpec,
        most: u32,
        what: &str,
    ) -> ConfigError {
        self.error(
            mpath.clone(),
            format!(
                "this layout does not fit {gpu}: `{}` asks for {} {what}, and at most {most} fit",
                spec.key, spec.count
            ),
        )
    }
}

/// mig-parted packs `Nc.<GI>` CIs into GIs in creation order, reusing the last GI while the
/// next CI still fits. The equivalent here: largest CIs first, each into the first GI with
/// room (compute slices and the CI profile's per-GI instance cap).
fn pack_cis(
    gi: &'static GiProfile,
    mut cis: Vec<&'static mig::CiProfile>,
) -> Vec<Vec<CiProfileId>> {
    cis.sort_by_key(|c| std::cmp::Reverse(c.compute_slices));
    let mut bins: Vec<Vec<&'static mig::CiProfile>> = Vec::new();
    for c in cis {
        let fits = |b: &Vec<&'static mig::CiProfile>| {
            b.iter().map(|x| x.compute_slices).sum::<u32>() + c.compute_slices <= gi.compute_slices
                && (b.iter().filter(|x| x.id == c.id).count() as u32) < c.instance_count
        };
        match bins.iter_mut().find(|b| fits(b)) {
            Some(b) => b.push(c),
            None => bins.push(vec![c]),
        }
    }
    bins.into_iter()
        .map(|b| b.into_iter().map(|c| c.id).collect())
        .collect()
}

/// A planner error with profile ids replaced by this model's names.
pub fn plan_error_text(model: &GpuModel, e: &PlanError) -> String {
    let gi_name = |id: mig::GiProfileId| {
        model
            .gi_profile(id)
            .map_or_else(|| format!("profile {id}"), |p| p.name.to_string())
    };
    match e {
        PlanError::UnknownProfile(id) => format!("unknown GI profile {id}"),
        PlanError::UnknownCiProfile { gi, ci } => {
            format!("CI profile {ci} is not offered inside {}", gi_name(*gi))
        }
        PlanError::InvalidPlacement { profile, placement } => format!(
            "{} cannot sit at {placement}; legal placements: {}",
            gi_name(*profile),
            model
                .gi_profile(*profile)
                .map(|p| p
                    .placements
                    .iter()
                    .map(Placement::to_string)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

/// Serialisable pointer to the entry a GPU was matched by, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryRef {
    pub config: String,
    /// 0-based index in the config's list.
    pub entry: usize,
    pub line: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a100() -> &'static GpuModel {
        GpuModel::by_key("a100-pcie-40gb").unwrap()
    }

    fn parse(text: &str) -> Result<LayoutFile, ConfigError> {
        LayoutFile::parse("t.yaml", text)
    }

    /// Parses `text`, resolves the first entry of its first config (`mixed`) for an A100 and
    /// checks the refusal: at `line`, its message holding `needle`. Returns the error for
    /// further checks.
    fn refused_at(text: &str, line: usize, needle: &str) -> ConfigError {
        let f = parse(text).unwrap();
        let e = f
            .target_for("mixed", &f.configs[0].entries[0], a100())
            .unwrap_err();
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.message.contains(needle), "{e}");
        e
    }

    const MIXED: &str = r#"version: v1
mig-configs:
  mixed:
    - devices: all
      mig-enabled: true
      mig-devices:
        "3g.20gb": 1
        "2g.10gb": 1
        "1g.5gb": 2
"#;

    /// Regression (found by the `layout` fuzz target): counts are `u32` and were expanded
    /// into one desired GI (or CI) each before planning, so a huge count never finished.
    #[test]
    fn counts_beyond_the_model_are_refused_before_expansion() {
        for (key, count, most) in [
            ("1g.5gb", "4000000000", 7),
            ("2g.10gb", "4", 3),
            ("1c.7g.40gb", "4294967295", 7),
        ] {
            let text = MIXED
                .replace("\"1g.5gb\": 2", &format!("\"{key}\": {count}"))
                .replace("\"3g.20gb\": 1\n        \"2g.10gb\": 1\n", "");
            let e = refused_at(&text, 6, "does not fit");
            assert!(e.message.contains(&format!("at most {most} fit")), "{e}");
        }
    }

    #[test]
    fn reads_mig_parted_v1() {
        let f = parse(MIXED).unwrap();
        let c = f.config(None).unwrap();
        assert_eq!(c.name, "mixed");
        let e = &c.entries[0];
        assert_eq!(e.devices, Devices::All);
        assert!(e.mig_enabled);
        assert_eq!(e.mig_devices.len(), 3);
        let Target::Enabled(d) = f.target_for("mixed", e, a100()).unwrap() else {
            panic!("enabled")
        };
        assert_eq!(d.gpu_instances.len(), 4);
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_key() {
        let text = MIXED.replace("\"1g.5gb\": 2", "\"1g.5gb\": 2\n        \"2g.10gb\": 1");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains("duplicate key `2g.10gb`"), "{e}");
        let e = parse(
            "version: v1\nversion: v1\nmig-configs: {a: [{devices: all, mig-enabled: false}]}\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn unknown_profile_names_the_line_and_lists_valid_ones() {
        let text = MIXED.replace("\"2g.10gb\"", "\"2g.20gb\"");
        let e = refused_at(&text, 8, "unknown GPU instance profile `2g.20gb`");
        assert!(e.message.contains("3g.20gb"), "{e}");
        assert!(e.to_string().starts_with("t.yaml:8:9: "), "{e}");
    }

    #[test]
    fn impossible_placement_and_overfull_layouts_are_refused() {
        let text = MIXED.replace("\"3g.20gb\": 1", "\"3g.20gb@3\": 1");
        refused_at(&text, 7, "legal starts for 3g.20gb: 0, 4");

        let text = MIXED.replace("\"1g.5gb\": 2", "\"1g.5gb\": 3");
        refused_at(&text, 6, "does not fit");
    }

    #[test]
    fn extensions_placements_and_ci_splits() {
        let f = parse(
            r#"version: v1
mig-configs:
  x:
    - devices: [0, "GPU-1234", "0000:3b:00.0"]
      device-filter: "0x20F110DE"
      mig-enabled: true
      mig-devices:
        "3g.20gb@4": {count: 1, compute: ["1c.3g.20gb", "2c.3g.20gb"]}
        "1c.2g.10gb": 2
"#,
        )
        .unwrap();
        let e = &f.configs[0].entries[0];
        assert!(matches!(&e.devices, Devices::List(l) if l.len() == 3));
        assert_eq!(e.device_filter[0].device, 0x20F1_10DE);
        let Target::Enabled(d) = f.target_for("x", e, a100()).unwrap() else {
            panic!()
        };
        assert_eq!(d.gpu_instances.len(), 2);
        assert_eq!(d.gpu_instances[0].placement, Some(Placement::new(4, 4)));
        assert_eq!(d.gpu_instances[0].compute.len(), 2);
        // Two 1c CIs of a 2g GI pack into one GI.
        assert_eq!(d.gpu_instances[1].compute.len(), 2);
    }

    #[test]
    fn filtered_entries_are_checked_against_their_models_at_load() {
        let e = parse(
            r#"version: v1
mig-configs:
  x:
    - devices: all
      device-filter: ["0x233010DE"]
      mig-enabled: true
      mig-devices:
        "1g.5gb": 7
"#,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(8), "{e}");
        assert!(e.message.contains("NVIDIA H100 80GB HBM3"), "{e}");
    }

    #[test]
    fn structural_errors_have_lines() {
        for (text, line, needle) in [
            ("version: v2\nmig-configs: {}\n", Some(1), "unknown version"),
            (
                "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n",
                Some(4),
                "missing `mig-devices`",
            ),
            (
                "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n      bogus: 1\n",
                Some(6),
                "unknown field `bogus`",
            ),
            (
                "version: v1\nmig-configs:\n  a:\n    - devices: some\n      mig-enabled: false\n",
                Some(4),
                "devices",
            ),
            (
                "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"1g.5gb\": -1}\n",
                Some(6),
                "negative",
            ),
            (
                "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"3g.20gb@4\": 2}\n",
                Some(6),
                "one GI",
            ),
            (
                "version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n      mig-devices: {\"1g.5gb\": 1}\n",
                Some(6),
                "mig-enabled: false",
            ),
            (
                "version: v1\nmig-configs:\n  a:\n    - devices: all\n      device-filter: nope\n      mig-enabled: false\n",
                Some(5),
                "PCI device id",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn device_filters_parse_and_match() {
        let f = DeviceFilter::parse("0x20b010de").unwrap();
        assert!(f.matches(0x20B0_10DE, None));
        assert!(!f.matches(0x20F1_10DE, None));
        let f = DeviceFilter::parse("0x233010DE:0x16C110DE").unwrap();
        assert!(f.matches(0x2330_10DE, Some(0x16C1_10DE)));
        assert!(!f.matches(0x2330_10DE, Some(0x2330_10DE)));
        assert_eq!(f.to_string(), "0x233010DE:0x16C110DE");
        assert!(DeviceFilter::parse("0x1234567890").is_none());
    }

    #[test]
    fn ci_packing_follows_mig_parted() {
        let gi = a100().gi_profile_by_name("3g.20gb").unwrap();
        let one = gi.ci_profile_by_name("1c.3g.20gb").unwrap();
        let two = gi.ci_profile_by_name("2c.3g.20gb").unwrap();
        assert_eq!(pack_cis(gi, vec![one, two]).len(), 1);
        assert_eq!(pack_cis(gi, vec![one; 4]).len(), 2);
    }
}
