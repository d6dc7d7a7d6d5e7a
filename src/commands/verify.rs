//! `pgbin verify`: check a local tarball, and optionally evidence files,
//! against the lock and the trust policy. Writes nothing.

use std::path::PathBuf;

use serde::Serialize;

use pgbin::data::version::Version;
use pgbin::source::documents::EVIDENCE_BOUND;
use pgbin::source::verify::{Assessment, LocalVerification, verify_local};
use pgbin::source::witness_clone::{CloneReport, WitnessClone};
use pgbin::util::confined::read_regular_file;
use pgbin::util::digest::FileDigest;

use super::{Context, Failure, print_json, styled_level};

/// Arguments of `pgbin verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (17.6)
    version: String,
    /// The tarball to check
    file: PathBuf,
    /// Evidence files to check as well (.dsc, witness excerpt, .sha256); each must match the lock
    #[arg(long, value_name = "FILE", num_args = 1..)]
    evidence: Vec<PathBuf>,
    /// Check the release's witnesses of OWNER/REPO against a local git clone
    /// of it: the pinned commit must hold the recorded blob at the recorded
    /// path, containing the excerpt (repeatable)
    #[arg(long, value_name = "OWNER/REPO=DIR")]
    witness_clone: Vec<WitnessClone>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Verdict {
    version: Version,
    file: String,
    #[serde(flatten)]
    digest: FileDigest,
    #[serde(flatten)]
    assessment: Assessment,
    extra_evidence_checked: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    witness_clones: Option<CloneReport>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let entry = project.locked(version)?;
    let mut documents = Vec::new();
    for path in &args.evidence {
        let bytes = read_regular_file(path, EVIDENCE_BOUND)?;
        documents.push((path.display().to_string(), bytes));
    }
    let LocalVerification { digest, assessment, witness_clones } =
        verify_local(project.repo.root(), &project.policy, entry, &args.file, &documents, &args.witness_clone)?;
    if !assessment.level.buildable() {
        return Err(Failure::check(format!(
            "{} matches the lock, but PostgreSQL {version} is only {} (needs signed or corroborated evidence)",
            args.file.display(),
            assessment.level
        )));
    }
    if args.json {
        print_json(&Verdict {
            version,
            file: args.file.display().to_string(),
            digest,
            extra_evidence_checked: args.evidence.len(),
            assessment,
            witness_clones,
        })?;
    } else {
        println!("OK {} is PostgreSQL {version}, {}", args.file.display(), styled_level(assessment.level));
        for e in &assessment.evidence {
            match (&e.signer, &e.signer_name) {
                (Some(fpr), name) => println!(
                    "  {}: signed by {} {fpr} at {}",
                    e.kind,
                    name.as_deref().unwrap_or(""),
                    e.signature_created.as_deref().unwrap_or("?")
                ),
                _ => println!("  {}: {} ({}), unsigned", e.kind, e.publisher, e.reference),
            }
        }
        if let Some(report) = &witness_clones {
            for reference in &report.checked {
                println!("  checked against a clone: {reference}");
            }
            for reference in &report.not_covered {
                println!("  no clone given for: {reference}");
            }
            for reference in &report.not_checkable {
                println!("  recorded without a blob id, not checkable: {reference}");
            }
        }
    }
    Ok(())
}
