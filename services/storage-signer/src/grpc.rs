//! The StorageSigner gRPC service: check the key against the token's org, then sign or act.

use coffer_mesh::{Policy, PolicyError, Token, caller};
use coffer_proto::v1::storage_signer_server::StorageSigner;
use coffer_proto::v1::{self as pb};
use coffer_token::Service;
use tonic::{Request, Response, Status};

use crate::config::SignerConfig;
use crate::error::SignerError;
use crate::keys;
use crate::store::{self, GetOptions, Signed, Store};

const SERVICE: &str = "coffer.v1.StorageSigner";

/// Metadata (uploads, downloads, purges) and scan (reading objects) only, always with a token.
pub fn policy() -> Result<Policy, PolicyError> {
    let mut policy = Policy::new();
    for m in [
        "PresignPut",
        "PresignGet",
        "HeadObject",
        "DeleteObject",
        "DeletePrefix",
    ] {
        policy = policy.rpc(
            SERVICE,
            m,
            &[Service::Metadata, Service::Scan],
            Token::Required,
        )?;
    }
    // Large files' uploads: metadata's only (scan reads objects, it never writes them).
    for m in [
        "CreateMultipartUpload",
        "PresignUploadParts",
        "ListParts",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
    ] {
        policy = policy.rpc(SERVICE, m, &[Service::Metadata], Token::Required)?;
    }
    Ok(policy)
}

/// What the store reports of an object, as the wire says it.
fn object_info(head: store::Head) -> pb::ObjectInfo {
    pb::ObjectInfo {
        exists: head.exists,
        size: head.size,
        server_side_encryption: head.sse,
        sha256: head.sha256_hex,
        etag: head.etag,
        version_id: head.version_id,
        content_type: head.content_type,
        foreign_headers: head.foreign_headers,
    }
}

/// Parts per presign call, part numbers, a part's size (S3's limits).
const PARTS_PER_CALL: usize = 100;
const MAX_PART_NUMBER: u32 = 10_000;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// An upload id as a store gives it: 1 to 1,024 visible ASCII characters.
fn check_upload_id(id: &str) -> Result<(), SignerError> {
    if !id.is_empty() && id.len() <= 1024 && id.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(SignerError::invalid(
            "upload_id",
            "upload_id must be the store's id of the upload",
        ))
    }
}

fn check_part_number(n: u32) -> Result<(), SignerError> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(SignerError::invalid(
            "parts",
            format!("part numbers are 1 to {MAX_PART_NUMBER}"),
        ))
    }
}

#[derive(Debug, Clone)]
pub struct SignerService {
    store: Store,
    config: SignerConfig,
}

impl SignerService {
    pub fn new(store: Store, config: SignerConfig) -> Self {
        SignerService { store, config }
    }
}

fn presigned(s: Signed) -> pb::PresignedRequest {
    pb::PresignedRequest {
        url: s.url,
        method: s.method,
        headers: s.headers.into_iter().collect(),
        expires_at: Some(prost_types::Timestamp::from(s.expires_at)),
    }
}

/// A content type is `type/subtype` with optional parameters, printable ASCII, ≤ 255 bytes.
fn check_content_type(ct: &str) -> Result<(), SignerError> {
    if coffer_kit::media_type::is_valid(ct) {
        Ok(())
    } else {
        Err(SignerError::invalid(
            "content_type",
            coffer_kit::media_type::REQUIREMENT,
        ))
    }
}

/// An ETag or version id as a store gives them: at most 128 visible ASCII characters, no quote
/// (they are put into a header and a query between quotes or as they are).
fn check_token(field: &'static str, v: &str) -> Result<(), SignerError> {
    if v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        Ok(())
    } else {
        Err(SignerError::invalid(
            field,
            format!("{field} must be at most 128 visible characters, without quotes"),
        ))
    }
}

