//! Keywatch's behaviour analysis: readers that turn audit logs into
//! [`keywatch_model::event::Event`]s, and detectors that learn how each credential normally
//! behaves and flag what a stolen one does.

pub mod cloudtrail;
pub mod detect;
