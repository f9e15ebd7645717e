//! The cross-tenant matrix: every metadata and storage-signer RPC, called with a valid token of
//! org B against org A's ids and keys, answers exactly as it does for ids that do not exist, and
//! changes nothing of A's.

use std::sync::Arc;

use coffer_mesh::{CallContext, MeshChannel};
use coffer_metadata::testing::Stack;
use coffer_proto::v1::metadata_client::MetadataClient;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_proto::v1::{self as pb};
use coffer_token::{Audience, Minter, Role, Scope, Scopes, Subject};
use tonic::{Code, Status};
use uuid::Uuid;

fn token(stack: &Stack, org: Uuid, scopes: Scopes) -> String {
    Minter::new(stack.ring())
        .mint(
            &Subject {
                user_id: Uuid::new_v4(),
                org_id: org,
                role: Role::Member,
                scopes,
                credential: coffer_token::Credential::Session,
                request_id: "req-test".into(),
            },
            &[Audience::Metadata, Audience::StorageSigner, Audience::Audit],
            coffer_token::unix_now(),
            60,
        )
        .unwrap()
}

async fn as_user<F: Future>(token: &str, f: F) -> F::Output {
    CallContext {
        token: Some(Arc::from(token)),
        request_id: "req-test".into(),
        deadline: None,
    }
    .scope(f)
    .await
}

/// What org A owns.
struct OrgA {
    org: Uuid,
    folder: String,
    file: String,
    key: String,
    share: String,
}

