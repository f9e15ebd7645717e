//! Auth's values as the wire has them (`coffer.v1` messages).

use coffer_proto::v1::{self as pb};
use coffer_token::{Role, Scopes};

use crate::store::Principal;

pub fn role_to_proto(role: Role) -> i32 {
    match role {
        Role::Owner => pb::Role::Owner as i32,
        Role::Admin => pb::Role::Admin as i32,
        Role::Member => pb::Role::Member as i32,
    }
}

pub fn caller_message(p: &Principal, scopes: Scopes, request_id: &str) -> pb::Caller {
    pb::Caller {
        user_id: p.user_id.to_string(),
        org_id: p.org_id.to_string(),
        role: role_to_proto(p.role),
        scopes: scopes.iter().map(|s| s.name().to_owned()).collect(),
        request_id: request_id.to_owned(),
    }
}
