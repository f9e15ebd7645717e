//! The Metadata gRPC service: parse and check each request, run it in a tenant transaction, call
//! storage-signer where bytes are involved, map the answer. The org comes only from the verified
//! token (or, for RecordVerdict, from the scan service's request, checked against the row).

use coffer_kit::audit::{Action, AuditLog, AuditRefused, Target};
use coffer_mesh::{CallContext, Caller, MeshChannel, Policy, PolicyError, Token, caller};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::metadata_server::Metadata;
use coffer_proto::v1::scan_client::ScanClient;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_proto::v1::{self as pb};
use coffer_token::Scope;
use sqlx::PgPool;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::config::MetadataConfig;
use crate::error::MetadataError;
use crate::shares;
use crate::store::{self, FileRow, FolderRow, Trashed};
use crate::validate;

const SERVICE: &str = "coffer.v1.Metadata";

/// User RPCs: the gateway with a token. Share links: the gateway, no user. Verdicts: scan only.
/// The org purge: auth only.
pub fn policy() -> Result<Policy, PolicyError> {
    let user = [
        "CreateFolder",
        "ListChildren",
        "UpdateFolder",
        "TrashFolder",
        "CreateFile",
        "CompleteUpload",
        "GetFile",
        "UpdateFile",
        "TrashFile",
        "RestoreFile",
        "PurgeFile",
        "AuthorizeDownload",
        "CreateShare",
        "RevokeShare",
        "ReleaseFile",
    ];
    let mut policy = Policy::new();
    for m in user {
        policy = policy.rpc(SERVICE, m, &["gateway"], Token::Required)?;
    }
    policy = policy.rpc(SERVICE, "RedeemShare", &["gateway"], Token::NotRequired)?;
    policy = policy.rpc(SERVICE, "RecordVerdict", &["scan"], Token::NotRequired)?;
    // The org purge: auth, with a service token of the org (checked in the handler).
    policy = policy.rpc(SERVICE, "PurgeOrg", &["auth"], Token::Required)?;
    Ok(policy)
}

#[derive(Clone)]
pub struct MetadataService {
    pool: PgPool,
    signer: StorageSignerClient<MeshChannel>,
    auth: AuthClient<MeshChannel>,
    audit: AuditLog,
    /// None when no scan service is configured: files then wait in `scanning` for a verdict.
    scan: Option<ScanClient<MeshChannel>>,
    config: MetadataConfig,
}

impl MetadataService {
    pub fn new(
        pool: PgPool,
        signer: StorageSignerClient<MeshChannel>,
        auth: AuthClient<MeshChannel>,
        audit: AuditLog,
        scan: Option<ScanClient<MeshChannel>>,
        config: MetadataConfig,
    ) -> Self {
        MetadataService {
            pool,
            signer,
            auth,
            audit,
            scan,
            config,
        }
    }

    /// Writes the audit event of an action, as the current caller, before the action's success
    /// is committed or returned: if the log cannot take it, the action fails (503) and its
    /// transaction rolls back, so nothing happens unaudited.
    async fn audit(&self, action: Action, target: Target) -> Result<(), MetadataError> {
        self.audit
            .record(action, target)
            .await
            .map_err(|AuditRefused(s)| MetadataError::AuditUnavailable(s))
    }

    /// Deletes an object (every version of it) through storage-signer, with the current token.
    async fn delete_object(&self, key: &str) -> Result<(), MetadataError> {
        self.signer
            .clone()
            .delete_object(pb::ObjectRef {
                key: key.to_owned(),
            })
            .await
            .map_err(downstream)?;
        Ok(())
    }

