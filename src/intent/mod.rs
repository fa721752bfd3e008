//! The intent service: what did the caller ask, and what should the bot do about it.
//!
//! The gateway asks over gRPC (`proto/intent.proto`) so a municipality can plug in its
//! own backend; ours is a knowledge-base matcher that runs in-process by default or as
//! `voicebot intents serve`.
pub mod analyze;
pub mod index;
pub mod kb;
pub mod lexicon;
pub mod normalize;
pub mod resolution;
#[cfg(test)]
mod dev_eval;
