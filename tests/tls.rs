//! TLS and mTLS on the gRPC port, with a CA, server and client certificates
//! made at test time (rcgen), and certificate reload without a restart.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use token_validator::{RunningService, config::TlsConfig, dev::SigningKey};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate: `names` become DNS SANs, or URI SANs when they contain "://".
    fn leaf(&self, common_name: &str, names: &[&str], client: bool) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names
            .iter()
            .map(|n| {
                if n.contains("://") {
                    SanType::URI((*n).try_into().unwrap())
                } else {
                    SanType::DnsName((*n).try_into().unwrap())
                }
            })
            .collect();
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    // Write then rename, as certificate managers do, so a reload never sees half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

struct Fixture {
    key: SigningKey,
    _jwks: JwksServer,
    service: RunningService,
    dir: tempfile::TempDir,
    port: u16,
}

async fn start(server_ca: &Ca, client_ca: Option<&Ca>, allowed: &[&str]) -> Fixture {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, private) = server_ca.leaf("token-validator", &["localhost"], false);
    let mut config = config_for(&jwks.url());
    config.tls = Some(TlsConfig {
        cert_file: write(dir.path(), "tls.crt", &cert),
        key_file: write(dir.path(), "tls.key", &private),
        client_ca_file: client_ca.map(|ca| write(dir.path(), "clients-ca.crt", &ca.pem())),
        allowed_client_names: allowed.iter().map(|s| s.to_string()).collect(),
        reload_interval_secs: 1,
    });
    let service = start_service(config).await;
    let port = service.addr.rsplit(':').next().unwrap().parse().unwrap();
    Fixture {
        key,
        _jwks: jwks,
        service,
        dir,
        port,
    }
}

async fn tls_channel(
    port: u16,
    trust: &Ca,
    identity: Option<(String, String)>,
) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(trust.pem()))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

/// A ValidateToken call over `channel`: Ok(valid) or the error.
async fn call(channel: Channel, token: &str) -> Result<bool, String> {
    token_validator::grpc::client::validate(channel, request(token.to_string()))
        .await
        .map(|r| r.valid)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn tls_serves_validations_and_refuses_plaintext() {
    let ca = Ca::new("server CA");
    let f = start(&ca, None, &[]).await;
    let token = f.key.sign_claims(&id_claims());
    let channel = tls_channel(f.port, &ca, None).await.unwrap();
    assert_eq!(call(channel, &token).await, Ok(true));

    let plain = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", f.port))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(channel) => call(channel, &token).await.is_err(),
    };
    assert!(refused, "a plaintext client was served");

    let other = Ca::new("another CA");
    let untrusted = match tls_channel(f.port, &other, None).await {
        Err(_) => true,
        Ok(channel) => call(channel, &token).await.is_err(),
    };
    assert!(
        untrusted,
        "a client trusting another CA completed the handshake"
    );
}

#[tokio::test]
async fn mtls_admits_only_clients_of_the_ca_with_an_allowed_name() {
    let server_ca = Ca::new("server CA");
    let clients = Ca::new("clients CA");
    let f = start(
        &server_ca,
        Some(&clients),
        &["orders.internal", "spiffe://example.org/ns/api/sa/flask"],
    )
    .await;
    let token = f.key.sign_claims(&id_claims());

    let allowed_dns = clients.leaf("orders", &["orders.internal"], true);
    let allowed_uri = clients.leaf("flask", &["spiffe://example.org/ns/api/sa/flask"], true);
    for identity in [allowed_dns, allowed_uri] {
        let channel = tls_channel(f.port, &server_ca, Some(identity))
            .await
            .unwrap();
        assert_eq!(call(channel, &token).await, Ok(true));
    }

    let stranger = Ca::new("stranger CA");
    let refused = [
        ("no client certificate", None),
        (
            "a certificate from another CA",
            Some(stranger.leaf("orders", &["orders.internal"], true)),
        ),
        (
            "a name that is not allowed",
            Some(clients.leaf("billing", &["billing.internal"], true)),
        ),
    ];
    for (case, identity) in refused {
        let outcome = match tls_channel(f.port, &server_ca, identity).await {
            Err(e) => Err(e),
            Ok(channel) => call(channel, &token).await,
        };
        assert!(outcome.is_err(), "{case}: was served");
    }
}

#[tokio::test]
async fn certificates_are_reloaded_without_dropping_connections() {
    let old_ca = Ca::new("old CA");
    let f = start(&old_ca, None, &[]).await;
    let token = f.key.sign_claims(&id_claims());
    let established = tls_channel(f.port, &old_ca, None).await.unwrap();
    assert_eq!(call(established.clone(), &token).await, Ok(true));

    // The certificate manager renews with a new CA: files change in place.
    let new_ca = Ca::new("new CA");
    let (cert, key) = new_ca.leaf("token-validator", &["localhost"], false);
    write(f.dir.path(), "tls.key", &key);
    write(f.dir.path(), "tls.crt", &cert);
    let port = f.port;
    let reloaded = eventually(|| {
        let new_ca = &new_ca;
        let token = token.clone();
        async move {
            match tls_channel(port, new_ca, None).await {
                Ok(channel) => call(channel, &token).await == Ok(true),
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(reloaded, "new connections never got the new certificate");
    assert_eq!(
        call(established, &token).await,
        Ok(true),
        "the connection made before the reload was dropped"
    );
    let stale = match tls_channel(f.port, &old_ca, None).await {
        Err(_) => true,
        Ok(channel) => call(channel, &token).await.is_err(),
    };
    assert!(stale, "new connections still get the old certificate");
    drop(f.service);
}
