//! The Auth gRPC service: parse and check each request, call the store, map the result. Never
//! logs an email, a password, a session id or a key.

use std::sync::Arc;

use coffer_kit::audit::{Action, AuditLog, Outcome, Target};
use coffer_kit::seal::Sealer;
use coffer_kit::timestamp::from_time as timestamp;
use coffer_mesh::{Policy, PolicyError, Token, caller};
use coffer_proto::v1::auth_server::Auth;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use coffer_token::{Audience, Minter, Role, Scope, Scopes, Subject};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::credentials;
use crate::error::AuthError;
use crate::passwords::Hasher;
use crate::store;
use crate::throttle;
use crate::totp;

/// Failed logins, by reason: `bad_credentials` or `throttled`. Never labelled by account.
static LOGIN_FAILURES: std::sync::LazyLock<
    prometheus_client::metrics::family::Family<
        coffer_telemetry::Reason,
        prometheus_client::metrics::counter::Counter,
    >,
> = std::sync::LazyLock::new(|| {
    let family = prometheus_client::metrics::family::Family::default();
    coffer_telemetry::metrics().register(
        "auth_login_failures",
        "failed logins, by reason",
        family.clone(),
    );
    family
});

fn count_failure(reason: &str) {
    LOGIN_FAILURES
        .get_or_create(&coffer_telemetry::Reason {
            reason: reason.to_owned(),
        })
        .inc();
}

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
        "CreateApiKey",
        "ListApiKeys",
        "RevokeApiKey",
        "AddMember",
    ];
    let mut policy = Policy::new();
    for m in open {
        policy = policy.rpc(SERVICE, m, &["gateway"], Token::NotRequired)?;
    }
    for m in any_credential {
        policy = policy.rpc(SERVICE, m, &["gateway"], Token::Required)?;
    }
    for m in session {
        policy = policy.rpc(SERVICE, m, &["gateway"], Token::Session)?;
    }
    // System work in one org with no user request behind it (share links, scan workers).
    policy = policy.rpc(
        SERVICE,
        "MintServiceToken",
        &["metadata", "scan"],
        Token::NotRequired,
    )?;
    Ok(policy)
}

#[derive(Clone)]
pub struct AuthService {
    pool: PgPool,
    audit: AuditLog,
    hasher: Hasher,
    minter: Arc<Minter>,
    seeds: Sealer,
    config: AuthConfig,
}

impl AuthService {
    pub fn new(
        pool: PgPool,
        audit: AuditLog,
        hasher: Hasher,
        minter: Arc<Minter>,
        seeds: Sealer,
        config: AuthConfig,
    ) -> Self {
        AuthService {
            pool,
            audit,
            hasher,
            minter,
            seeds,
            config,
        }
    }

    /// Mints a token for `subject` with a tag per audience, for the configured lifetime.
    fn mint(&self, subject: &Subject, audiences: &[Audience]) -> Result<String, AuthError> {
        self.minter
            .mint(
                subject,
                audiences,
                coffer_token::unix_now(),
                self.config.token_ttl_secs,
            )
            .map_err(|_| {
                AuthError::invalid(
                    "request_id",
                    "request id must be 1-64 characters of [A-Za-z0-9._-]",
                )
            })
    }

    /// Appends an audit event as the current caller (the user token the gateway forwarded), before
    /// the action's transaction commits: if the log cannot take it, the action fails with 503.
    async fn audit(&self, action: Action, target: Target) -> Result<(), AuthError> {
        self.audit.record(action, target).await.map_err(|refused| {
            tracing::warn!(%refused, "an action was refused: the audit log did not take it");
            AuthError::AuditUnavailable
        })
    }

