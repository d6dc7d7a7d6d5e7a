//! `pgbin resolve`: one version spec to one release, with its source status.

use serde::Serialize;

use pgbin::data::catalog::{self, Resolved};
use pgbin::data::version::VersionSpec;

use super::{Context, Failure, print_json, styled_level};

/// Arguments of `pgbin resolve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Version spec: MAJOR (latest patch of that major), MAJOR.MINOR, or MAJOR.MINOR.0
    spec: String,
    /// Allow a major past its end of life
    #[arg(long)]
    allow_eol: bool,
    /// For a major with no final release yet, answer its newest
    /// pre-release (beta or release candidate; listed, never built)
    #[arg(long)]
    pre: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// The answer.
#[derive(Debug, Serialize)]
struct Answer {
    #[serde(flatten)]
    resolved: Resolved,
    major: u32,
    archive_version: String,
    tarball: String,
    url: String,
    sha256: Option<String>,
    size: Option<u64>,
    trust: String,
    buildable: bool,
}

/// The answer for a pre-release (`resolve 19 --pre`).
#[derive(Debug, Serialize)]
struct PreAnswer {
    spec: String,
    version: String,
    pre_release: bool,
    major: u32,
    tarball: String,
    seen: String,
    trust: String,
    buildable: bool,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let spec: VersionSpec = args.spec.parse()?;
    let project = ctx.project()?;
    if let (true, VersionSpec::Major(major)) = (args.pre, spec) {
        if let Some(pre) = project.catalog.newest_pre_release(major) {
            let answer = PreAnswer {
                spec: spec.to_string(),
                version: pre.version.to_string(),
                pre_release: true,
                major,
                tarball: pre.version.tarball_name(),
                seen: pre.seen.clone(),
                trust: pgbin::source::verify::Level::Unverified.to_string(),
                buildable: false,
            };
            if args.json {
                print_json(&answer)?;
            } else {
                println!("{} (pre-release, seen in {}; pgbin builds final releases only)", answer.version, answer.seen);
            }
            return Ok(());
        }
    }
    let resolved = project.catalog.resolve(spec, catalog::today_utc(), args.allow_eol)?;
    let version = resolved.version;
    let assessment = project.assess(version)?;
    let level = assessment.as_ref().map_or(pgbin::source::verify::Level::Unverified, |a| a.level);
    let locked = project.lock.get(version);
    if resolved.end_of_life {
        eprintln!(
            "pgbin: warning: PostgreSQL {} is past end of life ({}) and gets no security fixes",
            version.major, resolved.eol
        );
    }
    let answer = Answer {
        major: version.major,
        archive_version: version.archive_version(),
        tarball: catalog::tarball_name(version),
        url: catalog::upstream_url(version),
        sha256: locked.map(|l| l.sha256.clone()),
        size: locked.and_then(|l| l.size),
        trust: level.to_string(),
        buildable: level.buildable(),
        resolved,
    };
    if args.json {
        print_json(&answer)?;
    } else {
        println!("{} (released {}, source {})", version, answer.resolved.released, styled_level(level));
    }
    Ok(())
}
