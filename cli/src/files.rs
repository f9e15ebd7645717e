//! The file commands: `ls`, `mkdir`, `mv`, `rm`, `restore`, `purge`, `put`, `get`, `share`,
//! each addressing files and folders by path or id (remote.rs).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::json;

use crate::client::Api;
use crate::model::{File, Folder, ShareCreated};
use crate::progress::{Bars, Meter};
use crate::remote::{self, Node};
use crate::{Ctx, EXIT_QUARANTINED, EXIT_SCAN_FAILED};

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// A folder or file path (`/Contracts/2026`) or id; default the top.
    path: Option<String>,
    /// Lists the trash instead (each file with its purge date).
    #[arg(long, conflicts_with = "path")]
    trash: bool,
}

#[derive(clap::Args, Debug)]
pub struct MkdirArgs {
    /// The new folder's path.
    path: String,
    /// Creates missing parent folders too, and is content when the folder exists.
    #[arg(short, long)]
    parents: bool,
}

#[derive(clap::Args, Debug)]
pub struct MvArgs {
    /// The file or folder (path or id).
    from: String,
    /// An existing folder to move it into, or its new path (new name, same or another folder).
    to: String,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Files or folders (paths or ids).
    #[arg(required = true)]
    paths: Vec<String>,
    /// Allows folders (their contents go to the trash with them).
    #[arg(short, long)]
    recursive: bool,
}

