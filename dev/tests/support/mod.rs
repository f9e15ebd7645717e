//! What the observability and Kubernetes tests share.

use std::collections::BTreeSet;

#[allow(dead_code)] // not every test binary that includes this module uses it
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

/// A YAML document as JSON (for JSON Schema validation and plain comparisons).
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn to_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Hash(h) => serde_json::Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), to_json(v)))
                .collect(),
        ),
        Yaml::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Yaml::String(s) => s.clone().into(),
        Yaml::Integer(i) => (*i).into(),
        Yaml::Real(r) => r.parse::<f64>().unwrap().into(),
        Yaml::Boolean(b) => (*b).into(),
        Yaml::Null => serde_json::Value::Null,
        other => panic!("unexpected YAML {other:?}"),
    }
}
