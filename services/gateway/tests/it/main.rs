//! The gateway over real HTTPS, in front of the real auth service over mTLS and real Postgres,
//! driven by a plain HTTP client as outside clients would.

mod audit;
mod files;
mod flows;
mod harness;
mod input;
mod multipart;
mod nsfw;
mod openapi;
mod overload;
mod scans;
mod security;
mod web;
