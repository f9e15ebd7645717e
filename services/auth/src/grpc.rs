//! The Auth gRPC boundary: who may call each RPC, then per RPC parse → call the domain module
//! (`accounts`, `sessions`, `api_keys`, `members`, `orgs`) → map. Never logs an email, a
//! password, a session id or a key.

use coffer_kit::timestamp::from_time as timestamp;
use coffer_mesh::{Caller, Policy, PolicyError, Token, caller};
use coffer_proto::v1::auth_server::Auth;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use coffer_token::{Scopes, Service};
use tonic::{Request, Response, Status};

use crate::accounts::{self, Presented};
use crate::deps::Core;
use crate::error::AuthError;
use crate::sessions;
use crate::wire::{caller_message, role_to_proto};
use crate::{api_keys, members, orgs};

const SERVICE: &str = "coffer.v1.Auth";

/// Who may call what: the gateway only, with a user token where the RPC acts for a known user.
///
/// Account and org management is for browser sessions: every user RPC is `Token::Session` unless
/// it is listed in `any_credential`, so an RPC added later is closed to API keys until someone
/// decides otherwise. An API key may only read who it is (`GetMe`).
pub fn policy() -> Result<Policy, PolicyError> {
    let open = ["Signup", "Login", "Authenticate", "RestoreOrg"];
    let any_credential = ["GetMe"];
    let session = [
        "TotpEnroll",
        "TotpConfirm",
        "RequestOrgDeletion",
        "Logout",
        "ChangePassword",
        "CreateApiKey",
        "ListApiKeys",
        "RevokeApiKey",
        "AddMember",
        "ListMembers",
        "RemoveMember",
    ];
    let mut policy = Policy::new();
    for m in open {
        policy = policy.rpc(SERVICE, m, &[Service::Gateway], Token::NotRequired)?;
    }
    for m in any_credential {
        policy = policy.rpc(SERVICE, m, &[Service::Gateway], Token::Required)?;
    }
    for m in session {
        policy = policy.rpc(SERVICE, m, &[Service::Gateway], Token::Session)?;
    }
    // System work in one org with no user request behind it (share links, scan workers).
    policy = policy.rpc(
        SERVICE,
        "MintServiceToken",
        &[Service::Metadata, Service::Scan],
        Token::NotRequired,
    )?;
    Ok(policy)
}

/// The gRPC face of the service; all it holds is what the domain modules share.
#[derive(Clone)]
pub struct AuthService(Core);

impl AuthService {
    pub fn new(core: Core) -> Self {
        AuthService(core)
    }
}

fn user<T>(request: &Request<T>) -> Result<Caller, Status> {
    Ok(caller(request)?.clone())
}

type Res<T> = Result<Response<T>, Status>;

