//! A pool's key set: the usable RSA keys of one JWKS document, parsed once so
//! the hot path only looks a key up by `kid` and verifies.
//!
//! Keys that could weaken verification are skipped at load, not at use: a key
//! that is not RSA, not for signatures, shorter than 2048 bits, with an
//! exponent no RSA signer uses (even, under 3, or 2^32 and over), or whose
//! modulus and exponent do not form a valid public key. A key that can never
//! verify is better skipped than listed: its tokens then answer UNKNOWN_KEY
//! (the pool does not publish a usable key) rather than BAD_SIGNATURE.

use std::{collections::HashMap, sync::Arc};

use aws_lc_rs::signature::{self, ParsedPublicKey};

mod jwk;

use jwk::parse_key;

/// The signature algorithms a key can verify: the configuration's type (only
/// RSA PKCS#1 v1.5 ones exist), with what verifying needs added here.
pub use crate::config::SigningAlgorithm;

impl SigningAlgorithm {
    fn index(self) -> usize {
        self as usize
    }

    fn params(self) -> &'static signature::RsaParameters {
        match self {
            Self::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        }
    }
}

/// What identifies a key's material: SHA-256 over its modulus and exponent.
/// A key is its `kid` *and* this: a JWKS that publishes other material under
/// the same `kid` has replaced the key, and what the old one verified must
/// stop validating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyFingerprint([u8; 32]);

impl KeyFingerprint {
    /// Length-prefixed so that no two (n, e) pairs hash the same input.
    fn of(n: &[u8], e: &[u8]) -> Self {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(&(n.len() as u64).to_be_bytes());
        context.update(n);
        context.update(e);
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        Self(out)
    }
}

/// A key parsed for each [`SigningAlgorithm`] (by its index); `None` where
/// the JWK's `alg` rules that algorithm out.
type ParsedKeys = [Option<ParsedPublicKey>; 3];

/// One public key, parsed for every algorithm it may verify.
pub struct VerifyingKey {
    kid: String,
    fingerprint: KeyFingerprint,
    parsed: ParsedKeys,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn fingerprint(&self) -> KeyFingerprint {
        self.fingerprint
    }

    /// Whether this key may verify tokens signed with `alg` (the JWK's `alg`, when present, must match).
    pub fn supports(&self, alg: SigningAlgorithm) -> bool {
        self.parsed[alg.index()].is_some()
    }

    /// Verifies `signature` over `message`; false for a wrong signature or an algorithm the key does not allow.
    pub fn verify(&self, alg: SigningAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        self.parsed[alg.index()]
            .as_ref()
            .is_some_and(|key| key.verify_sig(message, signature).is_ok())
    }
}

/// Why a JWKS document as a whole could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeySetError {
    #[error("not a JWKS document: {0}")]
    NotJwks(String),
    #[error("no usable RSA signing key ({summary})")]
    NoUsableKey { skipped: usize, summary: String },
}

/// Why a key of a JWKS document was skipped: the bounded label counted in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipCause {
    NotAJwk,
    NoKid,
    NotRsa,
    NoModulusOrExponent,
    NotForSignatures,
    OtherAlgorithm,
    ShortModulus,
    BadExponent,
    InvalidKey,
    DuplicateKid,
}

impl SkipCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAJwk => "not a JWK",
            Self::NoKid => "no kid",
            Self::NotRsa => "not RSA",
            Self::NoModulusOrExponent => "RSA without n and e",
            Self::NotForSignatures => "not for signatures",
            Self::OtherAlgorithm => "not RS256/384/512",
            Self::ShortModulus => "modulus under 2048 bits",
            Self::BadExponent => "unusable exponent",
            Self::InvalidKey => "invalid RSA key",
            Self::DuplicateKid => "duplicate kid",
        }
    }
}

/// One skipped key: its cause, and a line saying which key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Skipped {
    cause: SkipCause,
    line: String,
}

fn skip(cause: SkipCause, line: String) -> Skipped {
    Skipped { cause, line }
}

