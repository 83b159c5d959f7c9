//! Bounds on a `vmig.reservation` value before anything uses it. The value is a custom
//! attribute on a VM: anyone with `Global.SetCustomField` on that VM (an older or buggy vmig,
//! a script, a compromised account) can write any text there, so [`Reservation::from_json`]
//! refuses, with a sentence naming the field and the bound, what vmig itself never writes:
//! oversized input, long or control-character text, ids that are not managed object ids,
//! tokens outside vCenter's key range, placements outside any MIG geometry, times that do not
//! parse or run backwards. Whether the placement fits the *reserved GPU's* geometry is judged
//! later, by the analysis, against the host's report.
//!
//! [`Reservation::from_json`]: super::Reservation::from_json

use mig::report::{MAX_ID, MAX_MEMORY_SLICES};

use super::Reservation;

/// The largest value accepted, in bytes. vmig writes about 600; every field at its bound
/// stays under 4 KiB.
pub const MAX_RESERVATION_BYTES: usize = 16 * 1024;
/// Names as vCenter and DNS allow them (a DNS name has at most 253 characters).
pub const MAX_NAME_CHARS: usize = 255;
/// Managed object ids (`host-21`, `task-1234`), GPU and VM UUIDs, type and profile names.
pub const MAX_ID_CHARS: usize = 96;
/// vGPUs in one reservation (the first plus `more`): far above the vGPU devices vSphere lets
/// one VM carry, low enough that the value stays small.
pub const MAX_VGPUS: usize = 16;
/// The fencing token is a custom field key: vCenter's keys are `xsd:int`, never negative.
pub const MAX_TOKEN: i64 = i32::MAX as i64;

/// Refuses `text` before parsing when it is larger than any reservation can be.
pub fn check_size(text: &str) -> Result<(), String> {
    if text.len() > MAX_RESERVATION_BYTES {
        return Err(format!(
            "reservation is {} bytes; at most {MAX_RESERVATION_BYTES} are accepted",
            text.len()
        ));
    }
    Ok(())
}

/// Every bound of a parsed reservation; the first violation, named.
pub fn check(r: &Reservation) -> Result<(), String> {
    moref("host", &r.host)?;
    text("host_name", &r.host_name, MAX_NAME_CHARS)?;
    text("by", &r.by, MAX_NAME_CHARS)?;
    vgpu(
        "",
        &VgpuFields {
            gpu_uuid: &r.gpu_uuid,
            vgpu_type: &r.vgpu_type,
            profile: &r.profile,
            profile_id: r.profile_id,
            placement: r.placement,
        },
    )?;
    if r.more.len() >= MAX_VGPUS {
        return Err(format!(
            "reservation field `more` lists {} vGPUs; a reservation holds at most {MAX_VGPUS} in all",
            r.more.len()
        ));
    }
    for (i, m) in r.more.iter().enumerate() {
        vgpu(
            &format!("more[{i}]."),
            &VgpuFields {
                gpu_uuid: &m.gpu_uuid,
                vgpu_type: &m.vgpu_type,
                profile: &m.profile,
                profile_id: m.profile_id,
                placement: m.placement,
            },
        )?;
    }
    if let Some(t) = r.token
        && !(0..=MAX_TOKEN).contains(&t)
    {
        return Err(format!(
            "reservation field `token` is {t}; a lock's fencing token is a custom field key, 0..={MAX_TOKEN}"
        ));
    }
    if let Some(task) = &r.task {
        moref("task", task)?;
    }
    if let Some(from) = &r.from_host {
        moref("from_host", from)?;
    }
    if let Some(u) = &r.vm_uuid {
        identifier("vm_uuid", u)?;
    }
    let reserved = time("reserved_at", &r.reserved_at)?;
    if let Some(e) = &r.expires_at {
        let expires = time("expires_at", e)?;
        if expires < reserved {
            return Err(format!(
                "reservation field `expires_at` ({e}) is before `reserved_at` ({})",
                r.reserved_at
            ));
        }
    }
    Ok(())
}

/// The per-vGPU fields, of the first vGPU or of one in `more`.
struct VgpuFields<'a> {
    gpu_uuid: &'a str,
    vgpu_type: &'a str,
    profile: &'a str,
    profile_id: mig::GiProfileId,
    placement: mig::Placement,
}

