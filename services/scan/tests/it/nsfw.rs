//! The NSFW engine in the scan service: images are classified and their scores kept with the
//! model's version; a result reached under another model, or an older ClamAV signature
//! database, is scanned again.

use std::time::Duration;

use coffer_scan::ScanConfig;
use coffer_scan::testing::ScanStack;

use crate::harness::{job_done, scan_db, upload, verdict, verdict_name, worker};

fn picture() -> Vec<u8> {
    let img = image::RgbImage::from_fn(200, 150, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn images_are_classified_and_another_model_rescans() -> anyhow::Result<()> {
    // Workers run as processes of their own, each re-scan pass at its start.
    let stack = ScanStack::start(
        Default::default(),
        ScanConfig {
            workers: 0,
            ..ScanConfig::default()
        },
    )
    .await?;
    let fast = ScanConfig {
        workers: 1,
        poll_interval_ms: 100,
        ..ScanConfig::default()
    };
    let user = stack.user().await?;
    let mut db = scan_db(&stack).await?;
    let model_file = upload(&stack, &user, "a.png", "image/png", &picture()).await?;
    let clamav_file = upload(&stack, &user, "b.png", "image/png", &picture()).await?;
    let mut first = worker(&stack, "scan-1", &fast)?;
    for id in [&model_file, &clamav_file] {
        let f = verdict(&stack, &user, id).await?;
        assert_eq!(verdict_name(f.verdict), "clean");
        job_done(&mut db, id).await?;
    }
    first.start_kill()?;
    first.wait().await?;
    let stored = |id: &str| {
        let id = id.to_owned();
        async move {
            sqlx::query_as::<_, (String, serde_json::Value, serde_json::Value, uuid::Uuid)>(
                "SELECT ruleset_version, engines, versions, run_id FROM results WHERE subject_id = $1::uuid",
            )
            .bind(id)
        }
    };
    let (key, engines, versions, run) = stored(&model_file).await.fetch_one(&mut db).await?;
    // The scores and the model's version are kept with the result.
    let model = versions["nsfw"].as_str().unwrap().to_owned();
    assert!(
        model.starts_with("nsfwjs@4.4.0/mobilenet_v2+sha256:"),
        "{model}"
    );
    assert_eq!(
        key,
        format!(
            "rules:{};nsfw:{model}",
            versions["ruleset"].as_str().unwrap()
        )
    );
    let line = engines
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["engine"] == "nsfw")
        .expect("the engine ran");
    assert_eq!(line["scores"].as_object().unwrap().len(), 5, "{line}");

    // As if scanned an hour ago under an older model; and one recorded with a ClamAV database, by a
    // worker that runs none: without ClamAV its database decides nothing, that result stays.
    sqlx::query(
        "UPDATE results SET ruleset_version = replace(ruleset_version, $2, $3),
                completed_at = now() - interval '1 hour'
         WHERE subject_id = $1::uuid",
    )
    .bind(&model_file)
    .bind(format!(";nsfw:{model}"))
    .bind(";nsfw:nsfwjs@4.3.0/mobilenet_v2+sha256:0123456789ab")
    .execute(&mut db)
    .await?;
    sqlx::query(
        "UPDATE results SET clamav_db = 27000, completed_at = now() - interval '1 hour'
         WHERE subject_id = $1::uuid",
    )
    .bind(&clamav_file)
    .execute(&mut db)
    .await?;
    let (_, _, _, clamav_run) = stored(&clamav_file).await.fetch_one(&mut db).await?;
    let mut second = worker(&stack, "scan-2", &fast)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (now_key, _, _, now_run) = stored(&model_file).await.fetch_one(&mut db).await?;
        if now_run != run && now_key == key {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not re-scanned: {now_key}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stored(&clamav_file).await.fetch_one(&mut db).await?.3,
        clamav_run
    );
    second.start_kill()?;
    Ok(())
}

/// A clamd that finds nothing and answers VERSION with `version`: the ClamAV engine itself is
/// tested against a real clamd (flow.rs), whose database here (Coffer's own signatures) carries
/// no version number; what this test needs is clamd's answer changing as freshclam's would.
async fn clamd_answering(version: &'static str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = format!("tcp://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut cmd = Vec::new();
                let mut b = [0u8; 1];
                while s.read_exact(&mut b).await.is_ok() && b[0] != 0 {
                    cmd.push(b[0]);
                }
                if cmd == b"zVERSION" {
                    let _ = s.write_all(format!("{version}\0").as_bytes()).await;
                } else if cmd == b"zINSTREAM" {
                    loop {
                        let mut len = [0u8; 4];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let n = u32::from_be_bytes(len) as usize;
                        if n == 0 {
                            break;
                        }
                        let mut chunk = vec![0u8; n];
                        if s.read_exact(&mut chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = s.write_all(b"stream: OK\0").await;
                }
            });
        }
    });
    Ok(addr)
}