async fn populate(stack: &Stack, md: &MetadataClient<MeshChannel>, org: Uuid) -> OrgA {
    let t = token(stack, org, Scopes::all());
    let folder = as_user(
        &t,
        md.clone().create_folder(pb::CreateFolderRequest {
            name: "A's secrets".into(),
            parent_id: String::new(),
        }),
    )
    .await
    .unwrap()
    .into_inner()
    .id;
    let created = as_user(
        &t,
        md.clone().create_file(pb::CreateFileRequest {
            name: "A's payroll.xlsx".into(),
            folder_id: folder.clone(),
            size: 5,
            content_type: "application/octet-stream".into(),
            sha256: String::new(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    let upload = created.upload.unwrap();
    let mut req = reqwest::Client::new().put(&upload.url);
    for (k, v) in &upload.headers {
        if k != "content-length" {
            req = req.header(k, v);
        }
    }
    assert!(
        req.body(b"12345".to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let file = created.file.unwrap().id;
    as_user(
        &t,
        md.clone().complete_upload(pb::CompleteUploadRequest {
            file_id: file.clone(),
            parts: vec![],
        }),
    )
    .await
    .unwrap();
    stack
        .verdict(&org.to_string(), &file, "clean")
        .await
        .unwrap();
    let share = as_user(
        &t,
        md.clone().create_share(pb::CreateShareRequest {
            file_id: file.clone(),
            expires_in_seconds: 3600,
            ..Default::default()
        }),
    )
    .await
    .unwrap()
    .into_inner()
    .id;
    OrgA {
        org,
        key: format!("{org}/{file}"),
        folder,
        file,
        share,
    }
}

fn u<T>(f: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
    f.map(|_| ())
}

/// Calls `f` with A's id and with a fresh one; both must fail alike, with a code that reveals
/// nothing.
async fn same<F, Fut>(what: &str, real: &str, fake: String, f: F) -> usize
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    let a = f(real.to_owned()).await.expect_err(what);
    let b = f(fake).await.expect_err(what);
    assert!(
        matches!(
            a.code(),
            Code::NotFound | Code::PermissionDenied | Code::InvalidArgument
        ),
        "{what}: {a:?}"
    );
    assert_eq!(
        (a.code(), a.message()),
        (b.code(), b.message()),
        "{what}: A's id answers differently from an unknown one"
    );
    assert!(!a.message().contains("A's"), "{what} leaked a name");
    1
}

#[tokio::test]
async fn org_b_cannot_reach_org_a_through_any_rpc() -> anyhow::Result<()> {
    let stack = Stack::start(Default::default()).await?;
    let md = stack.metadata_as("gateway")?;
    let a = populate(&stack, &md, Uuid::new_v4()).await;
    let org_b = Uuid::new_v4();
    let tb = token(&stack, org_b, Scopes::all());
    let fresh = || Uuid::new_v4().to_string();
    // B's own folder and file, to try moving things into A's folder.
    let b_folder = as_user(
        &tb,
        md.clone().create_folder(pb::CreateFolderRequest {
            name: "B".into(),
            parent_id: String::new(),
        }),
    )
    .await?
    .into_inner()
    .id;
    let b_file = as_user(
        &tb,
        md.clone().create_file(pb::CreateFileRequest {
            name: "b.txt".into(),
            size: 1,
            content_type: "text/plain".into(),
            ..Default::default()
        }),
    )
    .await?
    .into_inner()
    .file
    .unwrap()
    .id;

    let mut checked = 0;
    macro_rules! probe {
        ($what:expr, $real:expr, [$($v:ident),*] |$m:ident, $id:ident| $call:expr) => {
            checked += same($what, $real, fresh(), |$id: String| {
                let mut $m = md.clone();
                let tb = tb.clone();
                $(let $v = $v.clone();)*
                async move { u(as_user(&tb, $call).await) }
            })
            .await;
        };
    }
    let (bf, bfile) = (b_folder.clone(), b_file.clone());
    probe!(
        "CreateFolder",
        &a.folder,
        [] | m,
        id | m.create_folder(pb::CreateFolderRequest {
            name: "x".into(),
            parent_id: id
        })
    );
    probe!(
        "ListChildren",
        &a.folder,
        [] | m,
        id | m.list_children(pb::ListChildrenRequest {
            folder_id: id,
            ..Default::default()
        })
    );
    probe!(
        "UpdateFolder rename",
        &a.folder,
        [] | m,
        id | m.update_folder(pb::UpdateFolderRequest {
            folder_id: id,
            name: Some("x".into()),
            parent_id: None
        })
    );
    probe!(
        "UpdateFolder move A's",
        &a.folder,
        [] | m,
        id | m.update_folder(pb::UpdateFolderRequest {
            folder_id: id,
            name: None,
            parent_id: Some(String::new())
        })
    );
    probe!(
        "UpdateFolder into A's",
        &a.folder,
        [bf] | m,
        id | m.update_folder(pb::UpdateFolderRequest {
            folder_id: bf,
            name: None,
            parent_id: Some(id)
        })
    );
    probe!(
        "GetFolder",
        &a.folder,
        [] | m,
        id | m.get_folder(pb::FolderRef { folder_id: id })
    );
    probe!(
        "TrashFolder",
        &a.folder,
        [] | m,
        id | m.trash_folder(pb::FolderRef { folder_id: id })
    );
    probe!(
        "CreateFile in A's folder",
        &a.folder,
        [] | m,
        id | m.create_file(pb::CreateFileRequest {
            name: "x".into(),
            folder_id: id,
            size: 1,
            content_type: "text/plain".into(),
            sha256: String::new()
        })
    );
    probe!(
        "CompleteUpload",
        &a.file,
        [] | m,
        id | m.complete_upload(pb::CompleteUploadRequest {
            file_id: id,
            parts: vec![]
        })
    );
    probe!(
        "PresignFileParts",
        &a.file,
        [] | m,
        id | m.presign_file_parts(pb::PresignFilePartsRequest {
            file_id: id,
            numbers: vec![1]
        })
    );
    probe!(
        "ListUploadedParts",
        &a.file,
        [] | m,
        id | m.list_uploaded_parts(pb::FileRef { file_id: id })
    );
    probe!(
        "GetFile",
        &a.file,
        [] | m,
        id | m.get_file(pb::FileRef { file_id: id })
    );
    probe!(
        "UpdateFile",
        &a.file,
        [] | m,
        id | m.update_file(pb::UpdateFileRequest {
            file_id: id,
            name: Some("x".into()),
            folder_id: None
        })
    );
    probe!(
        "UpdateFile into A's folder",
        &a.folder,
        [bfile] | m,
        id | m.update_file(pb::UpdateFileRequest {
            file_id: bfile,
            name: None,
            folder_id: Some(id)
        })
    );
    probe!(
        "TrashFile",
        &a.file,
        [] | m,
        id | m.trash_file(pb::FileRef { file_id: id })
    );
    probe!(
        "RestoreFile",
        &a.file,
        [] | m,
        id | m.restore_file(pb::FileRef { file_id: id })
    );
    probe!(
        "PurgeFile",
        &a.file,
        [] | m,
        id | m.purge_file(pb::FileRef { file_id: id })
    );
    probe!(
        "AuthorizeDownload",
        &a.file,
        [] | m,
        id | m.authorize_download(pb::FileRef { file_id: id })
    );
    probe!(
        "CreateShare",
        &a.file,
        [] | m,
        id | m.create_share(pb::CreateShareRequest {
            file_id: id,
            expires_in_seconds: 60,
            ..Default::default()
        })
    );
    probe!(
        "RevokeShare",
        &a.share,
        [] | m,
        id | m.revoke_share(pb::ShareRef { share_id: id })
    );
    probe!(
        "ListShares",
        &a.file,
        [] | m,
        id | m.list_shares(pb::FileRef { file_id: id })
    );

    // RecordVerdict from scan, naming org B and A's file.
    let scan = stack.metadata_as("scan")?;
    checked += same("RecordVerdict", &a.file, fresh(), |id| {
        let mut scan = scan.clone();
        async move {
            scan.record_verdict(pb::RecordVerdictRequest {
                org_id: org_b.to_string(),
                file_id: id,
                verdict: pb::Verdict::Infected as i32,
                rescan: false,
                ..Default::default()
            })
            .await
            .map(|_| ())
        }
    })
    .await;

    // Storage-signer, with B's token, on A's real object key and on an absent key of A's org.
    let signer = stack.signer_as("metadata")?;
    let absent = format!("{}/{}", a.org, Uuid::new_v4());
    type Signer = StorageSignerClient<MeshChannel>;
    async fn sg<T>(
        tb: &str,
        mut s: Signer,
        call: impl AsyncFnOnce(&mut Signer) -> Result<tonic::Response<T>, Status>,
    ) -> Result<(), Status> {
        let fut = call(&mut s);
        as_user(tb, fut).await.map(|_| ())
    }
    for rpc in ["PresignPut", "PresignGet", "HeadObject", "DeleteObject"] {
        checked += same(rpc, &a.key, absent.clone(), |key| {
            let s = signer.clone();
            let tb = tb.clone();
            async move {
                match rpc {
                    "PresignPut" => {
                        sg(&tb, s, async |s| {
                            s.presign_put(pb::PresignPutRequest {
                                key,
                                size: 5,
                                content_type: "text/plain".into(),
                                ..Default::default()
                            })
                            .await
                        })
                        .await
                    }
                    "PresignGet" => {
                        sg(&tb, s, async |s| {
                            s.presign_get(pb::PresignGetRequest {
                                key,
                                ..Default::default()
                            })
                            .await
                        })
                        .await
                    }
                    "HeadObject" => {
                        sg(&tb, s, async |s| s.head_object(pb::ObjectRef { key }).await).await
                    }
                    _ => {
                        sg(&tb, s, async |s| {
                            s.delete_object(pb::ObjectRef { key }).await
                        })
                        .await
                    }
                }
            }
        })
        .await;
    }
    // ReleaseFile needs an owner or admin: B's owner, so the role check cannot hide the tenancy.
    let tb_owner = Minter::new(stack.ring()).mint(
        &Subject {
            user_id: Uuid::new_v4(),
            org_id: org_b,
            role: Role::Owner,
            scopes: Scopes::all(),
            credential: coffer_token::Credential::Session,
            request_id: "req-test".into(),
        },
        &[Audience::Metadata, Audience::StorageSigner, Audience::Audit],
        coffer_token::unix_now(),
        60,
    )?;
    checked += same("ReleaseFile", &a.file, fresh(), |id: String| {
        let mut m = md.clone();
        let t = tb_owner.clone();
        async move { u(as_user(&t, m.release_file(pb::FileRef { file_id: id })).await) }
    })
    .await;
    // The trash has no id to aim at: B's shows B's trashed folder (and, at the end, still none
    // of A's once A has trashed its file).
    let b_trash_ids = |list: pb::ListChildrenResponse| -> Vec<String> {
        list.folders
            .into_iter()
            .map(|f| f.id)
            .chain(list.files.into_iter().map(|f| f.id))
            .collect()
    };
    let b_trashed = as_user(
        &tb,
        md.clone().create_folder(pb::CreateFolderRequest {
            name: "B, trashed".into(),
            parent_id: String::new(),
        }),
    )
    .await?
    .into_inner()
    .id;
    as_user(
        &tb,
        md.clone().trash_folder(pb::FolderRef {
            folder_id: b_trashed.clone(),
        }),
    )
    .await?;
    let theirs = as_user(
        &tb,
        md.clone().list_trash(pb::ListChildrenRequest::default()),
    )
    .await?
    .into_inner();
    assert_eq!(
        b_trash_ids(theirs),
        std::slice::from_ref(&b_trashed),
        "ListTrash"
    );
    checked += 1;
    assert_eq!(checked, 28, "every RPC was probed");

    // Nothing of A's changed: the file is still available, named, in its folder, downloadable.
    let ta = token(&stack, a.org, Scopes::all());
    let file = as_user(
        &ta,
        md.clone().get_file(pb::FileRef {
            file_id: a.file.clone(),
        }),
    )
    .await?
    .into_inner();
    assert_eq!(file.status, pb::FileStatus::Available as i32);
    assert_eq!(file.name, "A's payroll.xlsx");
    assert_eq!(file.folder_id, a.folder);
    let listing = as_user(
        &ta,
        md.clone().list_children(pb::ListChildrenRequest::default()),
    )
    .await?
    .into_inner();
    assert_eq!(listing.folders.len(), 1);
    assert_eq!(listing.folders[0].name, "A's secrets");
    let grant = as_user(
        &ta,
        md.clone().authorize_download(pb::FileRef {
            file_id: a.file.clone(),
        }),
    )
    .await?
    .into_inner();
    assert_eq!(
        reqwest::get(&grant.url).await?.bytes().await?.as_ref(),
        b"12345"
    );
    // And B's listing shows only B's.
    let listing = as_user(
        &tb,
        md.clone().list_children(pb::ListChildrenRequest::default()),
    )
    .await?
    .into_inner();
    assert_eq!(listing.folders.len(), 1);
    assert_eq!(listing.folders[0].id, b_folder);
    // A trashes its file: A's trash shows it, B's still shows only B's folder.
    as_user(
        &ta,
        md.clone().trash_file(pb::FileRef {
            file_id: a.file.clone(),
        }),
    )
    .await?;
    let mine = as_user(
        &ta,
        md.clone().list_trash(pb::ListChildrenRequest::default()),
    )
    .await?
    .into_inner();
    assert_eq!(b_trash_ids(mine), std::slice::from_ref(&a.file));
    let theirs = as_user(
        &tb,
        md.clone().list_trash(pb::ListChildrenRequest::default()),
    )
    .await?
    .into_inner();
    assert_eq!(b_trash_ids(theirs), std::slice::from_ref(&b_trashed));
    Ok(())
}

#[tokio::test]
async fn callers_scopes_and_service_tokens_are_checked() -> anyhow::Result<()> {
    let stack = Stack::start(Default::default()).await?;
    let org = Uuid::new_v4();
    let t = token(&stack, org, Scopes::all());
    // Only the gateway calls user RPCs; only scan records verdicts.
    for caller in ["scan", "auth", "audit", "storage-signer"] {
        let err = as_user(
            &t,
            stack
                .metadata_as(caller)?
                .list_children(pb::ListChildrenRequest::default()),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{caller}");
    }
    for caller in ["gateway", "auth", "audit"] {
        let err = stack
            .metadata_as(caller)?
            .record_verdict(pb::RecordVerdictRequest {
                org_id: org.to_string(),
                file_id: Uuid::new_v4().to_string(),
                verdict: pb::Verdict::Clean as i32,
                rescan: false,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{caller}");
    }
    // An API key with files:read only cannot write; with neither scope it cannot read.
    let md = stack.metadata_as("gateway")?;
    let read_only = token(&stack, org, Scopes::NONE.with(Scope::FilesRead));
    let err = as_user(
        &read_only,
        md.clone().create_folder(pb::CreateFolderRequest {
            name: "x".into(),
            parent_id: String::new(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    as_user(
        &read_only,
        md.clone().list_children(pb::ListChildrenRequest::default()),
    )
    .await?;
    let none = token(&stack, org, Scopes::NONE.with(Scope::AuditRead));
    let err = as_user(
        &none,
        md.clone().list_children(pb::ListChildrenRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Service tokens: only metadata and scan may ask, only for storage-signer and audit.
    let mut auth_as_gateway = coffer_proto::v1::auth_client::AuthClient::new(
        stack
            .mesh_as("gateway")?
            .channel("auth", &stack.auth.server.addr().to_string())?,
    );
    let err = auth_as_gateway
        .mint_service_token(pb::MintServiceTokenRequest {
            org_id: org.to_string(),
            audiences: vec!["storage-signer".into()],
            request_id: "r1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut auth_as_metadata = coffer_proto::v1::auth_client::AuthClient::new(
        stack
            .mesh_as("metadata")?
            .channel("auth", &stack.auth.server.addr().to_string())?,
    );
    let err = auth_as_metadata
        .mint_service_token(pb::MintServiceTokenRequest {
            org_id: org.to_string(),
            audiences: vec!["metadata".into()],
            request_id: "r1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "a user-facing audience");
    // An org auth does not know gets no token.
    let err = auth_as_metadata
        .mint_service_token(pb::MintServiceTokenRequest {
            org_id: org.to_string(),
            audiences: vec!["storage-signer".into()],
            request_id: "r1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}

/// A service token of `org` as auth mints it for the org purge.
fn purge_token(stack: &Stack, org: Uuid) -> String {
    Minter::new(stack.ring())
        .mint(
            &Subject {
                user_id: Uuid::nil(),
                org_id: org,
                role: Role::Member,
                scopes: Scopes::NONE,
                credential: coffer_token::Credential::Service,
                request_id: "purge-test".into(),
            },
            &[Audience::Metadata, Audience::StorageSigner],
            coffer_token::unix_now(),
            60,
        )
        .unwrap()
}

#[tokio::test]
async fn only_auths_purge_token_purges_and_only_its_own_org() -> anyhow::Result<()> {
    let stack = Stack::start(Default::default()).await?;
    let md = stack.metadata_as("gateway")?;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let org_a = populate(&stack, &md, a).await;
    let org_b = populate(&stack, &md, b).await;

    // The allow-list: auth only, whatever the token.
    for caller in ["gateway", "scan", "audit", "storage-signer"] {
        let err = as_user(
            &purge_token(&stack, b),
            stack.metadata_as(caller)?.purge_org(pb::PurgeOrgRequest {}),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{caller}");
    }
    // A user's token, even an owner's with every scope, is not a purge.
    let owner = {
        Minter::new(stack.ring())
            .mint(
                &Subject {
                    user_id: Uuid::new_v4(),
                    org_id: b,
                    role: Role::Owner,
                    scopes: Scopes::all(),
                    credential: coffer_token::Credential::Session,
                    request_id: "req-test".into(),
                },
                &[Audience::Metadata, Audience::StorageSigner],
                coffer_token::unix_now(),
                60,
            )
            .unwrap()
    };
    let as_auth = stack.metadata_as("auth")?;
    let err = as_user(&owner, as_auth.clone().purge_org(pb::PurgeOrgRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Storage-signer deletes a whole prefix for a service token only, of its own org only.
    let mut signer = stack.signer_as("metadata")?;
    let err = as_user(
        &owner,
        signer.delete_prefix(pb::DeletePrefixRequest {
            prefix: format!("{b}/"),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = as_user(
        &purge_token(&stack, b),
        signer.delete_prefix(pb::DeletePrefixRequest {
            prefix: format!("{a}/"),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // B's purge takes B's objects and rows, and nothing of A's.
    let done = as_user(
        &purge_token(&stack, b),
        as_auth.clone().purge_org(pb::PurgeOrgRequest {}),
    )
    .await?
    .into_inner();
    assert!(done.done);
    assert_eq!(done.objects_deleted, 1);
    let head = |key: String, org: Uuid| {
        let mut signer = signer.clone();
        let t = purge_token(&stack, org);
        async move {
            as_user(&t, signer.head_object(pb::ObjectRef { key }))
                .await
                .map(|r| r.into_inner().exists)
        }
    };
    assert!(!head(org_b.key.clone(), b).await?);
    assert!(head(org_a.key.clone(), a).await?, "A's object survived");
    let t = token(&stack, a, Scopes::all());
    as_user(
        &t,
        md.clone().get_file(pb::FileRef {
            file_id: org_a.file.clone(),
        }),
    )
    .await?;
    let t = token(&stack, b, Scopes::all());
    let err = as_user(
        &t,
        md.clone().get_file(pb::FileRef {
            file_id: org_b.file,
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}
