//! Keywatch's inventory of non-human identities: importers that turn platform exports into
//! [`keywatch_model::inventory`] records, the vendor catalogue, and the attribution of
//! credentials to the vendors that hold them.

pub mod attribution;
pub mod catalogue;
pub mod import;
pub mod sync;
