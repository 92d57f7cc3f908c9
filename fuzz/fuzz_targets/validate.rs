//! Fuzzes the whole token path (parse → header → issuer → key → signature →
//! claims) through the public validator: nothing may panic, and no input may
//! validate (the fuzzer cannot sign with the harness key).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use token_validator::{
    App,
    dev::{SigningKey, offline_app},
    validate::Policy,
};

fn harness() -> &'static (tokio::runtime::Runtime, App) {
    static HARNESS: OnceLock<(tokio::runtime::Runtime, App)> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let key = SigningKey::generate("fuzz-key").expect("key");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        (runtime, offline_app(&[&key]).expect("app"))
    })
}

fuzz_target!(|data: &[u8]| {
    let (runtime, app) = harness();
    let token = String::from_utf8_lossy(data);
    let outcome = runtime.block_on(app.validator.validate(&token, &Policy::default()));
    assert!(outcome.result.is_err(), "fuzz input validated");
});
