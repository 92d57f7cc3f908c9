//! Properties over generated input (proptest): no input panics or validates by
//! accident, and no single-byte change of a valid token still validates.

use std::sync::OnceLock;

use proptest::prelude::*;
use token_validator::{
    App,
    dev::{DEV_CLIENT_ID, OFFLINE_ISSUER, SigningKey, offline_app},
    validate::{Policy, ValidationError},
};

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: App,
    valid: String,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let key = SigningKey::generate("prop-key").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let valid = key.sign_claims(&serde_json::json!({
            "sub": "s", "iss": OFFLINE_ISSUER, "aud": DEV_CLIENT_ID, "token_use": "id",
            "cognito:username": "u", "exp": now + 3600, "iat": now,
        }));
        Harness {
            runtime: tokio::runtime::Runtime::new().unwrap(),
            app: offline_app(&[&key]).unwrap(),
            valid,
        }
    })
}

fn check(token: &str) -> Result<(), ValidationError> {
    let h = harness();
    h.runtime
        .block_on(h.app.validator.validate(token, &Policy::default()))
        .result
        .map(|_| ())
}

#[test]
fn the_harness_token_is_valid() {
    assert_eq!(check(&harness().valid), Ok(()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_rejected_or_refused_never_accepted(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        match check(&text) {
            Ok(()) => prop_assert!(false, "random input validated"),
            Err(ValidationError::KeysUnavailable { .. }) => prop_assert!(false, "keys are installed"),
            Err(_) => {}
        }
    }

    #[test]
    fn jwt_shaped_noise_is_rejected(
        header in "[A-Za-z0-9_-]{0,60}",
        payload in "[A-Za-z0-9_-]{0,300}",
        signature in "[A-Za-z0-9_-]{0,400}",
    ) {
        let token = format!("{header}.{payload}.{signature}");
        prop_assert!(matches!(check(&token), Err(ValidationError::Rejected(_)) | Err(ValidationError::EmptyToken)));
    }

    #[test]
    fn a_valid_token_with_any_single_byte_changed_never_validates(index in any::<prop::sample::Index>(), replacement in 0x21u8..0x7f) {
        let valid = harness().valid.as_bytes();
        let i = index.index(valid.len());
        prop_assume!(valid[i] != replacement);
        let mut changed = valid.to_vec();
        changed[i] = replacement;
        let changed = String::from_utf8(changed).unwrap();
        prop_assert!(check(&changed).is_err(), "byte {} changed to {:?} still validates", i, replacement as char);
    }
}

/// CI's run of the fuzz target's seed corpus (`fuzz/corpus/validate`): the
/// same entry point, every seed rejected, none panicking.
#[test]
fn every_fuzz_seed_is_rejected() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/validate");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(check(&String::from_utf8_lossy(&bytes)).is_err());
        seeds += 1;
    }
    assert!(
        seeds >= 8,
        "seed corpus missing: {seeds} files in {}",
        dir.display()
    );
}
