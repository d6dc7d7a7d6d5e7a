//! `pgbin matrix`: the CI build matrix, from the same verified data the
//! flake reads (one row per buildable version × target × build system).

use pgbin::nix::ci::rows;

use super::{Context, Failure, print_json};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MatrixFormat {
    /// one line, `{"include":[...]}`, for `strategy.matrix: ${{ fromJSON(...) }}`
    Github,
    /// a pretty JSON array of rows
    Json,
}

/// Arguments of `pgbin matrix`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = MatrixFormat::Json)]
    format: MatrixFormat,
    /// Only this version spec (18 = latest 18.x, or 18.6)
    #[arg(long, value_name = "SPEC")]
    version: Option<String>,
    /// Only rows built on this Nix system (x86_64-linux)
    #[arg(long, value_name = "SYSTEM")]
    system: Option<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let rows = rows(&project, args.version.as_deref(), args.system.as_deref())?;
    match args.format {
        MatrixFormat::Github => {
            println!("{}", serde_json::json!({ "include": rows }));
        }
        MatrixFormat::Json => print_json(&rows)?,
    }
    Ok(())
}
