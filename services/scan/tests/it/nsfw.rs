//! The NSFW engine in the scan service: images are classified and their scores kept with the
//! model's version; a result reached under another model, or another ClamAV signature
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
async fn images_are_classified_and_another_model_or_clamav_database_rescans() -> anyhow::Result<()>
{
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
            "rules:{};nsfw:{model};clamav:none",
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

    // As if scanned an hour ago under an older model, and under an older ClamAV database.
    for (id, from, to) in [
        (
            &model_file,
            format!(";nsfw:{model};"),
            ";nsfw:nsfwjs@4.3.0/mobilenet_v2+sha256:0123456789ab;".to_owned(),
        ),
        (
            &clamav_file,
            ";clamav:none".to_owned(),
            ";clamav:ClamAV 1.0.7/27000".to_owned(),
        ),
    ] {
        sqlx::query(
            "UPDATE results SET ruleset_version = replace(ruleset_version, $2, $3),
                    completed_at = now() - interval '1 hour'
             WHERE subject_id = $1::uuid",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .execute(&mut db)
        .await?;
    }
    let (_, _, _, clamav_run) = stored(&clamav_file).await.fetch_one(&mut db).await?;
    let mut second = worker(&stack, "scan-2", &fast)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (id, before) in [(&model_file, run), (&clamav_file, clamav_run)] {
        loop {
            let (now_key, _, _, now_run) = stored(id).await.fetch_one(&mut db).await?;
            if now_run != before && now_key == key {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} not re-scanned: {now_key}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    second.start_kill()?;
    Ok(())
}
