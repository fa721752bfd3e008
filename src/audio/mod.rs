//! Audio formats on the call's path: G.711 on the wire, PCM in between, WAV on disk.
pub mod echo;
pub mod g711;
pub mod resample;
pub mod wav;
