//! The mesh kit against a real tonic service on loopback, over real mTLS.

mod admission;
mod fixture;
mod layers;
mod logs;
mod rotation;
mod tls;