/// Bounds of one vGPU's fields; `prefix` names where it sits (`""` or `"more[2]."`).
fn vgpu(prefix: &str, v: &VgpuFields<'_>) -> Result<(), String> {
    identifier(&format!("{prefix}gpu_uuid"), v.gpu_uuid)?;
    identifier(&format!("{prefix}vgpu_type"), v.vgpu_type)?;
    identifier(&format!("{prefix}profile"), v.profile)?;
    if v.profile_id.0 > MAX_ID {
        return Err(format!(
            "reservation field `{prefix}profile_id` is {}; NVML's GPU instance profile ids are at most {MAX_ID}",
            v.profile_id.0
        ));
    }
    let p = v.placement;
    // Written as a subtraction so that no value can overflow.
    if p.size == 0 || p.size > MAX_MEMORY_SLICES || p.start > MAX_MEMORY_SLICES - p.size {
        return Err(format!(
            "reservation field `{prefix}placement` (start {}, size {}) is outside every MIG geometry \
             ({MAX_MEMORY_SLICES} memory slices at most)",
            p.start, p.size
        ));
    }
    Ok(())
}

/// Printable text of at most `max` characters (names, the user).
fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars > max {
        return Err(format!(
            "reservation field `{field}` is {chars} characters long; at most {max}"
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "reservation field `{field}` contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// A non-empty token of letters, digits and `-_.:` (UUIDs, vGPU types, profile names).
fn identifier(field: &str, value: &str) -> Result<(), String> {
    text(field, value, MAX_ID_CHARS)?;
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+');
    if value.is_empty() || !value.chars().all(ok) {
        return Err(format!(
            "reservation field `{field}` ({value:?}) is not an identifier (letters, digits, `-_.:+`)"
        ));
    }
    Ok(())
}

/// A managed object id as vCenter writes them: `host-21`, `task-1234`, `vm-7`.
fn moref(field: &str, value: &str) -> Result<(), String> {
    identifier(field, value)?;
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "reservation field `{field}` ({value:?}) is not a managed object id like \"host-21\""
        ));
    }
    Ok(())
}

