//! Dates from `SOURCE_DATE_EPOCH`, formatted the way VMware's metadata writes them.
//!
//! The calendar arithmetic is the `time` crate's, the workspace's one way to compute dates.
//!
//! Reproducible builds take every timestamp from one number of seconds since 1970 (the
//! `SOURCE_DATE_EPOCH` convention), so no clock is read here: the caller passes the epoch.

use ::time::OffsetDateTime;

/// The last second `time` represents without its `large-dates` feature:
/// 9999-12-31T23:59:59Z. Later epochs (no real build has one) are dated to it.
const LAST_EPOCH: u64 = 253_402_300_799;

/// The UTC calendar time of `epoch` seconds since 1970, clamped to [`LAST_EPOCH`].
fn utc(epoch: u64) -> OffsetDateTime {
    let secs = i64::try_from(epoch.min(LAST_EPOCH)).unwrap_or_default();
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `YYYY-MM-DDTHH:MM:SS`, the part both metadata formats share.
fn date_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2020-12-29T03:03:07+00:00`: the descriptor's `release-date` and the bulletin's `releaseDate`.
pub fn release_date(epoch: u64) -> String {
    format!("{}+00:00", date_time(utc(epoch)))
}

/// `2020-12-29T14:41:02.000000`: `vmware.xml`'s `timestamp`.
pub fn metadata_timestamp(epoch: u64) -> String {
    format!("{}.000000", date_time(utc(epoch)))
}

/// MS-DOS date and time words for zip headers (2-second resolution, 1980..=2107).
pub fn dos_datetime(epoch: u64) -> (u16, u16) {
    let t = utc(epoch.max(315_532_800));
    let year = t.year().clamp(1980, 2107) as u16;
    let date = ((year - 1980) << 9) | (u16::from(u8::from(t.month())) << 5) | u16::from(t.day());
    let time =
        (u16::from(t.hour()) << 11) | (u16::from(t.minute()) << 5) | u16::from(t.second() / 2);
    (date, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(release_date(0), "1970-01-01T00:00:00+00:00");
        // The fixture's release date.
        assert_eq!(release_date(1_609_210_987), "2020-12-29T03:03:07+00:00");
        assert_eq!(
            metadata_timestamp(951_782_400),
            "2000-02-29T00:00:00.000000"
        );
        // 2020-12-29 14:41:02 as the fixture's zip stores it.
        let (d, t) = dos_datetime(1_609_252_862);
        assert_eq!(
            (d, t),
            ((40 << 9) | (12 << 5) | 29, (14 << 11) | (41 << 5) | 1)
        );
        // Past 2107 the zip year saturates; past 9999 so does the calendar.
        assert_eq!(dos_datetime(u64::MAX).0 >> 9, 2107 - 1980);
        assert_eq!(release_date(u64::MAX), "9999-12-31T23:59:59+00:00");
    }
}
