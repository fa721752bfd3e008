//! The call: the conversation (no I/O), its prompts and keypad menu, and the driver
//! that wires it to media, speech recognition, the intent service and speech synthesis.
pub mod conversation;
pub mod decoding;
pub mod driver;
pub mod line;
pub mod menu;
pub mod playback;
pub mod prompts;
pub mod sip_line;
pub mod turn_metrics;
pub mod understanding;
