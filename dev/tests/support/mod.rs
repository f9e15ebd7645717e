//! What the observability tests share.

use std::collections::BTreeSet;

/// Every `coffer_*` metric name written in `text` (not recording rules' `…:coffer_…`).
pub fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("coffer_") {
        let before = rest[..at].chars().last();
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        rest = &rest[at + name.len()..];
        if name.contains(':')
            || before.is_some_and(|c| c == ':' || c == '-' || c == '/' || c.is_ascii_alphanumeric())
            || name.ends_with('_')
        {
            continue;
        }
        out.insert(name);
    }
    out
}
