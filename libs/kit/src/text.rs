//! The one check of text a person gave that others will see (file, folder, org and key names):
//! which characters change how it displays without showing, and which show as nothing.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// A character that changes how text displays without showing itself: control, format (bidi
/// overrides and isolates, zero-width characters, soft hyphens, BOMs), line or paragraph
/// separators. `invoice\u{202E}txt.exe` displays as `invoiceexe.txt`.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Surrogate
    )
}

/// A character that shows as blank space: white space, and the letters and symbols drawn empty
/// (the Hangul fillers, the blank braille pattern), which a name made only of looks empty.
pub fn is_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
        )
}

/// Why `s` may not be shown as a name, if it may not: empty or only blank characters, or a
/// hidden character anywhere.
pub fn unfit_name(s: &str) -> Option<&'static str> {
    if s.chars().all(is_blank) {
        Some("must not be empty or only blank characters")
    } else if s.chars().any(is_hidden) {
        Some("must not contain control or invisible formatting characters (such as bidi overrides)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_hide_or_show_nothing_are_unfit() {
        for ok in [
            "Quartalsbericht.pdf",
            "Ärzte & Co",
            "报告",
            "a b",
            "\u{3164}x",
        ] {
            assert_eq!(unfit_name(ok), None, "{ok:?}");
        }
        for blank in [
            "",
            " ",
            "\u{3164}",
            "\u{2800}\u{2800}",
            "\u{115F}\u{1160} ",
            "\u{FFA0}",
        ] {
            assert_eq!(
                unfit_name(blank),
                Some("must not be empty or only blank characters"),
                "{blank:?}"
            );
        }
        for hidden in [
            "a\u{202E}b",
            "a\u{200B}",
            "a\0",
            "a\u{2028}b",
            "\u{FEFF}x",
            "a\u{00AD}b",
        ] {
            assert!(
                unfit_name(hidden).unwrap().starts_with("must not contain"),
                "{hidden:?}"
            );
        }
    }
}
