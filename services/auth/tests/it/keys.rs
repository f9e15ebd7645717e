//! API keys, tenancy, and what the database holds.

use coffer_errors::ErrorCode;
use coffer_proto::v1::{self as pb, authenticate_request::Credential};
use coffer_token::{Audience, Scope, Scopes};

use sqlx::Connection as _;

use crate::harness::{Harness, PASSWORD, code};

#[tokio::test]
async fn api_keys_carry_their_scopes_and_revocation_is_immediate() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, session) = h.account("ops@example.com").await?;
    let token = h.token(Credential::SessionId(session), &[]).await?;
    let mut gw = h.gateway()?;
    let created = Harness::as_user(
        &token,
        gw.create_api_key(pb::CreateApiKeyRequest {
            name: "ci uploader".into(),
            scopes: vec!["files:read".into(), "files:write".into()],
        }),
    )
    .await?
    .into_inner();
    assert!(created.key.starts_with("coffer_"));

    let key_token = h
        .token(Credential::ApiKey(created.key.clone()), &["metadata"])
        .await?;
    let claims = h
        .verifier(Audience::Metadata)
        .verify(&key_token, coffer_token::unix_now())?;
    assert_eq!(
        claims.scopes,
        Scopes::NONE.with(Scope::FilesRead).with(Scope::FilesWrite)
    );

    let listed = Harness::as_user(&token, gw.list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    assert_eq!(listed.items.len(), 1);
    let item = &listed.items[0];
    assert_eq!(item.id, created.id);
    assert_eq!(item.name, "ci uploader");
    assert!(created.key.contains(&item.prefix));
    assert!(item.last_used_at.is_some(), "use is recorded");
    // `coffer_` + 8-character prefix + `_`, then the secret (which may itself contain `_`).
    let secret = &created.key[16..];
    assert_eq!(secret.len(), 43);
    assert!(
        !format!("{listed:?}").contains(secret),
        "the secret is never listed"
    );

    // A tampered key, then the revoked key, are refused on the very next request.
    let mut tampered = created.key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    assert!(h.token(Credential::ApiKey(tampered), &[]).await.is_err());
    Harness::as_user(
        &token,
        gw.revoke_api_key(pb::RevokeApiKeyRequest {
            id: created.id.clone(),
        }),
    )
    .await?;
    let err = h
        .token(Credential::ApiKey(created.key), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    let again = Harness::as_user(
        &token,
        gw.revoke_api_key(pb::RevokeApiKeyRequest { id: created.id }),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&again).0, ErrorCode::NotFound);

    for (name, scopes, field) in [
        ("", vec!["files:read"], "name"),
        ("k", vec![], "scopes"),
        ("k", vec!["files:delete"], "scopes"),
        ("k", vec!["files:read", "files:read"], "scopes"),
    ] {
        let err = Harness::as_user(
            &token,
            gw.create_api_key(pb::CreateApiKeyRequest {
                name: name.into(),
                scopes: scopes.into_iter().map(Into::into).collect(),
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(code(&err), (ErrorCode::InvalidArgument, field.to_owned()));
    }
    Ok(())
}

#[tokio::test]
async fn another_org_cannot_see_or_revoke_keys() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, session_a) = h.account("a@alpha.example").await?;
    let (_, session_b) = h.account("b@beta.example").await?;
    let token_a = h.token(Credential::SessionId(session_a), &[]).await?;
    let token_b = h.token(Credential::SessionId(session_b), &[]).await?;
    let mut gw = h.gateway()?;
    let key_a = Harness::as_user(
        &token_a,
        gw.create_api_key(pb::CreateApiKeyRequest {
            name: "alpha".into(),
            scopes: vec!["files:read".into()],
        }),
    )
    .await?
    .into_inner();

    let seen_by_b = Harness::as_user(&token_b, gw.list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    assert!(seen_by_b.items.is_empty());
    let foreign = Harness::as_user(
        &token_b,
        gw.revoke_api_key(pb::RevokeApiKeyRequest {
            id: key_a.id.clone(),
        }),
    )
    .await
    .unwrap_err();
    let absent = Harness::as_user(
        &token_b,
        gw.revoke_api_key(pb::RevokeApiKeyRequest {
            id: uuid::Uuid::new_v4().to_string(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(
        code(&foreign),
        code(&absent),
        "another org's key looks exactly like no key"
    );
    assert_eq!(foreign.message(), absent.message());
    // A's key still works.
    h.token(Credential::ApiKey(key_a.key), &[]).await?;
    Ok(())
}

#[tokio::test]
async fn the_database_holds_no_plaintext_credential_and_passes_the_rls_audit() -> anyhow::Result<()>
{
    let h = Harness::start().await?;
    let (_, session) = h.account("vault@example.com").await?;
    let token = h.token(Credential::SessionId(session.clone()), &[]).await?;
    let mut gw = h.gateway()?;
    let key = Harness::as_user(
        &token,
        gw.create_api_key(pb::CreateApiKeyRequest {
            name: "k".into(),
            scopes: vec!["audit:read".into()],
        }),
    )
    .await?
    .into_inner()
    .key;

    // A real pg_dump of the whole database: what a backup or a stolen disk would show.
    let dump = h.pg.dump(&h.db)?;
    assert!(
        dump.contains("vault@example.com"),
        "the dump holds the users table"
    );
    let key_secret = &key[16..];
    assert_eq!(key_secret.len(), 43);
    for (what, secret) in [
        ("password", PASSWORD),
        ("session id", session.as_str()),
        ("api key secret", key_secret),
    ] {
        assert!(!dump.contains(secret), "{what} stored in plaintext");
    }
    assert!(
        dump.contains("$argon2id$v=19$m=19456,t=2,p=1$"),
        "password hashes use Argon2id with OWASP parameters"
    );

    let runtime = sqlx::PgPool::connect(&h.pg.url("auth_runtime", "runtime-pw", &h.db)).await?;
    assert_eq!(
        coffer_db::rls_audit(&runtime, "auth", "auth_runtime").await?,
        Vec::<String>::new()
    );
    // Without a tenant or a lookup key, the runtime role sees no row of any table.
    for table in ["orgs", "users", "memberships", "sessions", "api_keys"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM auth.{table}"))
            .fetch_one(&runtime)
            .await?;
        assert_eq!(n, 0, "{table} visible without a tenant");
    }
    // resolve_session, the one-statement session lookup, finds the session by its hash alone and
    // writes last_seen_at when due (a touch interval of 0 s: always); the capability and the
    // tenant it sets end with the call: in the same transaction, the next statement sees nothing.
    let mut tx = runtime.begin().await?;
    for (id, found) in [(session.as_str(), true), ("not-a-session", false)] {
        let row: Option<(uuid::Uuid, uuid::Uuid, String)> = sqlx::query_as(
            "SELECT * FROM auth.resolve_session(sha256(convert_to($1, 'UTF8')), 3600, 0, true)",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        assert_eq!(row.is_some(), found, "{id}");
        nothing_outlives(&mut tx, "sessions", "session").await?;
    }
    tx.rollback().await?;
    // resolve_api_key, the one-statement key lookup, finds a live key by its prefix alone and
    // hands back its stored hash and its user's role; nothing it set outlives the call.
    let prefix = &key[7..15];
    let mut tx = runtime.begin().await?;
    for (p, found) in [(prefix, true), ("zzzzzzzz", false)] {
        let row: Option<(String, Vec<u8>, String, bool)> = sqlx::query_as(
            "SELECT o_scopes[1], o_secret_hash, o_role, o_due FROM auth.resolve_api_key($1)",
        )
        .bind(p)
        .fetch_optional(&mut *tx)
        .await?;
        assert_eq!(row.is_some(), found, "{p}");
        if let Some((scope, hash, role, _)) = row {
            assert_eq!((scope.as_str(), role.as_str()), ("audit:read", "owner"));
            assert_eq!(hash.len(), 32);
        }
        nothing_outlives(&mut tx, "api_keys", "api_key").await?;
    }
    tx.rollback().await?;
    Ok(())
}

#[tokio::test]
async fn a_key_dies_with_its_membership_and_with_its_org_and_records_its_use() -> anyhow::Result<()>
{
    let h = Harness::start().await?;
    let (owner, member, member_id) = owner_and_member(&h, "lapse.example").await?;
    let mut gw = h.gateway()?;
    let create = files_read_key;
    let members_key = Harness::as_user(&member, gw.create_api_key(create("member's")))
        .await?
        .into_inner();
    let owners_key = Harness::as_user(&owner, gw.create_api_key(create("owner's")))
        .await?
        .into_inner();
    assert!(
        keys_used(&h, &owner).await?.values().all(|u| !u),
        "never used yet"
    );
    h.token(Credential::ApiKey(members_key.key.clone()), &[])
        .await?;
    // A presented key that does not match is not its use.
    let mut wrong = owners_key.key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    assert!(h.token(Credential::ApiKey(wrong), &[]).await.is_err());
    assert_eq!(
        keys_used(&h, &owner).await?,
        [
            ("member's".to_string(), true),
            ("owner's".to_string(), false)
        ]
        .into(),
        "the first use is recorded at once, a wrong secret is none"
    );

    // The membership alone goes (the user stays): the key is refused on the very next request.
    let admin = sqlx::PgPool::connect(&h.pg.superuser_url(&h.db)).await?;
    let (org, role): (uuid::Uuid, String) = sqlx::query_as(
        "DELETE FROM auth.memberships WHERE user_id = $1::uuid RETURNING org_id, role",
    )
    .bind(&member_id)
    .fetch_one(&admin)
    .await?;
    assert_eq!(role, "member");
    let err = h
        .token(Credential::ApiKey(members_key.key.clone()), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    sqlx::query("INSERT INTO auth.memberships (org_id, user_id, role) VALUES ($1, $2::uuid, $3)")
        .bind(org)
        .bind(&member_id)
        .bind(&role)
        .execute(&admin)
        .await?;
    h.token(Credential::ApiKey(members_key.key.clone()), &[])
        .await
        .expect("the membership is back, and the key with it");
    // The member is removed (with their keys): refused on the very next request, the owner's
    // key lives.
    Harness::as_user(
        &owner,
        gw.remove_member(pb::RemoveMemberRequest {
            user_id: member_id.clone(),
        }),
    )
    .await?;
    let err = h
        .token(Credential::ApiKey(members_key.key), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    h.token(Credential::ApiKey(owners_key.key.clone()), &[])
        .await?;
    // The org is disabled (its deletion requested): its keys are refused at once.
    Harness::as_user(
        &owner,
        gw.request_org_deletion(pb::RequestOrgDeletionRequest {}),
    )
    .await?;
    let err = h
        .token(Credential::ApiKey(owners_key.key), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::Unauthenticated);
    Ok(())
}

#[tokio::test]
async fn an_api_key_token_manages_nothing_over_mtls() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, session) = h.account("owner@managed.example").await?;
    let token = h.token(Credential::SessionId(session), &[]).await?;
    let mut gw = h.gateway()?;
    let key = Harness::as_user(
        &token,
        gw.create_api_key(pb::CreateApiKeyRequest {
            name: "every scope".into(),
            scopes: Scope::ALL.iter().map(|s| s.name().to_owned()).collect(),
        }),
    )
    .await?
    .into_inner();
    // The token says how its user authenticated, with the key's id.
    let key_token = h.token(Credential::ApiKey(key.key.clone()), &[]).await?;
    let claims = h
        .verifier(Audience::Auth)
        .verify(&key_token, coffer_token::unix_now())?;
    assert_eq!(
        claims.credential,
        coffer_token::Credential::ApiKey(key.id.parse()?)
    );
    let session_claims = h
        .verifier(Audience::Auth)
        .verify(&token, coffer_token::unix_now())?;
    assert_eq!(session_claims.credential, coffer_token::Credential::Session);

    // Straight over mTLS, as a caller on the allow-list holding a valid token of an owner's key
    // with every scope: every management RPC refuses it before its handler runs.
    let refused = [
        Harness::as_user(
            &key_token,
            gw.create_api_key(pb::CreateApiKeyRequest {
                name: "more".into(),
                scopes: vec!["files:read".into()],
            }),
        )
        .await
        .map(|_| ()),
        Harness::as_user(&key_token, gw.list_api_keys(pb::ListApiKeysRequest {}))
            .await
            .map(|_| ()),
        Harness::as_user(
            &key_token,
            gw.revoke_api_key(pb::RevokeApiKeyRequest { id: key.id.clone() }),
        )
        .await
        .map(|_| ()),
        Harness::as_user(
            &key_token,
            gw.add_member(pb::AddMemberRequest {
                email: "mallory@managed.example".into(),
                password: PASSWORD.into(),
                role: "admin".into(),
            }),
        )
        .await
        .map(|_| ()),
        Harness::as_user(&key_token, gw.totp_enroll(pb::TotpEnrollRequest {}))
            .await
            .map(|_| ()),
        Harness::as_user(
            &key_token,
            gw.totp_confirm(pb::TotpConfirmRequest {
                code: "123456".into(),
            }),
        )
        .await
        .map(|_| ()),
        Harness::as_user(
            &key_token,
            gw.request_org_deletion(pb::RequestOrgDeletionRequest {}),
        )
        .await
        .map(|_| ()),
        Harness::as_user(
            &key_token,
            gw.logout(pb::LogoutRequest {
                session_id: String::new(),
            }),
        )
        .await
        .map(|_| ()),
        Harness::as_user(&key_token, gw.list_members(pb::ListMembersRequest {}))
            .await
            .map(|_| ()),
        Harness::as_user(
            &key_token,
            gw.remove_member(pb::RemoveMemberRequest {
                user_id: uuid::Uuid::new_v4().to_string(),
            }),
        )
        .await
        .map(|_| ()),
        Harness::as_user(
            &key_token,
            gw.change_password(pb::ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: "a brand new passphrase 7".into(),
                session_id: String::new(),
            }),
        )
        .await
        .map(|_| ()),
    ];
    for (i, res) in refused.into_iter().enumerate() {
        let err = res.expect_err("an API key's token was accepted");
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "rpc #{i}");
        assert_eq!(code(&err).0, ErrorCode::SessionRequired, "rpc #{i}");
    }
    // Nothing happened: the key is live, no member was added, the org is active.
    let listed = Harness::as_user(&token, gw.list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    assert_eq!(listed.items.len(), 1);
    assert!(
        gw.login(pb::LoginRequest {
            email: "mallory@managed.example".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .is_err()
    );
    // The key still reads who it is.
    let me = Harness::as_user(&key_token, gw.get_me(pb::GetMeRequest {}))
        .await?
        .into_inner();
    assert_eq!(me.email, "owner@managed.example");
    Ok(())
}

#[tokio::test]
async fn members_see_and_revoke_their_own_keys_admins_all() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (owner, member, _) = owner_and_member(&h, "keyring.example").await?;
    let mut gw = h.gateway()?;
    let create = files_read_key;
    let owners_key = Harness::as_user(&owner, gw.create_api_key(create("owner's")))
        .await?
        .into_inner();
    let members_key = Harness::as_user(&member, gw.create_api_key(create("member's")))
        .await?
        .into_inner();

    let seen = Harness::as_user(&member, gw.list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    assert_eq!(
        seen.items.iter().map(|k| &k.id).collect::<Vec<_>>(),
        [&members_key.id],
        "a member sees only their own key"
    );
    let err = Harness::as_user(
        &member,
        gw.revoke_api_key(pb::RevokeApiKeyRequest {
            id: owners_key.id.clone(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err).0, ErrorCode::NotFound);
    h.token(Credential::ApiKey(owners_key.key.clone()), &[])
        .await
        .expect("the owner's key survives a member's attempt");

    let seen = Harness::as_user(&owner, gw.list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    assert_eq!(seen.items.len(), 2, "the owner sees every key of the org");
    Harness::as_user(
        &owner,
        gw.revoke_api_key(pb::RevokeApiKeyRequest {
            id: members_key.id.clone(),
        }),
    )
    .await?;
    assert!(
        h.token(Credential::ApiKey(members_key.key), &[])
            .await
            .is_err()
    );
    Ok(())
}

/// Whether each of the org's keys, by name, has its use recorded, as its owner lists them.
async fn keys_used(
    h: &Harness,
    owner: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, bool>> {
    let listed = Harness::as_user(owner, h.gateway()?.list_api_keys(pb::ListApiKeysRequest {}))
        .await?
        .into_inner();
    Ok(listed
        .items
        .into_iter()
        .map(|k| (k.name, k.last_used_at.is_some()))
        .collect())
}

/// The tables' policies OR a tenant with a lookup capability: a plan made while the tables were
/// small (a pooled connection keeps its functions' plans) or on stale statistics must still find
/// a session or a key by its index, not by reading every row of every org.
#[tokio::test]
async fn credential_lookups_read_a_few_pages_however_many_sessions_and_keys_exist()
-> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (_, session) = h.account("pages@example.com").await?;
    let token = h.token(Credential::SessionId(session.clone()), &[]).await?;
    let key = Harness::as_user(
        &token,
        h.gateway()?.create_api_key(pb::CreateApiKeyRequest {
            name: "k".into(),
            scopes: vec!["files:read".into()],
        }),
    )
    .await?
    .into_inner()
    .key;
    let prefix = key[7..15].to_owned();
    let url = h.pg.url("auth_runtime", "runtime-pw", &h.db);
    let mut kept = sqlx::PgConnection::connect(&url).await?;
    for _ in 0..10 {
        pages_the_lookups_read(&mut kept, &session, &prefix).await?;
    }
    // Another org gains 5,000 sessions and 5,000 keys.
    h.pg.execute_as_superuser(
        &h.db,
        "INSERT INTO auth.orgs (id, name) VALUES ('00000000-0000-0000-0000-0000000000b0', 'b');
         INSERT INTO auth.users (id, org_id, email, password_hash)
             VALUES ('00000000-0000-0000-0000-0000000000b1',
                     '00000000-0000-0000-0000-0000000000b0', 'b@b.example', 'x');
         INSERT INTO auth.memberships VALUES ('00000000-0000-0000-0000-0000000000b0',
                                              '00000000-0000-0000-0000-0000000000b1', 'owner');
         INSERT INTO auth.sessions (id_hash, org_id, user_id, expires_at)
             SELECT sha256(convert_to('s' || n, 'UTF8')), '00000000-0000-0000-0000-0000000000b0',
                    '00000000-0000-0000-0000-0000000000b1', now() + interval '1 day'
             FROM generate_series(1, 5000) n;
         INSERT INTO auth.api_keys (id, org_id, user_id, name, prefix, secret_hash, scopes)
             SELECT gen_random_uuid(), '00000000-0000-0000-0000-0000000000b0',
                    '00000000-0000-0000-0000-0000000000b1', 'k', lpad(to_hex(n), 8, '0'),
                    sha256(convert_to('k' || n, 'UTF8')), '{files:read}'
             FROM generate_series(1, 5000) n;",
    )
    .await?;
    // Reading either table whole now touches far more pages than the bound below. (A lookup
    // reads 13 and 7 pages, whatever the tables hold; a connection's first one up to 4 more, for
    // planning.)
    let mut admin = sqlx::PgConnection::connect(&h.pg.superuser_url(&h.db)).await?;
    let (sessions, keys): (i64, i64) = sqlx::query_as(
        "SELECT pg_relation_size('auth.sessions') / 8192, pg_relation_size('auth.api_keys') / 8192",
    )
    .fetch_one(&mut admin)
    .await?;
    assert!(sessions >= 60 && keys >= 60, "{sessions} and {keys} pages");
    let mut fresh = sqlx::PgConnection::connect(&url).await?;
    let mut analysed = sqlx::PgConnection::connect(&url).await?;
    h.pg.execute_as_superuser(&h.db, "ANALYZE auth.sessions, auth.api_keys")
        .await?;
    for (what, conn) in [
        ("kept plans", &mut kept),
        ("new plans", &mut fresh),
        ("new statistics", &mut analysed),
    ] {
        for _ in 0..6 {
            // Present credentials, and absent ones (a guess must not cost a scan either).
            for (s, p) in [(session.as_str(), prefix.as_str()), ("absent", "absent0")] {
                let (by_session, by_key) = pages_the_lookups_read(conn, s, p).await?;
                assert!(
                    by_session <= 20 && by_key <= 20,
                    "{what}: a session lookup touched {by_session} pages, a key lookup {by_key}"
                );
            }
        }
    }
    // The bound tells a scan apart: with index scans off, the lookups read the tables (of an
    // absent credential: a present one may be found early in a scan).
    let mut scanning = sqlx::PgConnection::connect(&url).await?;
    sqlx::raw_sql("SET enable_indexscan = off; SET enable_bitmapscan = off")
        .execute(&mut scanning)
        .await?;
    let (by_session, by_key) = pages_the_lookups_read(&mut scanning, "absent", "absent0").await?;
    assert!(
        by_session > 20 && by_key > 20,
        "scans touched {by_session} and {by_key} pages"
    );
    Ok(())
}

/// The pages of the auth tables and their indexes that resolve_session and resolve_api_key each
/// touched (neither writes: the session's use is not due, the key's is written apart); the
/// credentials named `absent…` must not be found, any other must.
async fn pages_the_lookups_read(
    conn: &mut sqlx::PgConnection,
    session: &str,
    prefix: &str,
) -> anyhow::Result<(i64, i64)> {
    const PAGES: &str = "SELECT sum(pg_stat_get_xact_blocks_fetched(c.oid))::bigint
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'auth' AND c.relkind IN ('r', 'i')";
    let mut tx = conn.begin().await?;
    let before: i64 = sqlx::query_scalar(PAGES).fetch_one(&mut *tx).await?;
    let found: Option<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT o_org_id FROM auth.resolve_session(sha256(convert_to($1, 'UTF8')), 3600, 3600,
                                                    false)",
    )
    .bind(session)
    .fetch_optional(&mut *tx)
    .await?;
    anyhow::ensure!(
        found.is_some() != session.starts_with("absent"),
        "{session}"
    );
    let after_session: i64 = sqlx::query_scalar(PAGES).fetch_one(&mut *tx).await?;
    let found: Option<(uuid::Uuid,)> = sqlx::query_as("SELECT o_id FROM auth.resolve_api_key($1)")
        .bind(prefix)
        .fetch_optional(&mut *tx)
        .await?;
    anyhow::ensure!(found.is_some() != prefix.starts_with("absent"), "{prefix}");
    let after_key: i64 = sqlx::query_scalar(PAGES).fetch_one(&mut *tx).await?;
    tx.rollback().await?;
    Ok((after_session - before, after_key - after_session))
}

/// A fresh org's owner and a member the owner added, each with a session token, and the
/// member's user id.
async fn owner_and_member(h: &Harness, domain: &str) -> anyhow::Result<(String, String, String)> {
    let (_, owner_session) = h.account(&format!("owner@{domain}")).await?;
    let owner = h.token(Credential::SessionId(owner_session), &[]).await?;
    let mut gw = h.gateway()?;
    let email = format!("member@{domain}");
    let added = Harness::as_user(
        &owner,
        gw.add_member(pb::AddMemberRequest {
            email: email.clone(),
            password: PASSWORD.into(),
            role: "member".into(),
        }),
    )
    .await?
    .into_inner();
    let member_session = gw
        .login(pb::LoginRequest {
            email,
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .session_id;
    let member = h.token(Credential::SessionId(member_session), &[]).await?;
    Ok((owner, member, added.user_id))
}

/// A key named `name` with the one scope `files:read`.
fn files_read_key(name: &str) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        name: name.into(),
        scopes: vec!["files:read".into()],
    }
}

/// After a one-statement lookup in `tx`: neither its capability (`coffer.lookup_<kind>`) nor the
/// tenant it set is left, and the next statement sees no row of `table` or of memberships.
async fn nothing_outlives(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    table: &str,
    kind: &str,
) -> anyhow::Result<()> {
    let (n, lookup, tenant): (i64, Option<String>, Option<String>) = sqlx::query_as(&format!(
        "SELECT (SELECT count(*) FROM auth.{table}) + (SELECT count(*) FROM auth.memberships),
                current_setting('coffer.lookup_{kind}', true),
                current_setting('coffer.org_id', true)"
    ))
    .fetch_one(&mut **tx)
    .await?;
    assert_eq!(n, 0, "the {kind} lookup's settings outlived the call");
    assert_eq!(lookup.unwrap_or_default(), "", "{kind}");
    assert_eq!(tenant.unwrap_or_default(), "", "{kind}");
    Ok(())
}
