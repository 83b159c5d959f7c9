//! Dates from `SOURCE_DATE_EPOCH`, formatted the way VMware's metadata writes them.
//!
//! Reproducible builds take every timestamp from one number of seconds since 1970 (the
//! `SOURCE_DATE_EPOCH` convention), so no clock is read here: the caller passes the epoch.

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2026.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

/// Converts seconds since the Unix epoch to a UTC calendar time.
pub fn civil(epoch: u64) -> Civil {
    let days = (epoch / 86_400) as i64;
    let secs = (epoch % 86_400) as u32;
    // Days-to-civil conversion (proleptic Gregorian), valid for all u64 epochs we accept.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
    }
}

/// `2020-12-29T03:03:07+00:00`: the descriptor's `release-date` and the bulletin's `releaseDate`.
pub fn release_date(epoch: u64) -> String {
    let c = civil(epoch);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `2020-12-29T14:41:02.000000`: `vmware.xml`'s `timestamp`.
pub fn metadata_timestamp(epoch: u64) -> String {
    let c = civil(epoch);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// MS-DOS date and time words for zip headers (2-second resolution, 1980..=2107).
pub fn dos_datetime(epoch: u64) -> (u16, u16) {
    let c = civil(epoch.max(315_532_800));
    let year = c.year.clamp(1980, 2107) as u16;
    let date = ((year - 1980) << 9) | ((c.month as u16) << 5) | c.day as u16;
    let time = ((c.hour as u16) << 11) | ((c.minute as u16) << 5) | (c.second as u16 / 2);
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
    }
}
