//! The auth service over real mTLS against a real Postgres cluster, called as the gateway.

mod audit;
mod harness;
mod keys;
mod orgs;
mod sessions;
mod throttle;
mod totp;
