//! Properties of the user token: nothing but an untouched, current token for the right audience,
//! under a listed key, verifies.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coffer_token::{
    Audience, AudienceKeyRing, Credential, MasterKeyRing, Minter, Role, Scope, Scopes, Subject,
    TokenError, Verifier, VerifyOptions,
};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;
use uuid::Uuid;

const NOW: i64 = 1_800_000_000;
const SKEW: i64 = 5;

fn subject(user: u128, org: u128, role: Role, scopes: Scopes, request_id: &str) -> Subject {
    Subject {
        user_id: Uuid::from_u128(user),
        org_id: Uuid::from_u128(org),
        role,
        scopes,
        credential: if user == 0 {
            Credential::Service
        } else {
            Credential::Session
        },
        request_id: request_id.to_owned(),
    }
}

fn verifier(ring: &MasterKeyRing, audience: Audience) -> Verifier {
    Verifier::new(
        &ring.derive_audience_ring(audience),
        VerifyOptions { skew_secs: SKEW },
    )
}

fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let rest = token.strip_prefix("ct1.").unwrap();
    let (b, t) = rest.split_once('.').unwrap();
    (
        URL_SAFE_NO_PAD.decode(b).unwrap(),
        URL_SAFE_NO_PAD.decode(t).unwrap(),
    )
}

fn join(body: &[u8], tags: &[u8]) -> String {
    format!(
        "ct1.{}.{}",
        URL_SAFE_NO_PAD.encode(body),
        URL_SAFE_NO_PAD.encode(tags)
    )
}

/// Signs an arbitrary body exactly as the minter would, with a key read back from a ring file, so
/// that tests can build correctly tagged tokens the public API refuses to mint.
fn forge_with_real_key(ring: &AudienceKeyRing, body: &[u8]) -> String {
    let text = ring.to_toml();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .unwrap()
        .trim_end_matches('"');
    let key = STANDARD.decode(secret).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(b"coffer.user-token.v1\x00");
    mac.update(ring.audience().name().as_bytes());
    mac.update(&[0]);
    mac.update(body);
    let mut tags = vec![2u8]; // metadata's wire id
    tags.extend_from_slice(&mac.finalize().into_bytes());
    join(body, &tags)
}

fn arb_subject() -> impl Strategy<Value = Subject> {
    (
        any::<u128>(),
        any::<u128>(),
        prop_oneof![Just(Role::Owner), Just(Role::Admin), Just(Role::Member)],
        proptest::collection::vec(
            prop_oneof![
                Just(Scope::FilesRead),
                Just(Scope::FilesWrite),
                Just(Scope::AuditRead),
                Just(Scope::ScansWrite)
            ],
            0..4,
        ),
        "[A-Za-z0-9._-]{1,64}",
        prop_oneof![
            Just(None),
            Just(Some(Credential::Session)),
            any::<u128>().prop_map(|k| Some(Credential::ApiKey(Uuid::from_u128(k))))
        ],
    )
        .prop_map(|(u, o, r, s, id, credential)| {
            let mut subject = subject(u, o, r, s.into_iter().collect(), &id);
            // None: a service token (the nil user).
            match credential {
                Some(c) if u != 0 => subject.credential = c,
                _ => {
                    subject.user_id = Uuid::nil();
                    subject.credential = Credential::Service;
                }
            }
            subject
        })
}

#[test]
fn round_trip_for_every_audience() {
    let ring = MasterKeyRing::generate("k1");
    let minter = Minter::new(&ring);
    let s = subject(1, 2, Role::Admin, Scopes::all(), "req-1");
    let token = minter.mint(&s, &Audience::ALL, NOW, 60).unwrap();
    for audience in Audience::ALL {
        let claims = verifier(&ring, audience).verify(&token, NOW).unwrap();
        assert_eq!(claims.user_id, s.user_id);
        assert_eq!(claims.org_id, s.org_id);
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.scopes, Scopes::all());
        assert_eq!(claims.key_id, "k1");
        assert_eq!(claims.request_id, "req-1");
        assert_eq!(claims.expires_at, NOW + 60);
    }
}

