//! `pgbin diff` with every record of the two builds: the manifests
//! ([`crate::compare::inputs`]) and, for Nix builds, the derivation and
//! closure each one's provenance (`<archive>.intoto.json`) records. A
//! statement found beside an archive must be pgbin's provenance of exactly
//! that file (name and SHA-256), read bounded like every attestation.

use std::path::Path;

use crate::attest::provenance;
use crate::attest::verify_artifact::MAX_ATTESTATION_BYTES;
use crate::compare::diff::Options;
use crate::compare::inputs::{self, Comparison, ComparisonError, Input, Manifests};
use crate::nix::closure::DerivationInputs;
use crate::util::io::{IoError, read_text_limited};

/// Why two builds could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum BuildDiffError {
    /// The outputs or their manifests could not be compared.
    #[error(transparent)]
    Comparison(#[from] ComparisonError),
    /// A provenance statement could not be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A provenance statement is not pgbin's, or describes another file.
    #[error("{path}: {reason}; remove it or pass --no-manifests")]
    Provenance {
        /// The statement.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

crate::util::error::usage_errors!(BuildDiffError);

/// Compares `a` and `b` as [`inputs::diff_with_inputs`] does, then with the
/// derivations their provenance records (unless `manifests.ignore`).
pub fn diff_builds(
    a: &Path,
    b: &Path,
    manifests: Manifests,
    scratch: &Path,
    options: Options,
) -> Result<Comparison, BuildDiffError> {
    let (a, b) = (Input::new(a), Input::new(b));
    let comparison = inputs::diff_with_inputs(&a, &b, manifests, scratch, options)?;
    if manifests.ignore {
        return Ok(comparison);
    }
    let (derivation_a, derivation_b) = (recorded_derivation(&a)?, recorded_derivation(&b)?);
    Ok(comparison.with_derivations(derivation_a.as_ref(), derivation_b.as_ref()))
}

/// The derivation recorded in the provenance beside the archive file
/// `input`, if there is a statement and it records one.
fn recorded_derivation(compared: &Input) -> Result<Option<DerivationInputs>, BuildDiffError> {
    let input = compared.path;
    let mut name = input.as_os_str().to_os_string();
    name.push(provenance::SUFFIX);
    let statement_file = std::path::PathBuf::from(name);
    if !input.is_file() || std::fs::symlink_metadata(&statement_file).is_err() {
        return Ok(None);
    }
    let shown = statement_file.display().to_string();
    let text = read_text_limited(&statement_file, MAX_ATTESTATION_BYTES)?;
    let statement = provenance::parse(&text)
        .map_err(|e| BuildDiffError::Provenance { path: shown.clone(), reason: e.to_string() })?;
    let file_name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !statement.covers(&file_name, compared.sha256()?) {
        let reason = format!("it is the provenance of {}, not of {file_name}", statement.subjects());
        return Err(BuildDiffError::Provenance { path: shown, reason });
    }
    Ok(statement.derivation_inputs())
}