    /// Appends an event for a user no request token speaks for yet (a login): auth mints the
    /// user a token with only the audit tag and appends with it.
    async fn audit_as_user(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        action: Action,
        target: Target,
    ) -> Result<(), AuthError> {
        let request_id = coffer_mesh::CallContext::current()
            .map(|c| c.request_id.to_string())
            .filter(|r| !r.is_empty() && r.len() <= 64)
            .unwrap_or_else(|| format!("auth-{}", Uuid::new_v4().simple()));
        let token = self.mint(
            &Subject {
                user_id,
                org_id,
                role: Role::Member,
                scopes: Scopes::NONE,
                credential: coffer_token::Credential::Session,
                request_id: request_id.clone(),
            },
            &[Audience::Audit],
        )?;
        coffer_mesh::CallContext {
            token: Some(token.into()),
            request_id: request_id.into(),
            deadline: None,
        }
        .scope(self.audit(action, target))
        .await
    }

    /// A failed login of a known account: a system event of auth's, best effort (the login
    /// fails either way).
    async fn audit_login_failed(&self, org_id: Uuid, user_id: Uuid) {
        let res = coffer_mesh::CallContext {
            token: None,
            request_id: "auth-login-failed".into(),
            deadline: None,
        }
        .scope(self.audit.record_system(
            org_id,
            Action::AuthLoginFailed,
            Target::User(user_id),
            Outcome::Failure,
        ))
        .await;
        if let Err(refused) = res {
            tracing::warn!(%refused, "a failed login could not be audited");
        }
    }

    fn limits(&self) -> throttle::Limits {
        throttle::Limits {
            account_threshold: self.config.login_account_threshold,
            address_threshold: self.config.login_address_threshold,
            window_secs: self.config.login_window_secs,
            max_lock_secs: self.config.login_max_lock_secs,
        }
    }

    /// Checks email, password and (when on) TOTP code, with throttling: a locked account or
    /// address is refused before any password work; every failure is counted against both keys;
    /// a success clears the account key. `accept` decides, after the password matched, whether
    /// the account may go on (an active org for login, an owner for restore); a refusal there is
    /// the same error as a wrong password.
    async fn check_password(
        &self,
        email: &str,
        password: String,
        totp_code: &str,
        client_addr: &str,
        accept: impl FnOnce(&store::LoginAccount) -> bool,
    ) -> Result<store::LoginAccount, Status> {
        let keys = throttle::Keys::new(email, client_addr);
        let limits = self.limits();
        if let Some(wait) = throttle::locked_for(&self.pool, &keys).await.map_err(db)? {
            count_failure("throttled");
            return Err(coffer_errors::rate_limited(
                "too many failed attempts; try again later",
                wait.as_secs_f64().ceil() as u32,
            ));
        }
        // A malformed email is an unknown account: same work, same answer.
        let account = match normalize_email(email) {
            Ok(email) => store::find_login(&self.pool, &email).await.map_err(db)?,
            Err(_) => None,
        };
        let stored = account.as_ref().map(|a| a.password_hash.clone());
        let ok = self.hasher.verify(password, stored).await;
        let account = match account {
            Some(a) if ok && accept(&a) => a,
            known => {
                if let Some(a) = &known {
                    self.audit_login_failed(a.org_id, a.user_id).await;
                }
                count_failure("bad_credentials");
                throttle::record_failure(&self.pool, &keys, &limits)
                    .await
                    .map_err(db)?;
                return Err(AuthError::BadCredentials.into());
            }
        };
        match self.check_totp(&account, totp_code).await {
            Ok(()) => {}
            // The password was right: say so only by asking for the code.
            Err(AuthError::TotpRequired) => return Err(AuthError::TotpRequired.into()),
            Err(e) => {
                count_failure("bad_totp");
                throttle::record_failure(&self.pool, &keys, &limits)
                    .await
                    .map_err(db)?;
                return Err(e.into());
            }
        }
        throttle::record_success(&self.pool, &keys)
            .await
            .map_err(db)?;
        Ok(account)
    }

