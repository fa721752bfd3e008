//! voicebot-gateway: a telephone voicebot for a Danish municipality's phone line.
//!
//! The call's path (see `../shared/DESIGN.md`): `sip` answers, `rtp` carries audio,
//! `audio` converts it, `call` runs the conversation; `caller` is our test UAC.
pub mod audio;
pub mod bench;
pub mod call;
pub mod caller;
pub mod config;
pub mod intent;
pub mod media;
pub mod onnx;
pub mod ops;
pub mod privacy;
pub mod rtp;
pub mod serve;
pub mod sip;
pub mod sms;
pub mod storage;
pub mod stt;
pub mod tenant;
pub mod transfer;
pub mod tts;
pub mod web;
