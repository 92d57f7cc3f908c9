//! Public keys of the trusted user pools: fetching JWKS documents, parsing
//! them into verifying keys, and keeping them cached and fresh.

mod fetch;
mod keyset;
mod store;

pub use fetch::{FetchError, JwksFetcher};
pub use keyset::{
    KeyFingerprint, KeySet, KeySetError, MIN_RSA_BITS, SigningAlgorithm, VerifyingKey,
};
pub use store::{KeyLookup, KeyStore, KeyStoreObserver, PoolStatus};
