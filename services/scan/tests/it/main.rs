//! Scan service integration tests: real Postgres, auth, audit, S3 server, storage-signer,
//! metadata and scan over mTLS.

mod flow;
mod harness;
mod nsfw;
mod queue;
mod sandbox;
mod scan_only;
mod webhooks;