    /// Checks the second factor of a login whose password was right.
    async fn check_totp(&self, account: &store::LoginAccount, code: &str) -> Result<(), AuthError> {
        let Some(stored) = &account.totp_secret else {
            return Ok(());
        };
        if code.trim().is_empty() {
            return Err(AuthError::TotpRequired);
        }
        let seed = self.seeds.open(account.user_id, stored)?;
        let totp = totp::totp(&seed, "login")?;
        let step = totp::check(&totp, code).ok_or(AuthError::BadCredentials)?;
        // A code is good once: a replay within its window is refused.
        if !store::claim_totp_step(&self.pool, account.org_id, account.user_id, step)
            .await
            .map_err(db)?
        {
            return Err(AuthError::BadCredentials);
        }
        Ok(())
    }
}

fn role_to_proto(role: Role) -> i32 {
    match role {
        Role::Owner => pb::Role::Owner as i32,
        Role::Admin => pb::Role::Admin as i32,
        Role::Member => pb::Role::Member as i32,
    }
}

/// Normalises and checks an email address: trimmed, lowercase, one `@`, a dotted domain, no
/// spaces or control characters, at most 254 bytes.
fn normalize_email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim().to_lowercase();
    let invalid = || AuthError::invalid("email", "email is not a valid address");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(invalid());
    }
    Ok(email)
}

fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<String, AuthError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AuthError::invalid(field, format!("{field} is required")));
    }
    if v.chars().count() > max_chars {
        return Err(AuthError::invalid(
            field,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(AuthError::invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(v.to_owned())
}

fn caller_message(p: &store::Principal, scopes: Scopes, request_id: &str) -> pb::Caller {
    pb::Caller {
        user_id: p.user_id.to_string(),
        org_id: p.org_id.to_string(),
        role: role_to_proto(p.role),
        scopes: scopes.iter().map(|s| s.name().to_owned()).collect(),
        request_id: request_id.to_owned(),
    }
}

fn db(e: coffer_db::DbError) -> AuthError {
    AuthError::Db(e)
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn signup(
        &self,
        request: Request<pb::SignupRequest>,
    ) -> Result<Response<pb::SignupResponse>, Status> {
        let req = request.into_inner();
        let org_name = check_text("org_name", &req.org_name, 200)?;
        let email = normalize_email(&req.email)?;
        self.hasher.check_policy(&req.password, &email)?;
        let hash = self.hasher.hash(req.password).await?;
        let (user_id, org_id) = store::signup(&self.pool, &org_name, &email, &hash)
            .await
            .map_err(|e| match e {
                coffer_db::DbError::AlreadyExists => {
                    AuthError::AlreadyExists("an account with this email")
                }
                other => db(other),
            })?;
        Ok(Response::new(pb::SignupResponse {
            user_id: user_id.to_string(),
            org_id: org_id.to_string(),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let req = request.into_inner();
        let account = self
            .check_password(
                &req.email,
                req.password,
                &req.totp_code,
                &req.client_addr,
                |a| !a.org_disabled,
            )
            .await?;
        let (session_id, hash) = credentials::new_session();
        let mut tx = coffer_db::tenant_tx(&self.pool, account.org_id)
            .await
            .map_err(db)?;
        store::create_session(
            &mut tx,
            account.org_id,
            account.user_id,
            &hash,
            self.config.session_absolute_secs,
        )
        .await
        .map_err(db)?;
        // No session exists before its login is in the audit log.
        self.audit_as_user(
            account.org_id,
            account.user_id,
            Action::AuthLogin,
            Target::User(account.user_id),
        )
        .await?;
        tx.commit().await.map_err(|e| db(e.into()))?;
        let principal = store::Principal {
            user_id: account.user_id,
            org_id: account.org_id,
            role: account.role,
            scopes: None,
            api_key_id: None,
        };
        Ok(Response::new(pb::LoginResponse {
            session_id,
            caller: Some(caller_message(&principal, Scopes::all(), "")),
        }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let req = request.into_inner();
        let audiences = req
            .audiences
            .iter()
            .map(|a| {
                Audience::from_name(a)
                    .ok_or_else(|| AuthError::invalid("audiences", "unknown audience"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if audiences.is_empty() {
            return Err(
                AuthError::invalid("audiences", "at least one audience is required").into(),
            );
        }
        let principal = match req.credential {
            Some(Credential::SessionId(id)) => match credentials::session_hash(&id) {
                Some(hash) => store::resolve_session(
                    &self.pool,
                    &hash,
                    self.config.session_idle_secs,
                    !req.recheck,
                )
                .await
                .map_err(db)?,
                None => None,
            },
            Some(Credential::ApiKey(key)) => match credentials::parse_api_key(&key) {
                Some((prefix, hash)) => store::resolve_api_key(&self.pool, &prefix, &hash)
                    .await
                    .map_err(db)?,
                None => None,
            },
            None => None,
        }
        .ok_or(AuthError::BadCredentials)?;
        let scopes = match &principal.scopes {
            None => Scopes::all(),
            Some(names) => names.iter().filter_map(|n| Scope::from_name(n)).collect(),
        };
        let subject = Subject {
            user_id: principal.user_id,
            org_id: principal.org_id,
            role: principal.role,
            scopes,
            credential: match principal.api_key_id {
                Some(id) => coffer_token::Credential::ApiKey(id),
                None => coffer_token::Credential::Session,
            },
            request_id: req.request_id.clone(),
        };
        let token = self.mint(&subject, &audiences)?;
        Ok(Response::new(pb::AuthenticateResponse {
            token,
            caller: Some(caller_message(&principal, scopes, &req.request_id)),
            api_key_id: principal
                .api_key_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }))
    }

    async fn mint_service_token(
        &self,
        request: Request<pb::MintServiceTokenRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let req = request.into_inner();
        let org_id = Uuid::try_parse(&req.org_id)
            .map_err(|_| AuthError::invalid("org_id", "org_id must be a UUID"))?;
        // Only the audiences that serve system work: never a user-facing one.
        let audiences = req
            .audiences
            .iter()
            .map(|a| match Audience::from_name(a) {
                Some(a @ (Audience::StorageSigner | Audience::Audit)) => Ok(a),
                _ => Err(AuthError::invalid(
                    "audiences",
                    "service tokens are for storage-signer and audit only",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if audiences.is_empty() {
            return Err(
                AuthError::invalid("audiences", "at least one audience is required").into(),
            );
        }
        if !store::org_active(&self.pool, org_id).await.map_err(db)? {
            return Err(AuthError::NotFound.into());
        }
        let subject = Subject {
            user_id: Uuid::nil(),
            org_id,
            role: Role::Member,
            scopes: Scopes::NONE,
            credential: coffer_token::Credential::Service,
            request_id: req.request_id.clone(),
        };
        let token = self.mint(&subject, &audiences)?;
        Ok(Response::new(pb::AuthenticateResponse {
            token,
            caller: None,
            api_key_id: String::new(),
        }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let c = caller(&request)?.clone();
        if let Some(hash) = credentials::session_hash(&request.get_ref().session_id) {
            store::revoke_session(&self.pool, c.org_id, c.user_id, &hash)
                .await
                .map_err(db)?;
        }
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::Me>, Status> {
        let c = caller(&request)?;
        let me = store::get_me(&self.pool, c.org_id, c.user_id)
            .await
            .map_err(db)?;
        Ok(Response::new(pb::Me {
            user_id: c.user_id.to_string(),
            org_id: c.org_id.to_string(),
            email: me.email,
            role: role_to_proto(me.role),
            totp_enabled: me.totp_enabled,
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let c = caller(&request)?.clone();
        let req = request.into_inner();
        let name = check_text("name", &req.name, 100)?;
        if req.scopes.is_empty() || req.scopes.len() > Scope::ALL.len() {
            return Err(AuthError::invalid(
                "scopes",
                "give one or more of files:read, files:write, audit:read, scans:write",
            )
            .into());
        }
        let mut scopes: Vec<String> = Vec::new();
        for s in &req.scopes {
            let scope =
                Scope::from_name(s).ok_or_else(|| AuthError::invalid("scopes", "unknown scope"))?;
            // Never more than the caller holds (a session holds every scope; the policy keeps
            // API keys out of here, and this holds whatever the policy becomes).
            if !c.has_scope(scope) {
                return Err(
                    AuthError::Forbidden("a key cannot get a scope its creator lacks").into(),
                );
            }
            if scopes.iter().any(|x| x == scope.name()) {
                return Err(AuthError::invalid("scopes", "a scope is listed twice").into());
            }
            scopes.push(scope.name().to_owned());
        }
        let new = credentials::new_api_key();
        let mut tx = coffer_db::tenant_tx(&self.pool, c.org_id)
            .await
            .map_err(db)?;
        let id = store::create_api_key(
            &mut tx,
            c.org_id,
            c.user_id,
            &name,
            &new.prefix,
            &new.secret_hash,
            &scopes,
        )
        .await
        .map_err(db)?;
        self.audit(Action::ApikeyCreate, Target::ApiKey(id)).await?;
        tx.commit().await.map_err(|e| db(e.into()))?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            id: id.to_string(),
            key: new.key,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let c = caller(&request)?;
        // Members see their own keys; owners and admins every key of the org.
        let only = (!c.role.is_admin()).then_some(c.user_id);
        let rows = store::list_api_keys(&self.pool, c.org_id, only)
            .await
            .map_err(db)?;
        Ok(Response::new(pb::ListApiKeysResponse {
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
        }))
    }

    async fn add_member(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::AddMemberResponse>, Status> {
        let c = caller(&request)?.clone();
        if !c.role.is_admin() {
            return Err(AuthError::Forbidden("only owners and admins add members").into());
        }
        let req = request.into_inner();
        let role = match req.role.as_str() {
            "member" => Role::Member,
            "admin" => Role::Admin,
            _ => return Err(AuthError::invalid("role", "role must be member or admin").into()),
        };
        let email = normalize_email(&req.email)?;
        self.hasher.check_policy(&req.password, &email)?;
        let hash = self.hasher.hash(req.password).await?;
        // The org is the caller's, from the verified token: never from the request.
        let mut tx = coffer_db::tenant_tx(&self.pool, c.org_id)
            .await
            .map_err(db)?;
        let user_id = store::add_member(&mut tx, c.org_id, &email, &hash, role)
            .await
            .map_err(|e| match e {
                coffer_db::DbError::AlreadyExists => {
                    AuthError::AlreadyExists("an account with this email")
                }
                other => db(other),
            })?;
        self.audit(Action::MemberAdd, Target::User(user_id)).await?;
        tx.commit().await.map_err(|e| db(e.into()))?;
        Ok(Response::new(pb::AddMemberResponse {
            user_id: user_id.to_string(),
        }))
    }

    async fn totp_enroll(
        &self,
        request: Request<pb::TotpEnrollRequest>,
    ) -> Result<Response<pb::TotpEnrollResponse>, Status> {
        let c = caller(&request)?.clone();
        let seed = totp::new_seed();
        let (_, email) = store::totp_pending(&self.pool, c.org_id, c.user_id)
            .await
            .map_err(db)?;
        let totp = totp::totp(&seed, &email)?;
        let encrypted = self.seeds.seal(c.user_id, &seed).map_err(AuthError::from)?;
        store::set_totp_pending(&self.pool, c.org_id, c.user_id, &encrypted)
            .await
            .map_err(|e| match e {
                coffer_db::DbError::Conflict => {
                    AuthError::Conflict("two-factor authentication is already on")
                }
                other => db(other),
            })?;
        Ok(Response::new(pb::TotpEnrollResponse {
            secret: totp_rs::Secret::from(seed).to_base32(),
            otpauth_uri: totp
                .to_url()
                .map_err(|e| AuthError::Internal(e.to_string()))?,
        }))
    }

    async fn totp_confirm(
        &self,
        request: Request<pb::TotpConfirmRequest>,
    ) -> Result<Response<pb::TotpConfirmResponse>, Status> {
        let c = caller(&request)?.clone();
        let (pending, email) = store::totp_pending(&self.pool, c.org_id, c.user_id)
            .await
            .map_err(db)?;
        let pending = pending.ok_or(AuthError::Conflict("no enrolment is pending"))?;
        let seed = self
            .seeds
            .open(c.user_id, &pending)
            .map_err(AuthError::from)?;
        let step = totp::check(&totp::totp(&seed, &email)?, &request.get_ref().code)
            .ok_or_else(|| AuthError::invalid("code", "the code does not match"))?;
        store::confirm_totp(&self.pool, c.org_id, c.user_id, step)
            .await
            .map_err(|e| match e {
                coffer_db::DbError::Conflict => AuthError::Conflict("no enrolment is pending"),
                other => db(other),
            })?;
        Ok(Response::new(pb::TotpConfirmResponse {}))
    }

    async fn request_org_deletion(
        &self,
        request: Request<pb::RequestOrgDeletionRequest>,
    ) -> Result<Response<pb::RequestOrgDeletionResponse>, Status> {
        let c = caller(&request)?.clone();
        if c.role != Role::Owner {
            return Err(AuthError::Forbidden("only owners delete an org").into());
        }
        self.audit(Action::OrgDelete, Target::Org(c.org_id)).await?;
        let purge_after =
            store::request_org_deletion(&self.pool, c.org_id, self.config.org_purge_after_secs)
                .await
                .map_err(|e| match e {
                    coffer_db::DbError::Conflict => {
                        AuthError::Conflict("deletion is already requested")
                    }
                    other => db(other),
                })?;
        Ok(Response::new(pb::RequestOrgDeletionResponse {
            purge_after: Some(timestamp(purge_after)),
        }))
    }

    async fn restore_org(
        &self,
        request: Request<pb::RestoreOrgRequest>,
    ) -> Result<Response<pb::RestoreOrgResponse>, Status> {
        let req = request.into_inner();
        let account = self
            .check_password(
                &req.email,
                req.password,
                &req.totp_code,
                &req.client_addr,
                |a| a.role == Role::Owner,
            )
            .await?;
        self.audit_as_user(
            account.org_id,
            account.user_id,
            Action::OrgRestore,
            Target::Org(account.org_id),
        )
        .await?;
        // Not disabled, or already past its purge: nothing to restore, said the same way.
        store::restore_org(&self.pool, account.org_id)
            .await
            .map_err(|_| AuthError::BadCredentials)?;
        Ok(Response::new(pb::RestoreOrgResponse {
            org_id: account.org_id.to_string(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let c = caller(&request)?;
        // A malformed id is as absent as another org's.
        let id = Uuid::parse_str(&request.get_ref().id).map_err(|_| AuthError::NotFound)?;
        let mut tx = coffer_db::tenant_tx(&self.pool, c.org_id)
            .await
            .map_err(db)?;
        // Members revoke their own keys; another member's is as absent as another org's.
        let only = (!c.role.is_admin()).then_some(c.user_id);
        store::revoke_api_key(&mut tx, id, only)
            .await
            .map_err(|e| match e {
                coffer_db::DbError::NotFound => AuthError::NotFound,
                other => db(other),
            })?;
        self.audit(Action::ApikeyRevoke, Target::ApiKey(id)).await?;
        tx.commit().await.map_err(|e| db(e.into()))?;
        Ok(Response::new(pb::RevokeApiKeyResponse {}))
    }
}
