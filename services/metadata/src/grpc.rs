//! The Metadata gRPC boundary: who may call each RPC, then per RPC parse → call the domain module
//! (`folders`, `files`, `shares`, `verdicts`, `sweep`) → map. The org comes only from the verified
//! token (or, for RecordVerdict, from the scan service's request, checked against the row).

use coffer_mesh::{CallContext, Caller, Policy, PolicyError, Token, caller};
use coffer_proto::v1::metadata_server::Metadata;
use coffer_proto::v1::{self as pb};
use coffer_token::{Scope, Service};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::deps::Core;
use crate::error::MetadataError;
use crate::wire::{file_pb, folder_pb, listing_pb, ts};
use crate::{files, folders, shares, sweep, verdicts};

const SERVICE: &str = "coffer.v1.Metadata";

/// User RPCs: the gateway with a token. Share links: the gateway, no user. Verdicts: scan only.
/// The org purge: auth only.
pub fn policy() -> Result<Policy, PolicyError> {
    let user = [
        "CreateFolder",
        "ListChildren",
        "ListTrash",
        "UpdateFolder",
        "TrashFolder",
        "GetFolder",
        "CreateFile",
        "CompleteUpload",
        "PresignFileParts",
        "ListUploadedParts",
        "GetFile",
        "UpdateFile",
        "TrashFile",
        "RestoreFile",
        "PurgeFile",
        "AuthorizeDownload",
        "CreateShare",
        "RevokeShare",
        "ListShares",
        "ReleaseFile",
    ];
    let mut policy = Policy::new();
    for m in user {
        policy = policy.rpc(SERVICE, m, &[Service::Gateway], Token::Required)?;
    }
    policy = policy.rpc(
        SERVICE,
        "RedeemShare",
        &[Service::Gateway],
        Token::NotRequired,
    )?;
    policy = policy.rpc(
        SERVICE,
        "RecordVerdict",
        &[Service::Scan],
        Token::NotRequired,
    )?;
    // The org purge: auth, with a service token of the org (checked in the handler).
    policy = policy.rpc(SERVICE, "PurgeOrg", &[Service::Auth], Token::Required)?;
    Ok(policy)
}

/// The gRPC face of the service; all it holds is what the domain modules share.
#[derive(Clone)]
pub struct MetadataService(Core);