#[tokio::test]
async fn an_older_clamav_database_rescans_and_the_same_one_does_not() -> anyhow::Result<()> {
    let today = clamd_answering("ClamAV 1.0.7/27470/Mon Nov 30 09:35:01 2026").await?;
    let stack = ScanStack::start(
        Default::default(),
        ScanConfig {
            workers: 0,
            ..ScanConfig::default()
        },
    )
    .await?;
    let with = |clamd: &str| ScanConfig {
        workers: 1,
        poll_interval_ms: 100,
        clamd: Some(clamd.to_owned()),
        ..ScanConfig::default()
    };
    let user = stack.user().await?;
    let mut db = scan_db(&stack).await?;
    let older = upload(&stack, &user, "older.txt", "text/plain", b"older words").await?;
    let same = upload(&stack, &user, "same.txt", "text/plain", b"same words").await?;
    let mut first = worker(&stack, "scan-c1", &with(&today))?;
    for id in [&older, &same] {
        verdict(&stack, &user, id).await?;
        job_done(&mut db, id).await?;
    }
    first.start_kill()?;
    first.wait().await?;
    let row = async |db: &mut sqlx::PgConnection, id: &str| {
        sqlx::query_as::<_, (Option<i32>, uuid::Uuid)>(
            "SELECT clamav_db, run_id FROM results WHERE subject_id = $1::uuid",
        )
        .bind(id)
        .fetch_one(db)
        .await
    };
    assert_eq!(row(&mut db, &older).await?.0, Some(27470));
    // One result as if from a replica a freshclam behind; both from an hour ago.
    sqlx::query(
        "UPDATE results SET clamav_db = CASE WHEN subject_id = $1::uuid THEN 27469 ELSE clamav_db END,
                completed_at = now() - interval '1 hour'
         WHERE subject_id IN ($1::uuid, $2::uuid)",
    )
    .bind(&older)
    .bind(&same)
    .execute(&mut db)
    .await?;
    let wait_rescanned =
        async |db: &mut sqlx::PgConnection, id: &str, run: uuid::Uuid, want: i32| {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let (now_db, now_run) = row(db, id).await?;
                if now_run != run {
                    assert_eq!(now_db, Some(want));
                    return anyhow::Ok(());
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "{id} not re-scanned"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
    let (_, older_run) = row(&mut db, &older).await?;
    let (_, same_run) = row(&mut db, &same).await?;
    let mut second = worker(&stack, "scan-c2", &with(&today))?;
    wait_rescanned(&mut db, &older, older_run, 27470).await?;
    // The re-scan pass ran: the result under the same database stays.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(row(&mut db, &same).await?.1, same_run);
    second.start_kill()?;
    second.wait().await?;

    // freshclam brings 27471: everything scanned before it is scanned again.
    let tomorrow = clamd_answering("ClamAV 1.0.7/27471/Tue Dec  1 09:35:01 2026").await?;
    sqlx::query("UPDATE results SET completed_at = now() - interval '1 hour'")
        .execute(&mut db)
        .await?;
    let (_, older_run) = row(&mut db, &older).await?;
    let mut third = worker(&stack, "scan-c3", &with(&tomorrow))?;
    wait_rescanned(&mut db, &same, same_run, 27471).await?;
    wait_rescanned(&mut db, &older, older_run, 27471).await?;
    third.start_kill()?;
    Ok(())
}
