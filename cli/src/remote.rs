//! Files and folders addressed by path (`/Contracts/2026/nda.pdf`, names compared after NFC as
//! the server stores them) or by id (a UUID). A path is walked from the top, one listing per
//! folder; trashed items are found in the trash's listing by their folder and name.

use unicode_normalization::UnicodeNormalization as _;

use crate::client::Api;
use crate::model::{File, Folder, Listing};

/// What a path names.
#[derive(Debug, Clone)]
pub enum Node {
    /// The top (`/`).
    Root,
    Folder(Folder),
    File(File),
}

impl Node {
    /// The folder id to list or to put into (`root` for the top); `None` for a file.
    pub fn folder_id(&self) -> Option<&str> {
        match self {
            Node::Root => Some("root"),
            Node::Folder(f) => Some(&f.id),
            Node::File(_) => None,
        }
    }

    /// The id for a body's `folder_id`/`parent_id`: `None` is the top.
    pub fn parent_ref(&self) -> Option<String> {
        match self {
            Node::Folder(f) => Some(f.id.clone()),
            _ => None,
        }
    }
}

/// Splits a path into NFC names; `.`, `..` and empty names are refused rather than guessed at.
pub fn components(path: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        anyhow::ensure!(
            name != "." && name != "..",
            "{path}: paths are absolute from the top of your files; . and .. are not supported"
        );
        out.push(name.nfc().collect());
    }
    Ok(out)
}

/// Whether the argument is an id rather than a path.
pub fn as_id(arg: &str) -> Option<uuid::Uuid> {
    if arg.contains('/') {
        return None;
    }
    uuid::Uuid::parse_str(arg).ok()
}

/// Every page of a folder's listing (`root` for the top) or of the trash (`None`).
pub async fn list_all(api: &Api, folder: Option<&str>) -> anyhow::Result<Listing> {
    let base = match folder {
        Some(id) => format!("/v1/folders/{id}/children?limit=1000"),
        None => "/v1/trash?limit=1000".to_owned(),
    };
    let mut all = Listing::default();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={}", urlencode(c)),
            None => base.clone(),
        };
        let page: Listing = api.get(&path).await?;
        all.folders.extend(page.folders);
        all.files.extend(page.files);
        match page.next_cursor {
            Some(c) if !c.is_empty() => cursor = Some(c),
            _ => return Ok(all),
        }
    }
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Finds what a path or id names among live files and folders.
pub async fn resolve(api: &Api, arg: &str) -> anyhow::Result<Node> {
    if let Some(id) = as_id(arg) {
        return by_id(api, &id.to_string()).await;
    }
    let names = components(arg)?;
    let mut node = Node::Root;
    for (i, name) in names.iter().enumerate() {
        let Some(folder) = node.folder_id() else {
            anyhow::bail!("{}: {} is a file, not a folder", arg, display(&names[..i]));
        };
        let listing = list_all(api, Some(folder)).await?;
        let last = i + 1 == names.len();
        let folder = listing.folders.into_iter().find(|f| &f.name == name);
        let file = listing.files.into_iter().find(|f| &f.name == name);
        node = if let (true, Some(_), Some(file)) = (last, &folder, &file) {
            // Folders and files have names of their own: both can hold this one. Guessing
            // would move or trash the wrong one.
            anyhow::bail!(
                "{arg}: a folder and a file both have this name; name the file by its id ({})",
                file.id
            );
        } else if let Some(f) = folder {
            Node::Folder(f)
        } else if let Some(f) = file {
            Node::File(f)
        } else {
            anyhow::bail!(
                "{}: no file or folder named {:?} in {} (coffer ls {} shows what is there)",
                arg,
                name,
                display(&names[..i]),
                display(&names[..i])
            );
        };
    }
    Ok(node)
}

/// Finds a folder by path or id; a file there is an error.
pub async fn folder(api: &Api, arg: &str) -> anyhow::Result<Node> {
    match resolve(api, arg).await? {
        Node::File(f) => anyhow::bail!("{arg}: {} is a file, not a folder", f.name),
        n => Ok(n),
    }
}

async fn by_id(api: &Api, id: &str) -> anyhow::Result<Node> {
    match api.get::<File>(&format!("/v1/files/{id}")).await {
        Ok(f) => return Ok(Node::File(f)),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    let f: Folder = api.get(&format!("/v1/folders/{id}")).await?;
    Ok(Node::Folder(f))
}

pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::client::ApiError>()
        .is_some_and(|e| e.status() == Some(404))
}

/// Splits `/a/b/name` into the parent's path and the last name.
pub fn split_last(arg: &str) -> anyhow::Result<(String, String)> {
    let mut names = components(arg)?;
    let last = names
        .pop()
        .ok_or_else(|| anyhow::anyhow!("{arg}: name a file or folder, not the top"))?;
    Ok((display(&names), last))
}

/// A path as it is shown: `/a/b`, or `/` for the top.
pub fn display(names: &[String]) -> String {
    if names.is_empty() {
        "/".to_owned()
    } else {
        names.iter().map(|n| format!("/{n}")).collect()
    }
}

/// Finds a trashed file by id or by its former path (its folder, still live, and its name).
pub async fn trashed_file(api: &Api, arg: &str) -> anyhow::Result<File> {
    if let Some(id) = as_id(arg) {
        return api.get(&format!("/v1/files/{id}")).await;
    }
    let (parent, name) = split_last(arg)?;
    let parent = folder(api, &parent).await?;
    let parent_id = parent.parent_ref();
    let trash = list_all(api, None).await?;
    let mut found: Vec<File> = trash
        .files
        .into_iter()
        .filter(|f| f.name == name && f.folder_id == parent_id)
        .collect();
    match found.len() {
        0 => anyhow::bail!(
            "{arg}: no trashed file of that name there (coffer ls --trash shows the trash)"
        ),
        1 => Ok(found.remove(0)),
        n => anyhow::bail!(
            "{arg}: {n} trashed files have that name there; name one by its id (coffer ls --trash)"
        ),
    }
}
