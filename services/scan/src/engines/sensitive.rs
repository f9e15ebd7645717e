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
    /// Found by their pattern alone: the pattern is specific enough.
    literal: Vec<(&'static str, Regex)>,
    card: Regex,
    iban: Regex,
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Patterns")
    }
}

impl Patterns {
    pub fn new() -> Patterns {
        let re = |p: &str| Regex::new(p).expect("built-in pattern compiles");
        Patterns {
            literal: vec![
                (
                    PRIVATE_KEY,
                    re(
                        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
                    ),
                ),
                (AWS_KEY, re(r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)")),
                (
                    "gcp-service-account-key",
                    re(r#""private_key_id"\s*:\s*"[0-9a-f]{40}""#),
                ),
                (
                    "github-token",
                    re(
                        r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?-u:\b)",
                    ),
                ),
                (
                    "slack-token",
                    re(r"(?-u:\b)xox[baprs]-[0-9A-Za-z-]{10,72}(?-u:\b)"),
                ),
                (
                    "stripe-secret-key",
                    re(r"(?-u:\b)[sr]k_live_[0-9A-Za-z]{24,99}(?-u:\b)"),
                ),
                (
                    "google-api-key",
                    re(r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}(?-u:\b)"),
                ),
            ],
            // 13–19 digits, optionally grouped by single spaces or hyphens, not inside a longer
            // run of digits.
            card: re(r"(?-u:\b)[0-9](?:[ \-]?[0-9]){12,18}(?-u:\b)"),
            iban: re(r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)"),
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
        for (kind, re) in &self.literal {
            if !seen.kinds.contains(kind) && re.is_match(block) {
                seen.add(kind);
            }
        }
        if !seen.kinds.contains(&CARD) && self.card.find_iter(block).any(|m| is_card(m.as_bytes()))
        {
            seen.add(CARD);
        }
        if !seen.kinds.contains(&IBAN) && self.iban.find_iter(block).any(|m| is_iban(m.as_bytes()))
        {
            seen.add(IBAN);
        }
    }
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
