//! `pgbin repro`: build one release twice under deliberately different
//! conditions and prove the outputs identical, or explain each difference.
//!
//! Host backend: the second build runs at another, longer build path, at a
//! later time, in another time zone (UTC+14) and locale (C.UTF-8), with
//! umask 077, an extra environment variable and one more make job. Both
//! builds are relocated and packaged; `pgbin diff` compares the archives
//! (their bytes, member headers and contents). Nix backend: `nix build
//! --rebuild --keep-failed` of the PostgreSQL install tree's derivation and
//! of the archive's, and a diff against the `.check` output when Nix reports
//! a difference. Both outputs and the report are kept (with the Nix
//! backend, the report and logs in `--out`, the outputs in the store).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use pgbin::build;
use pgbin::build::host::Variation;
use pgbin::compare::diff::{self, Options, Report};
use pgbin::data::version::Version;

use super::build::HostPlan;
use super::{Context, Failure, print_json};

/// Which backend to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReproBackend {
    /// the machine's own toolchain
    Host,
    /// the flake's archive derivation, rebuilt with `nix build --rebuild`
    Nix,
}

/// Arguments of `pgbin repro`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (18.6)
    version: String,
    /// Target triple or attribute suffix (default: this machine's)
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Backend to test
    #[arg(long, value_enum, default_value_t = ReproBackend::Host)]
    backend: ReproBackend,
    /// Where both outputs and the report are kept
    #[arg(long, value_name = "DIR", default_value = "repro")]
    out: PathBuf,
    /// Cache directory for the verified source (as for `pgbin fetch`)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Machine-readable output (the diff report)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Repro<'a> {
    version: Version,
    target: &'a str,
    identical: bool,
    /// What `report` compares: `archive`, `install tree` (Nix: the
    /// PostgreSQL derivation's rebuild differed) or `output` (Nix: the
    /// archive derivation's rebuild differed elsewhere than the archive).
    compared: &'static str,
    /// The two archives' SHA-256; the second is absent when no second
    /// archive was made (Nix: the install tree's rebuild differed).
    archive_sha256: [Option<String>; 2],
    variations: [&'a Variation; 2],
    seconds: f64,
    report: &'a Report,
}

/// The variation of the second host build.
fn varied() -> Variation {
    Variation {
        time_zone: Some("XST-14".into()),
        locale: Some("C.UTF-8".into()),
        umask: Some(0o077),
        extra_env: vec![("PGBIN_REPRO_NOISE".into(), "second build".into())],
    }
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let target = super::chosen_target(&project, args.target.as_deref())?;
    if args.out.exists() && std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Failure::usage(format!("{} is not empty; pass a fresh --out", args.out.display())));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Failure::usage(format!("{}: {e}", args.out.display())))?;
    let out = std::path::absolute(&args.out).map_err(|e| Failure::usage(e.to_string()))?;
    if args.backend == ReproBackend::Nix {
        return nix_repro(&project, version, target, &out, args.json);
    }
    let plan = HostPlan::prepare(&project, version, target, args.cache.as_deref())?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let variations = [Variation::default(), varied()];
    let works = [out.join("build-1"), out.join("second-build-at-a-longer-path").join("build-2")];
    let mut archives = Vec::new();
    for (i, (variation, work)) in variations.iter().zip(&works).enumerate() {
        let inputs = plan.inputs(&project, target, Some(cpus + i));
        std::fs::create_dir_all(work).map_err(|e| Failure::usage(e.to_string()))?;
        let log = work.join("build.log");
        eprintln!("pgbin: build {} of 2 in {}; log: {}", i + 1, work.display(), log.display());
        let other = works[1 - i].display().to_string();
        let assembled = build::build_and_assemble(&inputs, work, &log, variation, &[other], &mut |phase| {
            eprintln!("pgbin: [{:>6.1}s] build {}: {phase}", started.elapsed().as_secs_f64(), i + 1)
        })
        .map_err(|e| Failure::check(format!("build {} failed: {e}", i + 1)))?;
        archives.push(assembled.packaged);
    }
    let report = diff::diff(&archives[0].archive, &archives[1].archive, &std::env::temp_dir(), Options::default())
        .map_err(|e| Failure::usage(e.to_string()))?;
    write_report(&out, &report)?;
    let summary = Repro {
        version,
        target: &target.triple,
        identical: report.identical,
        compared: "archive",
        archive_sha256: [Some(archives[0].sha256.clone()), Some(archives[1].sha256.clone())],
        variations: [&variations[0], &variations[1]],
        seconds: started.elapsed().as_secs_f64(),
        report: &report,
    };
    print_outcome(&summary, &out, args.json)
}