#[test]
fn the_credential_round_trips_and_a_service_is_the_nil_user_only() {
    let ring = MasterKeyRing::generate("k1");
    let minter = Minter::new(&ring);
    let v = verifier(&ring, Audience::Metadata);
    let key = Uuid::from_u128(77);
    for credential in [
        Credential::Session,
        Credential::ApiKey(key),
        Credential::Service,
    ] {
        let mut s = subject(1, 2, Role::Owner, Scopes::all(), "r");
        if credential == Credential::Service {
            s.user_id = Uuid::nil();
        }
        s.credential = credential;
        let token = minter.mint(&s, &[Audience::Metadata], NOW, 30).unwrap();
        assert_eq!(v.verify(&token, NOW).unwrap().credential, credential);
    }
    assert_eq!(Credential::ApiKey(key).api_key_id(), Some(key));

    // A service credential with a user, or a user credential with the nil user, is not minted...
    let mut s = subject(1, 2, Role::Member, Scopes::NONE, "r");
    s.credential = Credential::Service;
    assert!(minter.mint(&s, &[Audience::Metadata], NOW, 30).is_err());
    let mut s = subject(0, 2, Role::Member, Scopes::NONE, "r");
    s.credential = Credential::Session;
    assert!(minter.mint(&s, &[Audience::Metadata], NOW, 30).is_err());

    // ...and a correctly tagged body that says so is refused. The credential byte follows the
    // scopes: version, key id "k1", user, org, role, scopes.
    let aud_ring = ring.derive_audience_ring(Audience::Metadata);
    let token = minter
        .mint(
            &subject(1, 2, Role::Member, Scopes::NONE, "r"),
            &[Audience::Metadata],
            NOW,
            30,
        )
        .unwrap();
    let (mut body, _) = split(&token);
    let at = 1 + 1 + 2 + 16 + 16 + 1 + 2;
    assert_eq!(body[at], 1, "session");
    assert!(
        v.verify(&forge_with_real_key(&aud_ring, &body), NOW)
            .is_ok()
    );
    body[at] = 3;
    assert_eq!(
        v.verify(&forge_with_real_key(&aud_ring, &body), NOW),
        Err(TokenError::Malformed)
    );
    body[at] = 9;
    assert_eq!(
        v.verify(&forge_with_real_key(&aud_ring, &body), NOW),
        Err(TokenError::Malformed)
    );
}

