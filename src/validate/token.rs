//! Structure of a compact JWS: three base64url segments, a JSON header and a
//! JSON payload with the claims Cognito tokens carry. Parsing is strict (no
//! padding, exact types, no duplicate known keys) and bounded (serde_json's
//! recursion limit), and nothing here trusts the token yet.

use std::borrow::Cow;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};

use super::rejection::{Reason, Rejection};
use crate::jwks::SigningAlgorithm;

/// The header fields we act on. `jku`, `x5u`, `jwk` and `x5c` are deliberately
/// not read: keys come only from the configured pool's JWKS.
#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// `aud` is a string in Cognito ID tokens; RFC 7519 also allows an array.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims of a Cognito ID or access token that validation and the
/// response need. Other claims stay in the raw JSON.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TokenClaims {
    pub iss: String,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub token_use: Option<String>,
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default, rename = "cognito:username")]
    pub cognito_username: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub origin_jti: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct ParsedToken<'a> {
    pub alg: SigningAlgorithm,
    pub kid: String,
    pub claims: TokenClaims,
    /// The decoded payload, kept to answer with every claim (`custom:*` included).
    pub payload_json: String,
    /// `header.payload` as sent: the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

fn malformed(message: &'static str) -> Rejection {
    Rejection::new(Reason::Malformed, message)
}

/// Splits and decodes `token`, checking the header against `allowed` algorithms.
pub fn parse<'a>(
    token: &'a str,
    allowed: &[SigningAlgorithm],
) -> Result<ParsedToken<'a>, Rejection> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT has three dot-separated segments"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| malformed("header is not unpadded base64url"))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| malformed("header is not a JSON object with a string alg"))?;
    if !unique_keys(&header_json) {
        return Err(malformed("header repeats a parameter"));
    }
    check_alg_name(&header.alg)?;
    let alg = SigningAlgorithm::from_name(&header.alg)
        .filter(|alg| allowed.contains(alg))
        .ok_or_else(|| {
            Rejection::new(
                Reason::UnsupportedAlgorithm,
                format!("alg {} is not allowed", printable(&header.alg)),
            )
        })?;
    if header.crit.is_some() {
        return Err(malformed("crit header parameters are not supported"));
    }
    let kid = match header.kid {
        Some(kid) if !kid.is_empty() => kid,
        _ => return Err(malformed("header has no kid")),
    };
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| malformed("payload is not unpadded base64url"))?;
    let payload_json = String::from_utf8(payload).map_err(|_| malformed("payload is not UTF-8"))?;
    let claims: TokenClaims = serde_json::from_str(&payload_json).map_err(|e| {
        Rejection::new(
            Reason::Malformed,
            format!("payload is not valid Cognito claims: {}", claim_error(&e)),
        )
    })?;
    if !unique_keys(payload_json.as_bytes()) {
        return Err(malformed("payload repeats a claim"));
    }
    if nesting_depth(payload_json.as_bytes()) > MAX_JSON_DEPTH {
        // Ignored claims are skipped without recursion, but callers parse `json`:
        // no genuine Cognito token nests beyond a few levels.
        return Err(malformed("payload nests too deeply"));
    }
    if signature_b64.is_empty() {
        return Err(malformed("signature is empty"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed("signature is not unpadded base64url"))?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    Ok(ParsedToken {
        alg,
        kid,
        claims,
        payload_json,
        signing_input,
        signature,
    })
}

/// Deepest JSON nesting accepted in a payload (Cognito's nest two levels).
pub const MAX_JSON_DEPTH: usize = 32;

/// The deepest nesting of arrays and objects in a JSON text (strings skipped).
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// False when a JSON object repeats a top-level key: parsers disagree on which
/// value wins, which is how signature-check/use confusion attacks start.
/// (Not-an-object errors are reported by the typed parse.)
fn unique_keys(json: &[u8]) -> bool {
    struct Unique(bool);
    struct UniqueVisitor;
    impl<'de> Visitor<'de> for UniqueVisitor {
        type Value = Unique;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
            // Sort and compare neighbours: one allocation, O(n log n) even for a
            // hostile token with thousands of keys (a hash set showed up in profiles).
            let mut keys: Vec<Cow<'de, str>> = Vec::with_capacity(32);
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(key);
            }
            keys.sort_unstable();
            Ok(Unique(keys.windows(2).all(|pair| pair[0] != pair[1])))
        }
    }
    impl<'de> Deserialize<'de> for Unique {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(UniqueVisitor)
        }
    }
    serde_json::from_slice::<Unique>(json).map_or(true, |u| u.0)
}

/// `none` (any case) and HMAC algorithms are refused whatever the configuration says.
fn check_alg_name(alg: &str) -> Result<(), Rejection> {
    let lower = alg.to_ascii_lowercase();
    if lower == "none" || lower.starts_with("hs") {
        return Err(Rejection::new(
            Reason::UnsupportedAlgorithm,
            format!(
                "alg {} is never accepted (unsigned or symmetric)",
                printable(alg)
            ),
        ));
    }
    Ok(())
}

