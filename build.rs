//! Compiles the public proto contract with protox (pure Rust), so building the
//! service needs no system `protoc`. Also writes the file descriptor set that
//! gRPC server reflection serves.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/tokenvalidator/v1/token_validator.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("token_validator_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        // Smaller per-call buffers than tonic's default (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::SmallBufferCodec")
        // The CLI's --json output is these messages, serialized as they are
        // (src/cli/json.rs names the two fields JSON shows differently).
        .type_attribute(".tokenvalidator.v1.Claims", "#[derive(serde::Serialize)]")
        .type_attribute(
            ".tokenvalidator.v1.GetUserInfoResponse",
            "#[derive(serde::Serialize)]",
        )
        .field_attribute(
            ".tokenvalidator.v1.Claims.json",
            "#[serde(serialize_with = \"crate::cli::json::embedded_json\")]",
        )
        .field_attribute(
            ".tokenvalidator.v1.GetUserInfoResponse.source",
            "#[serde(serialize_with = \"crate::cli::json::user_info_source\")]",
        )
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
