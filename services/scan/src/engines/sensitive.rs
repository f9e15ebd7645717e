//! Sensitive data: private keys, cloud credentials, API tokens, payment card numbers that pass
//! Luhn, IBANs that pass their mod-97 check. Reports the kind found, never the value.

use regex::bytes::Regex;

use super::{Engine, Finding, Verdict};

/// Kinds of sensitive data, as they appear in findings.
const PRIVATE_KEY: &str = "pem-private-key";
const AWS_KEY: &str = "aws-access-key";
const CARD: &str = "payment-card-number";
const IBAN: &str = "iban";

/// The compiled patterns, built once per process.
pub struct Patterns {
    /// Credentials found by a specific pattern (each starts with a literal its search skips to).
    literal: Vec<(&'static str, Regex)>,
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Patterns")
    }
}

impl Patterns {
    pub fn new() -> Patterns {
        let re = |p: &str| Regex::new(p).expect("built-in pattern compiles");
        // (kind, its pattern)
        let specs: Vec<(&'static str, &str)> = vec![
            (
                PRIVATE_KEY,
                r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
            ),
            (AWS_KEY, r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)"),
            (
                "gcp-service-account-key",
                r#""private_key_id"\s*:\s*"[0-9a-f]{40}""#,
            ),
            (
                "github-token",
                r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?-u:\b)",
            ),
            (
                "slack-token",
                r"(?-u:\b)xox[baprs]-[0-9A-Za-z-]{10,72}(?-u:\b)",
            ),
            (
                "stripe-secret-key",
                r"(?-u:\b)[sr]k_live_[0-9A-Za-z]{24,99}(?-u:\b)",
            ),
            ("google-api-key", r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}(?-u:\b)"),
        ];
        Patterns {
            literal: specs.into_iter().map(|(k, p)| (k, re(p))).collect(),
        }
    }
}

impl Default for Patterns {
    fn default() -> Self {
        Patterns::new()
    }
}

/// The kinds seen so far in one stream (each reported once).
#[derive(Debug, Default)]
pub struct Seen {
    kinds: Vec<&'static str>,
}

impl Seen {
    fn add(&mut self, kind: &'static str) {
        if !self.kinds.contains(&kind) {
            self.kinds.push(kind);
        }
    }

    pub fn finish(self, findings: &mut Vec<Finding>) {
        for kind in self.kinds {
            findings.push(Finding {
                engine: Engine::Sensitive,
                signature: kind.to_owned(),
                verdict: Verdict::Sensitive,
            });
        }
    }
}

