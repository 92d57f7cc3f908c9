//! TLS and mTLS on the gRPC port (rustls), with certificates reloaded from
//! disk when their files change or on SIGHUP, without dropping connections:
//! each accepted connection takes the current configuration, and sessions
//! already established keep theirs.
//!
//! With `client_ca_file`, a client must present a certificate chaining to that
//! CA; with `allowed_client_names` too, one of its DNS or URI SANs (or its
//! subject CN) must be listed. Both are enforced in the handshake, so a
//! refused client never reaches a handler.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::{config::TlsConfig, telemetry::audit::AuditLog};

/// A TLS setting that cannot be used, naming the file or key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("tls: {0}")]
    Rustls(String),
}

fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The current server configuration, swapped on reload.
pub struct TlsSource {
    settings: TlsConfig,
    /// Where refused mTLS clients are reported.
    audit: Arc<AuditLog>,
    current: RwLock<Arc<rustls::ServerConfig>>,
    stamps: RwLock<Vec<Option<SystemTime>>>,
}

impl TlsSource {
    /// Loads the files once; an error here stops the start-up.
    pub fn load(settings: &TlsConfig, audit: Arc<AuditLog>) -> Result<Arc<Self>, TlsError> {
        let config = build(settings, &audit)?;
        Ok(Arc::new(Self {
            settings: settings.clone(),
            audit,
            current: RwLock::new(Arc::new(config)),
            stamps: RwLock::new(stamps(settings)),
        }))
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().expect("not poisoned").clone())
    }

    /// Re-reads the files; on error the previous configuration stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(&self.settings, &self.audit)?;
        *self.current.write().expect("not poisoned") = Arc::new(config);
        *self.stamps.write().expect("not poisoned") = stamps(&self.settings);
        Ok(())
    }

    fn changed(&self) -> bool {
        *self.stamps.read().expect("not poisoned") != stamps(&self.settings)
    }

    /// Reloads when a file's modification time changes (polled) or on SIGHUP.
    pub fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let source = self.clone();
        tokio::spawn(async move {
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick =
                tokio::time::interval(Duration::from_secs(source.settings.reload_interval_secs));
            tick.tick().await;
            loop {
                let forced = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                };
                if !forced && !source.changed() {
                    continue;
                }
                match source.reload() {
                    Ok(()) => tracing::info!(forced, "TLS certificates reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "TLS reload failed; keeping the previous certificates")
                    }
                }
            }
        })
    }
}

fn stamps(settings: &TlsConfig) -> Vec<Option<SystemTime>> {
    [
        Some(&settings.cert_file),
        Some(&settings.key_file),
        settings.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .collect()
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn build(settings: &TlsConfig, audit: &Arc<AuditLog>) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = read_certs(&settings.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .map_err(|e| file_error(&settings.key_file, e))?;
    let verifier: Arc<dyn ClientCertVerifier> = match &settings.client_ca_file {
        None => WebPkiClientVerifier::no_client_auth(),
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca_file)? {
                roots.add(cert).map_err(|e| file_error(ca_file, e))?;
            }
            let inner =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?;
            if settings.allowed_client_names.is_empty() {
                inner
            } else {
                Arc::new(AllowedNames {
                    inner,
                    names: settings.allowed_client_names.clone(),
                    audit: audit.clone(),
                })
            }
        }
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError::Rustls(format!(
                "certificate and key do not form a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The names a client certificate claims: DNS and URI SANs, and the subject CN.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(String::from))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_string()),
                x509_parser::extensions::GeneralName::URI(uri) => names.push(uri.to_string()),
                _ => {}
            }
        }
    }
    names
}

/// The CA check, then the allowlist of client names.
struct AllowedNames {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
    audit: Arc<AuditLog>,
}

impl std::fmt::Debug for AllowedNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllowedNames")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for AllowedNames {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let presented = certificate_names(end_entity);
        if presented.iter().any(|name| self.names.contains(name)) {
            Ok(verified)
        } else {
            self.audit.client_refused(&presented);
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client has this long to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes the TLS handshake of an accepted connection (on the connection's
/// own task, so a slow or failing client never blocks others); `None` when it
/// fails or takes longer than [`HANDSHAKE_TIMEOUT`].
pub async fn handshake(source: Arc<TlsSource>, tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr().ok();
    let acceptor = source.acceptor();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(?peer, %error, "TLS handshake refused");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}
