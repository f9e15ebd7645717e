//! The metadata service called directly over mTLS, bypassing the gateway, with real auth,
//! storage-signer, Postgres and S3: tenant isolation, row-level security, allow-lists.

mod isolation;
mod rls;
