//! Source authenticity: OpenPGP verification, evidence documents, the trust
//! level of every locked release, recording new evidence in the lock, and
//! obtaining a tarball only once it is verified.

pub mod debian;
pub mod debian_archive;
pub mod debian_index;
pub mod documents;
pub mod error;
pub mod fetch;
pub mod git;
pub mod openpgp;
pub mod project;
pub mod record;
pub mod refresh;
pub mod verify;
pub mod witness_clone;
pub mod witness_scan;
