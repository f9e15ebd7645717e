//! The peer the request side calls: storage-signer, with the caller's token, behind typed
//! methods that answer in the service's own errors (the only module besides `grpc` and the
//! workers that sees gRPC).

use coffer_mesh::MeshChannel;
use coffer_proto::v1::storage_signer_client::StorageSignerClient;
use coffer_proto::v1::{self as pb};

use crate::error::ScanServiceError;

/// Storage-signer, as the request side calls it (with the caller's token): answers in the
/// service's own errors.
#[derive(Clone)]
pub struct Signer(pub StorageSignerClient<MeshChannel>);

impl Signer {
    pub async fn presign_put(
        &self,
        req: pb::PresignPutRequest,
    ) -> Result<pb::PresignedRequest, ScanServiceError> {
        Ok(self.0.clone().presign_put(req).await?.into_inner())
    }

    pub async fn head(&self, key: &str) -> Result<pb::ObjectInfo, ScanServiceError> {
        Ok(self
            .0
            .clone()
            .head_object(pb::ObjectRef {
                key: key.to_owned(),
            })
            .await?
            .into_inner())
    }

    pub async fn delete_prefix(
        &self,
        prefix: String,
    ) -> Result<pb::DeletePrefixResponse, ScanServiceError> {
        Ok(self
            .0
            .clone()
            .delete_prefix(pb::DeletePrefixRequest { prefix })
            .await?
            .into_inner())
    }
}
