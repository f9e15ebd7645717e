//! The peers metadata calls (storage-signer, auth, scan), behind typed methods that answer in
//! the service's own errors: the only module besides `grpc` that sees gRPC statuses.

use coffer_mesh::{CallContext, MeshChannel};
use coffer_proto::v1::auth_client::AuthClient;
use coffer_proto::v1::scan_client::ScanClient;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_proto::v1::{self as pb};
use coffer_token::Service;
use tonic::Status;
use uuid::Uuid;

use crate::error::MetadataError;
use crate::store::FileRow;

#[derive(Clone)]
pub struct Peers {
    pub signer: StorageSignerClient<MeshChannel>,
    pub auth: AuthClient<MeshChannel>,
    /// None when no scan service is configured: files then wait in `scanning` for a verdict.
    pub scan: Option<ScanClient<MeshChannel>>,
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

/// The store's refusal of a multipart step, said to the client as a conflict in words.
fn parts_refused(s: Status) -> MetadataError {
    if s.code() == tonic::Code::FailedPrecondition {
        // The signer's reasons are its own fixed sentences.
        let m = s.message();
        return MetadataError::Conflict(if m.contains("does not exist") {
            "the upload in parts no longer exists (aborted or expired): create the file again"
        } else if m.contains("already exists") {
            "an object already exists for this file"
        } else if m.contains("in progress") {
            "another completion of this upload is in progress: wait, then look at the file"
        } else {
            "the store refused the upload's parts: one is missing, too small or its etag differs (list the parts and retry)"
        });
    }
    downstream(s)
}

impl Peers {
    /// A presigned PUT for a new file's object.
    pub async fn presign_put(
        &self,
        req: pb::PresignPutRequest,
    ) -> Result<pb::PresignedRequest, MetadataError> {
        Ok(self
            .signer
            .clone()
            .presign_put(req)
            .await
            .map_err(downstream)?
            .into_inner())
    }

    /// Creates the store's multipart upload for a new file's object; its id.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<String, MetadataError> {
        Ok(self
            .signer
            .clone()
            .create_multipart_upload(pb::CreateMultipartUploadRequest {
                key: key.to_owned(),
                content_type: content_type.to_owned(),
            })
            .await
            .map_err(downstream)?
            .into_inner()
            .upload_id)
    }

    /// Presigned UploadPart PUTs for `parts` (number, exact size).
    pub async fn presign_parts(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<pb::PartSpec>,
    ) -> Result<Vec<pb::PresignedPart>, MetadataError> {
        Ok(self
            .signer
            .clone()
            .presign_upload_parts(pb::PresignUploadPartsRequest {
                key: key.to_owned(),
                upload_id: upload_id.to_owned(),
                parts,
                expires_in_seconds: 0,
            })
            .await
            .map_err(downstream)?
            .into_inner()
            .parts)
    }

    /// The parts the store holds for an upload.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<pb::UploadedPart>, MetadataError> {
        Ok(self
            .signer
            .clone()
            .list_parts(pb::MultipartRef {
                key: key.to_owned(),
                upload_id: upload_id.to_owned(),
            })
            .await
            .map_err(parts_refused)?
            .into_inner()
            .parts)
    }

    /// Completes an upload from its parts; what the store then holds.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<pb::CompletedPart>,
    ) -> Result<pb::ObjectInfo, MetadataError> {
        Ok(self
            .signer
            .clone()
            .complete_multipart_upload(pb::CompleteMultipartUploadRequest {
                key: key.to_owned(),
                upload_id: upload_id.to_owned(),
                parts,
            })
            .await
            .map_err(parts_refused)?
            .into_inner())
    }

    /// Aborts an upload, freeing its parts (an unknown one is fine).
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), MetadataError> {
        self.signer
            .clone()
            .abort_multipart_upload(pb::MultipartRef {
                key: key.to_owned(),
                upload_id: upload_id.to_owned(),
            })
            .await
            .map_err(downstream)?;
        Ok(())
    }

    /// What the store holds under `key`.
    pub async fn head(&self, key: &str) -> Result<pb::ObjectInfo, MetadataError> {
        Ok(self
            .signer
            .clone()
            .head_object(pb::ObjectRef {
                key: key.to_owned(),
            })
            .await
            .map_err(downstream)?
            .into_inner())
    }

    /// Deletes an object (every version of it), with the current token.
    pub async fn delete_object(&self, key: &str) -> Result<(), MetadataError> {
        self.signer
            .clone()
            .delete_object(pb::ObjectRef {
                key: key.to_owned(),
            })
            .await
            .map_err(downstream)?;
        Ok(())
    }

    /// Deletes one page of the objects under `prefix` (a service token's work).
    pub async fn delete_prefix(
        &self,
        prefix: String,
    ) -> Result<pb::DeletePrefixResponse, MetadataError> {
        Ok(self
            .signer
            .clone()
            .delete_prefix(pb::DeletePrefixRequest { prefix })
            .await
            .map_err(downstream)?
            .into_inner())
    }

    /// A presigned GET of the file's object, valid `secs` (0: storage-signer's default).
    pub async fn presign_get(
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

    /// Queues the scan of a completed upload (nothing when no scan service is configured).
    /// Idempotent per file.
    pub async fn enqueue_scan(&self, req: pb::EnqueueScanRequest) -> Result<(), MetadataError> {
        if let Some(scan) = &self.scan {
            scan.clone().enqueue_scan(req).await.map_err(downstream)?;
        }
        Ok(())
    }

    /// Runs `fut` with a service token of `org` (from auth) as the call context: system work with
    /// no user request behind it. An org auth does not know (or has disabled) is `NotFound`.
    pub async fn as_service<T>(
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
                audiences: [Service::StorageSigner, Service::Audit]
                    .map(|s| s.name().to_owned())
                    .into(),
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
}
