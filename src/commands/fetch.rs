//! `pgbin fetch`: obtain a verified tarball into the content-addressed cache.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use pgbin::data::version::Version;
use pgbin::source::fetch::{self, FetchError, Obtained, Progress};
use pgbin::source::project::Project;
use pgbin::source::verify::Assessment;

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

/// A progress bar on stderr when it is a terminal.
struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, url: &str, total: Option<u64>) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .expect("static template"),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        self.0 = Some(bar);
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
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

/// Re-verifies the evidence of a locked release and requires a level that
/// may be built; `purpose` says what was refused ("package").
pub fn buildable_assessment(project: &Project, version: Version, purpose: &str) -> Result<Assessment, Failure> {
    super::locked_entry(project, version)?;
    let assessment = project.assess(version)?.expect("entry is locked");
    if !assessment.level.buildable() {
        return Err(Failure::check(format!(
            "PostgreSQL {version} is {}: its source is not trusted enough to {purpose}; add signed or independent evidence with `pgbin lock add`",
            assessment.level
        )));
    }
    Ok(assessment)
}

/// Verifies the lock entry and obtains its tarball; shared with `seed`.
pub fn obtain_verified(
    project: &Project,
    version: Version,
    cache: Option<&Path>,
) -> Result<(Obtained, Assessment), Failure> {
    let entry = super::locked_entry(project, version)?;
    let assessment = buildable_assessment(project, version, "fetch for building")?;
    if project
        .catalog
        .release(version)
        .is_some_and(|(major, _)| major.is_end_of_life(pgbin::data::catalog::today_utc()))
    {
        eprintln!("pgbin: warning: PostgreSQL {} is past end of life and gets no security fixes", version.major);
    }
    let cache = cache.map_or_else(fetch::default_cache_dir, Path::to_path_buf);
    let mirror = pgbin::source::debian::configured_mirror(Path::new("/etc/apt"));
    let candidates = fetch::candidates(entry, mirror.as_deref());
    let obtained = fetch::obtain(entry, &cache, &candidates, &mut Bar(None)).map_err(|e| match e {
        FetchError::Exhausted { tampered: true, .. } => Failure::check(format!("verification failed: {e}")),
        other => Failure::usage(other.to_string()),
    })?;
    Ok((obtained, assessment))
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let (obtained, assessment) = obtain_verified(&project, version, args.cache.as_deref())?;
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
        print_json(&Fetched { version, obtained: &obtained, copied_to, assessment: &assessment });
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
