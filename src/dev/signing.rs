//! The dev issuer's signing key, also what tests and benchmarks sign with.

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeySize,
    signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// An RSA-2048 signing key with its `kid`, generated in memory.
pub struct SigningKey {
    kid: String,
    key_pair: RsaKeyPair,
}

impl SigningKey {
    pub fn generate(kid: impl Into<String>) -> Result<Self, aws_lc_rs::error::Unspecified> {
        Ok(Self {
            kid: kid.into(),
            key_pair: RsaKeyPair::generate(KeySize::Rsa2048)?,
        })
    }

    /// A key saved with [`SigningKey::to_pkcs8`] (the dev issuer's `--state-dir`).
    pub fn from_pkcs8(kid: impl Into<String>, der: &[u8]) -> Result<Self, String> {
        Ok(Self {
            kid: kid.into(),
            key_pair: RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?,
        })
    }

    /// The private key as PKCS#8 DER, to keep it across restarts.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        use aws_lc_rs::encoding::AsDer;
        let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = self.key_pair.as_der()?;
        Ok(der.as_ref().to_vec())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kty` RSA, `use` sig, `alg` RS256).
    pub fn jwk(&self) -> Value {
        let public = self.key_pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key as DER (PKCS#1 RSAPublicKey), e.g. to forge HS256 tokens in tests.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key_pair.public_key().as_ref().to_vec()
    }

    /// RS256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("signing with a freshly generated key cannot fail");
        signature
    }

    /// A compact JWS of `claims` with exactly `header`, signed RS256.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = URL_SAFE_NO_PAD.encode(self.sign(input.as_bytes()));
        format!("{input}.{signature}")
    }

    /// A compact JWS with the header Cognito uses (`kid`, `alg` RS256).
    pub fn sign_claims(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"kid": self.kid, "alg": "RS256"}), claims)
    }
}
