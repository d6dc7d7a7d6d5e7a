//! `pgbin release plan`: resolve a version spec, refuse a re-release or a
//! downgrade, and list every artifact the release will publish per target.
//! Planning writes nothing; `.github/workflows/release.yml` builds, signs,
//! attests and publishes from this plan.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use pgbin::data::catalog;
use pgbin::data::release;
use pgbin::data::version::{Version, VersionSpec};

use super::{Context, Failure, print_json};
use pgbin::nix::ci::{self, Row};

/// `pgbin release` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Resolve a version and list what its release publishes; writes nothing
    Plan(PlanArgs),
}

/// Arguments of `pgbin release plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Version spec: 17 (the highest known 17.x) or 17.6 (exactly)
    spec: String,
    /// Release tags already published, one per line (`gh release list`),
    /// e.g. postgresql-17.6
    #[arg(long, value_name = "FILE")]
    released_tags: Option<PathBuf>,
    /// A directory of published artifacts (postgresql-X.Y.0-<triple>.tar.gz)
    #[arg(long, value_name = "DIR")]
    published: Option<PathBuf>,
    /// Allow a major past its end of life
    #[arg(long)]
    allow_eol: bool,
    /// Only plan (the default and only mode: planning never writes)
    #[arg(long)]
    dry_run: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct PlannedTarget<'a> {
    target: &'a str,
    archive: &'a str,
    attr: &'a str,
    system: &'a str,
    runner: &'a str,
    cross: bool,
    smoke: bool,
    artifacts: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Plan<'a> {
    spec: &'a str,
    version: Version,
    tag: String,
    trust: String,
    dry_run: bool,
    released: &'a BTreeSet<Version>,
    targets: Vec<PlannedTarget<'a>>,
    matrix: serde_json::Value,
    artifacts: Vec<String>,
}

/// Runs a `release` subcommand.
pub fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Plan(args) => plan(ctx, args),
    }
}

/// Versions already released, from the tag record and the published directory.
fn released_versions(args: &PlanArgs) -> Result<BTreeSet<Version>, Failure> {
    let mut released = BTreeSet::new();
    if let Some(file) = &args.released_tags {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("cannot read the release tags {}: {e}", file.display())))?;
        released.extend(release::versions_from_tags(&text));
    }
    if let Some(dir) = &args.published {
        released.extend(
            release::versions_in_directory(dir)
                .map_err(|e| Failure::usage(format!("cannot list published artifacts in {}: {e}", dir.display())))?,
        );
    }
    Ok(released)
}

/// One build row per target: the native build where there is one, else the
/// cross build on x86_64-linux, else the first.
fn release_rows(rows: Vec<Row>) -> Vec<Row> {
    let targets: BTreeSet<String> = rows.iter().map(|r| r.target.clone()).collect();
    targets
        .into_iter()
        .filter_map(|target| {
            let candidates: Vec<&Row> = rows.iter().filter(|r| r.target == target).collect();
            candidates
                .iter()
                .find(|r| !r.cross)
                .or_else(|| candidates.iter().find(|r| r.system == "x86_64-linux"))
                .or(candidates.first())
                .map(|r| (*r).clone())
        })
        .collect()
}

fn plan(ctx: &Context, args: PlanArgs) -> Result<(), Failure> {
    let project = ctx.project()?;
    let spec: VersionSpec = args.spec.parse()?;
    let resolved = project.catalog.resolve(spec, catalog::today_utc(), args.allow_eol)?;
    let version = resolved.version;
    let released = released_versions(&args)?;
    release::check_releasable(version, &released).map_err(|refusal| Failure::check(refusal.to_string()))?;
    let assessment = project.buildable_assessment(version, "release")?;
    let rows = release_rows(ci::rows(&project, Some(&version.to_string()), None)?);

    let targets: Vec<PlannedTarget> = rows
        .iter()
        .map(|row| PlannedTarget {
            target: &row.target,
            archive: &row.archive,
            attr: &row.attr,
            system: &row.system,
            runner: row.runner,
            cross: row.cross,
            smoke: row.smoke,
            artifacts: release::artifact_names(&row.archive),
        })
        .collect();
    let artifacts: Vec<String> = targets.iter().flat_map(|t| t.artifacts.iter().cloned()).collect();
    let plan = Plan {
        spec: &args.spec,
        version,
        tag: release::tag(version),
        trust: assessment.level.to_string(),
        dry_run: true,
        released: &released,
        matrix: serde_json::json!({ "include": rows }),
        targets,
        artifacts,
    };
    if args.json {
        print_json(&plan);
        return Ok(());
    }
    println!(
        "release plan: PostgreSQL {} (spec {}), tag {}, source trust {}; dry run, nothing written",
        plan.version, plan.spec, plan.tag, plan.trust
    );
    for target in &plan.targets {
        let how = if target.cross { "cross" } else { "native" };
        let smoke = if target.smoke { ", smoke-tested" } else { "" };
        println!("  {}  built on {} ({how}{smoke}) as .#{}", target.target, target.system, target.attr);
        for artifact in &target.artifacts {
            println!("    {artifact}");
        }
    }
    println!("{} artifacts for {} targets", plan.artifacts.len(), plan.targets.len());
    Ok(())
}