#[derive(clap::Args, Debug)]
pub struct TargetsArgs {
    /// Files, by path (for trashed files: the path they had) or id.
    #[arg(required = true)]
    paths: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PutArgs {
    /// Local files to upload.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The folder to put them in (path or id; default the top).
    #[arg(long, default_value = "/")]
    to: String,
    /// Waits for each file's verdict and prints it; the exit status says the worst one.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits for the verdicts, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    wait_timeout: u64,
    /// Files sent at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    jobs: u16,
    /// Parts of one large file in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    parts: u16,
    /// Caps the upload rate, in bytes a second (suffixes K, M, G: 1024-based), e.g. 20M.
    #[arg(long, value_parser = crate::pace::parse_rate)]
    limit_rate: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// The file (path or id).
    path: String,
    /// Where to write it (default: its name in the current directory; `-` for standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replaces an existing local file.
    #[arg(short, long)]
    force: bool,
    /// Caps the download rate, in bytes a second (suffixes K, M, G: 1024-based), e.g. 20M.
    #[arg(long, value_parser = crate::pace::parse_rate)]
    limit_rate: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct ShareArgs {
    /// The file (path or id).
    path: String,
    /// How long the link lives: 30m, 12h, 7d (at most what the server allows).
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    expires: u64,
    /// Protects the link with a password (asked for, or read from standard input).
    #[arg(long)]
    password: bool,
    /// Stops the link after this many downloads.
    #[arg(long)]
    max_downloads: Option<u32>,
}

/// Seconds of `30s`, `30m`, `12h`, `7d` (a bare number is seconds).
fn parse_duration(s: &str) -> Result<u64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: give a number and a unit, e.g. 30m, 12h, 7d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{s:?}: out of range"))
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn state_of(f: &File) -> String {
    match &f.verdict {
        Some(v) if f.status != "pending_upload" => format!("{} ({v})", f.status),
        _ => f.status.clone(),
    }
}

fn print_file(f: &File) {
    say!(
        "{:<8} {:>10}  {:<24}  {}  {}",
        "file",
        human_size(f.size),
        state_of(f),
        &f.updated_at,
        f.name
    );
}

fn print_folder(f: &Folder) {
    say!(
        "{:<8} {:>10}  {:<24}  {}  {}/",
        "folder",
        "-",
        "",
        &f.created_at,
        f.name
    );
}

pub async fn ls(ctx: &Ctx, a: LsArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let listing = if a.trash {
        remote::list_all(&api, None).await?
    } else {
        match remote::resolve(&api, a.path.as_deref().unwrap_or("/")).await? {
            Node::File(f) => {
                ctx.print(&f, || print_file(&f))?;
                return Ok(0);
            }
            n => remote::list_all(&api, n.folder_id()).await?,
        }
    };
    let out = json!({"folders": listing.folders, "files": listing.files});
    ctx.print(&out, || {
        for f in &listing.folders {
            print_folder(f);
        }
        for f in &listing.files {
            print_file(f);
            if let Some(p) = &f.purge_at {
                say!("{:<8} to be purged at {p}; id {}", "", f.id);
            }
        }
        if listing.folders.is_empty() && listing.files.is_empty() {
            say!("(empty)");
        }
    })?;
    Ok(0)
}

pub async fn mkdir(ctx: &Ctx, a: MkdirArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let names = remote::components(&a.path)?;
    anyhow::ensure!(!names.is_empty(), "{}: name the new folder", a.path);
    let mut parent = Node::Root;
    let mut created = None;
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let listing = remote::list_all(&api, parent.folder_id()).await?;
        if let Some(f) = listing.folders.into_iter().find(|f| &f.name == name) {
            anyhow::ensure!(!last || a.parents, "{}: the folder exists", a.path);
            parent = Node::Folder(f);
            continue;
        }
        anyhow::ensure!(
            last || a.parents,
            "{}: no folder {} (mkdir -p creates the missing ones)",
            a.path,
            remote::display(&names[..=i])
        );
        anyhow::ensure!(
            !listing.files.iter().any(|f| &f.name == name),
            "{}: a file has the name {name:?} there",
            remote::display(&names[..=i])
        );
        let f: Folder = api
            .post(
                "/v1/folders",
                &json!({"name": name, "parent_id": parent.parent_ref()}),
            )
            .await?;
        created = Some(f.clone());
        parent = Node::Folder(f);
    }
    let Node::Folder(folder) = parent else {
        unreachable!("a folder was found or made")
    };
    ctx.print(&folder, || {
        if created.is_some() {
            say!("created {}", a.path);
        } else {
            say!("{} exists", a.path);
        }
    })?;
    Ok(0)
}

pub async fn mv(ctx: &Ctx, a: MvArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let from = remote::resolve(&api, &a.from).await?;
    // Into an existing folder keeping the name, or to a new path.
    let (into, name) = match remote::resolve(&api, &a.to).await {
        Ok(n @ (Node::Root | Node::Folder(_))) => (n, None),
        Ok(Node::File(_)) => anyhow::bail!("{}: a file is there already", a.to),
        Err(e) if remote::as_id(&a.to).is_none() => {
            let (parent, name) = remote::split_last(&a.to)?;
            let parent = remote::folder(&api, &parent).await.map_err(|_| e)?;
            (parent, Some(name))
        }
        Err(e) => return Err(e),
    };
    let out = match from {
        Node::Root => anyhow::bail!("the top cannot be moved"),
        Node::File(f) => {
            let mut body = json!({"folder_id": into.parent_ref()});
            if let Some(n) = &name {
                body["name"] = json!(n);
            }
            let f: File = api
                .call(Method::PATCH, &format!("/v1/files/{}", f.id), Some(&body))
                .await?;
            serde_json::to_value(f)?
        }
        Node::Folder(f) => {
            let mut body = json!({"parent_id": into.parent_ref()});
            if let Some(n) = &name {
                body["name"] = json!(n);
            }
            let f: Folder = api
                .call(Method::PATCH, &format!("/v1/folders/{}", f.id), Some(&body))
                .await?;
            serde_json::to_value(f)?
        }
    };
    ctx.print(&out, || say!("moved {} to {}", a.from, a.to))?;
    Ok(0)
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let mut done = Vec::new();
    for p in &a.paths {
        match remote::resolve(&api, p).await? {
            Node::Root => anyhow::bail!("the top cannot be removed"),
            Node::File(f) => {
                api.act(Method::DELETE, &format!("/v1/files/{}", f.id))
                    .await?;
                done.push(json!({"path": p, "id": f.id, "kind": "file"}));
            }
            Node::Folder(f) => {
                anyhow::ensure!(
                    a.recursive,
                    "{p} is a folder: rm -r moves it and its contents to the trash"
                );
                api.act(Method::DELETE, &format!("/v1/folders/{}", f.id))
                    .await?;
                done.push(json!({"path": p, "id": f.id, "kind": "folder"}));
            }
        }
        if !ctx.json {
            match done.last().map(|d| d["kind"] == "folder") {
                Some(true) => say!(
                    "trashed {p} and its contents (coffer ls --trash lists them; restore files by id)"
                ),
                _ => say!("trashed {p} (coffer restore {p} brings it back)"),
            }
        }
    }
    if ctx.json {
        ctx.print(&json!({ "trashed": done }), || {})?;
    }
    Ok(0)
}

pub async fn restore(ctx: &Ctx, a: TargetsArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let mut done = Vec::new();
    for p in &a.paths {
        let f = remote::trashed_file(&api, p).await?;
        let f: File = api
            .call::<(), File>(Method::POST, &format!("/v1/files/{}/restore", f.id), None)
            .await?;
        if !ctx.json {
            say!("restored {p}: {}", state_of(&f));
        }
        done.push(f);
    }
    if ctx.json {
        ctx.print(&json!({ "restored": done }), || {})?;
    }
    Ok(0)
}

pub async fn purge(ctx: &Ctx, a: TargetsArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    let mut done = Vec::new();
    for p in &a.paths {
        // A live file by its path, else a trashed one by the path it had.
        let id = match remote::resolve(&api, p).await {
            Ok(Node::File(f)) => f.id,
            Ok(_) => anyhow::bail!("{p} is a folder: purge takes files (rm -r trashes a folder)"),
            Err(e)
                if remote::is_not_found(&e)
                    || e.downcast_ref::<crate::client::ApiError>().is_none() =>
            {
                remote::trashed_file(&api, p).await?.id
            }
            Err(e) => return Err(e),
        };
        api.act(Method::DELETE, &format!("/v1/files/{id}/purge"))
            .await?;
        if !ctx.json {
            say!("purged {p}: its bytes are deleted");
        }
        done.push(json!({"path": p, "id": id}));
    }
    if ctx.json {
        ctx.print(&json!({ "purged": done }), || {})?;
    }
    Ok(0)
}

/// The exit status of a set of files' verdicts: quarantined beats failed beats clean. An image
/// flagged `nsfw` is quarantined only where the org's policy says so; flagged and available, it
/// is downloadable (status 0, and `ls` shows the verdict).
fn verdict_exit(files: &[&File]) -> i32 {
    let found = |v: &str| files.iter().any(|f| f.verdict.as_deref() == Some(v));
    let held_nsfw = files
        .iter()
        .any(|f| f.verdict.as_deref() == Some("nsfw") && f.status == "quarantined");
    if found("infected") || found("suspicious") || found("sensitive") || held_nsfw {
        EXIT_QUARANTINED
    } else if found("failed") {
        EXIT_SCAN_FAILED
    } else {
        0
    }
}

pub async fn put(ctx: &Ctx, a: PutArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    crate::pace::limit(a.limit_rate);
    let dest = remote::folder(&api, &a.to).await?;
    let state_dir = crate::profile::dir()?.join("uploads").join(&ctx.profile);
    let bars = Bars::new(ctx.json);
    let mut plans = Vec::new();
    let mut total_len = 0u64;
    for local in &a.files {
        let meta = std::fs::metadata(local)
            .with_context(|| format!("{}: cannot read it", local.display()))?;
        anyhow::ensure!(
            meta.is_file(),
            "{}: not a file (coffer put takes files)",
            local.display()
        );
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: the name is not UTF-8", local.display()))?
            .to_owned();
        total_len += meta.len();
        plans.push((local.clone(), name, meta.len()));
    }
    let total = (plans.len() > 1).then(|| bars.bytes("total", total_len));
    let jobs = plans.into_iter().map(|(local, name, len)| {
        let meter = Meter {
            file: bars.bytes(&name, len),
            total: total.clone(),
        };
        let job = crate::upload::Job {
            api: &api,
            local: local.clone(),
            folder_ref: dest.parent_ref(),
            name,
            state_dir: state_dir.clone(),
            parts_in_flight: usize::from(a.parts),
            meter: meter.clone(),
        };
        let (api, bars) = (&api, &bars);
        async move {
            let r = job.run().await;
            let r = match r {
                Ok(mut up) if a.wait => {
                    meter.file.set_message("scanning");
                    match crate::upload::wait_verdict(
                        api,
                        &up.file.id,
                        Duration::from_secs(a.wait_timeout),
                    )
                    .await
                    {
                        Ok(f) => {
                            up.file = f;
                            Ok(up)
                        }
                        Err(e) => Err(e.context(format!(
                            "uploaded as file {} ({}), but no verdict came",
                            up.file.id, up.file.status
                        ))),
                    }
                }
                r => r,
            };
            match &r {
                Ok(up) => {
                    meter.file.finish(&state_of(&up.file));
                    if !ctx.json {
                        let how = if up.resumed {
                            format!(
                                ", resumed: {} parts were stored, {} sent",
                                up.parts_resumed, up.parts_sent
                            )
                        } else {
                            String::new()
                        };
                        bars.say(&format!("{}: {}{how}", local.display(), state_of(&up.file)));
                    }
                }
                Err(e) => {
                    meter.file.finish("failed");
                    bars.warn(&format!("coffer: {}: {e:#}", local.display()));
                }
            }
            (local, r)
        }
    });
    let results: Vec<_> = futures_util::stream::iter(jobs)
        .buffer_unordered(usize::from(a.jobs))
        .collect()
        .await;
    if let Some(t) = &total {
        t.finish("");
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let files: Vec<&File> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|u| &u.file)
        .collect();
    if ctx.json {
        let items: Vec<_> = results
            .iter()
            .map(|(local, r)| match r {
                Ok(up) => json!({"local": local.display().to_string(), "ok": true, "file": up.file, "parts_sent": up.parts_sent, "parts_resumed": up.parts_resumed, "resumed": up.resumed}),
                Err(e) => json!({"local": local.display().to_string(), "ok": false, "error": format!("{e:#}")}),
            })
            .collect();
        ctx.print(&json!({ "uploads": items }), || {})?;
    }
    if failed > 0 {
        return Ok(1);
    }
    Ok(if a.wait { verdict_exit(&files) } else { 0 })
}

pub async fn get(ctx: &Ctx, a: GetArgs) -> anyhow::Result<i32> {
    let api = ctx.api()?;
    crate::pace::limit(a.limit_rate);
    let file = match remote::resolve(&api, &a.path).await? {
        Node::File(f) => f,
        _ => anyhow::bail!("{} is a folder: coffer get takes a file", a.path),
    };
    let target = match a.output {
        Some(p) if p.as_os_str() == "-" => crate::download::Target::Stdout,
        Some(p) if p.is_dir() => {
            crate::download::Target::Path(p.join(safe_local_name(&file.name)?))
        }
        Some(p) => crate::download::Target::Path(p),
        None => crate::download::Target::Path(PathBuf::from(safe_local_name(&file.name)?)),
    };
    let bars = Bars::new(ctx.json);
    let bar = bars.bytes(&file.name, file.size);
    let sha = crate::download::get(&api, &file, &target, a.force, &bar).await?;
    bar.finish("verified");
    let path = match &target {
        crate::download::Target::Stdout => "-".to_owned(),
        crate::download::Target::Path(p) => p.display().to_string(),
    };
    let out =
        json!({"id": file.id, "path": path, "size": file.size, "sha256": sha, "verified": true});
    match target {
        // Standard output holds the file's bytes: the result goes to standard error.
        crate::download::Target::Stdout if ctx.json => eprintln!("{out}"),
        crate::download::Target::Stdout => {}
        crate::download::Target::Path(_) => ctx.print(&out, || {
            say!("{path}: {} bytes, SHA-256 {sha} verified", file.size)
        })?,
    }
    Ok(0)
}

/// A stored name as a local file name: no path separators, not `.`/`..`, no control characters.
fn safe_local_name(name: &str) -> anyhow::Result<String> {
    let clean: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    anyhow::ensure!(
        !clean.is_empty() && clean != "." && clean != "..",
        "the file's name cannot be a local file name: give -o FILE"
    );
    Ok(clean)
}

pub async fn share(ctx: &Ctx, a: ShareArgs) -> anyhow::Result<i32> {
    let api: Api = ctx.api()?;
    let file = match remote::resolve(&api, &a.path).await? {
        Node::File(f) => f,
        _ => anyhow::bail!("{} is a folder: share links are to files", a.path),
    };
    let mut body = json!({"expires_in_seconds": a.expires});
    if a.password {
        body["password"] = json!(crate::account::ask_secret("Share password: ")?);
    }
    if let Some(n) = a.max_downloads {
        body["max_downloads"] = json!(n);
    }
    let s: ShareCreated = api
        .post(&format!("/v1/files/{}/shares", file.id), &body)
        .await?;
    ctx.print(&s, || {
        say!("{}", s.url);
        say!(
            "expires {}{}",
            s.expires_at,
            a.max_downloads
                .map(|n| format!(", after {n} downloads"))
                .unwrap_or_default()
        );
    })?;
    Ok(0)
}
