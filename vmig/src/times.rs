//! Timestamps as vmig reads and writes them: RFC 3339 in UTC with whole seconds (the agents'
//! `observed_at`, reservations' `reserved_at`, lock holders' `since`, a report's
//! `generated_at`), vCenter's clock ([`vcenter_now`]), and short human ages for tables.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses an RFC 3339 time.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Formats a time as RFC 3339 UTC with whole seconds.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// vCenter's current time (`ServiceInstance.CurrentTime`): what every lock, reservation and
/// expiry is written in and judged by, so that no admin workstation's clock matters.
pub async fn vcenter_now(
    client: &vcenter_client::Client,
) -> vcenter_client::Result<OffsetDateTime> {
    let text = client.current_time().await?;
    parse_time(text.trim()).ok_or_else(|| vcenter_client::Error::Decode {
        context: "CurrentTime".into(),
        detail: format!("`{text}` is not an xsd:dateTime"),
    })
}

/// `90s`, `12m`, `3h`, `2d`.
pub fn human_age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(3 * 3600), "3h");
        assert_eq!(human_age(5 * 86_400), "5d");
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-11-26T14:02:11Z").unwrap();
        assert_eq!(format_time(t), "2026-11-26T14:02:11Z");
        assert!(parse_time("yesterday").is_none());
    }
}
