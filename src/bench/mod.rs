//! `voicebot bench`: measured figures for the closing notes (RTP load, speech
//! recognition, turn latency by phone and from the web, voices, call-record storage). Benchmarks print; tests assert.
pub mod capacity;
pub mod cli;
pub mod fixtures;
pub mod fuzz;
pub mod rtp;
pub mod storage;
pub mod stt;
pub mod tts;
pub mod turn;
pub mod turn_end;
pub mod understand;
pub mod vad;
pub mod web;
