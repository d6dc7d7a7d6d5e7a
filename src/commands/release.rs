//! `pgbin release plan`: resolve a version spec, refuse a re-release or a
//! downgrade, and list every artifact the release will publish per target.
//! Planning writes nothing; `.github/workflows/release.yml` builds, signs,
//! attests and publishes from this plan.

use std::path::PathBuf;

use pgbin::pipeline::release::{self, PlanRequest};

use super::{Context, Failure, print_json};

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

/// Runs a `release` subcommand.
pub fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Plan(args) => plan(ctx, args),
    }
}

fn plan(ctx: &Context, args: PlanArgs) -> Result<(), Failure> {
    let project = ctx.project()?;
    let request = PlanRequest {
        spec: &args.spec,
        released_tags: args.released_tags.as_deref(),
        published: args.published.as_deref(),
        allow_eol: args.allow_eol,
    };
    let plan = release::plan(&project, &request)?;
    if args.json {
        print_json(&plan)?;
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
