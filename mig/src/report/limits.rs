//! The limits of a `vmig.mig/v1` document and the small checks that enforce them, shared by
//! every part of the validation (GPUs and GIs in `validate`, `usage`, `layout_state`,
//! `vgpus`). Kept apart so the parts depend on the limits, never on each other.

/// Largest document accepted, in bytes. A fully partitioned 8-GPU host writes about 20 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Longest name, UUID, profile, VM or type string, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest `error` text of a GPU, in characters.
pub const MAX_ERROR_CHARS: usize = 2048;
/// Most GPUs in one document (NVML enumerates at most 64 devices per host; no ESXi host
/// carries that many).
pub const MAX_GPUS: usize = 64;
/// Most placement units of any MIG GPU (8 memory slices on A100/H100, a 12-unit grid on the
/// RTX PRO 6000 Blackwell; published geometry is accepted up to 16); also bounds GI
/// placements of GPUs outside the catalog.
pub const MAX_MEMORY_SLICES: u32 = 16;
/// Most compute instances in one GPU instance (a GI has at most 8 compute slices).
pub const MAX_COMPUTE_INSTANCES: usize = 8;
/// Largest GI or CI id, profile id or GPU index accepted. NVML's ids are small integers
/// (GI ids stay below 16, CI ids below 8, profile ids below 32).
pub const MAX_ID: u32 = 255;
/// Most processes listed on one GPU instance.
pub const MAX_PROCESSES: usize = 1024;
/// Most entries in a GPU's `free` map or `placeable_vgpu_types` list.
pub const MAX_LIST_ENTRIES: usize = 256;
/// Largest `generation` accepted: 2^53 − 1, the largest integer every JSON reader (a
/// JavaScript one included) holds exactly. An agent counting one change a second needs 285
/// million years to get there, so a larger value is a forged or broken document; the agent
/// overwrites it (see agent/src/daemon/generation.rs) instead of failing on `+ 1`.
pub const MAX_GENERATION: u64 = (1 << 53) - 1;
/// Longest heartbeat interval accepted (one day); staleness is three heartbeats, so a larger
/// value would keep a dead agent's report "ok" for days.
pub const MAX_HEARTBEAT_INTERVAL_S: u64 = 86_400;

pub(super) fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    // Bytes first: a cheap upper bound on the characters.
    if value.len() > max && value.chars().count() > max {
        return Err(format!("{field} is longer than {max} characters"));
    }
    Ok(())
}

pub(super) fn count(field: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!("{field} has {n} entries, more than {max}"));
    }
    Ok(())
}

pub(super) fn id(field: &str, value: u32) -> Result<(), String> {
    if value > MAX_ID {
        return Err(format!("{field} {value} is larger than {MAX_ID}"));
    }
    Ok(())
}

/// At most 40 characters of `s`, for quoting outside input in an error.
pub(super) fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Whether `s` has the shape of an RFC 3339 date-time (`2026-11-26T14:02:11Z`,
/// `…T14:02:11.5+01:00`) with its fields in range. The crate has no time library; the readers
/// parse the value with theirs and only need it to be sane here.
pub(super) fn rfc3339_shape(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return Err("wrong length");
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0u32, |acc, d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err("digits expected");
    };
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err("separators expected");
    }
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return Err("a field is out of range");
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err("bad fraction of a second");
        }
        rest = &frac[digits..];
    }
    match rest {
        b"Z" | b"z" => Ok(()),
        [sign, h1, h2, b':', m1, m2]
            if (*sign == b'+' || *sign == b'-')
                && [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err("bad time zone"),
    }
}
