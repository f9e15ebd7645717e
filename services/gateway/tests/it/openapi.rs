//! The OpenAPI document the gateway serves, checked against what it answers: every test's
//! answers pass through `harness::conforms` (in `User::ok` and `error_code`); here, that a body
//! with one field renamed, added or missing does not.

use reqwest::Method;
use serde_json::{Value, json};

use crate::files::User;
use crate::harness::{Harness, conforms};

#[tokio::test]
async fn answers_follow_the_document_and_a_renamed_field_does_not() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let doc: Value = h
        .http
        .get(h.url("/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/files/{id}"]["get"].is_object());

    let u = User::new(&h, "openapi@example.com").await?;
    let folder = u
        .ok(
            Method::POST,
            "/v1/folders",
            Some(json!({"name": "Docs"})),
            201,
        )
        .await?;
    let id = u.upload("a.txt", None, b"abc").await?;
    let file = u
        .ok(Method::GET, &format!("/v1/files/{id}"), None, 200)
        .await?;
    conforms(&Method::GET, &format!("/v1/files/{id}"), 200, &file).map_err(anyhow::Error::msg)?;

    let mut renamed = file.clone();
    let value = renamed
        .as_object_mut()
        .unwrap()
        .remove("folder_id")
        .unwrap();
    renamed["folderId"] = value;
    assert!(conforms(&Method::GET, &format!("/v1/files/{id}"), 200, &renamed).is_err());

    let mut extra = folder.clone();
    extra["owner_email"] = json!("someone@example.com");
    assert!(conforms(&Method::POST, "/v1/folders", 201, &extra).is_err());

    let mut missing = folder.clone();
    missing.as_object_mut().unwrap().remove("created_at");
    assert!(conforms(&Method::POST, "/v1/folders", 201, &missing).is_err());

    let mut wrong_type = file;
    wrong_type["size"] = json!("3");
    assert!(conforms(&Method::GET, &format!("/v1/files/{id}"), 200, &wrong_type).is_err());
    // An undocumented status is refused too.
    assert!(conforms(&Method::POST, "/v1/folders", 200, &folder).is_err());
    Ok(())
}
