//! `pgbin matrix`: the CI build matrix, from the same verified data the
//! flake reads (one row per buildable version × target × build system).

use serde::Serialize;

use pgbin::data::catalog;
use pgbin::data::version::VersionSpec;
use pgbin::nix::data as nixdata;

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

/// One CI job.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Flake attribute (`postgresql-18_6-x86_64-linux`).
    pub attr: String,
    /// PostgreSQL version.
    pub version: String,
    /// Target triple.
    pub target: String,
    /// Nix system that builds it.
    pub system: String,
    /// GitHub-hosted runner for that system.
    pub runner: &'static str,
    /// Cross-compiled.
    pub cross: bool,
    /// The smoke test runs where it is built (`checks.<system>.<attr>-smoke`).
    pub smoke: bool,
    /// Archive file name.
    pub archive: String,
}

/// The GitHub-hosted runner label for a Nix system.
fn runner(system: &str) -> &'static str {
    match system {
        "x86_64-linux" => "ubuntu-24.04",
        "aarch64-linux" => "ubuntu-24.04-arm",
        "aarch64-darwin" => "macos-14",
        // macos-13 was retired in December 2025; macos-15-intel is the last
        // Intel image GitHub offers (announced until August 2027).
        "x86_64-darwin" => "macos-15-intel",
        _ => "unsupported",
    }
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let rows = rows(&project, args.version.as_deref(), args.system.as_deref())?;
    match args.format {
        MatrixFormat::Github => {
            println!("{}", serde_json::json!({ "include": rows }));
        }
        MatrixFormat::Json => print_json(&rows),
    }
    Ok(())
}

/// The matrix rows, optionally for one version spec and/or one build system.
/// A version with no buildable row is a check failure.
pub fn rows(
    project: &pgbin::source::project::Project,
    version: Option<&str>,
    system: Option<&str>,
) -> Result<Vec<Row>, Failure> {
    let version = match version {
        None => None,
        Some(text) => {
            let spec: VersionSpec =
                text.parse().map_err(|e: pgbin::data::version::VersionError| Failure::usage(e.to_string()))?;
            let resolved =
                project.catalog.resolve(spec, catalog::today_utc(), true).map_err(|e| Failure::usage(e.to_string()))?;
            Some(resolved.version)
        }
    };
    let assessments = project.assess_all()?;
    let rows: Vec<Row> = nixdata::entries(&project.catalog, &project.matrix, &project.lock, &assessments)
        .into_iter()
        .filter(|e| version.is_none_or(|v| e.version == v))
        .filter(|e| system.is_none_or(|s| e.system == s))
        .map(|e| Row {
            runner: runner(&e.system),
            smoke: !e.cross && e.os == "linux" && e.libc == "glibc",
            attr: e.attr,
            version: e.version.to_string(),
            target: e.target,
            system: e.system,
            cross: e.cross,
            archive: e.archive_name,
        })
        .collect();
    if let (Some(v), true) = (version, rows.is_empty()) {
        return Err(Failure::check(format!(
            "PostgreSQL {v} has no buildable entry (its source is not verified enough); see `pgbin versions`"
        )));
    }
    Ok(rows)
}
