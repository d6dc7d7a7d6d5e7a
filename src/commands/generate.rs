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
    let report = nixdata::generate(&project, args.check)?;
    let up_to_date = || println!("nix/generated is up to date ({} entries in {} files)", report.entries, report.files);
    if args.check {
        let stale = &report.stale;
        return match stale.first() {
            None => {
                up_to_date();
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
    if report.changed.is_empty() {
        up_to_date();
    } else {
        println!("wrote {} entries; changed: {}", report.entries, report.changed.join(", "));
    }
    Ok(())
}
