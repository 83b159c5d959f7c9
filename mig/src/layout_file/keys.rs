//! The grammar of a `mig-devices` key (`3g.20gb`, `3g.20gb@4`, `1c.3g.20gb`), checked
//! before any GPU model is known.
use super::model::SpecKind;

/// Parse a `mig-devices` key into what it asks for (model-independent syntax only).
pub(super) fn parse_key(key: &str) -> Result<SpecKind, String> {
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
