//! `pgbin diff`: compare two build outputs and explain every difference.
//! Exit 0 identical, 1 different, 2 trouble (diffoscope's convention).

use std::path::PathBuf;

use pgbin::compare::diff::{self, Options};

use super::{Context, Failure, print_json};

/// Arguments of `pgbin diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// First output: a directory, store path, .tar/.tar.gz/.tar.zst archive or NAR file
    a: PathBuf,
    /// Second output, in any of the same forms
    b: PathBuf,
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
    let report = diff::diff(&args.a, &args.b, &std::env::temp_dir(), options)?;
    if args.json {
        print_json(&report)?;
    } else {
        let verdict = if report.identical { "identical" } else { "DIFFERENT" };
        println!("{verdict}: {} ({}) vs {} ({})", report.a.path, report.a.nar_hash, report.b.path, report.b.nar_hash);
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
            println!(
                "\n[{}] {path}: {} ({})",
                code.as_str().unwrap_or("?"),
                finding.detail,
                cause.as_str().unwrap_or("?")
            );
            println!("  fix: {}", finding.fix);
            if let Some(text) = &finding.diff {
                for line in text.lines() {
                    println!("  {line}");
                }
            }
        }
        if report.omitted > 0 {
            println!("\n{} more finding(s) left out (--max-report {})", report.omitted, args.max_report);
        }
    }
    if report.identical { Ok(()) } else { Err(Failure::silent_check()) }
}
