//! `pgbin parity`: compare two builds of one release and target made by
//! different backends on what must agree (version, configure flags,
//! features, binaries, extensions, modules, smoke-test behaviour) and say
//! what differs and whether it matters. Exit 0 when nothing that matters
//! differs, 1 otherwise, 2 when an input cannot be read.

use std::path::{Path, PathBuf};

use serde::Serialize;

use pgbin::compare::parity::{self, Aspect, ParityReport};

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
    #[serde(flatten)]
    report: &'a ParityReport,
}

/// Runs the command.
pub fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
    let report = parity::compare_builds(&args.a, &args.b, !args.no_smoke)?;
    let (agree, aspects) = (report.agree, &report.aspects);
    if args.json {
        print_json(&Verdict { a: &args.a, b: &args.b, report: &report })?;
    } else {
        let differing: Vec<&Aspect> = aspects.iter().filter(|x| !x.agrees()).collect();
        match (agree, differing.is_empty()) {
            (true, true) => println!("parity: the two builds agree on every compared aspect"),
            (true, false) => println!("parity: the two builds agree on everything that matters"),
            (false, _) => println!("parity: the builds DIFFER where it matters"),
        }
        for aspect in aspects {
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
