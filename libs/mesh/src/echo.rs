//! The echo service of `proto/testing/coffer/testing/v1/echo.proto`: a minimal service that the
//! mesh kit's tests and benchmarks serve through the full layer stack. Only with the `testing`
//! feature; no production binary has it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coffer_proto::testing::v1::echo_server::{Echo, EchoServer};
use coffer_proto::testing::v1::{EchoRequest, EchoResponse};
use coffer_proto::v1::Caller as CallerMsg;
use coffer_token::Service;

use crate::context::{caller, peer};
use crate::policy::{Policy, PolicyError, Token};

/// Echoes requests; `sleep:<ms>` makes `Echo` wait that long first (deadline and drain tests).
#[derive(Debug, Clone, Default)]
pub struct EchoService {
    /// How many times a handler ran.
    pub calls: Arc<AtomicUsize>,
}

impl EchoService {
    /// Returns the tonic server for this service.
    pub fn server(self) -> EchoServer<Self> {
        EchoServer::new(self)
    }

    /// The policy tests use: `Echo` for the gateway with a token, `Ping` for gateway and
    /// metadata without one.
    pub fn policy() -> Result<Policy, PolicyError> {
        Policy::new()
            .rpc(
                "coffer.testing.v1.Echo",
                "Echo",
                &[Service::Gateway],
                Token::Required,
            )?
            .rpc(
                "coffer.testing.v1.Echo",
                "Ping",
                &[Service::Gateway, Service::Metadata],
                Token::NotRequired,
            )
    }
}

fn role_to_proto(role: coffer_token::Role) -> i32 {
    use coffer_proto::v1::Role;
    match role {
        coffer_token::Role::Owner => Role::Owner as i32,
        coffer_token::Role::Admin => Role::Admin as i32,
        coffer_token::Role::Member => Role::Member as i32,
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let c = caller(&request)?;
        let caller = CallerMsg {
            user_id: c.user_id.to_string(),
            org_id: c.org_id.to_string(),
            role: role_to_proto(c.role),
            scopes: c.scopes.iter().map(|s| s.name().to_owned()).collect(),
            request_id: c.request_id.clone(),
        };
        let peer = peer(&request)
            .map(|p| p.identity.to_string())
            .unwrap_or_default();
        let message = request.into_inner().message;
        if message == "fail:internal" {
            return Err(tonic::Status::internal("the echo was asked to fail"));
        }
        if let Some(ms) = message.strip_prefix("sleep:").and_then(|m| m.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(tonic::Response::new(EchoResponse {
            message,
            caller: Some(caller),
            peer,
            trace_id: coffer_telemetry::current_trace_id().unwrap_or_default(),
        }))
    }

    async fn ping(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let peer = peer(&request)
            .map(|p| p.identity.to_string())
            .unwrap_or_default();
        Ok(tonic::Response::new(EchoResponse {
            message: request.into_inner().message,
            caller: None,
            peer,
            trace_id: coffer_telemetry::current_trace_id().unwrap_or_default(),
        }))
    }
}
