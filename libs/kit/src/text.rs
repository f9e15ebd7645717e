//! The one check of text a person gave that others will see (file, folder, org and key names):
//! which characters change how it displays without showing, and which show as nothing.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';

/// A character that changes how text displays without showing itself, refused anywhere in a
/// name: control, format (bidi overrides and isolates, zero-width spaces, soft hyphens, BOMs,
/// tags), line or paragraph separators, unassigned code points, and the other default-ignorable
/// code points that are not selectors (Khmer's inherent vowels, U+2065, U+FFF0–FFF8, the
/// shorthand format controls, the musical format controls). `invoice\u{202E}txt.exe` displays as
/// `invoiceexe.txt`. The zero-width joiner and non-joiner are format characters too, allowed
/// only between two non-ASCII characters that show or are marks ([`unfit_name`]).
pub fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    ) || matches!(
        c,
        '\u{17B4}'..='\u{17B5}'
            | '\u{2065}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A character that shows nothing by itself: white space, the letters and symbols drawn empty
/// (the Hangul fillers, the blank braille pattern), combining marks and the selectors that only
/// change the character before them (variation selectors, the combining grapheme joiner,
/// Mongolian free variation selectors), and the joiners. A name needs one character that is
/// neither this nor hidden.
pub fn is_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}' | ZWNJ | ZWJ
        )
        || matches!(
            c.general_category(),
            GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
        )
}

/// Why `s` may not be shown as a name, if it may not: a hidden character anywhere (a joiner
/// only between two non-ASCII characters that show or are marks: Persian, Indic scripts and
/// emoji sequences need them, Latin text does not), or nothing visible at all.
pub fn unfit_name(s: &str) -> Option<&'static str> {
    let chars: Vec<char> = s.chars().collect();
    // What a joiner may stand between: a non-ASCII character that is not hidden, and that shows
    // or is a mark (a Devanagari virama comes before a ZWJ); never a joiner, space or filler.
    let joinable = |c: Option<&char>| {
        c.is_some_and(|&c| {
            !c.is_ascii()
                && !is_hidden(c)
                && (!is_blank(c)
                    || matches!(
                        c.general_category(),
                        GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
                    ))
        })
    };
    let hides = chars.iter().enumerate().any(|(i, &c)| {
        if c == ZWJ || c == ZWNJ {
            !(i > 0 && joinable(chars.get(i - 1)) && joinable(chars.get(i + 1)))
        } else {
            is_hidden(c)
        }
    });
    if hides {
        Some("must not contain control or invisible formatting characters (such as bidi overrides)")
    } else if chars.iter().all(|&c| is_blank(c)) {
        Some("must not be empty or only blank characters")
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
            // Persian with a zero-width non-joiner, a Devanagari half form, an emoji sequence,
            // an emoji with its presentation selector, a combining accent.
            "کتاب\u{200C}ها",
            "क्\u{200D}ष",
            "🏳\u{FE0F}\u{200D}🌈",
            "❤\u{FE0F}",
            "e\u{0301}",
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
            "\u{034F}",
            "\u{3164}\u{FE0F}",
            "\u{0301}\u{0301}",
            "\u{180B}",
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
            "a\u{200D}b",
            "\u{200C}ها",
            "ها\u{200C}",
            "x\u{17B4}",
            "x\u{2065}",
            "x\u{FFF0}",
            "x\u{E0041}",
            "x\u{0378}",
        ] {
            assert!(
                unfit_name(hidden).is_some_and(|w| w.starts_with("must not contain")),
                "{hidden:?}"
            );
        }
    }
}
