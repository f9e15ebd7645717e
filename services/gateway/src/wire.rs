//! Values from the services as API.md writes them.

use coffer_proto::v1::{self as pb};

pub fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Owner) => "owner",
        Ok(pb::Role::Admin) => "admin",
        _ => "member",
    }
}

/// A wire time in RFC 3339; `None` when unset or out of range.
pub fn rfc3339(t: Option<prost_types::Timestamp>) -> Option<String> {
    t.as_ref()
        .and_then(coffer_kit::timestamp::to_time)
        .map(coffer_kit::timestamp::rfc3339)
}
