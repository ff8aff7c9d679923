//! Keywatch's inventory of non-human identities: importers that turn platform exports into
//! [`keywatch_model::inventory`] records.

pub mod import;
