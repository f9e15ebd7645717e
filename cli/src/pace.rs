//! `--limit-rate`: one pace for every transfer of the process. Each chunk books its share of
//! time on a shared clock and waits for its turn, so parts in flight together stay under the
//! cap between them.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

struct Pace {
    bytes_per_sec: u64,
    next: Mutex<Option<Instant>>,
}

static PACE: OnceLock<Pace> = OnceLock::new();

/// Sets the cap (bytes a second) for this process; `None` leaves transfers unpaced.
pub fn limit(rate: Option<u64>) {
    if let Some(r) = rate {
        let _ = PACE.set(Pace {
            bytes_per_sec: r.max(1),
            next: Mutex::new(None),
        });
    }
}

/// Waits until `n` more bytes fit under the cap.
pub async fn wait(n: u64) {
    let Some(p) = PACE.get() else { return };
    let at = {
        let mut next = p
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let start = next.map_or(now, |t| t.max(now));
        let end = start + Duration::from_secs_f64(n as f64 / p.bytes_per_sec as f64);
        *next = Some(end);
        start
    };
    tokio::time::sleep_until(at).await;
}

/// Reads `20M`, `512K`, `1G` or a number of bytes (a second).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?}: give bytes a second, e.g. 20M, 512K"))
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_read_with_their_suffixes() {
        assert_eq!(parse_rate("20M"), Ok(20 << 20));
        assert_eq!(parse_rate("512k"), Ok(512 << 10));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("M").is_err());
    }
}