/// An RFC 3339 time.
fn time(field: &str, value: &str) -> Result<time::OffsetDateTime, String> {
    text(field, value, MAX_ID_CHARS)?;
    crate::times::parse_time(value).ok_or_else(|| {
        format!("reservation field `{field}` ({value:?}) is not an RFC 3339 time like \"2026-01-01T00:00:00Z\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reservation::{RESERVATION_SCHEMA, Step};
    use mig::{GiProfileId, Placement};
    use proptest::prelude::*;

    fn good() -> Reservation {
        Reservation {
            schema: RESERVATION_SCHEMA.into(),
            host: "host-21".into(),
            host_name: "esx01.example.com".into(),
            gpu_uuid: "GPU-5ba4d6e8-0b8d-4f0e-9c62-2a51c3a4e0f1".into(),
            vgpu_type: "grid_a100-3-20c".into(),
            profile: "3g.20gb".into(),
            profile_id: GiProfileId(9),
            placement: Placement::new(4, 4),
            reserved_at: "2026-01-01T00:00:00Z".into(),
            by: "admin@vc01".into(),
            memory_locked_before: Some(false),
            token: Some(1234),
            step: Some(Step::Configuring),
            task: Some("task-77".into()),
            from_host: Some("host-9".into()),
            expires_at: Some("2026-01-08T00:00:00Z".into()),
            vm_uuid: Some("4213a1b2-0000-1111-2222-333344445555".into()),
            more: Vec::new(),
            time_sliced: false,
        }
    }

    fn more() -> crate::reservation::MoreVgpu {
        crate::reservation::MoreVgpu {
            gpu_uuid: "GPU-5ba4d6e8-0b8d-4f0e-9c62-2a51c3a4e0f1".into(),
            vgpu_type: "grid_a100-2-10c".into(),
            profile: "2g.10gb".into(),
            profile_id: GiProfileId(14),
            placement: Placement::new(0, 2),
            time_sliced: false,
        }
    }

    #[test]
    fn every_vgpu_of_a_multi_vgpu_reservation_is_bounded() {
        let mut r = good();
        r.more = vec![more()];
        assert_eq!(Reservation::from_json(&r.to_json()), Ok(r));
        let e = refused(|r| {
            let mut m = more();
            m.placement = Placement::new(14, 4);
            r.more = vec![more(), m];
        });
        assert!(e.contains("`more[1].placement`"), "{e}");
        let e = refused(|r| {
            let mut m = more();
            m.vgpu_type = "grid\u{1b}[2J".into();
            r.more = vec![m];
        });
        assert!(e.contains("`more[0].vgpu_type`"), "{e}");
        let e = refused(|r| r.more = vec![more(); MAX_VGPUS]);
        assert!(e.contains("at most 16"), "{e}");
    }

    type Edit = Box<dyn FnOnce(&mut Reservation)>;

    fn refused(edit: impl FnOnce(&mut Reservation)) -> String {
        let mut r = good();
        edit(&mut r);
        Reservation::from_json(&r.to_json()).expect_err("refused")
    }

    #[test]
    fn what_vmig_writes_is_accepted() {
        let r = good();
        assert_eq!(Reservation::from_json(&r.to_json()), Ok(r));
    }

    #[test]
    fn each_bound_is_named() {
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|r| r.host = "host 21".into()), "field `host`"),
            (Box::new(|r| r.host = String::new()), "field `host`"),
            (
                Box::new(|r| r.host_name = "x".repeat(256)),
                "256 characters long; at most 255",
            ),
            (
                Box::new(|r| r.host_name = "esx\u{1b}[31m".into()),
                "control character U+001B",
            ),
            (
                Box::new(|r| r.vgpu_type = "grid\u{9b}31m".into()),
                "control character U+009B",
            ),
            (
                Box::new(|r| r.by = "a\r\nb".into()),
                "control character U+000D",
            ),
            (
                Box::new(|r| r.gpu_uuid = "=cmd|' /C calc'!A0".into()),
                "`gpu_uuid`",
            ),
            (
                Box::new(|r| r.profile_id = GiProfileId(u32::MAX)),
                "at most 255",
            ),
            (
                Box::new(|r| r.placement = Placement::new(u32::MAX, 4)),
                "outside every MIG geometry",
            ),
            (
                Box::new(|r| r.placement = Placement::new(4, u32::MAX)),
                "outside every MIG geometry",
            ),
            (
                Box::new(|r| r.placement = Placement::new(0, 0)),
                "outside every MIG geometry",
            ),
            (
                Box::new(|r| r.placement = Placement::new(15, 2)),
                "outside every MIG geometry",
            ),
            (Box::new(|r| r.token = Some(-1)), "field `token` is -1"),
            (Box::new(|r| r.token = Some(i64::MAX)), "0..=2147483647"),
            (
                Box::new(|r| r.task = Some("task/../x".into())),
                "field `task`",
            ),
            (
                Box::new(|r| r.from_host = Some("-host".into())),
                "field `from_host`",
            ),
            (
                Box::new(|r| r.vm_uuid = Some("42 13".into())),
                "field `vm_uuid`",
            ),
            (
                Box::new(|r| r.reserved_at = "\r\n".into()),
                "field `reserved_at`",
            ),
            (
                Box::new(|r| r.reserved_at = "yesterday".into()),
                "not an RFC 3339 time",
            ),
            (
                Box::new(|r| r.expires_at = Some("2025-12-31T00:00:00Z".into())),
                "before `reserved_at`",
            ),
        ];
        for (edit, want) in cases {
            let e = refused(edit);
            assert!(e.contains(want), "{e:?} does not contain {want:?}");
            assert!(e.starts_with("reservation "), "{e}");
        }
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let mut text = good().to_json();
        text.push_str(&" ".repeat(MAX_RESERVATION_BYTES));
        let e = Reservation::from_json(&text).expect_err("refused");
        assert!(e.contains("at most 16384"), "{e}");
    }

    proptest! {
        /// Whatever the placement, checking it never overflows, and what passes fits in
        /// `MAX_MEMORY_SLICES`.
        #[test]
        fn placements_are_bounded(start in any::<u32>(), size in any::<u32>()) {
            let mut r = good();
            r.placement = Placement::new(start, size);
            if check(&r).is_ok() {
                prop_assert!(size >= 1 && u64::from(start) + u64::from(size) <= u64::from(MAX_MEMORY_SLICES));
            } else {
                prop_assert!(size == 0 || u64::from(start) + u64::from(size) > u64::from(MAX_MEMORY_SLICES));
            }
        }

        /// Any text in any string field: accepted only without control characters and
        /// within its length, and never a panic.
        #[test]
        fn text_fields_never_carry_control_characters(s in any::<String>(), field in 0usize..6) {
            let mut r = good();
            match field {
                0 => r.host_name = s.clone(),
                1 => r.by = s.clone(),
                2 => r.gpu_uuid = s.clone(),
                3 => r.vgpu_type = s.clone(),
                4 => r.host = s.clone(),
                _ => r.vm_uuid = Some(s.clone()),
            }
            if let Ok(parsed) = Reservation::from_json(&r.to_json()) {
                let all = [&parsed.host_name, &parsed.by, &parsed.gpu_uuid, &parsed.vgpu_type, &parsed.host];
                prop_assert!(all.iter().all(|t| !t.chars().any(char::is_control) && t.chars().count() <= MAX_NAME_CHARS));
            }
        }

        /// Arbitrary bytes never panic the reader.
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,400}") {
            let _ = Reservation::from_json(&s);
        }
    }
}
