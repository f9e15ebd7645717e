//! Times on the wire (`google.protobuf.Timestamp`) from the forms the services keep them in.

use prost_types::Timestamp;
use time::OffsetDateTime;

/// A database or clock time as a wire timestamp.
pub fn from_time(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// Microseconds since the Unix epoch (the audit log's clock) as a wire timestamp.
pub fn from_micros(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// A wire timestamp as a time; `None` when it is out of range.
pub fn to_time(t: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// RFC 3339, the form API.md and webhook payloads give times in.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parses RFC 3339.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_agree() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
        let wire = from_time(t);
        assert_eq!((wire.seconds, wire.nanos), (1_700_000_000, 123_456_000));
        assert_eq!(from_micros(1_700_000_000_123_456), wire);
        assert_eq!(to_time(&wire), Some(t));
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456Z"), Some(t));
        assert_eq!(parse_rfc3339("yesterday"), None);
        // Before the epoch, the nanos stay positive.
        let before = from_micros(-1);
        assert_eq!((before.seconds, before.nanos), (-1, 999_999_000));
    }
}
