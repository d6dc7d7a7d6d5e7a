//! Attestations about built archives: SLSA provenance, SPDX SBOMs and
//! OpenPGP/DSSE signatures, and checking them on a download.

pub mod documents;
pub mod provenance;
pub mod sbom;
pub mod signing;
pub mod verify_artifact;
