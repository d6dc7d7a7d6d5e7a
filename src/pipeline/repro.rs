//! `pgbin repro` as one library call: build one release twice under
//! deliberately different conditions and prove the outputs identical, or
//! explain each difference.
//!
//! Host backend: the second build runs at another, longer build path, at a
//! later time, in another time zone (UTC+14) and locale (C.UTF-8), with
//! umask 077, an extra environment variable and one more make job. Both
//! builds are relocated and packaged; `pgbin diff` compares the archives
//! (their bytes, member headers and contents). Nix backend: `nix build
//! --rebuild --keep-failed` of the PostgreSQL install tree's derivation and
//! of the archive's, and a diff against the `.check` output when Nix reports
//! a difference. Both outputs and `report.json` are kept in `out` (with the
//! Nix backend, the report and logs; the outputs stay in the store).
//!
//! The host backend records the machine's inputs (the toolchain identity the
//! cache key covers) before the first build, again before the second (which
//! is made from, and records, what is installed then) and after the second.
//! The two archives are compared with their manifests, so a bundled library
//! from another package version is named as such; and when the machine's
//! packages changed during the run the verdict is `inconclusive`, naming
//! each change, instead of "not reproducible".

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::build::host::Variation;
use crate::build::inputs::{PackageChange, changes};
use crate::build::manifest::Toolchain;
use crate::compare::diff::{self, DiffError, Options};
use crate::compare::inputs::{Comparison, Verdict, explain, same_inputs};
use crate::data::matrix::Target;
use crate::data::version::Version;
use crate::nix::build::{NixBuildError, nix_build, nix_rebuild};
use crate::pipeline::build::{HostPlan, PipelineError};
use crate::source::fetch::obtain_verified;
use crate::source::project::Project;
use crate::util::digest::digest_file;
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, context};
use crate::util::progress::{Prefixed, Progress};

/// Which backend to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReproBackend {
    /// The machine's own toolchain.
    Host,
    /// The flake's derivations, rebuilt with `nix build --rebuild`.
    Nix,
}

/// The verdict of a reproducibility run.
#[derive(Debug, Serialize)]
pub struct Repro {
    /// The release.
    pub version: Version,
    /// The target triple.
    pub target: String,
    /// Whether both builds are identical.
    pub identical: bool,
    /// What the run concludes: identical, not reproducible (the same inputs
    /// gave different bytes), inputs differed, or inconclusive (the
    /// machine's packages changed during the run).
    pub verdict: Verdict,
    /// What `report` compares: `archive`, `install tree` (Nix: the
    /// PostgreSQL derivation's rebuild differed) or `output` (Nix: the
    /// archive derivation's rebuild differed elsewhere than the archive).
    pub compared: &'static str,
    /// The two archives' SHA-256; the second is absent when no second
    /// archive was made (Nix: the install tree's rebuild differed).
    pub archive_sha256: [Option<String>; 2],
    /// The conditions of each build.
    pub variations: [Variation; 2],
    /// Seconds for the whole run.
    pub seconds: f64,
    /// The diff of the two outputs, with the recorded inputs and what
    /// changed on the machine.
    pub report: Comparison,
}

