//! Token mint and verify, beside a `jsonwebtoken` HS256 verify of equivalent claims.
//!
//! cargo bench -p coffer-token --bench token

use coffer_token::{
    Audience, MasterKeyRing, Minter, Role, Scopes, Subject, Verifier, VerifyOptions,
};
use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct JwtClaims {
    kid: String,
    sub: String,
    org: String,
    role: String,
    scopes: Vec<String>,
    iat: i64,
    exp: i64,
    rid: String,
    aud: String,
}

fn bench(c: &mut Criterion) {
    let ring = MasterKeyRing::generate("k1");
    let minter = Minter::new(&ring);
    let verifier = Verifier::new(
        &ring.derive_audience_ring(Audience::Metadata),
        VerifyOptions::default(),
    );
    let subject = Subject {
        user_id: Uuid::new_v4(),
        org_id: Uuid::new_v4(),
        role: Role::Admin,
        scopes: Scopes::all(),
        credential: coffer_token::Credential::Session,
        request_id: Uuid::new_v4().simple().to_string(),
    };
    let now = coffer_token::unix_now();
    let token = minter.mint(&subject, &Audience::ALL, now, 60).unwrap();

    c.bench_function("coffer_token/mint_5_audiences", |b| {
        b.iter(|| {
            minter
                .mint(black_box(&subject), &Audience::ALL, now, 60)
                .unwrap()
        })
    });
    c.bench_function("coffer_token/verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), now).unwrap())
    });

    let secret = [7u8; 32];
    let claims = JwtClaims {
        kid: "k1".into(),
        sub: subject.user_id.to_string(),
        org: subject.org_id.to_string(),
        role: "admin".into(),
        scopes: Scopes::all().iter().map(|s| s.name().to_owned()).collect(),
        iat: now,
        exp: now + 60,
        rid: subject.request_id.clone(),
        aud: "metadata".into(),
    };
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let key = jsonwebtoken::DecodingKey::from_secret(&secret);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["metadata"]);
    c.bench_function("jsonwebtoken/hs256_verify", |b| {
        b.iter(|| jsonwebtoken::decode::<JwtClaims>(black_box(&jwt), &key, &validation).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