impl MetadataService {
    pub fn new(core: Core) -> Self {
        MetadataService(core)
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

type Res<T> = Result<Response<T>, Status>;

/// The answer, or the error mapped once (`MetadataError` → `Status`).
fn answer<T, U>(r: Result<T, MetadataError>, map: impl FnOnce(T) -> U) -> Res<U> {
    r.map(|t| Response::new(map(t))).map_err(Status::from)
}

fn empty(_: ()) -> pb::Empty {
    pb::Empty {}
}

#[tonic::async_trait]
impl Metadata for MetadataService {
    async fn create_folder(&self, request: Request<pb::CreateFolderRequest>) -> Res<pb::Folder> {
        let c = user(&request, Scope::FilesWrite)?;
        let r = request.get_ref();
        answer(
            folders::create(&self.0, &c, &r.name, &r.parent_id).await,
            folder_pb,
        )
    }

    async fn list_children(
        &self,
        request: Request<pb::ListChildrenRequest>,
    ) -> Res<pb::ListChildrenResponse> {
        let c = user(&request, Scope::FilesRead)?;
        let r = request.get_ref();
        answer(
            folders::list(&self.0, &c, &r.folder_id, r.limit, &r.cursor).await,
            listing_pb,
        )
    }

    async fn list_trash(
        &self,
        request: Request<pb::ListChildrenRequest>,
    ) -> Res<pb::ListChildrenResponse> {
        let c = user(&request, Scope::FilesRead)?;
        let r = request.get_ref();
        let retention = time::Duration::days(i64::from(self.0.config.trash_retention_days));
        answer(
            folders::trash_listing(&self.0, &c, r.limit, &r.cursor).await,
            |l| crate::wire::trash_pb(l, retention),
        )
    }

    async fn update_folder(&self, request: Request<pb::UpdateFolderRequest>) -> Res<pb::Folder> {
        let c = user(&request, Scope::FilesWrite)?;
        let r = request.get_ref();
        let (name, parent) = (r.name.as_deref(), r.parent_id.as_deref());
        answer(
            folders::update(&self.0, &c, &r.folder_id, name, parent).await,
            folder_pb,
        )
    }

    async fn trash_folder(&self, request: Request<pb::FolderRef>) -> Res<pb::Empty> {
        let c = user(&request, Scope::FilesWrite)?;
        answer(
            folders::trash(&self.0, &c, &request.get_ref().folder_id).await,
            empty,
        )
    }

    async fn create_file(
        &self,
        request: Request<pb::CreateFileRequest>,
    ) -> Res<pb::CreateFileResponse> {
        let c = user(&request, Scope::FilesWrite)?;
        let r = request.get_ref();
        let declared = files::Declared {
            name: &r.name,
            folder: &r.folder_id,
            size: r.size,
            content_type: &r.content_type,
            sha256: &r.sha256,
        };
        answer(
            files::create(&self.0, &c, declared).await,
            |(file, upload)| {
                let (upload, multipart) = match upload {
                    files::Upload::Put(put) => (Some(put), None),
                    files::Upload::Multipart(plan) => (None, Some(plan)),
                };
                pb::CreateFileResponse {
                    file: Some(file_pb(file)),
                    upload,
                    multipart,
                }
            },
        )
    }

    async fn complete_upload(&self, request: Request<pb::CompleteUploadRequest>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        let r = request.into_inner();
        answer(
            files::complete(&self.0, &c, &r.file_id, r.parts).await,
            file_pb,
        )
    }

    async fn presign_file_parts(
        &self,
        request: Request<pb::PresignFilePartsRequest>,
    ) -> Res<pb::UploadPartUrls> {
        let c = user(&request, Scope::FilesWrite)?;
        let r = request.get_ref();
        answer(
            files::presign_parts(&self.0, &c, &r.file_id, &r.numbers).await,
            |parts| pb::UploadPartUrls { parts },
        )
    }

    async fn list_uploaded_parts(
        &self,
        request: Request<pb::FileRef>,
    ) -> Res<pb::UploadedFileParts> {
        let c = user(&request, Scope::FilesWrite)?;
        answer(
            files::uploaded_parts(&self.0, &c, &request.get_ref().file_id).await,
            |parts| pb::UploadedFileParts { parts },
        )
    }

    async fn get_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesRead)?;
        answer(
            files::get(&self.0, &c, &request.get_ref().file_id).await,
            file_pb,
        )
    }

    async fn update_file(&self, request: Request<pb::UpdateFileRequest>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        let r = request.get_ref();
        let (name, folder) = (r.name.as_deref(), r.folder_id.as_deref());
        answer(
            files::update(&self.0, &c, &r.file_id, name, folder).await,
            file_pb,
        )
    }

