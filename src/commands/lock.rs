//! `pgbin lock`: record a release and its verified evidence in the source
//! lock (the rules, anti-rollback included, are `pgbin::source::record`).

use std::path::PathBuf;

use pgbin::source::record::{self, AddRequest, Recorded};
use pgbin::source::verify::Level;
use pgbin::source::witness_clone::{WitnessClone, check_lock_witnesses};

use super::{Context, Failure, print_json, styled_level};

/// `pgbin lock` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify evidence files and record the release in data/sources.lock.json
    Add(AddArgs),
    /// List the lock's witnesses and check each against local clones of
    /// their repositories (the commit on a branch, the blob, the excerpt)
    Witnesses(WitnessesArgs),
}

/// Arguments of `pgbin lock witnesses`.
#[derive(Debug, clap::Args)]
pub struct WitnessesArgs {
    /// A local git clone of a witness repository (repeatable)
    #[arg(long, value_name = "OWNER/REPO=DIR")]
    witness_clone: Vec<WitnessClone>,
    /// Print only the repositories whose clones a full check needs, one per line
    #[arg(long, conflicts_with = "json")]
    repositories: bool,
    /// Fail (exit 1) unless a clone was given for every repository whose
    /// witnesses record a blob id
    #[arg(long)]
    require_all: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// Arguments of `pgbin lock add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Exact version (17.6); must be in the catalog
    version: String,
    /// Evidence files: a clearsigned Debian .dsc, a witness excerpt, or an upstream .sha256
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    evidence: Vec<PathBuf>,
    /// Accept a release lower than the highest locked one of its major (recorded)
    #[arg(long, requires = "reason")]
    allow_downgrade: bool,
    /// Accept evidence attesting a different hash for a locked release (recorded)
    #[arg(long, requires = "reason")]
    allow_changed_evidence: bool,
    /// Why an override is needed; stored in the lock
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Check new witnesses of OWNER/REPO against a local git clone of it
    /// before recording them (repeatable)
    #[arg(long, value_name = "OWNER/REPO=DIR")]
    witness_clone: Vec<WitnessClone>,
}

/// Runs a `lock` subcommand.
pub fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Add(args) => add(ctx, args),
        Command::Witnesses(args) => witnesses(ctx, args),
    }
}

fn witnesses(ctx: &Context, args: WitnessesArgs) -> Result<(), Failure> {
    let project = ctx.project()?;
    let found = check_lock_witnesses(project.repo.root(), &project.lock, &args.witness_clone)?;
    if args.repositories {
        found.repositories.iter().for_each(|r| println!("{r}"));
    } else if args.json {
        print_json(&found)?;
    } else {
        println!(
            "{} witness(es) checked against a clone, {} without a clone given, {} recorded without a blob id",
            found.report.checked.len(),
            found.report.not_covered.len(),
            found.report.not_checkable.len()
        );
        for reference in &found.report.not_checkable {
            println!("  not checkable: {reference}");
        }
    }
    if args.require_all {
        let missing: Vec<&str> = found
            .repositories
            .iter()
            .filter(|r| !args.witness_clone.iter().any(|c| c.repository.eq_ignore_ascii_case(r)))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Failure::check(format!(
                "no clone given for {}, whose witnesses record blob ids; pass --witness-clone OWNER/REPO=DIR for each",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

fn add(ctx: &Context, args: AddArgs) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let request = AddRequest {
        version,
        evidence: &args.evidence,
        allow_downgrade: args.allow_downgrade,
        allow_changed_evidence: args.allow_changed_evidence,
        reason: args.reason.as_deref(),
        witness_clones: &args.witness_clone,
    };
    match record::add(&project, &request)? {
        Recorded::Unchanged => println!("{version} is already locked with this evidence; nothing changed"),
        Recorded::Locked { level, new_documents, witnesses_checked, basis } => {
            println!(
                "locked {version}: {} ({new_documents} new evidence document(s), {witnesses_checked} checked against a clone); run `pgbin generate` next",
                styled_level(level)
            );
            if level < Level::Corroborated {
                eprintln!(
                    "pgbin: note: {version} is {level} ({basis}): listed, but not buildable until more evidence is added"
                );
            }
        }
    }
    Ok(())
}
