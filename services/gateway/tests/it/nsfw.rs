//! The NSFW engine through the public API, with the real scan service and the real model: the
//! org's policy (`GET`/`PUT /v1/org/settings`, owners and admins from a session) decides what an
//! image flagged as not safe for work becomes — `flag` keeps it downloadable with the verdict and
//! scores shown (`GET /v1/files/{id}/scan`), `quarantine` refuses its download, `off` records
//! nothing. A finding of another engine outranks it; images inside archives count; a hostile
//! image ends in a verdict.
//!
//! No image here is not safe for work: the thresholds are set so low that any picture reaches
//! them, which is what the thresholds are for. That the model's scores are nsfwjs's own is
//! shown by libs/nsfw/tests/reference.rs.

use std::io::Write as _;

use image::{Rgb, RgbImage};
use reqwest::Method;
use serde_json::{Value, json};

use crate::files::User;
use crate::scans::{scanning, wait};

fn picture(seed: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(200, 150, |x, y| {
        Rgb([
            (x * 255 / 200) as u8,
            (y * 255 / 150) as u8,
            ((x * y + seed) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for b in bytes {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A 60-byte PNG that declares 100 000 × 100 000 pixels.
fn bomb() -> Vec<u8> {
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
        out
    };
    let mut ihdr = 100_000u32.to_be_bytes().to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

fn zipped(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap().into_inner()
}

/// Every class at or above 1e-6: any picture is flagged `porn`, `hentai` and `sexy`.
fn settings(policy: &str) -> Value {
    json!({"nsfw": {"policy": policy, "thresholds": {"porn": 1e-6, "hentai": 1e-6, "sexy": 1e-6}}})
}

/// Uploads, completes and waits for the verdict; returns the file.
async fn scanned(u: &User<'_>, name: &str, bytes: &[u8]) -> anyhow::Result<Value> {
    let id = u.upload(name, None, bytes).await?;
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    match wait(u, &format!("/v1/files/{id}"), "status", &["scanning"]).await {
        Ok(v) => Ok(v),
        Err(e) => {
            use sqlx::Connection as _;
            let mut c =
                sqlx::PgConnection::connect(&u.h.stack.pg.superuser_url(&u.h.scan.setup.database))
                    .await?;
            let row: (String, i32, Option<String>) = sqlx::query_as(
                "SELECT state, attempts, last_error FROM scan.jobs WHERE subject_id = $1::uuid",
            )
            .bind(&id)
            .fetch_one(&mut c)
            .await?;
            anyhow::bail!("{e}: {row:?}")
        }
    }
}

fn nsfw_line(report: &Value) -> Option<&Value> {
    report["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["engine"] == "nsfw")
}

#[tokio::test]
async fn the_orgs_nsfw_policy_flags_quarantines_or_ignores_images() -> anyhow::Result<()> {
    let h = scanning().await?;
    let owner = User::new(&h, "nsfw-owner@example.com").await?;
    let other = User::new(&h, "nsfw-other@example.com").await?;

    // The defaults, with the model that classifies.
    let s = owner.ok(Method::GET, "/v1/org/settings", None, 200).await?;
    assert_eq!(s["nsfw"]["policy"], "flag");
    assert_eq!(
        s["nsfw"]["thresholds"],
        json!({"porn": 0.7, "hentai": 0.7, "sexy": 0.9})
    );
    let model = s["nsfw"]["model"].as_str().unwrap().to_owned();
    assert!(
        model.starts_with("nsfwjs@4.4.0/mobilenet_v2+sha256:"),
        "{model}"
    );

    // Under the default thresholds a gradient is no finding.
    let plain = scanned(&owner, "gradient.png", &picture(1)).await?;
    assert_eq!(
        (plain["status"].as_str(), plain["verdict"].as_str()),
        (Some("available"), Some("clean"))
    );
    let report = owner
        .ok(
            Method::GET,
            &format!("/v1/files/{}/scan", plain["id"].as_str().unwrap()),
            None,
            200,
        )
        .await?;
    let line = nsfw_line(&report).expect("the engine ran on the image");
    assert_eq!(line["clean"], true);
    let scores = line["scores"].as_object().unwrap();
    assert_eq!(
        scores.keys().map(String::as_str).collect::<Vec<_>>(),
        ["drawing", "hentai", "neutral", "porn", "sexy"]
    );
    let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{scores:?}");
    assert_eq!(report["versions"]["nsfw"], model.as_str());

    // flag: the verdict `nsfw`, the scores shown, the file downloadable.
    owner
        .ok(Method::PUT, "/v1/org/settings", Some(settings("flag")), 200)
        .await?;
    let flagged = scanned(&owner, "flagged.png", &picture(2)).await?;
    let id = flagged["id"].as_str().unwrap();
    assert_eq!(
        (flagged["status"].as_str(), flagged["verdict"].as_str()),
        (Some("available"), Some("nsfw"))
    );
    owner
        .ok(Method::GET, &format!("/v1/files/{id}/download"), None, 200)
        .await?;
    let report = owner
        .ok(Method::GET, &format!("/v1/files/{id}/scan"), None, 200)
        .await?;
    assert_eq!(report["verdict"], "nsfw");
    let line = nsfw_line(&report).unwrap();
    assert_eq!(
        (line["clean"].as_bool(), line["signature"].as_str()),
        (Some(false), Some("hentai,porn,sexy"))
    );
    assert!(line["scores"]["porn"].as_f64().unwrap() >= 1e-6);
    // Another org sees neither the report nor the settings.
    assert_eq!(
        other
            .err(Method::GET, &format!("/v1/files/{id}/scan"), None)
            .await?
            .0,
        404
    );
    let theirs = other.ok(Method::GET, "/v1/org/settings", None, 200).await?;
    assert_eq!(theirs["nsfw"]["thresholds"]["porn"], 0.7);

    // An image that also holds a private key: `sensitive` outranks `nsfw`.
    let mut keyed = picture(3);
    keyed.extend(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
    let f = scanned(&owner, "keyed.png", &keyed).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("quarantined"), Some("sensitive"))
    );

    // An image inside an archive is classified too.
    let f = scanned(
        &owner,
        "photos.zip",
        &zipped("holiday/beach.png", &picture(4)),
    )
    .await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("available"), Some("nsfw"))
    );

    // An archive of 120 images: 100 are classified, the rest counted `too-many`.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let one = {
        let img = RgbImage::from_pixel(2, 2, Rgb([200, 150, 120]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    for i in 0..120 {
        w.start_file(
            format!("p/{i}.png"),
            zip::write::SimpleFileOptions::default(),
        )?;
        w.write_all(&one)?;
    }
    let many = w.finish()?.into_inner();
    let f = scanned(&owner, "many.zip", &many).await?;
    let report = owner
        .ok(
            Method::GET,
            &format!("/v1/files/{}/scan", f["id"].as_str().unwrap()),
            None,
            200,
        )
        .await?;
    assert_eq!(
        nsfw_line(&report).unwrap()["unclassified"],
        json!({"too-many": 20}),
        "{report}"
    );

    // A decompression bomb: refused by the limits, classified as nothing, scanned all the same.
    let f = scanned(&owner, "huge.png", &bomb()).await?;
    assert_eq!(f["verdict"], "clean", "{f}");
    let report = owner
        .ok(
            Method::GET,
            &format!("/v1/files/{}/scan", f["id"].as_str().unwrap()),
            None,
            200,
        )
        .await?;
    assert_eq!(
        nsfw_line(&report).unwrap()["unclassified"],
        json!({"too-large": 1})
    );

    // quarantine: the same verdict, and the download refused.
    owner
        .ok(
            Method::PUT,
            "/v1/org/settings",
            Some(settings("quarantine")),
            200,
        )
        .await?;
    let held = scanned(&owner, "held.png", &picture(5)).await?;
    let held_id = held["id"].as_str().unwrap();
    assert_eq!(
        (held["status"].as_str(), held["verdict"].as_str()),
        (Some("quarantined"), Some("nsfw"))
    );
    assert_eq!(
        owner
            .err(Method::GET, &format!("/v1/files/{held_id}/download"), None)
            .await?,
        (403, "quarantined".into())
    );

    // off: no image is classified, nothing is recorded.
    owner
        .ok(Method::PUT, "/v1/org/settings", Some(settings("off")), 200)
        .await?;
    let f = scanned(&owner, "ignored.png", &picture(6)).await?;
    assert_eq!(
        (f["status"].as_str(), f["verdict"].as_str()),
        (Some("available"), Some("clean"))
    );
    let report = owner
        .ok(
            Method::GET,
            &format!("/v1/files/{}/scan", f["id"].as_str().unwrap()),
            None,
            200,
        )
        .await?;
    assert!(nsfw_line(&report).is_none(), "{report}");
    Ok(())
}

#[tokio::test]
async fn only_owners_and_admins_change_the_settings_and_bad_ones_are_refused() -> anyhow::Result<()>
{
    let h = scanning().await?;
    let owner = User::new(&h, "settings-owner@example.com").await?;
    owner
        .ok(
            Method::POST,
            "/v1/members",
            Some(json!({"email": "settings-member@example.com", "password": crate::harness::PASSWORD, "role": "member"})),
            201,
        )
        .await?;
    let member = User::login(&h, "settings-member@example.com").await?;
    // A member reads them, and cannot change them.
    member
        .ok(Method::GET, "/v1/org/settings", None, 200)
        .await?;
    assert_eq!(
        member
            .err(Method::PUT, "/v1/org/settings", Some(settings("off")))
            .await?
            .0,
        403
    );
    // An API key, even the owner's, cannot change them (org management is a session's).
    let key = owner
        .ok(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "k", "scopes": ["files:write", "files:read"]})),
            201,
        )
        .await?["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = h
        .http
        .put(h.url("/v1/org/settings"))
        .bearer_auth(&key)
        .json(&settings("off"))
        .send()
        .await?;
    assert_eq!(res.status(), 403);
    let res = h
        .http
        .get(h.url("/v1/org/settings"))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    // Clear errors that name the field.
    for (body, field) in [
        (
            json!({"nsfw": {"policy": "block", "thresholds": {"porn": 0.5, "hentai": 0.5, "sexy": 0.5}}}),
            "nsfw_policy",
        ),
        (
            json!({"nsfw": {"policy": "flag", "thresholds": {"porn": 0.0, "hentai": 0.5, "sexy": 0.5}}}),
            "porn",
        ),
        (
            json!({"nsfw": {"policy": "flag", "thresholds": {"porn": 0.5, "hentai": 1.5, "sexy": 0.5}}}),
            "hentai",
        ),
    ] {
        let res = owner
            .send(Method::PUT, "/v1/org/settings", Some(body))
            .await?;
        assert_eq!(res.status(), 400);
        let text = res.text().await?;
        assert!(text.contains(field), "{text}");
    }
    for body in [
        json!({"nsfw": {"policy": "flag"}}),
        json!({"nsfw": {"policy": "flag", "thresholds": {"porn": 0.5, "hentai": 0.5, "sexy": 0.5, "drawing": 0.1}}}),
        json!({"nsfw": {"policy": "flag", "thresholds": {"porn": "high", "hentai": 0.5, "sexy": 0.5}}}),
    ] {
        assert_eq!(
            owner
                .err(Method::PUT, "/v1/org/settings", Some(body))
                .await?
                .0,
            400
        );
    }
    // Unchanged by the refusals.
    let s = owner.ok(Method::GET, "/v1/org/settings", None, 200).await?;
    assert_eq!(s["nsfw"]["policy"], "flag");
    // A change is audited, as the owner who made it; the refusals are not changes.
    owner
        .ok(
            Method::PUT,
            "/v1/org/settings",
            Some(settings("quarantine")),
            200,
        )
        .await?;
    let log = owner
        .ok(
            Method::GET,
            "/v1/audit?action=org.settings_update",
            None,
            200,
        )
        .await?;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["target"], format!("org:{}", owner.org));
    assert!(
        items[0]["actor"].as_str().unwrap().starts_with("user:"),
        "{log}"
    );
    Ok(())
}

/// What metadata does with verdicts, sent as the scan service sends them.
async fn record(
    u: &User<'_>,
    id: &str,
    verdict: coffer_proto::v1::Verdict,
    hold: bool,
    rescan: bool,
    sha256: &str,
) -> anyhow::Result<()> {
    u.h.stack
        .metadata_as("scan")?
        .record_verdict(coffer_proto::v1::RecordVerdictRequest {
            org_id: u.org.clone(),
            file_id: id.into(),
            verdict: verdict as i32,
            hold,
            rescan,
            sha256: sha256.into(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_rescan_finding_the_same_keeps_a_release_and_other_bytes_are_never_served()
-> anyhow::Result<()> {
    use coffer_proto::v1::Verdict;
    let h = crate::harness::Harness::start().await?;
    let u = User::new(&h, "nsfw-rescan@example.com").await?;
    let bytes = picture(7);
    let sha = crate::files::sha256_hex(&bytes);
    let status = async |id: &str| -> anyhow::Result<(String, String)> {
        let f = u
            .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
            .await?;
        Ok((
            f["status"].as_str().unwrap().to_owned(),
            f["verdict"].as_str().unwrap_or_default().to_owned(),
        ))
    };
    // Held by the policy, released by an admin.
    let id = u.upload("held.png", None, &bytes).await?;
    u.ok(Method::POST, &format!("/v1/files/{id}/complete"), None, 200)
        .await?;
    record(&u, &id, Verdict::Nsfw, true, false, &sha).await?;
    assert_eq!(status(&id).await?, ("quarantined".into(), "nsfw".into()));
    u.ok(Method::POST, &format!("/v1/files/{id}/release"), None, 200)
        .await?;
    // A re-scan under newer engines that finds the same: the release stands.
    record(&u, &id, Verdict::Nsfw, true, true, &sha).await?;
    assert_eq!(status(&id).await?, ("available".into(), "nsfw".into()));
    // One that finds worse quarantines it again.
    record(&u, &id, Verdict::Infected, false, true, &sha).await?;
    assert_eq!(
        status(&id).await?,
        ("quarantined".into(), "infected".into())
    );

    // `nsfw` unheld on bytes other than the declared ones: `failed`, never downloadable.
    let other = u.upload("other.png", None, &bytes).await?;
    u.ok(
        Method::POST,
        &format!("/v1/files/{other}/complete"),
        None,
        200,
    )
    .await?;
    let wrong = crate::files::sha256_hex(b"other bytes");
    record(&u, &other, Verdict::Nsfw, false, false, &wrong).await?;
    assert_eq!(
        status(&other).await?,
        ("quarantined".into(), "failed".into())
    );
    // And such a verdict must say what it hashed.
    let third = u.upload("third.png", None, &bytes).await?;
    u.ok(
        Method::POST,
        &format!("/v1/files/{third}/complete"),
        None,
        200,
    )
    .await?;
    assert!(
        record(&u, &third, Verdict::Nsfw, false, false, "")
            .await
            .is_err()
    );
    assert_eq!(status(&third).await?.0, "scanning");
    Ok(())
}
