//! Object keys: `<orgId>/<uuid>` for stored files and `scans/<orgId>/<uuid>` for scan-only
//! uploads (a separate prefix, so a bucket lifecycle rule can expire them after 24 hours without
//! touching stored files), both canonical lowercase UUIDs. The org segment must be the caller's
//! org (from the verified token) before anything is signed, headed or deleted.

use uuid::Uuid;

use crate::error::SignerError;

/// Parses `key` and checks that it belongs to `org_id`.
pub fn check(key: &str, org_id: Uuid) -> Result<(), SignerError> {
    let key = key.strip_prefix("scans/").unwrap_or(key);
    let (org, object) = key
        .split_once('/')
        .ok_or_else(|| SignerError::invalid("key", "object key must be <orgId>/<uuid>"))?;
    let org = parse_canonical(org)
        .ok_or_else(|| SignerError::invalid("key", "object key must be <orgId>/<uuid>"))?;
    parse_canonical(object)
        .ok_or_else(|| SignerError::invalid("key", "object key must be <orgId>/<uuid>"))?;
    if org != org_id {
        return Err(SignerError::ForeignKey);
    }
    Ok(())
}

/// Checks that `prefix` is one of `org_id`'s two prefixes: `<org>/` or `scans/<org>/`.
pub fn check_prefix(prefix: &str, org_id: Uuid) -> Result<(), SignerError> {
    let rest = prefix.strip_prefix("scans/").unwrap_or(prefix);
    let org = rest
        .strip_suffix('/')
        .and_then(parse_canonical)
        .ok_or_else(|| {
            SignerError::invalid("prefix", "prefix must be <orgId>/ or scans/<orgId>/")
        })?;
    if org != org_id {
        return Err(SignerError::ForeignKey);
    }
    Ok(())
}

/// Only the hyphenated lowercase form: one key, one spelling.
fn parse_canonical(s: &str) -> Option<Uuid> {
    let id = Uuid::try_parse(s).ok()?;
    (id.hyphenated().to_string() == s).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_the_orgs_two_and_nothing_wider() {
        let org = Uuid::new_v4();
        assert!(check_prefix(&format!("{org}/"), org).is_ok());
        assert!(check_prefix(&format!("scans/{org}/"), org).is_ok());
        assert!(matches!(
            check_prefix(&format!("{}/", Uuid::new_v4()), org),
            Err(SignerError::ForeignKey)
        ));
        for bad in [
            String::new(),
            "/".into(),
            "scans/".into(),
            format!("{org}"),
            format!("{org}/x"),
            format!("scans/{org}"),
            format!("{}/", org.simple()),
            format!("scans/scans/{org}/"),
        ] {
            assert!(
                matches!(check_prefix(&bad, org), Err(SignerError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keys_are_checked_against_the_org() {
        let org = Uuid::new_v4();
        let obj = Uuid::new_v4();
        assert!(check(&format!("{org}/{obj}"), org).is_ok());
        assert!(check(&format!("scans/{org}/{obj}"), org).is_ok());
        assert!(matches!(
            check(&format!("scans/{}/{obj}", Uuid::new_v4()), org),
            Err(SignerError::ForeignKey)
        ));
        assert!(matches!(
            check(&format!("{}/{obj}", Uuid::new_v4()), org),
            Err(SignerError::ForeignKey)
        ));
        for bad in [
            String::new(),
            format!("{org}"),
            format!("{org}/"),
            format!("{org}/{obj}/x"),
            format!("{org}/../{obj}"),
            format!("{}/{obj}", org.simple()),
            format!("{}/{obj}", org.to_string().to_uppercase()),
            format!("/{org}/{obj}"),
            format!("{org}/name.pdf"),
            format!("scans/scans/{org}/{obj}"),
            format!("files/{org}/{obj}"),
        ] {
            assert!(
                matches!(check(&bad, org), Err(SignerError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
