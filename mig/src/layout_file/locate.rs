//! Structural walks over any YAML: pass 1, which refuses duplicate keys *at the key*, and the
//! locator, which finds the line of a key by failing exactly there.
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::{KeyPath, PathSeg};

/// Marker text of the locator's deliberate error.
const FOUND: &str = "vmig-layout-locate-marker";

/// Walks a node; fails at the first duplicate key (at that key), or at `target` if given.
pub(super) struct Walk<'a> {
    /// Remaining path to the node to fail at; `None` = only check duplicates.
    pub(super) target: Option<&'a [PathSeg]>,
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
pub(super) fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
