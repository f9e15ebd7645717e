//! Folders: create, list a folder's children (folders first, then files, by name, with a cursor),
//! rename or move (never into itself), and trash with everything below.

use coffer_kit::audit::{Action, Target};
use coffer_mesh::Caller;
use uuid::Uuid;

use crate::deps::Core;
use crate::error::MetadataError;
use crate::store::{self, FileRow, FolderRow, Place};
use crate::validate;

/// Creates a folder named `name` under `parent` (`""` or `root`: the org's root).
pub async fn create(
    core: &Core,
    c: &Caller,
    name: &str,
    parent: &str,
) -> Result<FolderRow, MetadataError> {
    let name = validate::name("name", name)?;
    let parent = validate::folder("parent_id", parent)?;
    let mut tx = core.tx(c.org_id).await?;
    store::ensure_org(&mut tx, core.quota()).await?;
    store::require_parent(&mut tx, parent).await?;
    let folder = store::insert_folder(&mut tx, parent, &name).await?;
    core.audit(Action::FolderCreate, Target::Folder(folder.id))
        .await?;
    tx.commit().await?;
    Ok(folder)
}

/// One page of a folder's children.
#[derive(Debug)]
pub struct Listing {
    pub folders: Vec<FolderRow>,
    pub files: Vec<FileRow>,
    /// Empty on the last page.
    pub next_cursor: String,
}

/// A listing cursor: `d.<folder id>` (still among folders) or `f.<file id>` (among files).
enum Cursor {
    Start,
    Folder(Uuid),
    File(Uuid),
}

fn parse_cursor(s: &str) -> Result<Cursor, MetadataError> {
    let bad = || MetadataError::invalid("cursor", "cursor is not one this service gave");
    match s.split_once('.') {
        None if s.is_empty() => Ok(Cursor::Start),
        Some(("d", id)) => Ok(Cursor::Folder(Uuid::try_parse(id).map_err(|_| bad())?)),
        Some(("f", id)) => Ok(Cursor::File(Uuid::try_parse(id).map_err(|_| bad())?)),
        _ => Err(bad()),
    }
}

/// Lists the children of `folder` (`""` or `root`: the org's root), `limit` at most (0: the
/// default page).
pub async fn list(
    core: &Core,
    c: &Caller,
    folder: &str,
    limit: u32,
    cursor: &str,
) -> Result<Listing, MetadataError> {
    let place = match folder {
        "" | "root" => Place::Folder(None),
        id => Place::Folder(Some(validate::target(id)?)),
    };
    let limit = page_size(core, limit);
    let cursor = parse_cursor(cursor)?;
    let mut tx = core.tx(c.org_id).await?;
    if let Place::Folder(Some(id)) = place
        && store::live_folder(&mut tx, id).await?.is_none()
    {
        return Err(MetadataError::NotFound);
    }
    let listing = page(&mut tx, place, limit, cursor).await?;
    tx.commit().await?;
    Ok(listing)
}

/// What is in the org's trash, paged like a folder: the top-most trashed folders, then every
/// trashed file (each restored or purged on its own), by name.
pub async fn trash_listing(
    core: &Core,
    c: &Caller,
    limit: u32,
    cursor: &str,
) -> Result<Listing, MetadataError> {
    let limit = page_size(core, limit);
    let cursor = parse_cursor(cursor)?;
    let mut tx = core.tx(c.org_id).await?;
    let listing = page(&mut tx, Place::Trash, limit, cursor).await?;
    tx.commit().await?;
    Ok(listing)
}

/// The page size asked for (0: the default), at most the largest allowed.
fn page_size(core: &Core, asked: u32) -> usize {
    let size = match asked {
        0 => core.config.default_page,
        n => n.min(core.config.max_page),
    };
    size as usize
}

/// One page of `place`: folders first, then files, `limit` in all.
async fn page(
    tx: &mut coffer_db::TenantTx,
    place: Place,
    limit: usize,
    cursor: Cursor,
) -> Result<Listing, MetadataError> {
    let mut folders = Vec::new();
    let mut files = Vec::new();
    let mut next = String::new();
    let files_after = match cursor {
        Cursor::File(id) => Some(id),
        Cursor::Start | Cursor::Folder(_) => {
            let after = match cursor {
                Cursor::Folder(id) => Some(id),
                _ => None,
            };
            folders = store::child_folders(tx, place, after, limit as i64 + 1).await?;
            if folders.len() > limit {
                folders.truncate(limit);
                next = format!("d.{}", folders[limit - 1].id);
            }
            None
        }
    };
    if next.is_empty() {
        let room = limit - folders.len();
        files = store::child_files(tx, place, files_after, room as i64 + 1).await?;
        if files.len() > room {
            files.truncate(room);
            next = match files.last() {
                Some(f) => format!("f.{}", f.id),
                // The page is full of folders and files follow: start them next time.
                None => format!("d.{}", folders.last().map(|f| f.id).unwrap_or_default()),
            };
        }
    }
    Ok(Listing {
        folders,
        files,
        next_cursor: next,
    })
}

/// Renames a folder (`name`) and/or moves it (`parent`: `Some("")` is the root); a move into
/// itself or below itself is refused.
pub async fn update(
    core: &Core,
    c: &Caller,
    id: &str,
    name: Option<&str>,
    parent: Option<&str>,
) -> Result<FolderRow, MetadataError> {
    let id = validate::target(id)?;
    let name = name.map(|n| validate::name("name", n)).transpose()?;
    let parent = parent
        .map(|p| validate::folder("parent_id", p))
        .transpose()?;
    let mut tx = core.tx(c.org_id).await?;
    if let Some(parent) = parent {
        store::lock_tree(&mut tx).await?;
        store::live_folder(&mut tx, id)
            .await?
            .ok_or(MetadataError::NotFound)?;
        store::require_parent(&mut tx, parent).await?;
        if let Some(p) = parent
            && store::is_within(&mut tx, p, id).await?
        {
            return Err(MetadataError::Conflict(
                "a folder cannot be moved into itself or below itself",
            ));
        }
    }
    let folder = store::update_folder(&mut tx, id, name.as_deref(), parent).await?;
    if name.is_some() {
        core.audit(Action::FolderRename, Target::Folder(id)).await?;
    }
    if parent.is_some() {
        core.audit(Action::FolderMove, Target::Folder(id)).await?;
    }
    tx.commit().await?;
    Ok(folder)
}

/// Trashes a folder and everything below it.
/// A live folder and its path from the top (the folder itself last).
pub async fn get(
    core: &Core,
    c: &Caller,
    id: &str,
) -> Result<(FolderRow, Vec<(Uuid, String)>), MetadataError> {
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    let folder = store::live_folder(&mut tx, id)
        .await?
        .ok_or(MetadataError::NotFound)?;
    let path = store::folder_path(&mut tx, id).await?;
    tx.commit().await?;
    Ok((folder, path))
}

pub async fn trash(core: &Core, c: &Caller, id: &str) -> Result<(), MetadataError> {
    let id = validate::target(id)?;
    let mut tx = core.tx(c.org_id).await?;
    store::trash_folder(&mut tx, id).await?;
    // One event for the folder and everything below it that went to the trash with it.
    core.audit(Action::FolderDelete, Target::Folder(id)).await?;
    tx.commit().await?;
    Ok(())
}
