//! `pgbin diff`: compare two build outputs and explain every difference,
//! with the builds' recorded inputs when their manifests are there. Exit 0
//! identical, 1 different (or, with manifests, the same inputs gave
//! different bytes), 2 trouble (diffoscope's convention), 3 the recorded
//! inputs differ.

use std::path::PathBuf;

use pgbin::compare::diff::Options;
use pgbin::compare::inputs::{Comparison, Manifests, Verdict};
use pgbin::pipeline::diff;

use super::{Context, Failure, print_json};

/// Arguments of `pgbin diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// First output: a directory, store path, .tar/.tar.gz/.tar.zst archive or NAR file
    a: PathBuf,
    /// Second output, in any of the same forms
    b: PathBuf,
    /// A's manifest (default: A.manifest.json beside an archive)
    #[arg(long, value_name = "FILE", conflicts_with = "no_manifests")]
    manifest_a: Option<PathBuf>,
    /// B's manifest (default: B.manifest.json beside an archive)
    #[arg(long, value_name = "FILE", conflicts_with = "no_manifests")]
    manifest_b: Option<PathBuf>,
    /// Compare the outputs only, without the builds' recorded inputs
    #[arg(long)]
    no_manifests: bool,
    /// Cap on the size of the reported findings, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_report: usize,
    /// Machine-readable output (schema in docs/reproducibility.md)
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
    let options = Options { max_report: args.max_report, ..Options::default() };
    let manifests =
        Manifests { a: args.manifest_a.as_deref(), b: args.manifest_b.as_deref(), ignore: args.no_manifests };
    let comparison = diff::diff_builds(&args.a, &args.b, manifests, &std::env::temp_dir(), options)?;
    if args.json {
        print_json(&comparison)?;
    } else {
        print_comparison(&comparison, args.max_report);
    }
    match comparison.verdict {
        Verdict::Identical => Ok(()),
        verdict => Err(Failure::silent(verdict.exit_code())),
    }
}

/// The verdict's headline word.
pub fn headline(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Identical => "identical",
        Verdict::Different => "DIFFERENT",
        Verdict::InputsDiffered => "INPUTS DIFFERED",
        Verdict::NotReproducible => "NOT REPRODUCIBLE (same recorded inputs)",
        Verdict::Inconclusive => "INCONCLUSIVE",
    }
}

/// Prints the recorded inputs that differ and how many differences they
/// leave unexplained.
pub fn print_input_changes(comparison: &Comparison) {
    if comparison.input_changes.is_empty() {
        return;
    }
    println!("recorded inputs that differ:");
    for change in &comparison.input_changes {
        println!("  {change}");
    }
    if comparison.unexplained > 0 && !comparison.report.identical {
        println!(
            "{} difference(s) are not tied to a changed input; rebuild both from the same inputs to test reproducibility",
            comparison.unexplained
        );
    }
}

fn print_comparison(comparison: &Comparison, max_report: usize) {
    let report = &comparison.report;
    println!(
        "{}: {} ({}) vs {} ({})",
        headline(comparison.verdict),
        report.a.path,
        report.a.nar_hash,
        report.b.path,
        report.b.nar_hash
    );
    print_input_changes(comparison);
    if !report.causes.is_empty() {
        let summary: Vec<String> = report
            .causes
            .iter()
            .map(|(cause, n)| {
                format!("{} {n}", serde_json::to_value(cause).expect("serializes").as_str().unwrap_or("?"))
            })
            .collect();
        println!("causes: {}", summary.join(", "));
    }
    for finding in &report.findings {
        let code = serde_json::to_value(finding.code).expect("serializes");
        let cause = serde_json::to_value(finding.cause).expect("serializes");
        let path = if finding.path.is_empty() { "(archive)" } else { &finding.path };
        println!("\n[{}] {path}: {} ({})", code.as_str().unwrap_or("?"), finding.detail, cause.as_str().unwrap_or("?"));
        println!("  fix: {}", finding.fix);
        if let Some(text) = &finding.diff {
            for line in text.lines() {
                println!("  {line}");
            }
        }
    }
    if report.omitted > 0 {
        println!("\n{} more finding(s) left out (--max-report {max_report})", report.omitted);
    }
}
