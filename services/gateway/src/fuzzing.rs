//! Entry points for the coverage-guided fuzzers (`fuzz/`, `scripts/fuzz`): every body and query
//! string the public API parses, through the very functions the handlers use. Nothing here is
//! called by the gateway itself.

use axum::extract::Query;
use serde::de::DeserializeOwned;

use crate::{account, audit, body, files, scans, web};

fn json<T: DeserializeOwned>(data: &[u8]) {
    // The error's message is built too: it must name the field and never fail.
    if let Err(e) = body::parse::<T>(data) {
        assert!(!e.message.is_empty());
    }
}

/// Every JSON body the API takes (and the share page's form body).
pub fn bodies(data: &[u8]) {
    json::<account::SignupBody>(data);
    json::<account::LoginBody>(data);
    json::<account::ApiKeyBody>(data);
    json::<account::PasswordBody>(data);
    json::<account::MemberBody>(data);
    json::<account::TotpConfirmBody>(data);
    json::<account::RestoreBody>(data);
    json::<files::CreateFolderBody>(data);
    json::<files::UpdateFolderBody>(data);
    json::<files::CreateFileBody>(data);
    json::<files::PartNumbers>(data);
    json::<files::CompleteBody>(data);
    json::<files::UpdateFileBody>(data);
    json::<files::ShareBody>(data);
    json::<scans::CreateScanBody>(data);
    json::<scans::WebhookBody>(data);
    json::<scans::SettingsBody>(data);
    json::<web::RedeemBody>(data);
    let _ = web::SharePassword::from_form(data);
}

fn query<T: DeserializeOwned>(uri: &axum::http::Uri) {
    let _ = Query::<T>::try_from_uri(uri);
}

/// Every query string the API reads, as the handlers' `Query` extractor parses it.
pub fn queries(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = format!("/?{text}").parse::<axum::http::Uri>() else {
        return;
    };
    query::<files::ListQuery>(&uri);
    query::<files::RedeemQuery>(&uri);
    query::<audit::ListQuery>(&uri);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_body_and_query_parses_its_seed_without_failing() {
        super::bodies(br#"{"email": "a@example.com", "password": "x"}"#);
        super::bodies(b"password=a%20b");
        super::bodies(b"\xff{");
        super::queries(b"limit=10&cursor=abc");
        super::queries(b"%ff=%zz&&=");
    }
}
