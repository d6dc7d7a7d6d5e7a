//! `pgbin fetch`: obtain a verified tarball into the content-addressed cache.

use std::path::PathBuf;

use serde::Serialize;

use pgbin::data::version::Version;
use pgbin::source::fetch::{Obtained, obtain_verified};
use pgbin::source::verify::Assessment;

use super::progress::TerminalProgress;
use super::{Context, Failure, print_json, styled_level};

/// Arguments of `pgbin fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (18.6)
    version: String,
    /// Also place a copy of the verified tarball in this directory
    #[arg(long, value_name = "DIR")]
    dest: Option<PathBuf>,
    /// Cache directory (default: $PGBIN_CACHE, else $XDG_CACHE_HOME/pgbin, else ~/.cache/pgbin)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Fetched<'a> {
    version: Version,
    #[serde(flatten)]
    obtained: &'a Obtained,
    copied_to: Option<PathBuf>,
    #[serde(flatten)]
    assessment: &'a Assessment,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let (obtained, assessment) =
        obtain_verified(&project, version, args.cache.as_deref(), &mut TerminalProgress::downloads())?;
    let copied_to = match &args.dest {
        Some(dir) => {
            let target = dir.join(obtained.path.file_name().expect("cache paths end in the tarball name"));
            pgbin::util::fs::copy_atomic(&obtained.path, &target)
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", target.display())))?;
            Some(target)
        }
        None => None,
    };
    if args.json {
        print_json(&Fetched { version, obtained: &obtained, copied_to, assessment: &assessment })?;
        return Ok(());
    }
    let signers: Vec<String> = assessment
        .evidence
        .iter()
        .filter_map(|e| e.signer.as_ref().map(|f| format!("{} {f}", e.signer_name.as_deref().unwrap_or("?"))))
        .collect();
    let how = match &obtained.url {
        Some(url) => format!("downloaded from {url}"),
        None => "already in the cache".to_string(),
    };
    eprintln!(
        "pgbin: PostgreSQL {version} verified: {}{} ({how})",
        styled_level(assessment.level),
        if signers.is_empty() { String::new() } else { format!(" by {}", signers.join(", ")) }
    );
    println!("{}", copied_to.as_ref().unwrap_or(&obtained.path).display());
    Ok(())
}