/// Why a reproducibility run did not reach a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    /// `--out` already holds files.
    #[error("{0} is not empty; pass a fresh --out")]
    OutNotEmpty(String),
    /// Preparing or obtaining the source failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// One of the two host builds failed.
    #[error("build {number} failed: {error}")]
    Build {
        /// 1 or 2.
        number: usize,
        /// The failure.
        error: crate::build::BuildError,
    },
    /// `nix build` failed.
    #[error(transparent)]
    Nix(#[from] NixBuildError),
    /// The two outputs could not be compared.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Classify for ReproError {
    fn kind(&self) -> FailureKind {
        match self {
            ReproError::Pipeline(e) => e.kind(),
            ReproError::Build { error, .. } if error.is_inputs() => FailureKind::Usage,
            ReproError::Build { .. } => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self {
            ReproError::Pipeline(e) => e.message(),
            other => other.to_string(),
        }
    }
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

/// Builds `version` for `target` twice with `backend`, keeps both outputs
/// and `report.json` in `out` (which must be empty or absent), and returns
/// the verdict.
pub fn repro(
    project: &Project,
    version: Version,
    target: &Target,
    backend: ReproBackend,
    out: &Path,
    cache: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<Repro, ReproError> {
    if out.exists() && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(ReproError::OutNotEmpty(out.display().to_string()));
    }
    std::fs::create_dir_all(out).map_err(context(out.display().to_string()))?;
    let out = std::path::absolute(out).map_err(context(out.display().to_string()))?;
    let verdict = match backend {
        ReproBackend::Nix => nix_repro(project, version, target, &out, progress)?,
        ReproBackend::Host => host_repro(project, version, target, &out, cache, progress)?,
    };
    let mut text = serde_json::to_string_pretty(&verdict.report).expect("the report serializes");
    text.push('\n');
    crate::util::fs::write_atomic(&out.join("report.json"), text.as_bytes())
        .map_err(context("cannot write the report"))?;
    Ok(verdict)
}

fn host_repro(
    project: &Project,
    version: Version,
    target: &Target,
    out: &Path,
    cache: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<Repro, ReproError> {
    let started = Instant::now();
    let mut plan = HostPlan::prepare(project, version, target, cache, progress)?;
    let before = plan.toolchain().clone();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let variations = [Variation::default(), varied()];
    let works = [out.join("build-1"), out.join("second-build-at-a-longer-path").join("build-2")];
    let mut builds = Vec::new();
    let mut between = before.clone();
    for (i, (variation, work)) in variations.iter().zip(&works).enumerate() {
        if i == 1 {
            // The second build is made from, and records, what is installed now.
            plan.rerecord()?;
            between = plan.toolchain().clone();
        }
        let inputs = plan.inputs(project, target, Some(cpus + i));
        std::fs::create_dir_all(work).map_err(context(work.display().to_string()))?;
        let log = work.join("build.log");
        progress.note(&format!("build {} of 2 in {}; log: {}", i + 1, work.display(), log.display()));
        let other = works[1 - i].display().to_string();
        let assembled = crate::build::build_and_assemble(
            &inputs,
            work,
            &log,
            variation,
            &[other],
            &mut Prefixed { inner: &mut *progress, prefix: format!("build {}: ", i + 1) },
        )
        .map_err(|error| ReproError::Build { number: i + 1, error })?;
        builds.push(assembled);
    }
    let after = plan.record_toolchain()?;
    let (a, b) = (&builds[0], &builds[1]);
    let report = diff::diff(&a.packaged.archive, &b.packaged.archive, &std::env::temp_dir(), Options::default())?;
    let comparison = explain(report, Some(&a.manifest), Some(&b.manifest))
        .machine_changed(machine_changes(&before, &between, &after));
    Ok(Repro {
        version,
        target: target.triple.clone(),
        identical: comparison.report.identical,
        verdict: comparison.verdict,
        compared: "archive",
        archive_sha256: [Some(a.packaged.sha256.clone()), Some(b.packaged.sha256.clone())],
        variations,
        seconds: started.elapsed().as_secs_f64(),
        report: comparison,
    })
}

/// What changed on the machine between the record taken `before` the first
/// build and the one taken `after` the second, including a change seen only
/// `between` the builds (and reverted by the end): each package (or the
/// compiler, as `cc --version`) with its version before and the other one.
fn machine_changes(before: &Toolchain, between: &Toolchain, after: &Toolchain) -> Vec<PackageChange> {
    let with_compiler = |t: &Toolchain| {
        let mut record = t.packages.clone();
        record.insert("cc --version".into(), t.compiler.clone());
        record
    };
    let (before, between, after) = (with_compiler(before), with_compiler(between), with_compiler(after));
    let mut changed = changes(&before, &after);
    for change in changes(&before, &between) {
        if !changed.iter().any(|c| c.package == change.package) {
            changed.push(change);
        }
    }
    changed.sort_by(|x, y| x.package.cmp(&y.package));
    changed
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
    project: &Project,
    version: Version,
    target: &Target,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<Repro, ReproError> {
    let started = Instant::now();
    let (obtained, _) = obtain_verified(project, version, None, progress).map_err(PipelineError::from)?;
    crate::nix::seed::seed_store(project, version, &obtained.path).map_err(PipelineError::from)?;
    let tree_attribute = target.attr_name(version);
    let archive_attribute = format!("{tree_attribute}.archive");
    let root = project.repo.root();
    let first = nix_build(root, &archive_attribute, &out.join("nix-build.log"))?;
    let tree = nix_build(root, &tree_attribute, &out.join("nix-build-tree.log"))?;
    let tree_check = nix_rebuild(root, &tree_attribute, &out.join("nix-rebuild-tree.log"))?;
    let archive_check = nix_rebuild(root, &archive_attribute, &out.join("nix-rebuild.log"))?;
    let archive = target.archive_name(version);
    let sha = |dir: &Path| {
        digest_file(&dir.join(&archive))
            .map(|d| d.sha256)
            .map_err(|e| IoError::new(format!("cannot read the archive in {}: {}", dir.display(), e.what), e.source))
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
    let report = diff::diff(&a, &b, &std::env::temp_dir(), Options::default())?;
    let identical = report.identical && tree_check.is_none() && archive_check.is_none();
    let mut report = same_inputs(report);
    if !identical {
        report.verdict = Verdict::NotReproducible;
    }
    Ok(Repro {
        version,
        target: target.triple.clone(),
        identical,
        verdict: report.verdict,
        compared,
        archive_sha256: [Some(first_sha), second_sha],
        variations: [Variation::default(), Variation::default()],
        seconds: started.elapsed().as_secs_f64(),
        report,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn toolchain(libssl3: &str, zlib: &str) -> Toolchain {
        Toolchain {
            compiler: "cc (Debian 12.2.0-14+deb12u1) 12.2.0".into(),
            packages: BTreeMap::from([("libssl3".into(), libssl3.into()), ("zlib1g".into(), zlib.into())]),
            nixpkgs: None,
        }
    }

    #[test]
    fn a_machine_that_changed_during_the_run_names_each_package_old_and_new() {
        let before = toolchain("3.0.19-1~deb12u2", "1:1.2.13.dfsg-1");
        assert!(machine_changes(&before, &before, &before).is_empty(), "nothing changed");
        let after = toolchain("3.0.22-1~deb12u2", "1:1.2.13.dfsg-1");
        let changed = machine_changes(&before, &after, &after);
        let shown: Vec<String> = changed.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["libssl3 3.0.19-1~deb12u2 → 3.0.22-1~deb12u2"]);
        let reverted = toolchain("3.0.19-1~deb12u2", "1:1.2.13.dfsg-2");
        let changed = machine_changes(&before, &reverted, &before);
        let shown: Vec<String> = changed.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["zlib1g 1:1.2.13.dfsg-1 → 1:1.2.13.dfsg-2"], "a change seen between the builds counts");
        let mut compiler = before.clone();
        compiler.compiler = "cc (Debian 12.2.0-14+deb12u2) 12.2.0".into();
        assert_eq!(machine_changes(&before, &before, &compiler)[0].package, "cc --version");
    }
}
