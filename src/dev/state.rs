//! What `dev --state-dir` keeps across restarts: the signing key and the
//! issuer's address. The issuer URL contains the address, so with both kept a
//! restarted `dev` accepts every token minted before (until it expires),
//! instead of refusing them as UNKNOWN_ISSUER or UNKNOWN_KEY.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::SigningKey;

const KEY_FILE: &str = "signing-key.pk8";
const STATE_FILE: &str = "issuer.json";

#[derive(Serialize, Deserialize)]
struct Saved {
    kid: String,
    issuer_addr: SocketAddr,
}

/// A directory holding the dev issuer's state.
pub struct DevState {
    dir: PathBuf,
}

impl DevState {
    /// Opens (creating, owner-only) `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--state-dir {}: cannot create it", dir.display()))?;
        restrict(dir, 0o700)?;
        Ok(Self { dir: dir.into() })
    }

    /// The key and address saved by an earlier run, if any.
    pub fn load(&self) -> anyhow::Result<Option<(SigningKey, SocketAddr)>> {
        let state = self.dir.join(STATE_FILE);
        if !state.exists() {
            return Ok(None);
        }
        let saved: Saved = serde_json::from_slice(&std::fs::read(&state)?)
            .with_context(|| format!("{}: not a dev state file", state.display()))?;
        let key_file = self.dir.join(KEY_FILE);
        let der = std::fs::read(&key_file)
            .with_context(|| format!("{}: cannot read the saved key", key_file.display()))?;
        let key = SigningKey::from_pkcs8(saved.kid, &der)
            .map_err(|e| anyhow::anyhow!("{}: not a PKCS#8 RSA key: {e}", key_file.display()))?;
        Ok(Some((key, saved.issuer_addr)))
    }

    /// Saves the key (owner-only) and the address the issuer is bound to.
    pub fn save(&self, key: &SigningKey, issuer_addr: SocketAddr) -> anyhow::Result<()> {
        let key_file = self.dir.join(KEY_FILE);
        let der = key
            .to_pkcs8()
            .map_err(|_| anyhow::anyhow!("cannot encode the dev signing key"))?;
        std::fs::write(&key_file, der)?;
        restrict(&key_file, 0o600)?;
        let saved = Saved {
            kid: key.kid().to_string(),
            issuer_addr,
        };
        std::fs::write(
            self.dir.join(STATE_FILE),
            serde_json::to_vec_pretty(&saved)?,
        )?;
        Ok(())
    }
}

fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("{}: cannot restrict its permissions", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_key_and_address_come_back_and_sign_alike() {
        let dir = tempfile::tempdir().unwrap();
        let state = DevState::open(&dir.path().join("dev")).unwrap();
        assert!(state.load().unwrap().is_none());
        let key = SigningKey::generate("dev-1").unwrap();
        let addr: SocketAddr = "127.0.0.1:50052".parse().unwrap();
        state.save(&key, addr).unwrap();
        let (loaded, loaded_addr) = state.load().unwrap().unwrap();
        assert_eq!(loaded_addr, addr);
        assert_eq!(loaded.kid(), "dev-1");
        assert_eq!(loaded.jwk(), key.jwk());
        assert_eq!(loaded.sign(b"x"), key.sign(b"x"));
    }
}
