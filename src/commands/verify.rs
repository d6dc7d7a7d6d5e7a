//! `pgbin verify`: check a local tarball, and optionally evidence files,
//! against the lock and the trust policy. Writes nothing.

use std::path::PathBuf;

use serde::Serialize;

use pgbin::data::version::Version;
use pgbin::source::verify::{self as trust, Assessment};
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
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    // Hashing the tarball is the long pole: it runs while the evidence is verified.
    let file = args.file.clone();
    let hashing = std::thread::spawn(move || pgbin::util::digest::digest_file(&file));
    let project = ctx.project()?;
    let entry = super::locked_entry(&project, version)?;
    let assessment = trust::assess(project.repo.root(), &project.policy, entry)?;
    for path in &args.evidence {
        let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        let name = path.display().to_string();
        let record = pgbin::source::documents::record_from_document(
            &project.policy,
            version,
            &bytes,
            &name,
            jiff::Timestamp::now(),
        )?;
        let known = entry.evidence.iter().find(|e| e.document().1 == record.document().1);
        let checked = match known {
            Some(locked) => locked.clone(),
            None => record,
        };
        trust::verify_evidence(&project.policy, entry, &checked, &bytes)?;
    }
    let digest = hashing.join().expect("the hashing thread does not panic")?;
    let digest = trust::check_digest(&args.file, digest, entry)?;
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
        });
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
    }
    Ok(())
}
