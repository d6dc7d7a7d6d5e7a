//! `pgbin catalog`: keeping the catalog and the lock current from public
//! records.

use std::path::PathBuf;

use pgbin::source::debian_index::DEFAULT_SUITES;
use pgbin::source::refresh::{self, DebianSuites, RefreshReport};
use pgbin::source::witness_clone::WitnessClone;

use super::{Context, Failure, print_json};

/// `pgbin catalog` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Find releases and evidence the project lacks in Debian's source
    /// indexes and in local clones of witness repositories, and write
    /// proposals for `pgbin lock add`
    Refresh(RefreshArgs),
}

/// Arguments of `pgbin catalog refresh`.
#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// A local git clone of a witness repository whose branches are scanned
    /// for records of tarball hashes (repeatable)
    #[arg(long, value_name = "OWNER/REPO=DIR")]
    witness_clone: Vec<WitnessClone>,
    /// Read the Debian suites that carry PostgreSQL (experimental, sid,
    /// trixie, bookworm and their security and proposed updates) from the
    /// configured mirror ($PGBIN_DEBIAN_MIRROR, $PGBIN_DEBIAN_SECURITY_MIRROR,
    /// else the apt sources)
    #[arg(long)]
    debian: bool,
    /// Read this Debian suite's signed source index (repeatable; instead of
    /// the --debian list)
    #[arg(long, value_name = "SUITE")]
    debian_suite: Vec<String>,
    /// Write each new, agreeing witness excerpt or archive proof into DIR, named as `pgbin
    /// lock add` commits it (nothing is written without it)
    #[arg(long, value_name = "DIR")]
    proposals: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// Runs a `catalog` subcommand.
pub fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Refresh(args) => refresh_command(ctx, args),
    }
}

fn refresh_command(ctx: &Context, args: RefreshArgs) -> Result<(), Failure> {
    let suites: Vec<String> = if args.debian_suite.is_empty() && args.debian {
        DEFAULT_SUITES.iter().map(ToString::to_string).collect()
    } else {
        args.debian_suite
    };
    if args.witness_clone.is_empty() && suites.is_empty() {
        return Err(Failure::usage("give --debian, --debian-suite SUITE or --witness-clone OWNER/REPO=DIR to scan"));
    }
    let project = ctx.project()?;
    let debian = DebianSuites::configured(suites);
    let report = refresh::refresh(&project, &args.witness_clone, &debian, args.proposals.as_deref())?;
    if args.json {
        print_json(&report)?;
    } else {
        render(&report);
    }
    if report.refused().next().is_some() {
        return Err(Failure::silent_check());
    }
    Ok(())
}

fn render(report: &RefreshReport) {
    for scan in &report.scans {
        println!(
            "{}: {} commits on its branches, {} record files, {} releases recorded",
            scan.repository,
            scan.commits,
            scan.files,
            scan.records.len()
        );
        for (version, hashes) in &scan.conflicting {
            println!("  {version}: recorded with {} different SHA-256 values; none is proposed", hashes.len());
        }
    }
    for release in &report.releases {
        let new: Vec<_> = release.records.iter().filter(|f| !f.locked).collect();
        if let Some(reason) = &release.refused {
            println!("REFUSED {reason}");
        } else if !release.catalogued {
            println!("{}: not in the catalog ({} record(s))", release.version, release.records.len());
        } else if !new.is_empty() {
            let owners: Vec<&str> = new.iter().map(|f| f.publisher.as_str()).collect();
            let state = if release.locked_sha256.is_some() { "locked" } else { "not locked" };
            println!("{} ({state}): new evidence from {}", release.version, owners.join(", "));
        }
    }
    for suite in &report.suites {
        println!("Debian {}: InRelease of {} signed by {}", suite.suite, suite.date, suite.signer);
    }
    for finding in &report.debian {
        let release = &finding.release;
        let what =
            format!("{} ({} {} in {})", release.upstream, release.package, release.debian_version, release.suite);
        if let Some(reason) = &finding.refused {
            println!("REFUSED {reason}");
        } else if let Some(path) = &finding.proposal {
            let catalogue = if finding.catalogued { "" } else { "; add it to data/catalog.toml first" };
            println!("{what}: archive proof written to {}{catalogue}", path.display());
        } else if let (Some(reason), false) = (&finding.unprovable, finding.locked) {
            println!("{what}: no proof from this suite: {reason}");
        }
    }
    for release in &report.pre_releases {
        println!(
            "pre-release {} ({} {} in {}): not proposed",
            release.upstream, release.package, release.debian_version, release.suite
        );
    }
    if !report.uncatalogued_pre_releases.is_empty() {
        println!("pre-releases the catalog lacks: {}", report.uncatalogued_pre_releases.join(", "));
    }
    if report.older_majors_skipped > 0 {
        println!("{} record(s) of majors older than the catalog's left out", report.older_majors_skipped);
    }
    if !report.uncatalogued.is_empty() {
        let versions: Vec<String> = report.uncatalogued.iter().map(ToString::to_string).collect();
        println!("releases the catalog lacks: {}", versions.join(", "));
    }
    println!(
        "{} proposal(s) written; record each release with `pgbin lock add VERSION --evidence FILE...`",
        report.proposals.len()
    );
}