    async fn trash_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        answer(
            files::trash(&self.0, &c, &request.get_ref().file_id).await,
            file_pb,
        )
    }

    async fn restore_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        answer(
            files::restore(&self.0, &c, &request.get_ref().file_id).await,
            file_pb,
        )
    }

    async fn purge_file(&self, request: Request<pb::FileRef>) -> Res<pb::Empty> {
        let c = user(&request, Scope::FilesWrite)?;
        answer(
            files::purge(&self.0, &c, &request.get_ref().file_id).await,
            empty,
        )
    }

    async fn authorize_download(&self, request: Request<pb::FileRef>) -> Res<pb::DownloadGrant> {
        let c = user(&request, Scope::FilesRead)?;
        answer(
            files::download(&self.0, &c, &request.get_ref().file_id).await,
            |grant| grant,
        )
    }

    async fn create_share(
        &self,
        request: Request<pb::CreateShareRequest>,
    ) -> Res<pb::ShareCreated> {
        let c = user(&request, Scope::FilesWrite)?;
        let r = request.get_ref();
        let asked = shares::Asked {
            file: &r.file_id,
            expires_in_secs: r.expires_in_seconds,
            max_downloads: r.max_downloads,
            password: &r.password,
        };
        answer(shares::create(&self.0, &c, asked).await, |s| {
            pb::ShareCreated {
                id: s.id.to_string(),
                token: s.token,
                expires_at: ts(s.expires_at),
            }
        })
    }

    async fn revoke_share(&self, request: Request<pb::ShareRef>) -> Res<pb::Empty> {
        let c = user(&request, Scope::FilesWrite)?;
        answer(
            shares::revoke(&self.0, &c, &request.get_ref().share_id).await,
            empty,
        )
    }

    async fn get_folder(&self, request: Request<pb::FolderRef>) -> Res<pb::FolderWithPath> {
        let c = user(&request, Scope::FilesRead)?;
        answer(
            folders::get(&self.0, &c, &request.get_ref().folder_id).await,
            |(folder, path)| pb::FolderWithPath {
                folder: Some(folder_pb(folder)),
                path: path
                    .into_iter()
                    .map(|(id, name)| pb::PathEntry {
                        id: id.to_string(),
                        name,
                    })
                    .collect(),
            },
        )
    }

    async fn list_shares(&self, request: Request<pb::FileRef>) -> Res<pb::ShareList> {
        let c = user(&request, Scope::FilesRead)?;
        answer(
            shares::list(&self.0, &c, &request.get_ref().file_id).await,
            |rows| pb::ShareList {
                items: rows
                    .into_iter()
                    .map(|s| pb::ShareInfo {
                        id: s.id.to_string(),
                        expires_at: ts(s.expires_at),
                        max_downloads: s.max_downloads.map_or(0, |n| n.max(0) as u32),
                        downloads: s.downloads.max(0) as u32,
                        has_password: s.has_password,
                        created_at: ts(s.created_at),
                    })
                    .collect(),
            },
        )
    }

    async fn redeem_share(
        &self,
        request: Request<pb::RedeemShareRequest>,
    ) -> Res<pb::DownloadGrant> {
        let request_id = CallContext::current()
            .map(|c| c.request_id.to_string())
            .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
        let r = request.into_inner();
        answer(
            if r.check_only {
                shares::check(&self.0, &r.token, request_id).await
            } else {
                shares::redeem(&self.0, &r.token, r.password, request_id).await
            },
            |grant| grant,
        )
    }

    async fn release_file(&self, request: Request<pb::FileRef>) -> Res<pb::File> {
        let c = user(&request, Scope::FilesWrite)?;
        answer(
            files::release(&self.0, &c, &request.get_ref().file_id).await,
            file_pb,
        )
    }

    async fn record_verdict(&self, request: Request<pb::RecordVerdictRequest>) -> Res<pb::File> {
        let r = request.get_ref();
        let verdict = verdicts::Verdict {
            org: &r.org_id,
            file: &r.file_id,
            verdict: coffer_kit::vocab::Verdict::from_wire(r.verdict),
            etag: &r.etag,
            rescan: r.rescan,
            sha256: &r.sha256,
            hold: r.hold,
        };
        answer(verdicts::record(&self.0, verdict).await, file_pb)
    }

    async fn purge_org(&self, request: Request<pb::PurgeOrgRequest>) -> Res<pb::PurgeOrgResponse> {
        let c = caller(&request)?;
        // Never a user's request, whatever its role: only the token auth mints for the purge.
        if !c.is_service() {
            return Err(MetadataError::Forbidden("only the org purge deletes an org").into());
        }
        answer(sweep::purge_org(&self.0, c.org_id).await, |p| {
            pb::PurgeOrgResponse {
                done: p.done,
                objects_deleted: p.objects_deleted,
            }
        })
    }
}