/// The usable keys of one JWKS document, by `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    /// Every key skipped, in document order.
    skipped: Vec<Skipped>,
}

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

impl KeySet {
    /// Parses a JWKS document. Unusable keys are skipped (see [`KeySet::skipped`]);
    /// a document with no usable key at all is an error, so it never replaces a good set.
    pub fn from_json(body: &[u8]) -> Result<Self, KeySetError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(body).map_err(|e| KeySetError::NotJwks(e.to_string()))?;
        let mut set = KeySet::default();
        for (i, value) in document.keys.into_iter().enumerate() {
            match parse_key(value) {
                Ok(key) if set.keys.contains_key(&key.kid) => set.skipped.push(skip(
                    SkipCause::DuplicateKid,
                    format!("key {i} (kid {}): duplicate kid", shown(&key.kid)),
                )),
                Ok(key) => {
                    set.keys.insert(key.kid.clone(), Arc::new(key));
                }
                Err(skipped) => set.skipped.push(Skipped {
                    line: format!("key {i}: {}", skipped.line),
                    ..skipped
                }),
            }
        }
        if set.keys.is_empty() {
            return Err(KeySetError::NoUsableKey {
                skipped: set.skipped.len(),
                summary: set.skipped_summary(),
            });
        }
        Ok(set)
    }

    /// One bounded line for all skipped keys, whatever their number: the
    /// count by cause, then the first key of each cause, e.g.
    /// `2000 skipped: 2000 not RSA (key 0 (kid "ec-1"): kty is EC)`.
    /// Empty when nothing was skipped.
    pub fn skipped_summary(&self) -> String {
        if self.skipped.is_empty() {
            return String::new();
        }
        let mut by_cause: std::collections::BTreeMap<SkipCause, (usize, &str)> = Default::default();
        for skipped in &self.skipped {
            by_cause
                .entry(skipped.cause)
                .or_insert((0, skipped.line.as_str()))
                .0 += 1;
        }
        let causes: Vec<String> = by_cause
            .iter()
            .map(|(cause, (count, first))| format!("{count} {} ({first})", cause.as_str()))
            .collect();
        format!("{} skipped: {}", self.skipped.len(), causes.join("; "))
    }

    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The kids of this set, sorted (to log rotations).
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// Whether the set holds `kid` with exactly this material.
    pub fn holds(&self, kid: &str, fingerprint: KeyFingerprint) -> bool {
        self.keys
            .get(kid)
            .is_some_and(|key| key.fingerprint == fingerprint)
    }

    /// Whether every key of `self` (kid and material) is in `other`.
    pub fn is_subset_of(&self, other: &KeySet) -> bool {
        self.keys
            .values()
            .all(|key| other.holds(&key.kid, key.fingerprint))
    }

    /// The kids of `self` that `other` publishes with other material.
    pub fn replaced_in(&self, other: &KeySet) -> Vec<&str> {
        let mut kids: Vec<&str> = self
            .keys
            .values()
            .filter(|key| {
                other
                    .get(&key.kid)
                    .is_some_and(|new| new.fingerprint != key.fingerprint)
            })
            .map(|key| key.kid.as_str())
            .collect();
        kids.sort_unstable();
        kids
    }

    /// One line per skipped key (which key, and why).
    pub fn skipped(&self) -> Vec<&str> {
        self.skipped.iter().map(|s| s.line.as_str()).collect()
    }
}

