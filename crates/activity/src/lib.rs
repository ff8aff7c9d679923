//! Keywatch's behaviour analysis: readers that turn audit logs into
//! [`keywatch_model::event::Event`]s, and detectors that learn how each credential normally
//! behaves and flag what a stolen one does.

pub mod atlassian;
pub mod blocklist;
pub mod cloudtrail;
pub mod detect;
mod document;
pub mod enrich;
mod fields;
pub mod github;
pub mod google;
pub mod mapped;
pub mod okta;
pub mod read;
