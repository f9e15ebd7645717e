//! `coffer login`, `logout`, `whoami`: the profile's credential. A password login keeps the
//! session cookie and its CSRF token (revoked server-side by `logout`); an API key is read from
//! `COFFER_API_KEY` or asked for, never taken on the command line where `ps` would show it.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::json;

use crate::Ctx;
use crate::client::{Api, ApiError};
use crate::model::{LoggedIn, Me};
use crate::profile::{Credential, Profile};

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The gateway's URL (needed the first time for a profile), e.g. https://vault.example.com
    #[arg(long)]
    gateway: Option<String>,
    /// A CA certificate (PEM) to trust for this gateway (self-signed dev certificates).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// The account's email (asked for when missing: on the terminal, or the first line of
    /// standard input with --password-stdin, before the password).
    #[arg(long)]
    email: Option<String>,
    /// Reads the password from the first line of standard input (and the TOTP code, when asked
    /// for and not given, from the next) instead of asking on the terminal.
    #[arg(long)]
    password_stdin: bool,
    /// The current TOTP code, when two-step sign-in is on (asked for when needed).
    #[arg(long)]
    totp: Option<String>,
    /// Logs in with an API key instead: from COFFER_API_KEY, else asked for (or read from
    /// standard input).
    #[arg(long, conflicts_with_all = ["email", "password_stdin", "totp"])]
    api_key: bool,
}

/// Reads one line: from standard input, or asked for on the terminal (hidden when `secret`).
fn ask(prompt: &str, secret: bool, from_stdin: bool) -> anyhow::Result<String> {
    let line = if !from_stdin && std::io::stdin().is_terminal() {
        if secret {
            rpassword::prompt_password(prompt)?
        } else {
            eprint!("{prompt}");
            read_stdin_line()?
        }
    } else {
        read_stdin_line()?
    };
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !line.is_empty(),
        "{} was empty",
        prompt.trim_end_matches([':', ' '])
    );
    Ok(line)
}

/// Asks for a secret on the terminal, or reads it from standard input when there is none.
pub fn ask_secret(prompt: &str) -> anyhow::Result<String> {
    ask(prompt, true, false)
}

fn read_stdin_line() -> anyhow::Result<String> {
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    anyhow::ensure!(n > 0, "standard input ended before the answer");
    Ok(line)
}

pub async fn login(mut ctx: Ctx, a: LoginArgs) -> anyhow::Result<i32> {
    let existing = ctx.config.profiles.get(&ctx.profile).cloned();
    let gateway = a
        .gateway
        .or_else(|| existing.as_ref().map(|p| p.gateway.clone()))
        .with_context(|| {
            format!(
                "profile {:?} is new: give the gateway with --gateway URL",
                ctx.profile
            )
        })?;
    let gateway = gateway.trim_end_matches('/').to_owned();
    let ca_pem = match a.ca_cert {
        Some(p) => Some(
            std::fs::read_to_string(&p)
                .with_context(|| format!("{}: cannot read it", p.display()))?,
        ),
        // The CA trusted for one gateway is not carried over to another.
        None => existing
            .filter(|p| p.gateway == gateway)
            .and_then(|p| p.ca_pem),
    };
    let mut profile = Profile {
        gateway,
        ca_pem,
        credential: None,
    };
    let credential = if a.api_key {
        let key = match std::env::var("COFFER_API_KEY") {
            Ok(k) if !k.is_empty() => k,
            _ => ask("API key: ", true, false)?,
        };
        Credential::ApiKey {
            key: key.trim().to_owned(),
        }
    } else {
        let email = match a.email {
            Some(e) => e,
            None => ask("Email: ", false, a.password_stdin)?,
        };
        let password = ask("Password: ", true, a.password_stdin)?;
        password_login(&profile, email, password, a.totp, a.password_stdin).await?
    };
    profile.credential = Some(credential);
    let api = Api::new(&profile)?;
    let me: Me = api
        .get("/v1/me")
        .await
        .context("the credential does not work")?;
    ctx.config
        .profiles
        .insert(ctx.profile.clone(), profile.clone());
    ctx.config.current = Some(ctx.profile.clone());
    ctx.config.save()?;
    let out = json!({"profile": ctx.profile, "gateway": profile.gateway, "email": me.email, "role": me.role, "org_id": me.org_id});
    ctx.print(&out, || {
        say!(
            "logged in as {} ({}) at {} (profile {})",
            me.email,
            me.role,
            profile.gateway,
            ctx.profile
        );
    })?;
    Ok(0)
}

async fn password_login(
    profile: &Profile,
    email: String,
    password: String,
    totp: Option<String>,
    from_stdin: bool,
) -> anyhow::Result<Credential> {
    let api = Api::new(profile)?;
    let mut code = totp;
    loop {
        let body = json!({"email": email, "password": password, "totp_code": code});
        match api.send(Method::POST, "/v1/auth/login", Some(&body)).await {
            Ok(res) => {
                let session = res
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(|c| c.strip_prefix("coffer_session="))
                    .and_then(|c| c.split(';').next())
                    .map(str::to_owned)
                    .context("the gateway answered the login without a session cookie")?;
                let body: LoggedIn = res.json().await.context("reading the login's answer")?;
                return Ok(Credential::Session {
                    email,
                    session,
                    csrf: body.csrf_token,
                });
            }
            Err(e) if e.code() == Some("totp_required") && code.is_none() => {
                code = Some(ask("TOTP code: ", false, from_stdin)?);
            }
            Err(ApiError::Refused { status: 401, .. }) => {
                anyhow::bail!("login refused: wrong email, password or TOTP code")
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub async fn logout(mut ctx: Ctx) -> anyhow::Result<i32> {
    let Some(profile) = ctx.config.profiles.get_mut(&ctx.profile) else {
        anyhow::bail!("no profile {:?}: nothing to log out of", ctx.profile);
    };
    let Some(credential) = profile.credential.clone() else {
        anyhow::bail!("profile {:?} is not logged in", ctx.profile);
    };
    let mut note = "logged out: the session is revoked";
    if let Credential::Session { .. } = credential {
        let api = Api::new(profile)?;
        match api.send::<()>(Method::POST, "/v1/auth/logout", None).await {
            Ok(_) | Err(ApiError::NotLoggedIn) => {}
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context("the gateway did not revoke the session; the profile keeps it"));
            }
        }
    } else {
        note = "logged out: the API key is forgotten here but still valid until revoked (web app, Account)";
    }
    profile.credential = None;
    ctx.config.save()?;
    ctx.print(&json!({"profile": ctx.profile, "logged_out": true}), || {
        say!("{note}")
    })?;
    Ok(0)
}

pub async fn whoami(ctx: &Ctx) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let me: Me = api.get("/v1/me").await?;
    let kind = match ctx
        .config
        .profiles
        .get(&ctx.profile)
        .and_then(|p| p.credential.as_ref())
    {
        Some(Credential::ApiKey { .. }) => "api_key",
        _ => "session",
    };
    let out = json!({
        "profile": ctx.profile, "gateway": api.base(), "user_id": me.user_id, "org_id": me.org_id,
        "email": me.email, "role": me.role, "totp_enabled": me.totp_enabled, "credential": kind,
    });
    ctx.print(&out, || {
        say!("{} ({}) in organisation {}", me.email, me.role, me.org_id);
        say!(
            "gateway {} (profile {}, {})",
            api.base(),
            ctx.profile,
            kind.replace('_', " ")
        );
        say!(
            "two-step sign-in {}",
            if me.totp_enabled { "on" } else { "off" }
        );
    })?;
    Ok(0)
}