fn write_report(out: &Path, report: &Report) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(report).expect("the report serializes");
    text.push('\n');
    pgbin::util::fs::write_atomic(&out.join("report.json"), text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write the report: {e}")))
}

fn print_outcome(summary: &Repro, out: &Path, json: bool) -> Result<(), Failure> {
    if json {
        print_json(summary);
    } else {
        let verdict = if summary.identical { "REPRODUCIBLE" } else { "NOT REPRODUCIBLE" };
        println!(
            "{verdict}: PostgreSQL {} for {}, two builds in {:.0}s",
            summary.version, summary.target, summary.seconds
        );
        let sha = |s: &Option<String>| s.clone().unwrap_or_else(|| "(none: the install tree differs)".into());
        println!("archive sha256: {} / {}", sha(&summary.archive_sha256[0]), sha(&summary.archive_sha256[1]));
        println!("{} contents (NAR): {} / {}", summary.compared, summary.report.a.nar_hash, summary.report.b.nar_hash);
        for finding in &summary.report.findings {
            println!("  {}: {}", if finding.path.is_empty() { "(archive)" } else { &finding.path }, finding.detail);
        }
        println!("outputs and report.json kept in {}", out.display());
    }
    if summary.identical { Ok(()) } else { Err(Failure::silent_check()) }
}

/// The Nix backend: builds the archive, then rebuilds with `nix build
/// --rebuild --keep-failed` both derivations that make it (`--rebuild`
/// does not recurse): the PostgreSQL install tree, then the archive. Nix
/// compares each rebuild with the first build itself and keeps a differing
/// one as `<out>.check`, which pgbin explains against the first: the
/// install tree's difference when there is one (the root cause), else the
/// archive's (or, when the archives agree, the rest of the output's). When
/// Nix finds both rebuilds identical, their bytes are the first build's,
/// and the report is the first archive's contents.
fn nix_repro(
    project: &pgbin::source::project::Project,
    version: Version,
    target: &pgbin::data::matrix::Target,
    out: &Path,
    json: bool,
) -> Result<(), Failure> {
    let started = Instant::now();
    let (obtained, _) = super::fetch::obtain_verified(project, version, None)?;
    super::seed::seed_store(project, version, &obtained.path)?;
    let tree_attribute = target.attr_name(version);
    let archive_attribute = format!("{tree_attribute}.archive");
    fn nix<T>(result: Result<T, build::BuildError>) -> Result<T, Failure> {
        result.map_err(|e| Failure::usage(e.to_string()))
    }
    let root = project.repo.root();
    let first = nix(build::nix_build(root, &archive_attribute, &out.join("nix-build.log")))?;
    let tree = nix(build::nix_build(root, &tree_attribute, &out.join("nix-build-tree.log")))?;
    let tree_check = nix(build::nix_rebuild(root, &tree_attribute, &out.join("nix-rebuild-tree.log")))?;
    let archive_check = nix(build::nix_rebuild(root, &archive_attribute, &out.join("nix-rebuild.log")))?;
    let archive = target.archive_name(version);
    let sha = |dir: &Path| {
        pgbin::util::digest::digest_file(&dir.join(&archive))
            .map(|d| d.sha256)
            .map_err(|e| Failure::usage(format!("cannot read the archive in {}: {e}", dir.display())))
    };
    let first_sha = sha(&first)?;
    let (compared, a, b, second_sha) = match (&tree_check, &archive_check) {
        (Some(check), _) => ("install tree", tree.clone(), check.clone(), None),
        (None, Some(check)) => {
            let second_sha = sha(check)?;
            if second_sha == first_sha {
                ("output", first.clone(), check.clone(), Some(second_sha))
            } else {
                ("archive", first.join(&archive), check.join(&archive), Some(second_sha))
            }
        }
        (None, None) => ("archive", first.join(&archive), first.join(&archive), Some(first_sha.clone())),
    };
    let report =
        diff::diff(&a, &b, &std::env::temp_dir(), Options::default()).map_err(|e| Failure::usage(e.to_string()))?;
    write_report(out, &report)?;
    let variations = Variation::default();
    let summary = Repro {
        version,
        target: &target.triple,
        identical: report.identical && tree_check.is_none() && archive_check.is_none(),
        compared,
        archive_sha256: [Some(first_sha), second_sha],
        variations: [&variations, &variations],
        seconds: started.elapsed().as_secs_f64(),
        report: &report,
    };
    print_outcome(&summary, out, json)
}
