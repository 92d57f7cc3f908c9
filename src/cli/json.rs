//! How the CLI's `--json` shows the two proto fields whose wire form is not
//! what a reader wants: a claims payload carried as a JSON string is shown as
//! the object it is, and an enum number as its name. Everything else is the
//! proto message as generated (serde derives in build.rs), so the output can
//! never drift from the contract.

use serde::Serializer;

use crate::grpc::proto;

/// `Claims.json`: the verified payload as an object (a string if it is not JSON).
pub fn embedded_json<S: Serializer>(json: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(value) => serde::Serialize::serialize(&value, serializer),
        Err(_) => serializer.serialize_str(json),
    }
}

/// `GetUserInfoResponse.source`: the enum's name, e.g. `USER_INFO_SOURCE_COGNITO`.
pub fn user_info_source<S: Serializer>(source: &i32, serializer: S) -> Result<S::Ok, S::Error> {
    let name = proto::UserInfoSource::try_from(*source).map_or("UNKNOWN", |s| s.as_str_name());
    serializer.serialize_str(name)
}