/// A `kid` from a JWKS document, quoted and cut for a log line.
fn shown(kid: &str) -> String {
    format!("{:?}", crate::text::bounded(kid, 64))
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;
    use crate::dev::SigningKey;

    #[test]
    fn a_generated_key_round_trips_through_its_jwks() {
        let key = SigningKey::generate("k1").unwrap();
        let doc = serde_json::json!({ "keys": [key.jwk()] }).to_string();
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        let verifying = set.get("k1").unwrap();
        let message = b"header.payload";
        let signature = key.sign(message);
        assert!(verifying.verify(SigningAlgorithm::Rs256, message, &signature));
        assert!(!verifying.verify(SigningAlgorithm::Rs256, b"header.payloaD", &signature));
        // The JWK says RS256, so RS512 is not allowed for this key.
        assert!(!verifying.supports(SigningAlgorithm::Rs512));
    }

    #[test]
    fn unusable_keys_are_skipped_and_named() {
        let good = SigningKey::generate("good").unwrap().jwk();
        let mut enc = good.clone();
        enc["kid"] = "enc".into();
        enc["use"] = "enc".into();
        let mut short = good.clone();
        short["kid"] = "short".into();
        short["n"] = URL_SAFE_NO_PAD.encode([0xff_u8; 128]).into();
        let ec = serde_json::json!({"kty":"EC","kid":"ec","crv":"P-256","x":"AA","y":"AA"});
        let hs = serde_json::json!({"kty":"oct","kid":"hs","k":"c2VjcmV0"});
        let doc = serde_json::json!({ "keys": [good, enc, short, ec, hs, {"kid": 7}] }).to_string();
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.kids(), vec!["good"]);
        assert_eq!(set.skipped().len(), 5, "{:?}", set.skipped());
        assert!(set.skipped().iter().any(|s| s.contains("1024-bit")));
    }

    #[test]
    fn exponents_no_signer_uses_are_skipped() {
        let good = SigningKey::generate("good").unwrap().jwk();
        let with_e = |kid: &str, e: Vec<u8>| {
            let mut jwk = good.clone();
            jwk["kid"] = kid.into();
            jwk["e"] = URL_SAFE_NO_PAD.encode(e).into();
            jwk
        };
        let mut huge = vec![1u8];
        huge.extend(std::iter::repeat_n(0u8, 511));
        huge.push(1); // 2^4096 + 1
        let doc = serde_json::json!({ "keys": [
            good.clone(),
            with_e("e1", vec![1]),
            with_e("e2", vec![2]),
            with_e("even", vec![1, 0, 0]),
            with_e("2^32+1", vec![1, 0, 0, 0, 1]),
            with_e("huge", huge),
            with_e("three", vec![3]),
        ] })
        .to_string();
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.kids(), vec!["good", "three"], "{:?}", set.skipped());
        let summary = set.skipped_summary();
        assert!(
            summary.starts_with("5 skipped: 5 unusable exponent"),
            "{summary}"
        );
    }

    #[test]
    fn an_x5c_only_key_is_named_for_what_it_lacks() {
        let doc = serde_json::json!({ "keys": [
            SigningKey::generate("good").unwrap().jwk(),
            {"kty": "RSA", "kid": "cert-only", "use": "sig", "x5c": ["MIIB"]},
        ] })
        .to_string();
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        let skipped = set.skipped();
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].contains("RSA key without n and e"),
            "{skipped:?}"
        );
    }

    #[test]
    fn thousands_of_junk_keys_make_one_short_summary() {
        let mut keys = vec![SigningKey::generate("good").unwrap().jwk()];
        for i in 0..2_000 {
            keys.push(serde_json::json!({
                "kty": "EC", "kid": format!("ec-{i}-{}", "x".repeat(300)),
                "crv": "P-256", "x": "AA", "y": "AA"
            }));
        }
        let doc = serde_json::json!({ "keys": keys }).to_string();
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.skipped().len(), 2_000);
        let summary = set.skipped_summary();
        assert!(
            summary.starts_with("2000 skipped: 2000 not RSA"),
            "{summary}"
        );
        assert!(summary.len() < 300, "{} bytes: {summary}", summary.len());
    }

    #[test]
    fn a_document_without_usable_keys_is_an_error() {
        assert!(matches!(
            KeySet::from_json(b"<html>"),
            Err(KeySetError::NotJwks(_))
        ));
        assert!(matches!(
            KeySet::from_json(br#"{"keys":[]}"#),
            Err(KeySetError::NoUsableKey { .. })
        ));
    }
}
