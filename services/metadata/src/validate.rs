//! Input checks. Ids in a path that do not parse are "not found" (as an unknown id would be);
//! ids in a body that do not parse are invalid input naming the field.

use unicode_normalization::UnicodeNormalization as _;
use uuid::Uuid;

use crate::error::MetadataError;

/// A file or folder name, returned in the form it is stored in: trimmed of surrounding white
/// space and normalised to NFC (so one name has one spelling, and two spellings of it collide as
/// duplicates). Then 1–255 bytes of UTF-8, no `/` or `\`, nothing `coffer_kit::text` finds
/// unfit (a hidden character, or only blank ones), not only dots.
pub fn name(field: &'static str, s: &str) -> Result<String, MetadataError> {
    let bad = |why: &str| MetadataError::invalid(field, format!("{field} {why}"));
    // Bounded before any work on it: normalisation can grow a string, not shrink it much.
    if s.len() > 4 * 255 {
        return Err(bad("must be at most 255 bytes"));
    }
    let s: String = s.trim().nfc().collect();
    if s.len() > 255 {
        return Err(bad("must be at most 255 bytes"));
    }
    if s.contains(['/', '\\']) {
        return Err(bad("must not contain / or \\"));
    }
    if let Some(why) = coffer_kit::text::unfit_name(&s) {
        return Err(bad(why));
    }
    if s.chars().all(|c| c == '.') {
        return Err(bad("must not be only dots"));
    }
    Ok(s)
}

/// The extension of a name, for the scan's true-type check: lowercase ASCII letters and digits
/// after the last dot, at most 16; "" otherwise. The rest of the name never leaves metadata.
pub fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=16).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => String::new(),
    }
}

/// The id of the resource a request is about.
pub fn target(s: &str) -> Result<Uuid, MetadataError> {
    Uuid::try_parse(s).map_err(|_| MetadataError::NotFound)
}

/// A folder named in a body: empty or `root` is the top level.
pub fn folder(field: &'static str, s: &str) -> Result<Option<Uuid>, MetadataError> {
    match s {
        "" | "root" => Ok(None),
        s => Uuid::try_parse(s)
            .map(Some)
            .map_err(|_| MetadataError::invalid(field, format!("{field} must be a UUID"))),
    }
}

/// A hex SHA-256, returned lowercase; empty means none.
pub fn sha256(s: &str) -> Result<Option<String>, MetadataError> {
    if s.is_empty() {
        return Ok(None);
    }
    let lower = s.to_ascii_lowercase();
    if lower.len() == 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Some(lower))
    } else {
        Err(MetadataError::invalid(
            "sha256",
            "sha256 must be 64 hex characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(extension("Report.PDF"), "pdf");
        assert_eq!(extension("a.tar.gz"), "gz");
        assert_eq!(extension("noext"), "");
        assert_eq!(extension(".bashrc"), "");
        assert_eq!(extension("x.p df"), "");
        assert_eq!(extension("x.abcdefghijklmnopq"), "");
        assert_eq!(extension("x.ünï"), "");
    }

    #[test]
    fn names() {
        for ok in [
            "a",
            "report.pdf",
            ".bashrc",
            "Ünïcødé ✓",
            "a..b",
            &"x".repeat(255),
        ] {
            assert!(name("name", ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "...",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            "   ",
            &"x".repeat(256),
            &"é".repeat(128),
            "invoice\u{202E}txt.exe",
            "a\u{200B}b",
            "a\u{2066}b\u{2069}",
            "\u{FEFF}x",
            "a\u{00AD}b",
            "a\u{2028}b",
            "a\u{061C}b",
            "\u{200F}",
            "\u{3164}",
            "\u{2800} \u{2800}",
        ] {
            assert!(
                matches!(
                    name("name", bad),
                    Err(MetadataError::Invalid { field: "name", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_are_trimmed_and_normalised_to_nfc() {
        assert_eq!(name("name", "  report.pdf \t").unwrap(), "report.pdf");
        // "é" as e + combining acute (NFD) and as one code point (NFC) is one name.
        let nfd = "Re\u{301}sume\u{301}.pdf";
        let nfc = "R\u{e9}sum\u{e9}.pdf";
        assert_eq!(name("name", nfd).unwrap(), nfc);
        assert_eq!(name("name", nfc).unwrap(), nfc);
        // Non-Latin scripts and emoji stay as they are.
        for ok in ["日本語.txt", "עברית.txt", "العربية.txt", "📄 notes.md"] {
            assert_eq!(name("name", ok).unwrap(), ok);
        }
    }

    #[test]
    fn ids_and_hashes() {
        assert!(matches!(target("nope"), Err(MetadataError::NotFound)));
        assert_eq!(folder("folder_id", "root").unwrap(), None);
        assert!(folder("folder_id", "x").is_err());
        let h = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        assert_eq!(sha256(h).unwrap().unwrap(), h.to_ascii_lowercase());
        assert!(sha256("abc").is_err());
        assert_eq!(sha256("").unwrap(), None);
    }
}