#[tonic::async_trait]
impl StorageSigner for SignerService {
    async fn presign_put(
        &self,
        request: Request<pb::PresignPutRequest>,
    ) -> Result<Response<pb::PresignedRequest>, Status> {
        let org = caller(&request)?.org_id;
        let req = request.into_inner();
        keys::check(&req.key, org)?;
        check_content_type(&req.content_type)?;
        let checksum = match req.sha256.as_str() {
            "" => None,
            hex => Some(store::sha256_base64(hex)?),
        };
        let secs = self
            .config
            .expiry(req.expires_in_seconds, self.config.put_expiry_secs);
        let signed = crate::metrics::timed(
            "presign_put",
            self.store
                .presign_put(&req.key, req.size, &req.content_type, checksum, secs),
        )
        .await?;
        Ok(Response::new(presigned(signed)))
    }

    async fn presign_get(
        &self,
        request: Request<pb::PresignGetRequest>,
    ) -> Result<Response<pb::PresignedRequest>, Status> {
        let org = caller(&request)?.org_id;
        let req = request.into_inner();
        keys::check(&req.key, org)?;
        if !req.content_type.is_empty() {
            check_content_type(&req.content_type)?;
        }
        check_token("etag", &req.etag)?;
        check_token("version_id", &req.version_id)?;
        if req.require_if_match && req.etag.is_empty() {
            return Err(SignerError::invalid("etag", "require_if_match needs the etag").into());
        }
        let secs = self
            .config
            .expiry(req.expires_in_seconds, self.config.get_expiry_secs);
        let options = GetOptions {
            file_name: req.file_name,
            version_id: req.version_id,
            etag: req.etag,
            content_type: req.content_type,
            require_if_match: req.require_if_match,
        };
        let signed = crate::metrics::timed(
            "presign_get",
            self.store.presign_get(&req.key, &options, secs),
        )
        .await?;
        Ok(Response::new(presigned(signed)))
    }

    async fn head_object(
        &self,
        request: Request<pb::ObjectRef>,
    ) -> Result<Response<pb::ObjectInfo>, Status> {
        let org = caller(&request)?.org_id;
        let key = request.into_inner().key;
        keys::check(&key, org)?;
        let head = crate::metrics::timed("head", self.store.head(&key)).await?;
        Ok(Response::new(object_info(head)))
    }

    async fn delete_prefix(
        &self,
        request: Request<pb::DeletePrefixRequest>,
    ) -> Result<Response<pb::DeletePrefixResponse>, Status> {
        let c = caller(&request)?;
        // A whole org's objects go only in its purge, for which auth mints a service token.
        if !c.is_service() {
            return Err(SignerError::ServiceOnly.into());
        }
        let org = c.org_id;
        // Each service empties its own prefix only: metadata the files', scan the scan-only one.
        let caller =
            coffer_mesh::peer(&request).and_then(|p| Service::from_name(p.identity.as_str()));
        let own = match caller {
            Some(Service::Metadata) => format!("{org}/"),
            Some(Service::Scan) => format!("scans/{org}/"),
            _ => return Err(SignerError::ServiceOnly.into()),
        };
        let prefix = request.into_inner().prefix;
        keys::check_prefix(&prefix, org)?;
        if prefix != own {
            return Err(SignerError::ForeignKey.into());
        }
        let (deleted, more) =
            crate::metrics::timed("delete_prefix", self.store.delete_prefix(&prefix)).await?;
        tracing::info!(%org, deleted, more, "deleted objects of a purged org");
        Ok(Response::new(pb::DeletePrefixResponse { deleted, more }))
    }

    async fn create_multipart_upload(
        &self,
        request: Request<pb::CreateMultipartUploadRequest>,
    ) -> Result<Response<pb::MultipartUpload>, Status> {
        let org = caller(&request)?.org_id;
        let req = request.into_inner();
        keys::check(&req.key, org)?;
        check_content_type(&req.content_type)?;
        let upload_id = crate::metrics::timed(
            "create_multipart",
            self.store.create_multipart(&req.key, &req.content_type),
        )
        .await?;
        Ok(Response::new(pb::MultipartUpload { upload_id }))
    }

