//! `pgbin lock`: record a release and its verified evidence in the source lock.
//!
//! Anti-rollback: a release below the highest one locked for its major, or
//! evidence attesting a different hash for an already locked release, is
//! refused unless explicitly overridden; an override is recorded in the
//! entry with its time and reason.

use std::path::PathBuf;

use pgbin::data::lock::{Evidence, LockedSource, Override};
use pgbin::nix::data as nixdata;
use pgbin::source::documents as evidence;
use pgbin::source::verify::{self as trust, Level};
use pgbin::util::time::format_time;

use super::{Context, Failure, styled_level};

/// `pgbin lock` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify evidence files and record the release in data/sources.lock.json
    Add(AddArgs),
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
}

/// Runs a `lock` subcommand.
pub fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Add(args) => add(ctx, args),
    }
}

fn add(ctx: &Context, args: AddArgs) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    if project.catalog.release(version).is_none() {
        return Err(Failure::usage(format!(
            "PostgreSQL {version} is not in the catalog; add it to data/catalog.toml first"
        )));
    }
    let now = jiff::Timestamp::now();
    let now = jiff::Timestamp::from_second(now.as_second()).expect("whole seconds are in range");
    let mut documents: Vec<(Evidence, Vec<u8>)> = Vec::new();
    for path in &args.evidence {
        let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        let record =
            evidence::record_from_document(&project.policy, version, &bytes, &path.display().to_string(), now)?;
        documents.push((record, bytes));
    }
    let (first, _) = &documents[0];
    let sha256 = first.attests().sha256.clone();
    if let Some((odd, _)) = documents.iter().find(|(e, _)| e.attests().sha256 != sha256) {
        return Err(Failure::check(format!(
            "evidence disagrees: {} attests {}, {} attests {sha256}; refusing to lock",
            odd.document().0,
            odd.attests().sha256,
            first.document().0
        )));
    }
    let sizes: Vec<u64> = documents.iter().filter_map(|(e, _)| e.attests().size).collect();
    if sizes.windows(2).any(|w| w[0] != w[1]) {
        return Err(Failure::check("evidence disagrees on the tarball size; refusing to lock"));
    }

    let mut overrides = Vec::new();
    let existing = project.lock.get(version).cloned();
    if let Some(latest) = project.lock.latest_of_major(version.major) {
        if version < latest.version && existing.is_none() {
            if !args.allow_downgrade {
                return Err(Failure::check(format!(
                    "refusing downgrade: the lock already holds {} as the latest {}.x; pass --allow-downgrade --reason TEXT if this is intended",
                    latest.version, version.major
                )));
            }
            overrides.push(Override {
                rule: "downgrade".into(),
                at: format_time(now),
                reason: args.reason.clone().unwrap_or_default(),
            });
        }
    }
    let mut entry = match &existing {
        Some(old) if old.sha256 != sha256 => {
            if !args.allow_changed_evidence {
                return Err(Failure::check(format!(
                    "refusing changed evidence: {version} is locked with SHA-256 {}, the new evidence attests {sha256}; pass --allow-changed-evidence --reason TEXT if upstream really re-released",
                    old.sha256
                )));
            }
            overrides.push(Override {
                rule: "changed-evidence".into(),
                at: format_time(now),
                reason: args.reason.clone().unwrap_or_default(),
            });
            LockedSource { evidence: Vec::new(), sha256: sha256.clone(), size: sizes.first().copied(), ..old.clone() }
        }
        Some(old) => old.clone(),
        None => LockedSource {
            version,
            tarball: pgbin::data::catalog::tarball_name(version),
            size: sizes.first().copied(),
            sha256: sha256.clone(),
            urls: nixdata::default_urls(version),
            evidence: Vec::new(),
            overrides: Vec::new(),
        },
    };
    if entry.size.is_none() {
        entry.size = sizes.first().copied();
    }
    entry.overrides.extend(overrides);
    let mut new_documents = Vec::new();
    for (record, bytes) in documents {
        if entry.evidence.iter().any(|e| e.document().1 == record.document().1) {
            continue;
        }
        entry.evidence.push(record.clone());
        new_documents.push((record, bytes));
    }
    if new_documents.is_empty() && entry.overrides.len() == existing.as_ref().map_or(0, |e| e.overrides.len()) {
        println!("{version} is already locked with this evidence; nothing changed");
        return Ok(());
    }
    let mut verified = Vec::new();
    for item in &entry.evidence {
        let bytes = match new_documents.iter().find(|(r, _)| r == item) {
            Some((_, bytes)) => bytes.clone(),
            None => {
                let path = project.repo.root().join(item.document().0);
                std::fs::read(&path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?
            }
        };
        verified.push(trust::verify_evidence(&project.policy, &entry, item, &bytes)?);
    }
    let level = trust::level_of(&verified);

    let mut lock = project.lock.clone();
    lock.upsert(entry);
    lock.validate().map_err(|e| Failure::usage(e.to_string()))?;
    let mut written = Vec::new();
    let cleanup = |written: &[PathBuf]| written.iter().for_each(|p| drop(std::fs::remove_file(p)));
    for (record, bytes) in &new_documents {
        let path = project.repo.root().join(record.document().0);
        match std::fs::read(&path) {
            Ok(existing) if existing == *bytes => continue,
            Ok(_) => {
                cleanup(&written);
                return Err(Failure::usage(format!(
                    "{} exists with other content; refusing to overwrite evidence",
                    path.display()
                )));
            }
            Err(_) => {}
        }
        if let Err(e) = pgbin::util::fs::write_atomic(&path, bytes) {
            cleanup(&written);
            return Err(Failure::usage(format!("cannot write {}: {e}", path.display())));
        }
        written.push(path);
    }
    if let Err(e) = lock.save(&project.repo.lock()) {
        cleanup(&written);
        return Err(Failure::usage(e.to_string()));
    }
    println!(
        "locked {version}: {} ({} new evidence document(s)); run `pgbin generate` next",
        styled_level(level),
        new_documents.len()
    );
    if level < Level::Corroborated {
        eprintln!("pgbin: note: {version} is {level}: listed, but not buildable until more evidence is added");
    }
    Ok(())
}
