//! UTC timestamps (RFC 3339, to the second), by the `time` crate.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    format(OffsetDateTime::now_utc())
}

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs.min(253_402_300_799) as i64)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format(t)
}

fn format(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_735_380), "2026-11-26T23:23:00Z");
        let now = super::now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'));
    }
}
