//! A pool's key set: the usable RSA keys of one JWKS document, parsed once so
//! the hot path only looks a key up by `kid` and verifies.
//!
//! Keys that could weaken verification are skipped at load, not at use: a key
//! that is not RSA, not for signatures, shorter than 2048 bits, or whose
//! modulus and exponent do not form a valid public key.

use std::{collections::HashMap, sync::Arc};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};

/// The signature algorithms a key can verify; only RSA PKCS#1 v1.5 ones exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    Rs256,
    Rs384,
    Rs512,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [Self::Rs256, Self::Rs384, Self::Rs512];

    /// Parses a JOSE `alg` name; `None` for everything not RSA PKCS#1 v1.5.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "RS384" => Some(Self::Rs384),
            "RS512" => Some(Self::Rs512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
        }
    }

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

/// One public key, parsed for every algorithm it may verify.
pub struct VerifyingKey {
    kid: String,
    /// Indexed by [`SigningAlgorithm`]; `None` where the JWK's `alg` rules it out.
    parsed: [Option<ParsedPublicKey>; 3],
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
    #[error("no usable RSA signing key ({skipped} skipped: {reasons})")]
    NoUsableKey { skipped: usize, reasons: String },
}

/// The usable keys of one JWKS document, by `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    /// One line per skipped key, for logs.
    skipped: Vec<String>,
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
                Ok(key) => {
                    if set.keys.contains_key(&key.kid) {
                        set.skipped
                            .push(format!("key {i} (kid {:?}): duplicate kid", key.kid));
                    } else {
                        set.keys.insert(key.kid.clone(), Arc::new(key));
                    }
                }
                Err(reason) => set.skipped.push(format!("key {i}: {reason}")),
            }
        }
        if set.keys.is_empty() {
            return Err(KeySetError::NoUsableKey {
                skipped: set.skipped.len(),
                reasons: set.skipped.join("; "),
            });
        }
        Ok(set)
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

    /// The kids of this set, sorted (to compare sets and log rotations).
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

fn parse_key(value: serde_json::Value) -> Result<VerifyingKey, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    let kid = jwk.common.key_id.clone().ok_or("no kid")?;
    if kid.is_empty() {
        return Err("empty kid".into());
    }
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return Err(format!("kid {kid:?}: kty is not RSA"));
    };
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => return Err(format!("kid {kid:?}: use is {other:?}, not sig")),
    }
    let only = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(SigningAlgorithm::Rs256),
        Some(KeyAlgorithm::RS384) => Some(SigningAlgorithm::Rs384),
        Some(KeyAlgorithm::RS512) => Some(SigningAlgorithm::Rs512),
        Some(other) => return Err(format!("kid {kid:?}: alg {other:?} is not RS256/384/512")),
    };
    let n = URL_SAFE_NO_PAD
        .decode(rsa.n.trim_end_matches('='))
        .map_err(|e| format!("kid {kid:?}: n is not base64url: {e}"))?;
    let e = URL_SAFE_NO_PAD
        .decode(rsa.e.trim_end_matches('='))
        .map_err(|e| format!("kid {kid:?}: e is not base64url: {e}"))?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = modulus_bits(n);
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "kid {kid:?}: {bits}-bit modulus, at least {MIN_RSA_BITS} required"
        ));
    }
    let components = RsaPublicKeyComponents { n, e };
    let mut parsed: [Option<ParsedPublicKey>; 3] = [None, None, None];
    for alg in SigningAlgorithm::ALL {
        if only.is_some_and(|only| only != alg) {
            continue;
        }
        let key = components
            .to_parsed_public_key(alg.params())
            .map_err(|e| format!("kid {kid:?}: invalid RSA public key: {e}"))?;
        parsed[alg.index()] = Some(key);
    }
    Ok(VerifyingKey { kid, parsed })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn modulus_bits(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
    }
}

#[cfg(test)]
mod tests {
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
