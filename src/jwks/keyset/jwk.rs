//! One JWK → a [`VerifyingKey`], or the reason it is skipped. Every check
//! that keeps a weak or useless key out of the set is here.

use aws_lc_rs::signature::RsaPublicKeyComponents;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};

use super::{
    KeyFingerprint, MIN_RSA_BITS, ParsedKeys, SigningAlgorithm, SkipCause, Skipped, VerifyingKey,
    shown, skip,
};

pub(super) fn parse_key(value: serde_json::Value) -> Result<VerifyingKey, Skipped> {
    use SkipCause::*;
    // Before the JWK parse, which reads an RSA key lacking `n`/`e` (x5c only)
    // as some other key type: say what is actually missing.
    let kty = value
        .get("kty")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    if kty == "RSA" && (value.get("n").is_none() || value.get("e").is_none()) {
        let kid = value.get("kid").and_then(|v| v.as_str()).unwrap_or("");
        return Err(skip(
            NoModulusOrExponent,
            format!(
                "kid {}: RSA key without n and e (an x5c certificate alone is not read)",
                shown(kid)
            ),
        ));
    }
    let jwk: Jwk = serde_json::from_value(value)
        .map_err(|e| skip(NotAJwk, format!("not a JWK: {}", bounded_error(&e))))?;
    let kid = match jwk.common.key_id.clone() {
        Some(kid) if !kid.is_empty() => kid,
        _ => return Err(skip(NoKid, "no kid".into())),
    };
    let at = |cause, what: String| skip(cause, format!("kid {}: {what}", shown(&kid)));
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return Err(at(NotRsa, format!("kty is {}, not RSA", kty_name(&kty))));
    };
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => return Err(at(NotForSignatures, format!("use is {other:?}, not sig"))),
    }
    let only = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(SigningAlgorithm::Rs256),
        Some(KeyAlgorithm::RS384) => Some(SigningAlgorithm::Rs384),
        Some(KeyAlgorithm::RS512) => Some(SigningAlgorithm::Rs512),
        Some(other) => {
            return Err(at(
                OtherAlgorithm,
                format!("alg {other:?} is not RS256/384/512"),
            ));
        }
    };
    let (fingerprint, parsed) =
        rsa_material(&rsa.n, &rsa.e, only).map_err(|(cause, what)| at(cause, what))?;
    Ok(VerifyingKey {
        kid,
        fingerprint,
        parsed,
    })
}

/// The RSA material of a key: base64url `n` and `e`, strong enough and usable,
/// parsed for every algorithm the key allows (`only`, when its JWK names one).
fn rsa_material(
    n: &str,
    e: &str,
    only: Option<SigningAlgorithm>,
) -> Result<(KeyFingerprint, ParsedKeys), (SkipCause, String)> {
    use SkipCause::*;
    let n = URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .map_err(|_| (InvalidKey, "n is not base64url".to_string()))?;
    let e = URL_SAFE_NO_PAD
        .decode(e.trim_end_matches('='))
        .map_err(|_| (InvalidKey, "e is not base64url".to_string()))?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = modulus_bits(n);
    if bits < MIN_RSA_BITS {
        return Err((
            ShortModulus,
            format!("{bits}-bit modulus, at least {MIN_RSA_BITS} required"),
        ));
    }
    if !is_usable_exponent(e) {
        return Err((
            BadExponent,
            "e must be odd, at least 3 and under 2^32 (Cognito uses 65537)".into(),
        ));
    }
    let components = RsaPublicKeyComponents { n, e };
    let mut parsed: ParsedKeys = [None, None, None];
    for alg in SigningAlgorithm::ALL {
        if only.is_some_and(|only| only != alg) {
            continue;
        }
        let key = components
            .to_parsed_public_key(alg.params())
            .map_err(|e| (InvalidKey, format!("invalid RSA public key: {e}")))?;
        parsed[alg.index()] = Some(key);
    }
    Ok((KeyFingerprint::of(n, e), parsed))
}

/// An RSA public exponent a signer uses: odd, 3 ≤ e < 2^32 (big-endian bytes,
/// leading zeros stripped).
fn is_usable_exponent(e: &[u8]) -> bool {
    if e.is_empty() || e.len() > 4 {
        return false;
    }
    let value = e.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    value >= 3 && value % 2 == 1
}

/// The `kty` of a skipped key for a log line: known names as they are, anything else cut.
fn kty_name(kty: &str) -> String {
    match kty {
        "" => "missing".into(),
        other => format!("{:?}", crate::text::bounded(other, 16)),
    }
}

/// serde's message about a JWK, cut: it may quote the document's values.
fn bounded_error(error: &serde_json::Error) -> String {
    crate::text::bounded(&error.to_string(), 120)
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
