//! The dev issuer's HTTP routes: the pool's JWKS, Cognito's GetUser and
//! AdminGetUser, and the `/dev/tokens`, `/dev/revoke` and
//! `/dev/users/{name}/{disable,enable,delete}` helpers.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DEV_USER_POOL_ID, IssuerState, MintRequest, MintedTokens, UserChange};
use crate::{jwks::SigningAlgorithm, validate::unix_now};

pub(super) fn router(state: Arc<IssuerState>) -> Router {
    Router::new()
        .route(
            &format!("/{DEV_USER_POOL_ID}/.well-known/jwks.json"),
            get(jwks),
        )
        .route("/", post(cognito_api))
        .route("/dev/tokens", post(mint_route))
        .route("/dev/revoke", post(revoke_route))
        .route("/dev/users/{name}/{change}", post(user_route))
        .with_state(state)
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    Json(state.jwks.clone())
}

async fn mint_route(
    State(state): State<Arc<IssuerState>>,
    request: Option<Json<MintRequest>>,
) -> Result<Json<MintedTokens>, (StatusCode, String)> {
    let request = request.map(|Json(r)| r).unwrap_or_default();
    if let Some(problem) = request.problem() {
        return Err((StatusCode::BAD_REQUEST, format!("{problem}\n")));
    }
    Ok(Json(state.mint(&request)))
}

#[derive(Deserialize)]
struct RevokeRequest {
    access_token: String,
}

async fn revoke_route(
    State(state): State<Arc<IssuerState>>,
    Json(request): Json<RevokeRequest>,
) -> StatusCode {
    if state.revoke(&request.access_token) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn user_route(
    State(state): State<Arc<IssuerState>>,
    Path((name, change)): Path<(String, String)>,
) -> (StatusCode, String) {
    let change = match change.as_str() {
        "disable" => UserChange::Disable,
        "enable" => UserChange::Enable,
        "delete" => UserChange::Delete,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "use /dev/users/NAME/disable, /enable or /delete\n".into(),
            );
        }
    };
    if state.change_user(&name, change) {
        (StatusCode::NO_CONTENT, String::new())
    } else {
        (StatusCode::NOT_FOUND, "no such user\n".into())
    }
}

/// The payload of a token this issuer signed, if the signature is good.
pub(super) fn verify_own(state: &IssuerState, token: &str) -> Option<Value> {
    let (input, signature) = token.rsplit_once('.')?;
    let (_, payload) = input.split_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if !state.public.get(state.key.kid())?.verify(
        SigningAlgorithm::Rs256,
        input.as_bytes(),
        &signature,
    ) {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> axum::response::Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        json!({ "__type": kind, "message": message }).to_string(),
    )
        .into_response()
}

/// The subset of Cognito's API the service calls: GetUser.
async fn cognito_api(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match target {
        "AWSCognitoIdentityProviderService.GetUser" => {}
        "AWSCognitoIdentityProviderService.AdminGetUser" => return admin_get_user(&state, &body),
        _ => return aws_error(StatusCode::BAD_REQUEST, "UnknownOperationException", target),
    }
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["AccessToken"].as_str().map(String::from));
    let Some(claims) = token.as_deref().and_then(|t| verify_own(&state, t)) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "NotAuthorizedException",
            "Invalid Access Token",
        );
    };
    if claims["token_use"] != "access" {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "NotAuthorizedException",
            "Invalid Access Token",
        );
    }
    if claims["exp"].as_i64().unwrap_or(0) <= unix_now() {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "NotAuthorizedException",
            "Access Token has expired",
        );
    }
    let jti = claims["jti"].as_str().unwrap_or_default();
    if state.revoked.lock().expect("not poisoned").contains(jti) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "NotAuthorizedException",
            "Access Token has been revoked",
        );
    }
    let username = claims["username"].as_str().unwrap_or_default().to_string();
    let users = state.users.lock().expect("not poisoned");
    let Some(user) = users.get(&username) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "UserNotFoundException",
            "User does not exist.",
        );
    };
    if !user.enabled {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "NotAuthorizedException",
            "User is disabled.",
        );
    }
    let attributes = attribute_list(user);
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        json!({ "Username": username, "UserAttributes": attributes }).to_string(),
    )
        .into_response()
}

/// AdminGetUser (IAM-signed in Cognito; the dev pool accepts any signature):
/// the user's state, as the revocation check of ID tokens reads it.
fn admin_get_user(state: &IssuerState, body: &[u8]) -> axum::response::Response {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    if request["UserPoolId"] != DEV_USER_POOL_ID {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "User pool does not exist.",
        );
    }
    let username = request["Username"].as_str().unwrap_or_default();
    let users = state.users.lock().expect("not poisoned");
    let Some(user) = users.get(username) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "UserNotFoundException",
            "User does not exist.",
        );
    };
    let attributes = attribute_list(user);
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        json!({
            "Username": username,
            "Enabled": user.enabled,
            "UserStatus": "CONFIRMED",
            "UserAttributes": attributes,
        })
        .to_string(),
    )
        .into_response()
}

/// A user's attributes as Cognito lists them: `[{"Name": …, "Value": …}]`.
fn attribute_list(user: &super::User) -> Vec<Value> {
    user.attributes
        .iter()
        .map(|(name, value)| json!({ "Name": name, "Value": value }))
        .collect()
}