/// The answer, or the error mapped once (`AuthError` → `Status`).
fn answer<T, U>(r: Result<T, AuthError>, map: impl FnOnce(T) -> U) -> Res<U> {
    r.map(|t| Response::new(map(t))).map_err(Status::from)
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn signup(&self, request: Request<pb::SignupRequest>) -> Res<pb::SignupResponse> {
        let r = request.into_inner();
        answer(
            accounts::signup(&self.0, &r.org_name, &r.email, r.password).await,
            |(user_id, org_id)| pb::SignupResponse {
                user_id: user_id.to_string(),
                org_id: org_id.to_string(),
            },
        )
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Res<pb::LoginResponse> {
        let r = request.into_inner();
        let presented = Presented {
            email: &r.email,
            password: r.password,
            totp_code: &r.totp_code,
            client_addr: &r.client_addr,
        };
        answer(sessions::login(&self.0, presented).await, |s| {
            pb::LoginResponse {
                caller: Some(caller_message(&s.principal, Scopes::all(), "")),
                session_id: s.id,
            }
        })
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Res<pb::AuthenticateResponse> {
        let r = request.get_ref();
        let credential = match &r.credential {
            Some(Credential::SessionId(id)) => sessions::Credential::Session(id),
            Some(Credential::ApiKey(key)) => sessions::Credential::ApiKey(key),
            None => sessions::Credential::Missing,
        };
        answer(
            sessions::authenticate(&self.0, credential, &r.audiences, &r.request_id, r.recheck)
                .await,
            |a| pb::AuthenticateResponse {
                caller: Some(caller_message(&a.principal, a.scopes, &r.request_id)),
                api_key_id: a
                    .principal
                    .api_key_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                token: a.token,
            },
        )
    }

    async fn mint_service_token(
        &self,
        request: Request<pb::MintServiceTokenRequest>,
    ) -> Res<pb::AuthenticateResponse> {
        let r = request.get_ref();
        answer(
            sessions::service_token(&self.0, &r.org_id, &r.audiences, &r.request_id).await,
            |token| pb::AuthenticateResponse {
                token,
                caller: None,
                api_key_id: String::new(),
            },
        )
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Res<pb::LogoutResponse> {
        let c = user(&request)?;
        answer(
            sessions::logout(&self.0, &c, &request.get_ref().session_id).await,
            |()| pb::LogoutResponse {},
        )
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Res<pb::ChangePasswordResponse> {
        let c = user(&request)?;
        let r = request.into_inner();
        answer(
            accounts::change_password(
                &self.0,
                &c,
                &r.session_id,
                r.current_password,
                r.new_password,
            )
            .await,
            |()| pb::ChangePasswordResponse {},
        )
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Res<pb::ListMembersResponse> {
        let c = user(&request)?;
        answer(members::list(&self.0, &c).await, |rows| {
            pb::ListMembersResponse {
                items: rows
                    .into_iter()
                    .map(|m| pb::Member {
                        user_id: m.user_id.to_string(),
                        email: m.email,
                        role: role_to_proto(m.role),
                        totp_enabled: m.totp_enabled,
                        created_at: Some(timestamp(m.created_at)),
                    })
                    .collect(),
            }
        })
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Res<pb::RemoveMemberResponse> {
        let c = user(&request)?;
        answer(
            members::remove(&self.0, &c, &request.get_ref().user_id).await,
            |()| pb::RemoveMemberResponse {},
        )
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Res<pb::Me> {
        let c = user(&request)?;
        answer(accounts::me(&self.0, &c).await, |me| pb::Me {
            user_id: c.user_id.to_string(),
            org_id: c.org_id.to_string(),
            email: me.email,
            role: role_to_proto(me.role),
            totp_enabled: me.totp_enabled,
        })
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Res<pb::CreateApiKeyResponse> {
        let c = user(&request)?;
        let r = request.get_ref();
        answer(
            api_keys::create(&self.0, &c, &r.name, &r.scopes).await,
            |k| pb::CreateApiKeyResponse {
                id: k.id.to_string(),
                key: k.key,
            },
        )
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Res<pb::ListApiKeysResponse> {
        let c = user(&request)?;
        answer(api_keys::list(&self.0, &c).await, |rows| {
            pb::ListApiKeysResponse {
                items: rows
                    .into_iter()
                    .map(|r| pb::ApiKey {
                        id: r.id.to_string(),
                        name: r.name,
                        scopes: r.scopes,
                        prefix: r.prefix,
                        created_at: Some(timestamp(r.created_at)),
                        last_used_at: r.last_used_at.map(timestamp),
                    })
                    .collect(),
            }
        })
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Res<pb::RevokeApiKeyResponse> {
        let c = user(&request)?;
        answer(
            api_keys::revoke(&self.0, &c, &request.get_ref().id).await,
            |()| pb::RevokeApiKeyResponse {},
        )
    }

    async fn add_member(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> Res<pb::AddMemberResponse> {
        let c = user(&request)?;
        let r = request.into_inner();
        answer(
            members::add(&self.0, &c, &r.email, r.password, &r.role).await,
            |user_id| pb::AddMemberResponse {
                user_id: user_id.to_string(),
            },
        )
    }

    async fn totp_enroll(
        &self,
        request: Request<pb::TotpEnrollRequest>,
    ) -> Res<pb::TotpEnrollResponse> {
        let c = user(&request)?;
        answer(accounts::totp_enroll(&self.0, &c).await, |e| {
            pb::TotpEnrollResponse {
                secret: e.secret,
                otpauth_uri: e.otpauth_uri,
            }
        })
    }

    async fn totp_confirm(
        &self,
        request: Request<pb::TotpConfirmRequest>,
    ) -> Res<pb::TotpConfirmResponse> {
        let c = user(&request)?;
        answer(
            accounts::totp_confirm(&self.0, &c, &request.get_ref().code).await,
            |()| pb::TotpConfirmResponse {},
        )
    }

    async fn request_org_deletion(
        &self,
        request: Request<pb::RequestOrgDeletionRequest>,
    ) -> Res<pb::RequestOrgDeletionResponse> {
        let c = user(&request)?;
        answer(orgs::request_deletion(&self.0, &c).await, |at| {
            pb::RequestOrgDeletionResponse {
                purge_after: Some(timestamp(at)),
            }
        })
    }

    async fn restore_org(
        &self,
        request: Request<pb::RestoreOrgRequest>,
    ) -> Res<pb::RestoreOrgResponse> {
        let r = request.into_inner();
        let presented = Presented {
            email: &r.email,
            password: r.password,
            totp_code: &r.totp_code,
            client_addr: &r.client_addr,
        };
        answer(orgs::restore(&self.0, presented).await, |org| {
            pb::RestoreOrgResponse {
                org_id: org.to_string(),
            }
        })
    }
}
