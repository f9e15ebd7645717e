//! Input checks. Ids in a path that do not parse are "not found" (as an unknown id would be);
//! ids in a body that do not parse are invalid input naming the field.

use uuid::Uuid;

use crate::error::MetadataError;

/// A file or folder name: 1–255 bytes of UTF-8, no `/` or `\`, no control characters, not only
/// dots, not only spaces.
pub fn name(field: &'static str, s: &str) -> Result<String, MetadataError> {
    let bad = |why: &str| MetadataError::invalid(field, format!("{field} {why}"));
    if s.is_empty() {
        return Err(bad("must not be empty"));
    }
    if s.len() > 255 {
        return Err(bad("must be at most 255 bytes"));
    }
    if s.contains(['/', '\\']) {
        return Err(bad("must not contain / or \\"));
    }
    if s.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    if s.chars().all(|c| c == '.') {
        return Err(bad("must not be only dots"));
    }
    if s.trim().is_empty() {
        return Err(bad("must not be only spaces"));
    }
    Ok(s.to_owned())
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
