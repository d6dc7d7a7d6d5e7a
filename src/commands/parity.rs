//! `pgbin parity`: compare two builds of one release and target made by
//! different backends on what must agree (version, configure flags,
//! features, binaries, extensions, modules, smoke-test behaviour) and say
//! what differs and whether it matters. Exit 0 when nothing that matters
//! differs, 1 otherwise, 2 when an input cannot be read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use pgbin::build::{self, smoke};
use pgbin::compare::parity::{self, Aspect, Inventory};
use pgbin::compare::tree;

use super::{Context, Failure, print_json};

/// Arguments of `pgbin parity`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// First build: an archive (.tar.gz/.tar.zst/.tar) or an install directory
    a: PathBuf,
    /// Second build, same release and target
    b: PathBuf,
    /// Do not run the smoke test even where both archives run here
    #[arg(long)]
    no_smoke: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Verdict<'a> {
    a: &'a Path,
    b: &'a Path,
    agree: bool,
    aspects: &'a [Aspect],
    inventory_a: &'a Inventory,
    inventory_b: &'a Inventory,
}

/// Whether `path` is an archive built for this machine (so its smoke test
/// can run here).
fn runs_here(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.is_file() && build::host_triple().is_some_and(|triple| name.ends_with(&format!("-{triple}.tar.gz")))
}

fn take_inventory(path: &Path, scratch: &Path) -> Result<Inventory, Failure> {
    let opened = tree::open(path, scratch)?;
    parity::inventory(&opened.root).map_err(Failure::from)
}

fn smoke_checks(archive: &Path, scratch: &Path) -> Result<BTreeMap<String, bool>, Failure> {
    let report = smoke::smoke(archive, scratch, None)?;
    Ok(report.checks.into_iter().map(|c| (c.name, c.passed)).collect())
}

/// Runs the command.
pub fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
    let scratch = std::env::temp_dir();
    let mut a = take_inventory(&args.a, &scratch)?;
    let mut b = take_inventory(&args.b, &scratch)?;
    if !args.no_smoke && runs_here(&args.a) && runs_here(&args.b) {
        a.smoke = Some(smoke_checks(&args.a, &scratch)?);
        b.smoke = Some(smoke_checks(&args.b, &scratch)?);
    }
    let aspects = parity::compare(&a, &b);
    let agree = aspects.iter().all(|x| x.agrees() || !x.matters);
    if args.json {
        print_json(&Verdict { a: &args.a, b: &args.b, agree, aspects: &aspects, inventory_a: &a, inventory_b: &b });
    } else {
        let differing: Vec<&Aspect> = aspects.iter().filter(|x| !x.agrees()).collect();
        match (agree, differing.is_empty()) {
            (true, true) => println!("parity: the two builds agree on every compared aspect"),
            (true, false) => println!("parity: the two builds agree on everything that matters"),
            (false, _) => println!("parity: the builds DIFFER where it matters"),
        }
        for aspect in &aspects {
            let state = match (aspect.agrees(), aspect.matters) {
                (true, _) => "same",
                (false, true) => "DIFFERS (matters)",
                (false, false) => "differs (informational)",
            };
            println!("  {:<18} {state}  ({})", aspect.name, aspect.note);
            for item in &aspect.only_in_a {
                println!("      only in A: {item}");
            }
            for item in &aspect.only_in_b {
                println!("      only in B: {item}");
            }
        }
    }
    if agree { Ok(()) } else { Err(Failure::silent_check()) }
}
