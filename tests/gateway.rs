//! Gateway integrations against the real service on loopback: Envoy's
//! ext_authz `Check` through a client generated from Envoy's own protos, and
//! HTTP forward-auth through a real HTTP client. Both answer the same
//! questions alike: identity headers on success (client copies removed),
//! 401 with an RFC 6750 challenge, 403 for policy, anonymous routes, the
//! proxy's per-route narrowing, 503 when the keys are not there (fail closed),
//! and the forward-auth port's bounds under a hostile client.

mod common;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use common::*;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, attribute_context,
    authorization_client::AuthorizationClient, check_response::HttpResponse,
};
use serde_json::{Value, json};
use token_validator::{Config, config::PoolConfig, dev::SigningKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GATEWAY: &str = "
gateway:
  http_listen: 127.0.0.1:0
  routes:
    - path_prefix: /public
      anonymous: true
    - path_prefix: /admin
      required_groups: [admin]
    - path_prefix: /reports
      methods: [POST]
      token_use: access
      required_scopes: [api/write]
";

/// The test pool with the gateway section above (and `extra` in it).
fn gateway_config(jwks_url: &str, extra: &str) -> Config {
    let mut config = config_for(jwks_url);
    let section: Config = serde_norway::from_str(&format!("{GATEWAY}{extra}")).unwrap();
    config.gateway = section.gateway;
    config
}

fn check_request(path: &str, method: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    host: "app.example.com".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// (status code of the Check, headers to set, headers to remove, HTTP status, body).
struct Checked {
    code: i32,
    set: HashMap<String, String>,
    removed: Vec<String>,
    http_status: Option<i32>,
    denied_headers: HashMap<String, String>,
    body: String,
}

fn checked(response: CheckResponse) -> Checked {
    let code = response.status.map_or(0, |s| s.code);
    let mut out = Checked {
        code,
        set: HashMap::new(),
        removed: Vec::new(),
        http_status: None,
        denied_headers: HashMap::new(),
        body: String::new(),
    };
    match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            for option in ok.headers {
                let header = option.header.unwrap();
                out.set.insert(header.key, header.value);
            }
            out.removed = ok.headers_to_remove;
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            out.http_status = denied.status.map(|s| s.code);
            for option in denied.headers {
                let header = option.header.unwrap();
                out.denied_headers.insert(header.key, header.value);
            }
            out.body = denied.body;
        }
        other => panic!("unexpected {other:?}"),
    }
    out
}

