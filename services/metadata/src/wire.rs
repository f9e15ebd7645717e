//! Rows as the wire has them (`coffer.v1` messages): ids as strings, absent ids empty, times as
//! timestamps.

use coffer_kit::vocab::Verdict;
use coffer_proto::v1::{self as pb};
use uuid::Uuid;

use crate::store::{FileRow, FolderRow};

pub fn ts(t: time::OffsetDateTime) -> Option<prost_types::Timestamp> {
    Some(coffer_kit::timestamp::from_time(t))
}

fn id_or_empty(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

pub fn folder_pb(f: FolderRow) -> pb::Folder {
    pb::Folder {
        id: f.id.to_string(),
        name: f.name,
        parent_id: id_or_empty(f.parent_id),
        created_at: ts(f.created_at),
    }
}

pub fn listing_pb(l: crate::folders::Listing) -> pb::ListChildrenResponse {
    pb::ListChildrenResponse {
        folders: l.folders.into_iter().map(folder_pb).collect(),
        files: l.files.into_iter().map(file_pb).collect(),
        next_cursor: l.next_cursor,
    }
}

pub fn file_pb(f: FileRow) -> pb::File {
    pb::File {
        status: f.status().to_wire(),
        id: f.id.to_string(),
        name: f.name,
        folder_id: id_or_empty(f.folder_id),
        size: f.size.max(0) as u64,
        content_type: f.content_type,
        sha256: f.sha256.unwrap_or_default(),
        verdict: f
            .verdict
            .as_deref()
            .and_then(Verdict::parse)
            .map_or(0, Verdict::to_wire),
        created_at: ts(f.created_at),
        updated_at: ts(f.updated_at),
        purge_at: None,
    }
}

/// The trash's listing: each file says when the retention purges it.
pub fn trash_pb(l: crate::folders::Listing, retention: time::Duration) -> pb::ListChildrenResponse {
    let purge_at: Vec<_> = l
        .files
        .iter()
        .map(|f| f.trashed_at.and_then(|t| ts(t + retention)))
        .collect();
    let mut out = listing_pb(l);
    for (file, at) in out.files.iter_mut().zip(purge_at) {
        file.purge_at = at;
    }
    out
}