    async fn tx(
        &self,
        org: Uuid,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, MetadataError> {
        Ok(coffer_db::tenant_tx(&self.pool, org).await?)
    }

    fn quota(&self) -> i64 {
        i64::try_from(self.config.default_quota_bytes).unwrap_or(i64::MAX)
    }
}

/// The caller, with `scope` required (sessions hold every scope; API keys what they were given).
fn user<T>(req: &Request<T>, scope: Scope) -> Result<Caller, Status> {
    let c = caller(req)?;
    if !c.has_scope(scope) {
        return Err(MetadataError::Forbidden(match scope {
            Scope::FilesRead => "this API key lacks the files:read scope",
            _ => "this API key lacks the files:write scope",
        })
        .into());
    }
    Ok(c.clone())
}

fn ts(t: OffsetDateTime) -> Option<prost_types::Timestamp> {
    Some(coffer_kit::timestamp::from_time(t))
}

fn id_or_empty(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

fn folder_pb(f: FolderRow) -> pb::Folder {
    pb::Folder {
        id: f.id.to_string(),
        name: f.name,
        parent_id: id_or_empty(f.parent_id),
        created_at: ts(f.created_at),
    }
}

fn file_pb(f: FileRow) -> pb::File {
    pb::File {
        status: f.status().to_owned(),
        id: f.id.to_string(),
        name: f.name,
        folder_id: id_or_empty(f.folder_id),
        size: f.size.max(0) as u64,
        content_type: f.content_type,
        sha256: f.sha256.unwrap_or_default(),
        verdict: f.verdict.unwrap_or_default(),
        created_at: ts(f.created_at),
        updated_at: ts(f.updated_at),
    }
}

/// A downstream refusal of the caller's own input (the content type, say) is passed on as is.
fn downstream(s: Status) -> MetadataError {
    if s.code() == tonic::Code::InvalidArgument {
        let (_, field) = coffer_errors::from_status(&s);
        return MetadataError::invalid(
            match field.as_str() {
                "content_type" => "content_type",
                "sha256" => "sha256",
                "size" => "size",
                _ => "request",
            },
            s.message().to_owned(),
        );
    }
    MetadataError::Downstream(s)
}

/// Why an uploaded object cannot become the file, if it cannot: its size or checksum differ
/// from the declared ones, the store reports no ETag to pin it by, or it carries response headers
/// its upload URL did not set (a `Content-Encoding: gzip` would have browsers decode it into bytes
/// the scanner never saw). Headers are named, never their values.
fn unacceptable(file: &FileRow, head: &pb::ObjectInfo) -> Option<String> {
    if head.size != file.size as u64 {
        return Some("the uploaded object's size differs from the declared size".into());
    }
    if let Some(want) = &file.sha256
        && !head.sha256.is_empty()
        && &head.sha256 != want
    {
        return Some("the uploaded object's SHA-256 differs from the declared one".into());
    }
    if !head.foreign_headers.is_empty() {
        return Some(format!(
            "the uploaded object carries headers its upload URL did not set: {}",
            head.foreign_headers.join(", ")
        ));
    }
    if head.content_type != file.content_type {
        return Some("the uploaded object's content type differs from the declared one".into());
    }
    if head.etag.is_empty() {
        return Some("the object store reported no ETag for the object".into());
    }
    None
}

/// Why a file cannot be downloaded or shared, if it cannot.
fn check_downloadable(f: &FileRow) -> Result<(), MetadataError> {
    match f.status() {
        "available" => Ok(()),
        "quarantined" => Err(MetadataError::Quarantined),
        "trashed" => Err(MetadataError::Conflict("the file is in the trash")),
        _ => Err(MetadataError::NotReady),
    }
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

impl MetadataService {
    async fn list(
        &self,
        c: &Caller,
        req: pb::ListChildrenRequest,
    ) -> Result<pb::ListChildrenResponse, MetadataError> {
        let folder = match req.folder_id.as_str() {
            "" | "root" => None,
            id => Some(validate::target(id)?),
        };
        let limit = match req.limit {
            0 => self.config.default_page,
            n => n.min(self.config.max_page),
        } as usize;
        let cursor = parse_cursor(&req.cursor)?;
        let mut tx = self.tx(c.org_id).await?;
        if let Some(id) = folder
            && store::live_folder(&mut tx, id).await?.is_none()
        {
            return Err(MetadataError::NotFound);
        }
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
                folders = store::child_folders(&mut tx, c.org_id, folder, after, limit as i64 + 1)
                    .await?;
                if folders.len() > limit {
                    folders.truncate(limit);
                    next = format!("d.{}", folders[limit - 1].id);
                }
                None
            }
        };
        if next.is_empty() {
            let room = limit - folders.len();
            files =
                store::child_files(&mut tx, c.org_id, folder, files_after, room as i64 + 1).await?;
            if files.len() > room {
                files.truncate(room);
                next = match files.last() {
                    Some(f) => format!("f.{}", f.id),
                    // The page is full of folders and files follow: start them next time.
                    None => format!("d.{}", folders.last().map(|f| f.id).unwrap_or_default()),
                };
            }
        }
        tx.commit().await?;
        Ok(pb::ListChildrenResponse {
            folders: folders.into_iter().map(folder_pb).collect(),
            files: files.into_iter().map(file_pb).collect(),
            next_cursor: next,
        })
    }

    async fn create_file(
        &self,
        c: &Caller,
        req: pb::CreateFileRequest,
    ) -> Result<pb::CreateFileResponse, MetadataError> {
        let name = validate::name("name", &req.name)?;
        let folder = validate::folder("folder_id", &req.folder_id)?;
        let sha256 = validate::sha256(&req.sha256)?;
        if req.size > self.config.max_file_bytes {
            return Err(MetadataError::TooLarge(format!(
                "size is above the largest file accepted ({} bytes)",
                self.config.max_file_bytes
            )));
        }
        if req.content_type.is_empty() {
            return Err(MetadataError::invalid(
                "content_type",
                "content_type is required",
            ));
        }
        let size = req.size as i64;
        let mut tx = self.tx(c.org_id).await?;
        store::ensure_org(&mut tx, c.org_id, self.quota()).await?;
        if let Some(id) = folder
            && store::live_folder(&mut tx, id).await?.is_none()
        {
            return Err(MetadataError::invalid("folder_id", "no such folder"));
        }
        store::reserve_quota(&mut tx, c.org_id, size).await?;
        let file = store::insert_file(
            &mut tx,
            &store::NewFile {
                id: Uuid::new_v4(),
                org: c.org_id,
                folder,
                name: &name,
                size,
                content_type: &req.content_type,
                sha256: sha256.as_deref(),
                created_by: c.user_id,
            },
        )
        .await?;
        // Signed before the row is committed: a refusal leaves nothing behind.
        let upload = self
            .signer
            .clone()
            .presign_put(pb::PresignPutRequest {
                key: file.object_key.clone(),
                size: req.size,
                content_type: req.content_type,
                sha256: sha256.unwrap_or_default(),
                expires_in_seconds: 0,
            })
            .await
            .map_err(downstream)?
            .into_inner();
        tx.commit().await?;
        Ok(pb::CreateFileResponse {
            file: Some(file_pb(file)),
            upload: Some(upload),
        })
    }

    async fn complete(&self, c: &Caller, id: Uuid) -> Result<pb::File, MetadataError> {
        let mut tx = self.tx(c.org_id).await?;
        let file = store::file(&mut tx, id).await?;
        if file.status() != "pending_upload" {
            return Err(MetadataError::Conflict(
                "the file's upload is already complete",
            ));
        }
        let head = self
            .signer
            .clone()
            .head_object(pb::ObjectRef {
                key: file.object_key.clone(),
            })
            .await
            .map_err(downstream)?
            .into_inner();
        if !head.exists {
            return Err(MetadataError::Conflict("the object has not been uploaded"));
        }
        if let Some(why) = unacceptable(&file, &head) {
            // The upload URL writes once: remove what it wrote, so the client can PUT again
            // (while the URL lives) instead of being stuck with an object nobody may use.
            self.delete_object(&file.object_key).await?;
            return Err(MetadataError::BadObject(format!(
                "{why}; the object was removed: upload it again with exactly the headers given"
            )));
        }
        // The scan reads this object and every download URL is signed for it.
        store::set_object(
            &mut tx,
            id,
            &head.etag,
            (!head.version_id.is_empty()).then_some(head.version_id.as_str()),
        )
        .await?;
        let file = store::transition(
            &mut tx,
            id,
            "pending_upload",
            "scanning",
            None,
            Trashed::Skip,
        )
        .await?
        .ok_or(MetadataError::Conflict(
            "the file's upload is already complete",
        ))?;
        // The job is queued before the state change commits: if scan cannot take it, the file
        // stays `pending_upload` and complete may be retried (queuing is idempotent per file).
        // The audit event and the job go side by side; both must succeed.
        let queued = async {
            if let Some(scan) = &self.scan {
                scan.clone()
                    .enqueue_scan(pb::EnqueueScanRequest {
                        file_id: id.to_string(),
                        object_key: file.object_key.clone(),
                        size: file.size as u64,
                        content_type: file.content_type.clone(),
                        extension: validate::extension(&file.name),
                        etag: head.etag.clone(),
                        version_id: head.version_id.clone(),
                    })
                    .await
                    .map_err(downstream)?;
            }
            Ok::<_, MetadataError>(())
        };
        let (logged, queued) =
            tokio::join!(self.audit(Action::FileUpload, Target::File(id)), queued);
        logged?;
        queued?;
        tx.commit().await?;
        Ok(file_pb(file))
    }

    async fn authorize_download(
        &self,
        c: &Caller,
        id: Uuid,
    ) -> Result<pb::DownloadGrant, MetadataError> {
        let mut tx = self.tx(c.org_id).await?;
        let file = store::file(&mut tx, id).await?;
        tx.commit().await?;
        check_downloadable(&file)?;
        // No URL leaves before its download is in the log. Signing and logging run side by side
        // (one hop less of latency); if signing fails after the event was written, the log holds
        // a download that did not happen, never the reverse.
        let (grant, logged) = tokio::join!(
            self.presign_get(&file, 0),
            self.audit(Action::FileDownload, Target::File(id))
        );
        logged?;
        grant
    }

    /// A presigned GET of the file's object, valid `secs` (0: storage-signer's default).
    async fn presign_get(
        &self,
        file: &FileRow,
        secs: u32,
    ) -> Result<pb::DownloadGrant, MetadataError> {
        let res = self
            .signer
            .clone()
            .presign_get(pb::PresignGetRequest {
                key: file.object_key.clone(),
                file_name: file.name.clone(),
                expires_in_seconds: secs,
                // Only the object that was checked at complete (and scanned) is served.
                version_id: file.object_version.clone().unwrap_or_default(),
                etag: file.object_etag.clone().unwrap_or_default(),
                content_type: file.content_type.clone(),
                require_if_match: false,
            })
            .await
            .map_err(|s| match coffer_errors::from_status(&s).0 {
                coffer_errors::ErrorCode::Conflict => MetadataError::Conflict(
                    "the stored object is not the one that was scanned; it cannot be downloaded",
                ),
                _ => downstream(s),
            })?
            .into_inner();
        Ok(pb::DownloadGrant {
            url: res.url,
            expires_at: res.expires_at,
        })
    }

    async fn purge(&self, c: &Caller, id: Uuid) -> Result<(), MetadataError> {
        let mut tx = self.tx(c.org_id).await?;
        // Locked, so concurrent purges of one file wait for each other.
        let file = store::file_for_update(&mut tx, id).await?;
        self.audit(Action::FilePurge, Target::File(id)).await?;
        // The object first: if that fails the row stays, and purge can be retried.
        self.delete_object(&file.object_key).await?;
        store::delete_file(&mut tx, c.org_id, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_folder(
        &self,
        c: &Caller,
        req: pb::UpdateFolderRequest,
    ) -> Result<pb::Folder, MetadataError> {
        let id = validate::target(&req.folder_id)?;
        let name = req
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let parent = req
            .parent_id
            .as_deref()
            .map(|p| validate::folder("parent_id", p))
            .transpose()?;
        let mut tx = self.tx(c.org_id).await?;
        if let Some(parent) = parent {
            store::lock_tree(&mut tx, c.org_id).await?;
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
            self.audit(Action::FolderRename, Target::Folder(id)).await?;
        }
        if parent.is_some() {
            self.audit(Action::FolderMove, Target::Folder(id)).await?;
        }
        tx.commit().await?;
        Ok(folder_pb(folder))
    }

    async fn update_file(
        &self,
        c: &Caller,
        req: pb::UpdateFileRequest,
    ) -> Result<pb::File, MetadataError> {
        let id = validate::target(&req.file_id)?;
        let name = req
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let folder = req
            .folder_id
            .as_deref()
            .map(|p| validate::folder("folder_id", p))
            .transpose()?;
        let mut tx = self.tx(c.org_id).await?;
        if let Some(Some(target)) = folder
            && store::live_folder(&mut tx, target).await?.is_none()
        {
            return Err(MetadataError::invalid("folder_id", "no such folder"));
        }
        let file = store::update_file(&mut tx, id, name.as_deref(), folder).await?;
        if name.is_some() {
            self.audit(Action::FileRename, Target::File(id)).await?;
        }
        if folder.is_some() {
            self.audit(Action::FileMove, Target::File(id)).await?;
        }
        tx.commit().await?;
        Ok(file_pb(file))
    }

    async fn create_share(
        &self,
        c: &Caller,
        req: pb::CreateShareRequest,
    ) -> Result<pb::ShareCreated, MetadataError> {
        let id = validate::target(&req.file_id)?;
        if req.expires_in_seconds == 0 || req.expires_in_seconds > self.config.max_share_secs {
            return Err(MetadataError::invalid(
                "expires_in_seconds",
                format!(
                    "expires_in_seconds must be between 1 and {}",
                    self.config.max_share_secs
                ),
            ));
        }
        let max_downloads = match req.max_downloads {
            0 => None,
            n => Some(i32::try_from(n).map_err(|_| {
                MetadataError::invalid("max_downloads", "max_downloads is too large")
            })?),
        };
        let password_hash = match req.password.as_str() {
            "" => None,
            p if p.chars().count() < self.config.share_password_min_chars => {
                return Err(MetadataError::invalid(
                    "password",
                    format!(
                        "password must be at least {} characters",
                        self.config.share_password_min_chars
                    ),
                ));
            }
            p if p.len() > 1024 => {
                return Err(MetadataError::invalid("password", "password is too long"));
            }
            p => Some(shares::hash_password(p.to_owned()).await?),
        };
        let mut tx = self.tx(c.org_id).await?;
        let file = store::file(&mut tx, id).await?;
        check_downloadable(&file)?;
        let (token, hash) = shares::new_token();
        let (share_id, expires_at) = store::insert_share(
            &mut tx,
            &store::NewShare {
                org: c.org_id,
                file: id,
                token_hash: &hash,
                password_hash,
                max_downloads,
                expires_in_secs: req.expires_in_seconds as i64,
                created_by: c.user_id,
            },
        )
        .await?;
        self.audit(Action::ShareCreate, Target::Share(share_id))
            .await?;
        tx.commit().await?;
        Ok(pb::ShareCreated {
            id: share_id.to_string(),
            token,
            expires_at: ts(expires_at),
        })
    }

    async fn redeem_share(
        &self,
        req: pb::RedeemShareRequest,
        request_id: String,
    ) -> Result<pb::DownloadGrant, MetadataError> {
        if req.token.is_empty() || req.token.len() > 128 {
            return Err(MetadataError::NotFound);
        }
        let hash = shares::hash(&req.token);
        let mut tx = self.pool.begin().await?;
        let mut share = store::find_share_by_token(&mut tx, &hash)
            .await?
            .ok_or(MetadataError::NotFound)?;
        if let Some(stored) = share.password_hash.clone() {
            // No connection is held while the password is hashed.
            tx.commit().await?;
            self.check_share_password(share.org_id, share.id, req.password, stored)
                .await?;
            // The share may have been revoked or used up meanwhile.
            tx = self.pool.begin().await?;
            share = store::find_share_by_token(&mut tx, &hash)
                .await?
                .filter(|again| again.id == share.id)
                .ok_or(MetadataError::NotFound)?;
        }
        coffer_db::set_tenant(&mut tx, share.org_id).await?;
        let file = store::file(&mut tx, share.file_id).await?;
        // A share of a file that is no longer downloadable is as good as gone.
        check_downloadable(&file).map_err(|_| MetadataError::NotFound)?;
        if !store::count_share_download(&mut tx, share.id).await? {
            return Err(MetadataError::NotFound);
        }
        let grant = self
            .as_service(share.org_id, request_id, async {
                // Side by side, as for a download (see `authorize_download`).
                // A short URL: one redemption is one download (the cap counts redemptions).
                let (grant, logged) = tokio::join!(
                    self.presign_get(&file, self.config.share_url_secs),
                    self.audit(Action::ShareDownload, Target::Share(share.id))
                );
                logged?;
                grant
            })
            .await?;
        tx.commit().await?;
        Ok(grant)
    }

    /// Checks a share's password. No password given is refused without hashing or counting (link
    /// previews fetch links without one). Otherwise the attempt is counted first, in a short
    /// transaction, so concurrent guesses each spend one, and a share locked by earlier failures
    /// is refused (429) before any hashing; the hash then runs with no transaction open, one per
    /// core; the right password clears the count.
    async fn check_share_password(
        &self,
        org: Uuid,
        share: Uuid,
        given: String,
        stored: String,
    ) -> Result<(), MetadataError> {
        if given.is_empty() {
            return Err(MetadataError::Forbidden("this share needs its password"));
        }
        let mut tx = self.tx(org).await?;
        let counted = store::count_password_attempt(
            &mut tx,
            org,
            share,
            i64::from(self.config.share_password_attempts),
            self.config.share_lock_max_secs,
        )
        .await?;
        tx.commit().await?;
        let failures = match counted {
            store::Attempt::Counted(n) => n,
            store::Attempt::Locked(secs) => return Err(MetadataError::Locked(secs)),
        };
        if shares::verify_password(given, stored).await {
            let mut tx = self.tx(org).await?;
            store::share_password_ok(&mut tx, org, share).await?;
            tx.commit().await?;
            return Ok(());
        }
        if i64::from(failures) >= i64::from(self.config.share_password_attempts) {
            tracing::warn!(%share, failures, "share password locked after repeated failures");
        }
        Err(MetadataError::Forbidden(
            "this share needs its password, and the one given is wrong",
        ))
    }

    /// Runs `fut` with a service token of `org` (from auth) as the call context: system work with
    /// no user request behind it. An org auth does not know (or has disabled) is `NotFound`.
    async fn as_service<T>(
        &self,
        org: Uuid,
        request_id: String,
        fut: impl Future<Output = Result<T, MetadataError>>,
    ) -> Result<T, MetadataError> {
        let token = self
            .auth
            .clone()
            .mint_service_token(pb::MintServiceTokenRequest {
                org_id: org.to_string(),
                audiences: vec!["storage-signer".into(), "audit".into()],
                request_id: request_id.clone(),
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::NotFound => MetadataError::NotFound,
                _ => MetadataError::Downstream(s),
            })?
            .into_inner()
            .token;
        CallContext {
            token: Some(token.into()),
            request_id: request_id.into(),
            deadline: CallContext::current().and_then(|c| c.deadline),
        }
        .scope(fut)
        .await
    }

    /// Removes files left in `pending_upload` for longer than the configured time: the object
    /// (if the client put one), then the row, giving the bytes back to the quota. Returns how many
    /// were removed. Files of an org auth no longer knows are left for the org purge.
    pub async fn sweep_stale_uploads(&self) -> Result<usize, MetadataError> {
        let before = OffsetDateTime::now_utc()
            - time::Duration::seconds(
                i64::try_from(self.config.stale_upload_secs).unwrap_or(i64::MAX),
            );
        let mut tx = self.pool.begin().await?;
        let stale = store::stale_uploads(&mut tx, before, 100).await?;
        tx.commit().await?;
        let mut removed = 0;
        for file in stale {
            let request_id = format!("sweep-{}", Uuid::new_v4().simple());
            let mut signer = self.signer.clone();
            let deleted = self
                .as_service(file.org_id, request_id, async move {
                    signer
                        .delete_object(pb::ObjectRef {
                            key: file.object_key,
                        })
                        .await
                        .map_err(downstream)
                })
                .await;
            match deleted {
                Ok(_) => {}
                Err(MetadataError::NotFound) => continue,
                Err(e) => return Err(e),
            }
            let mut tx = self.tx(file.org_id).await?;
            if store::delete_pending(&mut tx, file.org_id, file.id).await? {
                removed += 1;
            }
            tx.commit().await?;
        }
        Ok(removed)
    }

    async fn record_verdict(
        &self,
        req: pb::RecordVerdictRequest,
    ) -> Result<pb::File, MetadataError> {
        let org = Uuid::try_parse(&req.org_id)
            .map_err(|_| MetadataError::invalid("org_id", "org_id must be a UUID"))?;
        let id = validate::target(&req.file_id)?;
        let to = match req.verdict.as_str() {
            "clean" => "available",
            "infected" | "suspicious" | "sensitive" | "failed" => "quarantined",
            _ => {
                return Err(MetadataError::invalid(
                    "verdict",
                    "verdict must be clean, infected, suspicious, sensitive or failed",
                ));
            }
        };
        let mut tx = self.tx(org).await?;
        let current = store::file_for_update(&mut tx, id).await?;
        // A verdict that names its object must name the one the file was pinned to at complete.
        // (Only the scan service calls this; "" is a verdict that names none: a job queued before
        // objects were pinned, or the bench recording verdicts itself.)
        if let Some(pinned) = &current.object_etag
            && !req.etag.is_empty()
            && *pinned != req.etag
        {
            return Err(MetadataError::Conflict(
                "the verdict is about another object than the file's",
            ));
        }
        // From `scanning`; or, for a re-scan under a newer ruleset, from a decided state.
        let mut moved = None;
        let from_states: &[&str] = if req.rescan {
            &["scanning", "available", "quarantined"]
        } else {
            &["scanning"]
        };
        for from in from_states {
            // A verdict lands whether or not the file is in the trash: restoring it must bring
            // back what its bytes were last found to be, never an older verdict.
            moved = store::transition(&mut tx, id, from, to, Some(&req.verdict), Trashed::Include)
                .await?;
            if moved.is_some() {
                break;
            }
        }
        let file = match moved {
            Some(f) => f,
            None => {
                // The same verdict twice is one verdict; anything else is a state conflict.
                if current.verdict.as_deref() != Some(req.verdict.as_str()) {
                    return Err(MetadataError::Conflict("the file is not being scanned"));
                }
                current
            }
        };
        tx.commit().await?;
        Ok(file_pb(file))
    }
}

impl MetadataService {
    /// Deletes the org's objects (all of them: rows or not, trashed or not, uploads never
    /// completed), then, once none is left, every row of the org. Objects go first: the rows are
    /// what an interrupted purge would need to find them again, and auth's credentials to delete
    /// them outlive this (auth forgets the org only after every service is done).
    async fn purge_org(&self, org: Uuid) -> Result<pb::PurgeOrgResponse, MetadataError> {
        let page = self
            .signer
            .clone()
            .delete_prefix(pb::DeletePrefixRequest {
                prefix: format!("{org}/"),
            })
            .await
            .map_err(downstream)?
            .into_inner();
        if page.more {
            return Ok(pb::PurgeOrgResponse {
                done: false,
                objects_deleted: u64::from(page.deleted),
            });
        }
        let mut tx = self.tx(org).await?;
        store::delete_org(&mut tx, org).await?;
        tx.commit().await?;
        tracing::info!(%org, objects = page.deleted, "purged a deleted org's files and rows");
        Ok(pb::PurgeOrgResponse {
            done: true,
            objects_deleted: u64::from(page.deleted),
        })
    }
}

type Res<T> = Result<Response<T>, Status>;

fn ok<T>(r: Result<T, MetadataError>) -> Res<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Metadata for MetadataService {
    async fn create_folder(&self, request: Request<pb::CreateFolderRequest>) -> Res<pb::Folder> {
        let c = user(&request, Scope::FilesWrite)?;
        let req = request.into_inner();
        ok(async {
            let name = validate::name("name", &req.name)?;
            let parent = validate::folder("parent_id", &req.parent_id)?;
            let mut tx = self.tx(c.org_id).await?;
            store::ensure_org(&mut tx, c.org_id, self.quota()).await?;
            store::require_parent(&mut tx, parent).await?;
            let folder = store::insert_folder(&mut tx, c.org_id, parent, &name).await?;
            self.audit(Action::FolderCreate, Target::Folder(folder.id))
                .await?;
            tx.commit().await?;
            Ok(folder_pb(folder))
        }
        .await)
    }

    async fn list_children(
        &self,
        request: Request<pb::ListChildrenRequest>,
    ) -> Res<pb::ListChildrenResponse> {
        let c = user(&request, Scope::FilesRead)?;
        ok(self.list(&c, request.into_inner()).await)
    }

    async fn update_folder(&self, request: Request<pb::UpdateFolderRequest>) -> Res<pb::Folder> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(self.update_folder(&c, request.into_inner()).await)
    }

    async fn trash_folder(&self, request: Request<pb::FolderRef>) -> Res<pb::Empty> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(async {
            let id = validate::target(&request.get_ref().folder_id)?;
            let mut tx = self.tx(c.org_id).await?;
            store::trash_folder(&mut tx, c.org_id, id).await?;
            // One event for the folder and everything below it that went to the trash with it.
            self.audit(Action::FolderDelete, Target::Folder(id)).await?;
            tx.commit().await?;
            Ok(pb::Empty {})
        }
        .await)
    }

    async fn create_file(
        &self,
        request: Request<pb::CreateFileRequest>,
    ) -> Res<pb::CreateFileResponse> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(self.create_file(&c, request.into_inner()).await)
    }

