//! The one check of a declared media type (`content_type`), for metadata, which stores it, and
//! storage-signer, which signs it into the upload: `type/subtype` of RFC 9110 token characters,
//! optional `;` parameters, printable ASCII only (no CR, LF or NUL), at most 255 bytes.

/// What a valid media type looks like, for the error that refuses one.
pub const REQUIREMENT: &str = "content_type must be a media type such as application/pdf";

/// Whether `ct` is a media type the mesh takes.
pub fn is_valid(ct: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    !ct.is_empty()
        && ct.len() <= 255
        && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
        && ct.split(';').next().is_some_and(|t| {
            let mut parts = t.trim().splitn(2, '/');
            matches!((parts.next(), parts.next()), (Some(a), Some(b)) if token(a) && token(b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_checked() {
        for ok in [
            "application/pdf",
            "text/plain; charset=utf-8",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "pdf",
            "/pdf",
            "text/",
            "text/plain\r\nx: y",
            "text/plain\0",
            "a/b/c",
            "tëxt/plain",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }
}