/// A short, printable rendering of attacker-controlled text for messages.
/// At most 32 characters of the value (then `…`), quoted.
pub(crate) fn printable(value: &str) -> String {
    format!("{:?}", crate::text::bounded(value, 33))
}

/// serde_json's message without the position, and with the value it quotes
/// (`invalid type: string "eyJ…"`: a claim's content, possibly a whole token)
/// cut as [`printable`] cuts it.
fn claim_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    match (text.find('"'), text.rfind('"')) {
        (Some(open), Some(close)) if close > open => format!(
            "{}{}{}",
            &text[..open],
            printable(&text[open + 1..close]),
            &text[close + 1..]
        ),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(value: &str) -> String {
        URL_SAFE_NO_PAD.encode(value)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
    }

    const PAYLOAD: &str = r#"{"iss":"https://x","exp":10}"#;
    const ALLOWED: &[SigningAlgorithm] = &[SigningAlgorithm::Rs256];

    fn reason(token: &str) -> Reason {
        parse(token, ALLOWED).unwrap_err().reason
    }

    #[test]
    fn a_well_formed_token_is_split_and_decoded() {
        let t = token(r#"{"alg":"RS256","kid":"k","jku":"https://evil"}"#, PAYLOAD);
        let parsed = parse(&t, ALLOWED).unwrap();
        assert_eq!(parsed.kid, "k");
        assert_eq!(parsed.claims.exp, 10);
        assert_eq!(parsed.signature, b"sig");
        assert_eq!(parsed.signing_input, t.rsplit_once('.').unwrap().0);
    }

    #[test]
    fn none_and_hmac_are_unsupported_whatever_their_case() {
        for alg in ["none", "None", "NONE", "HS256", "hs512"] {
            let t = token(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#), PAYLOAD);
            assert_eq!(reason(&t), Reason::UnsupportedAlgorithm, "{alg}");
        }
        let t = token(r#"{"alg":"RS512","kid":"k"}"#, PAYLOAD);
        assert_eq!(reason(&t), Reason::UnsupportedAlgorithm);
    }

    #[test]
    fn structural_problems_are_malformed() {
        let cases = [
            "a.b".to_string(),
            "a.b.c.d".to_string(),
            token(r#"{"alg":"RS256"}"#, PAYLOAD),
            token(r#"{"alg":"RS256","kid":"k","crit":["exp"]}"#, PAYLOAD),
            token(r#"{"alg":"RS256","alg":"RS256","kid":"k"}"#, PAYLOAD),
            token(r#"{"alg":"RS256","kid":"k","jku":"a","jku":"b"}"#, PAYLOAD),
            token(
                r#"{"alg":"RS256","kid":"k"}"#,
                r#"{"iss":"x","exp":10,"exp":99999999999}"#,
            ),
            token(
                r#"{"alg":"RS256","kid":"k"}"#,
                r#"{"iss":"x","exp":10,"custom:a":"1","custom:a":"2"}"#,
            ),
            token(r#"{"alg":"RS256","kid":"k"}"#, r#"{"iss":"x","exp":"10"}"#),
            token(r#"{"alg":"RS256","kid":"k"}"#, r#"{"iss":"x","exp":1.5}"#),
            token(
                r#"{"alg":"RS256","kid":"k"}"#,
                r#"{"iss":"x","exp":9223372036854775808}"#,
            ),
            token(r#"{"alg":"RS256","kid":"k"}"#, r#"{"iss":"x"}"#),
            format!(
                "{}.{}=.c2ln",
                b64(r#"{"alg":"RS256","kid":"k"}"#),
                b64(PAYLOAD)
            ),
            format!("{}.{}.", b64(r#"{"alg":"RS256","kid":"k"}"#), b64(PAYLOAD)),
            token(
                r#"{"alg":"RS256","kid":"k"}"#,
                &format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
            ),
        ];
        for (i, t) in cases.iter().enumerate() {
            assert_eq!(reason(t), Reason::Malformed, "case {i}");
        }
    }

    #[test]
    fn nesting_depth_skips_strings() {
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(nesting_depth(br#"{"a":"[[[[\"{{{{"}"#), 1);
        let deep = format!(
            r#"{{"iss":"x","exp":1,"n":{}1{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(
            reason(&token(r#"{"alg":"RS256","kid":"k"}"#, &deep)),
            Reason::Malformed
        );
    }

    #[test]
    fn messages_never_echo_long_or_control_text() {
        assert_eq!(printable("abc"), "\"abc\"");
        assert!(printable(&"x".repeat(100)).len() < 45);
        assert!(!printable("a\u{0}b").contains('\u{0}'));
    }
}
