//! Generates the gRPC types and stubs for the intent service from `proto/intent.proto`
//! (needs `protoc`: Debian's `protobuf-compiler`).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure().compile_protos(&["proto/intent.proto"], &["proto"])?;
    Ok(())
}