    async fn presign_upload_parts(
        &self,
        request: Request<pb::PresignUploadPartsRequest>,
    ) -> Result<Response<pb::PresignedParts>, Status> {
        let org = caller(&request)?.org_id;
        let req = request.into_inner();
        keys::check(&req.key, org)?;
        check_upload_id(&req.upload_id)?;
        if req.parts.is_empty() || req.parts.len() > PARTS_PER_CALL {
            return Err(SignerError::invalid(
                "parts",
                format!("ask for 1 to {PARTS_PER_CALL} parts a call"),
            )
            .into());
        }
        let secs = self
            .config
            .expiry(req.expires_in_seconds, self.config.put_expiry_secs);
        let signed = crate::metrics::timed("presign_parts", async {
            let mut parts = Vec::with_capacity(req.parts.len());
            for part in &req.parts {
                check_part_number(part.number)?;
                if !(1..=MAX_PART_SIZE).contains(&part.size) {
                    return Err(SignerError::invalid("parts", "a part is 1 byte to 5 GiB"));
                }
                let signed = self.store.presign_part(
                    &req.key,
                    &req.upload_id,
                    part.number,
                    part.size,
                    secs,
                )?;
                parts.push(pb::PresignedPart {
                    number: part.number,
                    request: Some(presigned(signed)),
                });
            }
            Ok(parts)
        });
        let parts = signed.await?;
        Ok(Response::new(pb::PresignedParts { parts }))
    }

    async fn list_parts(
        &self,
        request: Request<pb::MultipartRef>,
    ) -> Result<Response<pb::UploadedParts>, Status> {
        let org = caller(&request)?.org_id;
        let req = request.into_inner();
        keys::check(&req.key, org)?;
        check_upload_id(&req.upload_id)?;
        let parts = crate::metrics::timed(
            "list_parts",
            self.store.list_parts(&req.key, &req.upload_id),
        )
        .await?;
        Ok(Response::new(pb::UploadedParts {
            parts: parts
                .into_iter()
                .map(|(number, size, etag)| pb::UploadedPart { number, size, etag })
                .collect(),
        }))
    }

    async fn complete_multipart_upload(
        &self,
        request: Request<pb::CompleteMultipartUploadRequest>,
    ) -> Result<Response<pb::ObjectInfo>, Status> {
        let org = caller(&request)?.org_id;
        let req = request.into_inner();
        keys::check(&req.key, org)?;
        check_upload_id(&req.upload_id)?;
        if req.parts.is_empty() || req.parts.len() > MAX_PART_NUMBER as usize {
            return Err(SignerError::invalid(
                "parts",
                format!("complete with 1 to {MAX_PART_NUMBER} parts"),
            )
            .into());
        }
        let mut parts = Vec::with_capacity(req.parts.len());
        let mut last = 0;
        for p in req.parts {
            check_part_number(p.number)?;
            if p.number <= last {
                return Err(SignerError::invalid(
                    "parts",
                    "parts are listed once each, by ascending number",
                )
                .into());
            }
            last = p.number;
            check_token("etag", &p.etag)?;
            if p.etag.is_empty() {
                return Err(SignerError::invalid("parts", "each part needs its etag").into());
            }
            parts.push((p.number, p.etag));
        }
        crate::metrics::timed(
            "complete_multipart",
            self.store
                .complete_multipart(&req.key, &req.upload_id, &parts),
        )
        .await?;
        let head = crate::metrics::timed("head", self.store.head(&req.key)).await?;
        Ok(Response::new(object_info(head)))
    }

    async fn abort_multipart_upload(
        &self,
        request: Request<pb::MultipartRef>,
    ) -> Result<Response<pb::DeleteObjectResponse>, Status> {
        let org = caller(&request)?.org_id;
        let req = request.into_inner();
        keys::check(&req.key, org)?;
        check_upload_id(&req.upload_id)?;
        crate::metrics::timed(
            "abort_multipart",
            self.store.abort_multipart(&req.key, &req.upload_id),
        )
        .await?;
        Ok(Response::new(pb::DeleteObjectResponse {}))
    }

    async fn delete_object(
        &self,
        request: Request<pb::ObjectRef>,
    ) -> Result<Response<pb::DeleteObjectResponse>, Status> {
        let org = caller(&request)?.org_id;
        let key = request.into_inner().key;
        keys::check(&key, org)?;
        crate::metrics::timed("delete", self.store.delete(&key)).await?;
        Ok(Response::new(pb::DeleteObjectResponse {}))
    }
}
