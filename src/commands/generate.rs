//! `pgbin generate`: verify every locked source, then write `nix/generated/`.

use pgbin::nix::data::{self as nixdata, Staleness};

use super::{Context, Failure};

/// Arguments of `pgbin generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write nothing; exit 1 naming the first stale file if the committed data is out of date
    #[arg(long)]
    check: bool,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let assessments = project.assess_all()?;
    let entries = nixdata::entries(&project.catalog, &project.matrix, &project.lock, &assessments);
    let files = nixdata::render(&entries, &project.matrix);
    let dir = project.repo.generated();
    let io = |e: std::io::Error| Failure::usage(format!("cannot access {}: {e}", dir.display()));
    if args.check {
        let stale = nixdata::stale_files(&dir, &files).map_err(io)?;
        return match stale.first() {
            None => {
                println!("nix/generated is up to date ({} entries in {} files)", entries.len(), files.len());
                Ok(())
            }
            Some(Staleness::Outdated(name)) => Err(Failure::check(format!(
                "nix/generated/{name} is out of date ({} stale file(s)); run `pgbin generate` and commit the result",
                stale.len()
            ))),
            Some(Staleness::Extra(name)) => Err(Failure::check(format!(
                "nix/generated/{name} should not exist ({} stale file(s)); run `pgbin generate` and commit the result",
                stale.len()
            ))),
        };
    }
    let changed = nixdata::write(&dir, &files).map_err(io)?;
    if changed.is_empty() {
        println!("nix/generated is up to date ({} entries in {} files)", entries.len(), files.len());
    } else {
        println!("wrote {} entries; changed: {}", entries.len(), changed.join(", "));
    }
    Ok(())
}
