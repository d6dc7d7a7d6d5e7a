//! `pgbin versions`: every catalogued release with its source and trust level.

use serde::Serialize;

use pgbin::data::catalog;
use pgbin::data::version::Version;

use super::{Context, Failure, print_json, styled_level};

/// Arguments of `pgbin versions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this major
    #[arg(long, value_name = "N")]
    major: Option<u32>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// One row of the listing.
#[derive(Debug, Serialize)]
struct Row {
    version: Version,
    major: u32,
    released: jiff::civil::Date,
    end_of_life: bool,
    eol: jiff::civil::Date,
    tarball: String,
    url: String,
    size: Option<u64>,
    sha256: Option<String>,
    trust: pgbin::source::verify::Level,
    buildable: bool,
    evidence: Vec<String>,
    signers: Vec<String>,
    /// What the level rests on, or what is missing.
    basis: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    if let Some(major) = args.major {
        if project.catalog.major(major).is_none() {
            return Err(Failure::usage(format!("PostgreSQL {major} is not in the catalog")));
        }
    }
    let assessments = project.assess_all()?;
    let today = catalog::today_utc();
    let mut rows = Vec::new();
    for (major, release) in project.catalog.releases() {
        if args.major.is_some_and(|m| m != major.major) {
            continue;
        }
        let locked = project.lock.get(release.version);
        let assessment = assessments.get(&release.version);
        let level = assessment.map_or(pgbin::source::verify::Level::Unverified, |a| a.level);
        rows.push(Row {
            version: release.version,
            major: major.major,
            released: release.date,
            end_of_life: major.is_end_of_life(today),
            eol: major.eol,
            tarball: catalog::tarball_name(release.version),
            url: catalog::upstream_url(release.version),
            size: locked.and_then(|l| l.size),
            sha256: locked.map(|l| l.sha256.clone()),
            trust: level,
            buildable: level.buildable(),
            evidence: assessment.map(|a| a.evidence.iter().map(|e| e.kind.clone()).collect()).unwrap_or_default(),
            signers: assessment.map(|a| a.signers()).unwrap_or_default(),
            basis: assessment.map_or_else(|| "not in the lock: no evidence recorded".into(), |a| a.basis()),
        });
    }
    if args.json {
        print_json(&rows)?;
        return Ok(());
    }
    println!("{:<8} {:<11} {:<13} {:<5} {:<64} BASIS", "VERSION", "RELEASED", "TRUST", "EOL", "SHA-256");
    for row in rows.iter().rev() {
        let level = row.trust;
        let padded = format!("{:<13}", level.as_str());
        println!(
            "{:<8} {:<11} {} {:<5} {:<64} {}",
            row.version.to_string(),
            row.released.to_string(),
            padded.replacen(level.as_str(), &styled_level(level), 1),
            if row.end_of_life { "yes" } else { "" },
            row.sha256.as_deref().unwrap_or("-"),
            row.basis,
        );
    }
    Ok(())
}
