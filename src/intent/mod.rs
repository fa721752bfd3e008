//! The intent service: what did the caller ask, and what should the bot do about it.
//!
//! The gateway asks over gRPC (`proto/intent.proto`) so a municipality can plug in its
//! own backend; ours is a knowledge-base matcher that runs in-process by default or as
//! `voicebot intents serve`.
/// Types and stubs generated from `proto/intent.proto`.
pub mod proto {
    tonic::include_proto!("voicebot.intent.v1");
}

pub mod acoustic;
pub mod analyze;
pub mod bench;
pub mod breaker;
pub mod candidates;
pub mod cli;
pub mod client;
pub mod index;
pub mod kb;
pub mod lexicon;
pub mod matcher;
pub mod meaning;
pub mod normalize;
pub mod overlay;
pub mod reload;
pub mod resolution;
pub mod server;
pub mod signals;
pub mod spelling;
pub mod wire;