/// A forward-auth request to `base` with `headers`, as a proxy sends it.
async fn ask(http: &reqwest::Client, base: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http.get(base);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn authz_client(url: &str) -> AuthorizationClient<tonic::transport::Channel> {
    AuthorizationClient::connect(url.to_string()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_authz_check_answers_like_a_gateway_should() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let service = start_service(gateway_config(&jwks.url(), "")).await;
    let mut client = authz_client(&service.url()).await;
    let id = format!("Bearer {}", key.sign_claims(&id_claims()));
    let access = format!("Bearer {}", key.sign_claims(&access_claims()));

    // A valid token: identity headers set (overwriting), the rest removed.
    let ok = checked(
        client
            .check(check_request(
                "/admin/users",
                "GET",
                &[("authorization", &id), ("x-auth-sub", "admin")],
            ))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(ok.code, 0);
    assert_eq!(ok.set["x-auth-sub"], "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    assert_eq!(ok.set["x-auth-username"], "alice");
    assert_eq!(ok.set["x-auth-groups"], "admin,users");
    assert_eq!(ok.set["x-auth-token-use"], "id");
    assert_eq!(ok.set["x-auth-client-id"], CLIENT_ID);
    // An ID token has no scopes: the header is removed, not left to the client.
    assert_eq!(ok.removed, vec!["x-auth-scopes".to_string()]);

    // No token: 401 with a bare challenge.
    let denied = checked(
        client
            .check(check_request("/", "GET", &[]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!((denied.code, denied.http_status), (16, Some(401)));
    assert_eq!(
        denied.denied_headers["www-authenticate"],
        "Bearer realm=\"token-validator\""
    );

    // A bad token: 401 invalid_token, the reason in the JSON body.
    let expired = {
        let mut claims = id_claims();
        claims["exp"] = json!(now() - 10);
        format!("Bearer {}", key.sign_claims(&claims))
    };
    let denied = checked(
        client
            .check(check_request("/", "GET", &[("authorization", &expired)]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(denied.http_status, Some(401));
    assert!(denied.denied_headers["www-authenticate"].contains("error=\"invalid_token\""));
    let body: Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["reason"], "REASON_EXPIRED");

    // A valid token the route refuses: 403. The access token's user is not an admin.
    let denied = checked(
        client
            .check(check_request(
                "/admin",
                "GET",
                &[("authorization", &access)],
            ))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!((denied.code, denied.http_status), (7, Some(403)));
    assert_eq!(
        serde_json::from_str::<Value>(&denied.body).unwrap()["reason"],
        "REASON_MISSING_GROUP"
    );
    // Scopes: 403 naming the scope; methods other than the route's fall to the default.
    let denied = checked(
        client
            .check(check_request(
                "/reports",
                "POST",
                &[("authorization", &access)],
            ))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(denied.http_status, Some(403));
    assert!(denied.denied_headers["www-authenticate"].contains("scope=\"api/write\""));
    let ok = checked(
        client
            .check(check_request(
                "/reports",
                "GET",
                &[("authorization", &access)],
            ))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(ok.code, 0);
    assert_eq!(ok.set["x-auth-scopes"], "openid,email,api/read");

    // Anonymous: no token needed, every identity header removed.
    let open = checked(
        client
            .check(check_request(
                "/public/logo.png",
                "GET",
                &[("x-auth-sub", "admin")],
            ))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(open.code, 0);
    assert!(open.set.is_empty());
    assert_eq!(open.removed.len(), 6);
    // …but not through a dot segment to a protected path.
    let sneaky = checked(
        client
            .check(check_request("/public/../admin", "GET", &[]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(sneaky.http_status, Some(401));

    // The route's context_extensions narrow the policy.
    let mut narrowed = check_request("/anything", "GET", &[("authorization", &id)]);
    narrowed
        .attributes
        .as_mut()
        .unwrap()
        .context_extensions
        .insert("required_groups".into(), "auditors".into());
    let denied = checked(client.check(narrowed).await.unwrap().into_inner());
    assert_eq!(denied.http_status, Some(403));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_answers_like_a_gateway_should() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let service = start_service(gateway_config(&jwks.url(), "")).await;
    let base = format!("http://{}/auth", service.gateway_addr.unwrap());
    let http = reqwest::Client::new();
    let id = format!("Bearer {}", key.sign_claims(&id_claims()));
    let access = format!("Bearer {}", key.sign_claims(&access_claims()));

    // nginx's convention (X-Original-*) and Traefik/Caddy's (X-Forwarded-*).
    let response = ask(
        &http,
        &base,
        &[
            ("authorization", &id),
            ("x-original-uri", "/admin/users?page=2"),
            ("x-original-method", "DELETE"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-auth-username"], "alice");
    assert_eq!(response.headers()["x-auth-groups"], "admin,users");
    assert!(response.headers().get("x-auth-scopes").is_none());

    let response = ask(
        &http,
        &base,
        &[
            ("authorization", &access),
            ("x-forwarded-uri", "/reports/q1"),
            ("x-forwarded-method", "POST"),
        ],
    )
    .await;
    assert_eq!(response.status(), 403);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "REASON_MISSING_SCOPE");

    let response = ask(&http, &base, &[("x-forwarded-uri", "/admin")]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"token-validator\""
    );

    let response = ask(&http, &base, &[("authorization", "Bearer not.a.token")]).await;
    assert_eq!(response.status(), 401);

    let response = ask(&http, &base, &[("x-forwarded-uri", "/public/")]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-auth-sub").is_none());

    // A client cannot pick its rule by sending the convention its proxy does not set.
    let response = ask(
        &http,
        &base,
        &[
            ("x-forwarded-uri", "/public/x"),
            ("x-original-uri", "/admin"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    let response = ask(
        &http,
        &base,
        &[
            ("x-forwarded-method", "GET"),
            ("x-original-method", "POST"),
            ("x-forwarded-uri", "/public/x"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    // ingress-nginx's X-Original-URL (a whole URL) alone is read for its path.
    let response = ask(
        &http,
        &base,
        &[("x-original-url", "https://app.example.com/public/x?y=1")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = ask(
        &http,
        &base,
        &[("x-original-url", "https://app.example.com/admin")],
    )
    .await;
    assert_eq!(response.status(), 401);

    // Any method reaches /auth (Traefik forwards the original one).
    assert_eq!(http.post(&base).send().await.unwrap().status(), 401);
    // Only /auth answers.
    let other = format!("http://{}/admin", service.gateway_addr.unwrap());
    assert_eq!(http.get(other).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_both_adapters_fail_closed_with_503() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    // A second, optional pool whose JWKS endpoint answers nothing useful.
    let mut config = gateway_config(&jwks.url(), "");
    config.pools.push(PoolConfig {
        client_ids: vec![CLIENT_ID.into()],
        issuer: Some("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Down".into()),
        jwks_url: Some("http://127.0.0.1:9/jwks.json".into()),
        required: false,
        ..PoolConfig::new("down", REGION, "us-east-1_Down")
    });
    let service = start_service(config).await;
    let mut claims = id_claims();
    claims["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Down");
    let token = format!("Bearer {}", key.sign_claims(&claims));

    let mut client = authz_client(&service.url()).await;
    let answer = checked(
        client
            .check(check_request("/", "GET", &[("authorization", &token)]))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!((answer.code, answer.http_status), (14, Some(503)));

    let response = reqwest::Client::new()
        .get(format!("http://{}/auth", service.gateway_addr.unwrap()))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
}

/// Reads until the peer closes; false if it stays open past the timeout.
async fn closed_within(mut tcp: tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(within, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forward_auth_port_is_bounded_against_a_hostile_client() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    let config = gateway_config(
        &jwks.url(),
        "  max_connections: 4\n  idle_timeout_secs: 1\n",
    );
    let service = start_service(config).await;
    let addr: SocketAddr = service.gateway_addr.unwrap();

    // Four connections that never finish their headers hold every slot…
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /auth HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        holders.push(tcp);
    }
    // …so a fifth waits in the backlog, and is answered once the idle bound frees them.
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/auth"))
        .header("x-forwarded-uri", "/public")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for tcp in holders {
        assert!(
            closed_within(tcp, Duration::from_secs(5)).await,
            "a silent connection stayed open"
        );
    }

    // A header block far past hyper's bound is refused, the connection closed.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let huge = format!(
        "GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = tcp.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{}",
        &text[..text.len().min(200)]
    );

    // And the port still answers.
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/auth"))
        .header("x-forwarded-uri", "/public")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_may_ask_whether_the_token_was_revoked() {
    let key = SigningKey::generate("k").unwrap();
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_get_user_status(400);
    jwks.set_get_user_message("Access Token has been revoked");
    let mut config = gateway_config(
        &jwks.url(),
        "    - path_prefix: /billing\n      check_revocation: true\n",
    );
    config.userinfo.cognito_endpoint = format!("http://{}/", jwks.addr);
    config.pools[0].revocation.check = token_validator::config::RevocationCheck::OnRequest;
    let service = start_service(config).await;
    let access = format!("Bearer {}", key.sign_claims(&access_claims()));
    let http = reqwest::Client::new();
    let ask = |path: &'static str| {
        http.get(format!("http://{}/auth", service.gateway_addr.unwrap()))
            .header("authorization", access.clone())
            .header("x-forwarded-uri", path)
            .send()
    };
    // The default route does not ask; /billing does, and the token is revoked.
    assert_eq!(ask("/reports").await.unwrap().status(), 200);
    assert_eq!(jwks.get_user_calls(), 0);
    let response = ask("/billing/invoices").await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "REASON_REVOKED");
    // ext_authz: the same through context_extensions.
    let mut request = check_request("/reports", "GET", &[("authorization", &access)]);
    request
        .attributes
        .as_mut()
        .unwrap()
        .context_extensions
        .insert("check_revocation".into(), "true".into());
    let denied = checked(
        authz_client(&service.url())
            .await
            .check(request)
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(denied.http_status, Some(401));
    assert!(denied.body.contains("REASON_REVOKED"), "{}", denied.body);
}
