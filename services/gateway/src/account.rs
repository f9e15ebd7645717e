//! The account and org endpoints of API.md: sign-up, login and logout, who I am, API keys,
//! members, TOTP, org deletion and restore. Each handler: parse, call one auth RPC (with the
//! user token in the call context when there is a user), answer in API.md's shapes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_errors::ErrorCode;
use coffer_proto::v1::{self as pb};
use serde::Deserialize;

use crate::api;
use crate::authn::Authed;
use crate::body::JsonBody;
use crate::cookies::CookieSigner;
use crate::error::ApiError;
use crate::state::Shared;
use crate::wire::role_name;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    org_name: String,
    email: String,
    password: String,
}

#[utoipa::path(
    post,
    path = "/v1/auth/signup",
    tag = "account",
    responses((status = 201, description = "the new org and its owner", body = api::SignedUp))
)]
pub async fn signup(
    State(gw): Shared,
    JsonBody(b): JsonBody<SignupBody>,
) -> Result<Response, ApiError> {
    let res = gw
        .auth
        .clone()
        .signup(pb::SignupRequest {
            org_name: b.org_name,
            email: b.email,
            password: b.password,
        })
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(api::SignedUp {
            user_id: res.user_id,
            org_id: res.org_id,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
    totp_code: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "account",
    responses((status = 200, description = "signed in; the session cookie is set", body = api::LoggedIn))
)]
pub async fn login(
    State(gw): Shared,
    axum::Extension(client): axum::Extension<crate::client_addr::ClientAddr>,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let res = gw
        .auth
        .clone()
        .login(pb::LoginRequest {
            email: b.email,
            password: b.password,
            totp_code: b.totp_code.unwrap_or_default(),
            client_addr: client.0.to_string(),
        })
        .await?
        .into_inner();
    let caller = res.caller.unwrap_or_default();
    let body = api::LoggedIn {
        user_id: caller.user_id,
        org_id: caller.org_id,
        role: role_name(caller.role).to_owned(),
        csrf_token: gw.cookies.csrf_token(&res.session_id),
    };
    Ok((
        [(header::SET_COOKIE, gw.cookies.set_cookie(&res.session_id))],
        Json(body),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "account",
    responses((status = 204, description = "the session is revoked"))
)]
pub async fn logout(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    if let Some(session_id) = &authed.session_id {
        authed
            .call(gw.auth.clone().logout(pb::LogoutRequest {
                session_id: session_id.clone(),
            }))
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, CookieSigner::clear_cookie())],
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "account",
    responses((status = 200, description = "who the caller is", body = api::Me))
)]
pub async fn me(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let me = authed
        .call(gw.auth.clone().get_me(pb::GetMeRequest {}))
        .await?
        .into_inner();
    let csrf = authed
        .session_id
        .as_deref()
        .map(|s| gw.cookies.csrf_token(s));
    Ok(Json(api::Me::new(me, csrf)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyBody {
    name: String,
    scopes: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "account",
    responses((status = 201, description = "the key, shown once", body = api::ApiKeyCreated))
)]
pub async fn create_api_key(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<ApiKeyBody>,
) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.auth.clone().create_api_key(pb::CreateApiKeyRequest {
            name: b.name,
            scopes: b.scopes,
        }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(api::ApiKeyCreated {
            id: res.id,
            key: res.key,
        }),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "account",
    responses((status = 200, description = "the keys", body = api::ApiKeys))
)]
pub async fn list_api_keys(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.auth.clone().list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    Ok(Json(api::ApiKeys {
        items: res.items.into_iter().map(api::ApiKey::from).collect(),
    })
    .into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "account",
    params(("id" = String, Path)),
    responses((status = 204, description = "revoked"))
)]
pub async fn revoke_api_key(
    State(gw): Shared,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authed
        .call(
            gw.auth
                .clone()
                .revoke_api_key(pb::RevokeApiKeyRequest { id }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

#[utoipa::path(
    post,
    path = "/v1/auth/password",
    tag = "account",
    responses((status = 204, description = "changed; every other session of the user is revoked"))
)]
pub async fn change_password(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<PasswordBody>,
) -> Result<Response, ApiError> {
    authed
        .call(gw.auth.clone().change_password(pb::ChangePasswordRequest {
            current_password: b.current_password,
            new_password: b.new_password,
            // Empty for an API key: auth refuses those for this RPC before it runs.
            session_id: authed.session_id.clone().unwrap_or_default(),
        }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    email: String,
    password: String,
    role: String,
}

#[utoipa::path(
    post,
    path = "/v1/members",
    tag = "account",
    responses((status = 201, description = "the new member", body = api::MemberAdded))
)]
pub async fn add_member(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<MemberBody>,
) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.auth.clone().add_member(pb::AddMemberRequest {
            email: b.email,
            password: b.password,
            role: b.role,
        }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(api::MemberAdded {
            user_id: res.user_id,
        }),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/members",
    tag = "account",
    responses((status = 200, description = "the org's members (owners and admins only)", body = api::Members))
)]
pub async fn list_members(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.auth.clone().list_members(pb::ListMembersRequest {}))
        .await?
        .into_inner();
    Ok(Json(api::Members {
        items: res.items.into_iter().map(api::Member::from).collect(),
    })
    .into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/members/{user_id}",
    tag = "account",
    params(("user_id" = String, Path)),
    responses((status = 204, description = "removed; their sessions and API keys stop working at once"))
)]
pub async fn remove_member(
    State(gw): Shared,
    authed: Authed,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    authed
        .call(
            gw.auth
                .clone()
                .remove_member(pb::RemoveMemberRequest { user_id }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/v1/auth/totp/enroll",
    tag = "account",
    responses((status = 200, description = "the seed to enrol", body = api::TotpEnrolment))
)]
pub async fn totp_enroll(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let res = authed
        .call(gw.auth.clone().totp_enroll(pb::TotpEnrollRequest {}))
        .await?
        .into_inner();
    Ok(Json(api::TotpEnrolment {
        secret: res.secret,
        otpauth_uri: res.otpauth_uri,
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmBody {
    code: String,
}

#[utoipa::path(
    post,
    path = "/v1/auth/totp/confirm",
    tag = "account",
    responses((status = 204, description = "two-factor authentication is on"))
)]
pub async fn totp_confirm(
    State(gw): Shared,
    authed: Authed,
    JsonBody(b): JsonBody<TotpConfirmBody>,
) -> Result<Response, ApiError> {
    authed
        .call(
            gw.auth
                .clone()
                .totp_confirm(pb::TotpConfirmRequest { code: b.code }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/org",
    tag = "account",
    responses((status = 202, description = "disabled; purged after the window", body = api::OrgDeletion))
)]
pub async fn delete_org(State(gw): Shared, authed: Authed) -> Result<Response, ApiError> {
    let res = authed
        .call(
            gw.auth
                .clone()
                .request_org_deletion(pb::RequestOrgDeletionRequest {}),
        )
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        Json(api::OrgDeletion {
            purge_after: api::time(res.purge_after),
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    email: String,
    password: String,
    totp_code: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/org/restore",
    tag = "account",
    responses((status = 200, description = "restored", body = api::OrgRestored))
)]
pub async fn restore_org(
    State(gw): Shared,
    axum::Extension(client): axum::Extension<crate::client_addr::ClientAddr>,
    JsonBody(b): JsonBody<RestoreBody>,
) -> Result<Response, ApiError> {
    let res = gw
        .auth
        .clone()
        .restore_org(pb::RestoreOrgRequest {
            email: b.email,
            password: b.password,
            totp_code: b.totp_code.unwrap_or_default(),
            client_addr: client.0.to_string(),
        })
        .await?
        .into_inner();
    Ok(Json(api::OrgRestored { org_id: res.org_id }).into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, "method not allowed")
}
