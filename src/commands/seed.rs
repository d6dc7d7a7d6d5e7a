//! `pgbin seed`: put a verified tarball into the Nix store at the exact
//! fixed-output path the flake's `fetchurl` expects, so that evaluation and
//! build need no network.

use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;

use pgbin::data::version::Version;
use pgbin::nix::data::sri_sha256;
use pgbin::nix::store;

use super::{Context, Failure, print_json};

/// Arguments of `pgbin seed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (18.6)
    version: String,
    /// Cache directory (as for `pgbin fetch`)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Seeded {
    version: Version,
    name: String,
    hash: String,
    store_path: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let (obtained, _) = super::fetch::obtain_verified(&project, version, args.cache.as_deref())?;
    let entry = project.lock.get(version).expect("obtain_verified checked the lock");
    let hash = sri_sha256(&entry.sha256);
    let added = seed_store(&project, version, &obtained.path)?;
    if args.json {
        print_json(&Seeded { version, name: entry.tarball.clone(), hash, store_path: added });
    } else {
        println!("{added}");
    }
    Ok(())
}

/// Adds the verified `tarball` of `version` to the Nix store and checks that
/// it landed at the fixed-output path the flake's `fetchurl` expects.
pub fn seed_store(
    project: &pgbin::source::project::Project,
    version: Version,
    tarball: &std::path::Path,
) -> Result<String, Failure> {
    let entry = super::locked_entry(project, version)?;
    check_generated_source(project, version, &entry.tarball, &sri_sha256(&entry.sha256))?;
    let expected = store::fixed_output_path(&store::store_dir(), &entry.sha256, &entry.tarball);
    let output = Command::new("nix-store").args(["--add-fixed", "sha256"]).arg(tarball).output().map_err(|e| {
        Failure::usage(format!("cannot run nix-store: {e}; install Nix (Debian: apt-get install nix-bin)"))
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Failure::usage(format!(
            "nix-store --add-fixed failed: {}",
            stderr.trim().lines().last().unwrap_or("")
        )));
    }
    let added = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if added != expected {
        return Err(Failure::check(format!(
            "nix-store added {added}, but the flake expects {expected}; not seeded correctly"
        )));
    }
    Ok(added)
}

/// The generated Nix data must name exactly this source.
fn check_generated_source(
    project: &pgbin::source::project::Project,
    version: Version,
    name: &str,
    hash: &str,
) -> Result<(), Failure> {
    let path = project.repo.generated().join(format!("postgresql-{}.json", version.major));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::check(format!("{}: {e}; run `pgbin generate`", path.display())))?;
    let data: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let entries = data["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    let sources: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["version"] == version.to_string()).map(|e| &e["source"]).collect();
    if sources.is_empty() {
        return Err(Failure::check(format!("{} has no entry for {version}; run `pgbin generate`", path.display())));
    }
    if sources.iter().any(|s| s["name"] != name || s["hash"] != hash) {
        return Err(Failure::check(format!(
            "{} names another source for {version}; run `pgbin generate`",
            path.display()
        )));
    }
    Ok(())
}
