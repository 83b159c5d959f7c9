//! Pass 2: the file's typed shape as serde reads it, unknown fields refused (mig-parted
//! refuses them too), mappings kept in file order.
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::gpu_selector::GpuSelector;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) version: Option<String>,
    #[serde(rename = "mig-configs")]
    pub(super) mig_configs: Option<Ordered<Vec<RawEntry>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntry {
    pub(super) devices: Option<RawDevices>,
    #[serde(rename = "device-filter")]
    pub(super) device_filter: Option<OneOrMany>,
    #[serde(rename = "mig-enabled")]
    pub(super) mig_enabled: Option<bool>,
    #[serde(rename = "mig-devices")]
    pub(super) mig_devices: Option<Ordered<RawCount>>,
}

/// A mapping kept in file order.
pub(super) struct Ordered<V>(pub(super) Vec<(String, V)>);

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

pub(super) enum RawDevices {
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

pub(super) struct OneOrMany(pub(super) Vec<String>);

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
pub(super) enum RawCount {
    Count(u32),
    Split(RawSplit),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSplit {
    pub(super) count: u32,
    pub(super) compute: Option<Vec<String>>,
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
