//! The PROFILES argument of `cgi`/`cci`: a comma list of profile ids or names, as nvidia-smi
//! takes them (`9,19,14,19`, `3g.20gb,1g.5gb`, `MIG 3g.20gb`). Parsed here into
//! [`ProfileSpec`]s; matched against the profiles NVML reports for the GPU or GI, never
//! against a built-in table.
use std::fmt;

/// One entry of a PROFILES list, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileSpec {
    /// A numeric profile id (`9`).
    Id(u32),
    /// A profile name without the `MIG ` prefix, lowercased (`3g.20gb`).
    Name(String),
}

impl ProfileSpec {
    /// Whether this spec names the profile with `id` and `name` (name compared
    /// case-insensitively, with or without `MIG `).
    pub fn matches(&self, id: u32, name: &str) -> bool {
        match self {
            ProfileSpec::Id(i) => *i == id,
            ProfileSpec::Name(n) => normalise(name) == *n,
        }
    }
}

impl fmt::Display for ProfileSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileSpec::Id(i) => write!(f, "{i}"),
            ProfileSpec::Name(n) => f.write_str(n),
        }
    }
}

fn normalise(name: &str) -> String {
    let t = name.trim();
    let t = match (t.get(..4), t.get(4..)) {
        (Some(head), Some(rest)) if head.eq_ignore_ascii_case("MIG ") && !rest.is_empty() => rest,
        _ => t,
    };
    t.trim().to_ascii_lowercase()
}

/// A whole PROFILES argument (what clap parses it into).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileList(pub Vec<ProfileSpec>);

impl std::str::FromStr for ProfileList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_profiles(s).map(ProfileList)
    }
}

/// A whole `--placement` argument: one start per profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartList(pub Vec<u32>);

impl std::str::FromStr for StartList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_starts(s).map(StartList)
    }
}

/// Parse a comma list. Empty entries are an error (they are always a typo).
pub fn parse_profiles(s: &str) -> Result<Vec<ProfileSpec>, String> {
    if s.trim().is_empty() {
        return Err(
            "empty profile list; give profile ids or names, e.g. 9,19 or 3g.20gb,1g.5gb".into(),
        );
    }
    s.split(',')
        .map(|item| {
            let t = item.trim();
            if t.is_empty() {
                Err(format!("empty entry in profile list '{s}'"))
            } else if let Ok(id) = t.parse::<u32>() {
                Ok(ProfileSpec::Id(id))
            } else {
                Ok(ProfileSpec::Name(normalise(t)))
            }
        })
        .collect()
}

/// Parse the `--placement` list of starts (one per profile).
pub fn parse_starts(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|t| {
            t.trim().parse::<u32>().map_err(|_| {
                format!(
                    "'{}' is not a placement start (a memory-slice index such as 0 or 4)",
                    t.trim()
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_names_and_prefixes() {
        assert_eq!(
            parse_profiles("9,19,14,19").unwrap(),
            vec![
                ProfileSpec::Id(9),
                ProfileSpec::Id(19),
                ProfileSpec::Id(14),
                ProfileSpec::Id(19)
            ]
        );
        assert_eq!(
            parse_profiles("3g.20gb, MIG 1g.5gb+me").unwrap(),
            vec![
                ProfileSpec::Name("3g.20gb".into()),
                ProfileSpec::Name("1g.5gb+me".into())
            ]
        );
        assert!(parse_profiles("").is_err());
        assert!(parse_profiles("9,,19").is_err());
        assert!(ProfileSpec::Name("3g.20gb".into()).matches(9, "MIG 3G.20gb"));
        assert!(!ProfileSpec::Id(9).matches(19, "1g.5gb"));
        assert_eq!(parse_starts("0, 4").unwrap(), vec![0, 4]);
        assert!(parse_starts("x").is_err());
    }

    proptest! {
        #[test]
        fn id_lists_round_trip(ids in proptest::collection::vec(0u32..100, 1..8)) {
            let s = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let parsed = parse_profiles(&s).unwrap();
            prop_assert_eq!(parsed, ids.into_iter().map(ProfileSpec::Id).collect::<Vec<_>>());
        }
    }
}