impl Patterns {
    /// Looks for every kind in `block`. Blocks overlap by more than the longest pattern, so a
    /// value across a boundary is whole in one of them.
    pub fn scan(&self, block: &[u8], seen: &mut Seen) {
        // One prefiltered search per pattern: measured faster here than one Aho-Corasick
        // automaton over all their anchors (BENCHMARKS.md, sensitive-data engine).
        for (kind, re) in &self.literal {
            if !seen.kinds.contains(kind) && re.is_match(block) {
                seen.add(kind);
            }
        }
        if !seen.kinds.contains(&CARD) && any_card(block) {
            seen.add(CARD);
        }
        if !seen.kinds.contains(&IBAN) && any_iban(block) {
            seen.add(IBAN);
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Runs of 13–19 digits, grouped by single spaces or hyphens, with word boundaries on both sides
/// (a run may also end at any group's end), that [`is_card`] accepts.
fn any_card(block: &[u8]) -> bool {
    let mut i = 0;
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    let mut group_ends: Vec<usize> = Vec::with_capacity(8);
    while i < block.len() {
        let b = block[i];
        if !b.is_ascii_digit() || (i > 0 && is_word(block[i - 1])) {
            i += 1;
            continue;
        }
        digits.clear();
        group_ends.clear();
        let mut j = i;
        while j < block.len() && digits.len() <= 19 {
            let c = block[j];
            if c.is_ascii_digit() {
                digits.push(c);
                j += 1;
            } else if (c == b' ' || c == b'-')
                && block.get(j + 1).is_some_and(|d| d.is_ascii_digit())
            {
                group_ends.push(digits.len());
                j += 1;
            } else {
                break;
            }
        }
        let boundary_after = block.get(j).is_none_or(|c| !is_word(*c));
        let whole = (13..=19).contains(&digits.len()) && boundary_after;
        if (whole && is_card(&digits))
            || group_ends
                .iter()
                .any(|&n| (13..=19).contains(&n) && is_card(&digits[..n]))
        {
            return true;
        }
        i = j.max(i + 1);
    }
    false
}

/// An IBAN: two letters and two digits at a word start, then letters and digits (single spaces
/// allowed) to exactly the country's length, then a word boundary, passing [`is_iban`].
fn any_iban(block: &[u8]) -> bool {
    let mut compact: Vec<u8> = Vec::with_capacity(40);
    let mut i = 0;
    while i + 4 <= block.len() {
        let w = &block[i..i + 4];
        if !(w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit())
            || (i > 0 && is_word(block[i - 1]))
        {
            i += 1;
            continue;
        }
        compact.clear();
        let mut j = i;
        while j < block.len() && compact.len() <= 34 {
            let c = block[j];
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                compact.push(c);
                j += 1;
            } else if c == b' '
                && block
                    .get(j + 1)
                    .is_some_and(|d| d.is_ascii_uppercase() || d.is_ascii_digit())
            {
                j += 1;
            } else {
                break;
            }
        }
        if block.get(j).is_none_or(|c| !is_word(*c)) && is_iban(&compact) {
            return true;
        }
        i += 1;
    }
    false
}

/// A card number: 13–19 digits of a known issuer range that pass the Luhn check.
pub fn is_card(text: &[u8]) -> bool {
    let digits: Vec<u8> = text
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let prefix = |n: usize| digits[..n].iter().fold(0u32, |a, d| a * 10 + u32::from(*d));
    let issuer = digits[0] == 4 // Visa
        || (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) // Mastercard
        || matches!(prefix(2), 34 | 37) // Amex
        || prefix(4) == 6011 || prefix(2) == 65 // Discover
        || (3528..=3589).contains(&prefix(4)); // JCB
    issuer && luhn(&digits)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// An IBAN: a known country's length and a mod-97 remainder of 1 (ISO 13616).
pub fn is_iban(text: &[u8]) -> bool {
    let compact: Vec<u8> = text.iter().copied().filter(|b| *b != b' ').collect();
    if compact.len() < 5 {
        return false;
    }
    let Some(len) = iban_length(&compact[..2]) else {
        return false;
    };
    if compact.len() != len {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn iban_length(country: &[u8]) -> Option<usize> {
    Some(match country {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"NL" => 18,
        b"AT" | b"EE" | b"LU" => 20,
        b"CH" | b"LI" | b"LV" | b"LT" => 21,
        b"BG" | b"DE" | b"GB" | b"IE" => 22,
        b"CZ" | b"ES" | b"SE" | b"SK" | b"PT" => 24,
        b"RO" => 24,
        b"FR" | b"GR" | b"IT" | b"MC" => 27,
        b"PL" | b"HU" | b"CY" => 28,
        b"MT" => 31,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(data: &[u8]) -> Vec<String> {
        let p = Patterns::new();
        let mut seen = Seen::default();
        p.scan(data, &mut seen);
        let mut f = Vec::new();
        seen.finish(&mut f);
        f.into_iter().map(|f| f.signature).collect()
    }

    #[test]
    fn finds_each_kind_and_only_valid_numbers() {
        assert_eq!(
            kinds(b"x\n-----BEGIN RSA PRIVATE KEY-----\nMIIE..."),
            [PRIVATE_KEY]
        );
        assert_eq!(kinds(b"-----BEGIN OPENSSH PRIVATE KEY-----"), [PRIVATE_KEY]);
        assert!(kinds(b"-----BEGIN PUBLIC KEY-----").is_empty());
        assert_eq!(
            kinds(b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"),
            [AWS_KEY]
        );
        assert_eq!(kinds(b"card: 4111 1111 1111 1111."), [CARD]);
        assert_eq!(kinds(b"card: 5500-0000-0000-0004"), [CARD]);
        // Luhn fails; and a long run of digits is not a card.
        assert!(kinds(b"card: 4111 1111 1111 1112").is_empty());
        assert!(kinds(b"order 12345678901234567890123 shipped").is_empty());
        assert_eq!(kinds(b"IBAN DE89 3704 0044 0532 0130 00 please"), [IBAN]);
        assert_eq!(kinds(b"GB82WEST12345698765432"), [IBAN]);
        assert!(kinds(b"DE88 3704 0044 0532 0130 00").is_empty());
        assert_eq!(
            kinds(b"token ghp_0123456789abcdefghijABCDEFGHIJ012345 end"),
            ["github-token"]
        );
        assert!(kinds(b"plain minutes of a meeting, 2026-11-23, room 4").is_empty());
        // At the very edges of a block, and inside other text.
        assert_eq!(kinds(b"4111111111111111"), [CARD]);
        assert_eq!(kinds(b"x 4111-1111-1111-1111 12"), [CARD]);
        assert!(
            kinds(b"id4111111111111111").is_empty(),
            "no word boundary before"
        );
        assert!(
            kinds(b"XAKIAIOSFODNN7EXAMPLE").is_empty(),
            "no word boundary before"
        );
        assert_eq!(kinds(b"AKIAIOSFODNN7EXAMPLE"), [AWS_KEY]);
        assert_eq!(
            kinds(b"SLACK=xoxb-123456789012-abcdefABCDEF"),
            ["slack-token"]
        );
        assert_eq!(kinds(b"GB82 WEST 1234 5698 7654 32"), [IBAN]);
        assert!(
            kinds(b"GB82 WEST 1234 5698 7654 32X").is_empty(),
            "longer than GB's 22"
        );
    }

    #[test]
    fn luhn_and_iban_checks() {
        assert!(is_card(b"378282246310005"));
        assert!(is_card(b"6011111111111117"));
        assert!(!is_card(b"0000000000000000"));
        assert!(!is_card(b"1234567812345670")); // Luhn-valid, no issuer
        assert!(is_iban(b"FR1420041010050500013M02606"));
        assert!(!is_iban(b"XX1420041010050500013M02606"));
    }
}
