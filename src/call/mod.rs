//! The call: what the gateway does with an answered call.
pub mod driver;