    async fn complete_upload(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(async {
            let id = validate::target(&request.get_ref().file_id)?;
            self.complete(&c, id).await
        }
        .await)
    }

    async fn get_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesRead)?;
        ok(async {
            let id = validate::target(&request.get_ref().file_id)?;
            let mut tx = self.tx(c.org_id).await?;
            let file = store::file(&mut tx, id).await?;
            tx.commit().await?;
            Ok(file_pb(file))
        }
        .await)
    }

    async fn update_file(&self, request: Request<pb::UpdateFileRequest>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(self.update_file(&c, request.into_inner()).await)
    }

    async fn trash_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(async {
            let id = validate::target(&request.get_ref().file_id)?;
            let mut tx = self.tx(c.org_id).await?;
            let file = store::trash_file(&mut tx, id).await?;
            self.audit(Action::FileDelete, Target::File(id)).await?;
            tx.commit().await?;
            Ok(file_pb(file))
        }
        .await)
    }

    async fn restore_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(async {
            let id = validate::target(&request.get_ref().file_id)?;
            let mut tx = self.tx(c.org_id).await?;
            store::file(&mut tx, id).await?;
            let file = store::restore_file(&mut tx, id).await?;
            self.audit(Action::FileRestore, Target::File(id)).await?;
            tx.commit().await?;
            Ok(file_pb(file))
        }
        .await)
    }

    async fn purge_file(&self, request: Request<pb::FileRef>) -> Res<pb::Empty> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(async {
            let id = validate::target(&request.get_ref().file_id)?;
            self.purge(&c, id).await?;
            Ok(pb::Empty {})
        }
        .await)
    }

    async fn authorize_download(&self, request: Request<pb::FileRef>) -> Res<pb::DownloadGrant> {
        let c = user(&request, Scope::FilesRead)?;
        ok(async {
            let id = validate::target(&request.get_ref().file_id)?;
            self.authorize_download(&c, id).await
        }
        .await)
    }

    async fn create_share(
        &self,
        request: Request<pb::CreateShareRequest>,
    ) -> Res<pb::ShareCreated> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(self.create_share(&c, request.into_inner()).await)
    }

    async fn revoke_share(&self, request: Request<pb::ShareRef>) -> Res<pb::Empty> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(async {
            let id = validate::target(&request.get_ref().share_id)?;
            let mut tx = self.tx(c.org_id).await?;
            store::revoke_share(&mut tx, id).await?;
            self.audit(Action::ShareRevoke, Target::Share(id)).await?;
            tx.commit().await?;
            Ok(pb::Empty {})
        }
        .await)
    }

    async fn redeem_share(
        &self,
        request: Request<pb::RedeemShareRequest>,
    ) -> Res<pb::DownloadGrant> {
        let request_id = CallContext::current()
            .map(|c| c.request_id.to_string())
            .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
        ok(self.redeem_share(request.into_inner(), request_id).await)
    }

    async fn release_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        ok(async {
            if !matches!(
                c.role,
                coffer_token::Role::Owner | coffer_token::Role::Admin
            ) {
                return Err(MetadataError::Forbidden(
                    "only owners and admins release quarantined files",
                ));
            }
            let id = validate::target(&request.get_ref().file_id)?;
            let mut tx = self.tx(c.org_id).await?;
            let current = store::file(&mut tx, id).await?;
            if current.status() != "quarantined" {
                return Err(MetadataError::Conflict("the file is not quarantined"));
            }
            let file =
                store::transition(&mut tx, id, "quarantined", "available", None, Trashed::Skip)
                    .await?
                    .ok_or(MetadataError::Conflict("the file is not quarantined"))?;
            self.audit(Action::FileRelease, Target::File(id)).await?;
            tx.commit().await?;
            Ok(file_pb(file))
        }
        .await)
    }

    async fn record_verdict(&self, request: Request<pb::RecordVerdictRequest>) -> Res<pb::File> {
        ok(self.record_verdict(request.into_inner()).await)
    }

    async fn purge_org(&self, request: Request<pb::PurgeOrgRequest>) -> Res<pb::PurgeOrgResponse> {
        let c = caller(&request)?;
        // Never a user's request, whatever its role: only the token auth mints for the purge.
        if !c.is_service() {
            return Err(MetadataError::Forbidden("only the org purge deletes an org").into());
        }
        ok(self.purge_org(c.org_id).await)
    }
}