#[test]
fn times_are_bounded_by_the_skew() {
    let ring = MasterKeyRing::generate("k1");
    let minter = Minter::new(&ring);
    let v = verifier(&ring, Audience::Metadata);
    let s = subject(1, 2, Role::Member, Scopes::NONE, "r");
    let token = minter.mint(&s, &[Audience::Metadata], NOW, 30).unwrap();
    // Expiry: accepted up to the skew, refused one second beyond it.
    assert!(v.verify(&token, NOW + 30 + SKEW).is_ok());
    assert_eq!(
        v.verify(&token, NOW + 30 + SKEW + 1),
        Err(TokenError::Expired)
    );
    // Issued in the future: accepted within the skew, refused one second beyond it.
    assert!(v.verify(&token, NOW - SKEW).is_ok());
    assert_eq!(
        v.verify(&token, NOW - SKEW - 1),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn minting_refuses_bad_input() {
    let minter = Minter::new(&MasterKeyRing::generate("k1"));
    let ok = subject(1, 2, Role::Member, Scopes::NONE, "r");
    assert!(minter.mint(&ok, &[], NOW, 30).is_err());
    assert!(minter.mint(&ok, &[Audience::Scan], NOW, 61).is_err());
    assert!(minter.mint(&ok, &[Audience::Scan], NOW, 0).is_err());
    for bad in ["", "has space", "é", &"x".repeat(65)] {
        let s = subject(1, 2, Role::Member, Scopes::NONE, bad);
        assert!(
            minter.mint(&s, &[Audience::Scan], NOW, 30).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn wrong_audience_and_moved_tags_are_refused() {
    let ring = MasterKeyRing::generate("k1");
    let minter = Minter::new(&ring);
    let s = subject(1, 2, Role::Member, Scopes::NONE, "r");
    let token = minter.mint(&s, &[Audience::Gateway], NOW, 30).unwrap();
    assert_eq!(
        verifier(&ring, Audience::Metadata).verify(&token, NOW),
        Err(TokenError::WrongAudience)
    );
    // Relabel gateway's tag as metadata's: the tag is bound to its audience, so it fails.
    let (body, mut tags) = split(&token);
    tags[0] = 2;
    assert_eq!(
        verifier(&ring, Audience::Metadata).verify(&join(&body, &tags), NOW),
        Err(TokenError::BadTag)
    );
}

#[test]
fn another_version_is_refused_even_when_correctly_tagged() {
    let ring = MasterKeyRing::generate("k1");
    let minter = Minter::new(&ring);
    let aud_ring = ring.derive_audience_ring(Audience::Metadata);
    let v = Verifier::new(&aud_ring, VerifyOptions::default());
    let token = minter
        .mint(
            &subject(1, 2, Role::Owner, Scopes::all(), "r"),
            &[Audience::Metadata],
            NOW,
            30,
        )
        .unwrap();
    let (mut body, _) = split(&token);
    // Sanity: a forged copy of the untouched body verifies, so the forge helper is faithful.
    assert!(
        v.verify(&forge_with_real_key(&aud_ring, &body), NOW)
            .is_ok()
    );
    for version in [0u8, 1, 3, 255] {
        body[0] = version;
        assert_eq!(
            v.verify(&forge_with_real_key(&aud_ring, &body), NOW),
            Err(TokenError::UnsupportedVersion)
        );
    }
}

#[test]
fn a_correctly_tagged_overlong_lifetime_is_refused() {
    let ring = MasterKeyRing::generate("k1");
    let aud_ring = ring.derive_audience_ring(Audience::Metadata);
    let v = Verifier::new(&aud_ring, VerifyOptions::default());
    let token = Minter::new(&ring)
        .mint(
            &subject(1, 2, Role::Owner, Scopes::all(), "r"),
            &[Audience::Metadata],
            NOW,
            30,
        )
        .unwrap();
    let (mut body, _) = split(&token);
    // expires_at sits 8 bytes before the request id (len byte + 1 char) at the end.
    let exp_at = body.len() - 2 - 8;
    body[exp_at..exp_at + 8].copy_from_slice(&(NOW + 3600).to_be_bytes());
    assert_eq!(
        v.verify(&forge_with_real_key(&aud_ring, &body), NOW),
        Err(TokenError::LifetimeTooLong)
    );
}

#[test]
fn rotation_add_activate_retire() {
    let mut ring = MasterKeyRing::generate("k1");
    let s = subject(1, 2, Role::Member, Scopes::NONE, "r");
    let old = Minter::new(&ring)
        .mint(&s, &[Audience::Audit], NOW, 30)
        .unwrap();

    ring.add_random_key("k2");
    assert!(ring.activate("k2"));
    let new = Minter::new(&ring)
        .mint(&s, &[Audience::Audit], NOW, 30)
        .unwrap();
    let both = verifier(&ring, Audience::Audit);
    assert_eq!(both.verify(&old, NOW).unwrap().key_id, "k1");
    assert_eq!(both.verify(&new, NOW).unwrap().key_id, "k2");

    ring.retire("k1");
    let retired = verifier(&ring, Audience::Audit);
    assert_eq!(retired.verify(&old, NOW), Err(TokenError::UnknownKey));
    assert!(retired.verify(&new, NOW).is_ok());
}

#[test]
fn rings_round_trip_through_files_and_bad_files_name_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let ring = MasterKeyRing::generate("k1");
    let master_path = dir.path().join("token-master.toml");
    std::fs::write(&master_path, ring.to_toml()).unwrap();
    let aud_path = dir.path().join("token-metadata.toml");
    std::fs::write(
        &aud_path,
        ring.derive_audience_ring(Audience::Metadata).to_toml(),
    )
    .unwrap();

    let loaded = MasterKeyRing::from_file(&master_path).unwrap();
    let aud = AudienceKeyRing::from_file(&aud_path).unwrap();
    let token = Minter::new(&loaded)
        .mint(
            &subject(1, 2, Role::Member, Scopes::NONE, "r"),
            &[Audience::Metadata],
            NOW,
            30,
        )
        .unwrap();
    assert!(
        Verifier::new(&aud, VerifyOptions::default())
            .verify(&token, NOW)
            .is_ok()
    );
    // A verifier cannot be built from the master file, nor a minter from an audience file.
    assert!(AudienceKeyRing::from_file(&master_path).is_err());
    assert!(MasterKeyRing::from_file(&aud_path).is_err());

    let bad = dir.path().join("bad.toml");
    for content in [
        "",
        "kind = \"master\"\nactive = \"k1\"\n[[keys]]\nid = \"k1\"\nsecret = \"c2hvcnQ=\"\n",
        "kind = \"master\"\nactive = \"k9\"\n[[keys]]\nid = \"k1\"\nsecret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
        "kind = \"master\"\nactive = \"k1\"\nkeys = []\n",
        "secret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\" junk",
    ] {
        std::fs::write(&bad, content).unwrap();
        let err = MasterKeyRing::from_file(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.toml"), "{err}");
        assert!(!err.contains("AAAAAAAA"), "error leaks key material: {err}");
    }
    let missing = MasterKeyRing::from_file(&dir.path().join("absent.toml")).unwrap_err();
    assert!(missing.to_string().contains("absent.toml"));
    // Debug never prints key material: neither the master secret nor the derived audience key.
    let secret_of = |toml: String| {
        toml.lines()
            .find_map(|l| l.strip_prefix("secret = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_owned()
    };
    let master_secret = secret_of(ring.to_toml());
    let audience_secret = secret_of(aud.to_toml());
    assert!(master_secret.len() >= 43 && audience_secret.len() >= 43);
    let debug = format!("{loaded:?}{aud:?}{:?}", Minter::new(&loaded));
    assert!(
        !debug.contains(&master_secret) && !debug.contains(&audience_secret),
        "{debug}"
    );
    assert!(
        debug.contains("k1"),
        "Debug still names the key ids: {debug}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Flipping any single bit of the body or of the tags makes the token fail.
    #[test]
    fn every_bit_flip_is_refused(s in arb_subject()) {
        let ring = MasterKeyRing::generate("k1");
        let token = Minter::new(&ring).mint(&s, &Audience::ALL, NOW, 60).unwrap();
        let verifiers: Vec<_> = Audience::ALL.iter().map(|a| verifier(&ring, *a)).collect();
        let (body, tags) = split(&token);
        for bit in 0..body.len() * 8 {
            let mut b = body.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let t = join(&b, &tags);
            for v in &verifiers {
                prop_assert!(v.verify(&t, NOW).is_err(), "body bit {} accepted", bit);
            }
        }
        for bit in 0..tags.len() * 8 {
            let mut g = tags.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            let t = join(&body, &g);
            for v in &verifiers {
                // A flip in another audience's tag leaves this audience's tag intact: only the
                // audience whose tag (or audience byte) changed must refuse.
                let chunk = bit / 8 / 33;
                let touched = Audience::ALL[chunk];
                if v.audience() == touched {
                    prop_assert!(v.verify(&t, NOW).is_err(), "tag bit {} accepted", bit);
                }
            }
        }
    }

    /// Truncation at any point, an emptied tag section, and unknown key ids are refused.
    #[test]
    fn truncated_and_stripped_tokens_are_refused(s in arb_subject(), cut in 0usize..400) {
        let ring = MasterKeyRing::generate("k1");
        let token = Minter::new(&ring).mint(&s, &[Audience::Scan], NOW, 60).unwrap();
        let v = verifier(&ring, Audience::Scan);
        let cut = cut.min(token.len() - 1);
        prop_assert!(v.verify(&token[..cut], NOW).is_err());
        let (body, tags) = split(&token);
        prop_assert!(v.verify(&join(&body, &[]), NOW).is_err());
        prop_assert!(v.verify(&join(&body, &tags[..32]), NOW).is_err());
        let no_tags = format!("ct1.{}.", URL_SAFE_NO_PAD.encode(&body));
        prop_assert!(v.verify(&no_tags, NOW).is_err());

        let other = MasterKeyRing::generate("k2");
        let foreign = Minter::new(&other).mint(&s, &[Audience::Scan], NOW, 60).unwrap();
        prop_assert_eq!(v.verify(&foreign, NOW), Err(TokenError::UnknownKey));
    }

    /// A token minted under the same key id by another master key never verifies.
    #[test]
    fn same_key_id_other_master_is_refused(s in arb_subject()) {
        let ring = MasterKeyRing::generate("k1");
        let impostor = MasterKeyRing::generate("k1");
        let token = Minter::new(&impostor).mint(&s, &[Audience::Audit], NOW, 60).unwrap();
        prop_assert_eq!(verifier(&ring, Audience::Audit).verify(&token, NOW), Err(TokenError::BadTag));
    }

    /// Arbitrary strings never panic the verifier and are never accepted.
    #[test]
    fn garbage_is_refused(garbage in "\\PC{0,600}") {
        let ring = MasterKeyRing::generate("k1");
        prop_assert!(verifier(&ring, Audience::Gateway).verify(&garbage, NOW).is_err());
        let prefixed = format!("ct1.{garbage}");
        prop_assert!(verifier(&ring, Audience::Gateway).verify(&prefixed, NOW).is_err());
    }
}
