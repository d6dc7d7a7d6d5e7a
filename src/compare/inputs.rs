//! Two builds' recorded inputs, compared: which inputs differed, which
//! differences in the outputs they explain, and the verdict that keeps "the
//! inputs differed" apart from "the same inputs gave different bytes".
//!
//! The inputs are read from the manifests (`<archive>.manifest.json`, or
//! files named explicitly): the version, target, backend, source, configure
//! flags, `SOURCE_DATE_EPOCH`, the toolchain (compiler and every recorded
//! package version, see [`crate::build::inputs`]), the nixpkgs pin, pgbin's
//! version, the cache key, and each bundled library's package and version.
//! A finding at `lib/<name>` of a bundled library whose package or version
//! differs gets the cause [`Cause::InputChanged`], with both versions named.
//!
//! For Nix builds, [`Comparison::with_derivations`] adds the derivation
//! each build's provenance records: one derivation is one set of inputs;
//! two are different inputs, and their closures say which.
//!
//! Manifests are hostile input like the archives: each is read bounded, and
//! one found beside an archive or named for it must describe exactly that
//! file (name and SHA-256).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::build::inputs::{PackageChange, changes};
use crate::build::manifest::Manifest;
use crate::compare::diff::{self, Cause, DiffError, Options, Report};
use crate::nix::closure::{DerivationInputs, changed_inputs};
use crate::util::digest::digest_file;
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, read_limited};

/// The most bytes a manifest may hold.
pub const MANIFEST_BOUND: u64 = 16 << 20;

/// What a comparison concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Nothing differs.
    Identical,
    /// Something differs, and no inputs were recorded to tell why.
    Different,
    /// The recorded inputs differ: the comparison says nothing about
    /// reproducibility.
    InputsDiffered,
    /// The same recorded inputs gave different bytes.
    NotReproducible,
    /// `pgbin repro`: the machine's packages changed during the run.
    Inconclusive,
}

impl Verdict {
    /// The exit code: 0 identical, 1 different or not reproducible, 3 the
    /// inputs differed, 4 inconclusive (2 stays usage or I/O trouble).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Identical => 0,
            Verdict::Different | Verdict::NotReproducible => 1,
            Verdict::InputsDiffered => 3,
            Verdict::Inconclusive => 4,
        }
    }

    /// The kebab-case name `--json` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Different => "different",
            Verdict::InputsDiffered => "inputs-differed",
            Verdict::NotReproducible => "not-reproducible",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One recorded input whose value differs between A and B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputChange {
    /// Which input: `package NAME`, `compiler`, `configure flags`,
    /// `lib/NAME` (a bundled library's package), …
    pub input: String,
    /// Its value in A (absent: not recorded or not there).
    pub a: Option<String>,
    /// Its value in B.
    pub b: Option<String>,
}

impl std::fmt::Display for InputChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        write!(f, "{}: {} in A and {} in B", self.input, shown(&self.a), shown(&self.b))
    }
}

/// A diff report together with the two builds' recorded inputs and the
/// verdict. `pgbin diff --json` prints exactly this: the report's fields
/// and these.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What the comparison concludes.
    pub verdict: Verdict,
    /// The diff of the outputs (its findings re-attributed to input changes
    /// where the inputs say why).
    #[serde(flatten)]
    pub report: Report,
    /// Whether both sides' inputs were recorded (both manifests read).
    pub inputs_recorded: bool,
    /// The recorded inputs that differ.
    pub input_changes: Vec<InputChange>,
    /// Findings (reported or omitted) not attributed to a changed input.
    pub unexplained: usize,
    /// `pgbin repro`: the machine's packages that changed during the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub machine_changes: Vec<PackageChange>,
}

/// Where the manifests of the two sides come from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Manifests<'a> {
    /// A's manifest (default: `<A>.manifest.json` beside a file).
    pub a: Option<&'a Path>,
    /// B's manifest.
    pub b: Option<&'a Path>,
    /// Compare the outputs only, reading no manifest.
    pub ignore: bool,
}

/// Why two outputs could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum ComparisonError {
    /// The outputs could not be compared.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// A manifest could not be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A manifest is not a pgbin manifest.
    #[error("{path} is not a pgbin manifest: {reason}")]
    NotAManifest {
        /// The file.
        path: String,
        /// The parse error.
        reason: String,
    },
    /// A manifest describes another archive.
    #[error(
        "{path} describes {described}, not {input}; pass the right one with --manifest-a/--manifest-b, or --no-manifests"
    )]
    OtherArchive {
        /// The manifest.
        path: String,
        /// The archive it names (and its SHA-256's start).
        described: String,
        /// The input it was taken for.
        input: String,
    },
}

impl Classify for ComparisonError {
    fn kind(&self) -> FailureKind {
        FailureKind::Usage
    }
}

/// Reads a manifest (bounded).
pub fn read_manifest(path: &Path) -> Result<Manifest, ComparisonError> {
    let bytes = read_limited(path, MANIFEST_BOUND)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ComparisonError::NotAManifest { path: path.display().to_string(), reason: e.to_string() })
}

/// One side of a comparison: an archive file or a directory, with the
/// archive's SHA-256 computed at most once however many records check it.
#[derive(Debug)]
pub struct Input<'a> {
    /// The archive or directory.
    pub path: &'a Path,
    sha256: std::cell::OnceCell<String>,
}

impl<'a> Input<'a> {
    /// The input at `path`.
    pub fn new(path: &'a Path) -> Input<'a> {
        Input { path, sha256: std::cell::OnceCell::new() }
    }

    /// The file's SHA-256 (read on first use).
    pub fn sha256(&self) -> Result<&str, IoError> {
        if let Some(known) = self.sha256.get() {
            return Ok(known);
        }
        let digest = digest_file(self.path)?.sha256;
        Ok(self.sha256.get_or_init(|| digest))
    }
}

/// The manifest of `input`: `explicit`, else `<input>.manifest.json` when
/// `input` is a file and that exists. A manifest for a file must name it
/// and record its SHA-256.
pub fn manifest_of(compared: &Input, explicit: Option<&Path>) -> Result<Option<Manifest>, ComparisonError> {
    let input = compared.path;
    let is_file = std::fs::metadata(input).is_ok_and(|m| m.is_file());
    let beside = input.file_name().map(|name| {
        let mut name = name.to_os_string();
        name.push(".manifest.json");
        input.with_file_name(name)
    });
    let path = match (explicit, beside) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(path)) if is_file && std::fs::symlink_metadata(&path).is_ok() => path,
        _ => return Ok(None),
    };
    let manifest = read_manifest(&path)?;
    if is_file {
        let sha256 = compared.sha256()?;
        let name = input.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if manifest.archive != name || manifest.archive_sha256 != sha256 {
            return Err(ComparisonError::OtherArchive {
                path: path.display().to_string(),
                described: format!(
                    "{} (sha256 {}…)",
                    manifest.archive,
                    manifest.archive_sha256.chars().take(12).collect::<String>()
                ),
                input: format!("{} (sha256 {}…)", input.display(), &sha256[..12]),
            });
        }
    }
    Ok(Some(manifest))
}

/// `pgbin diff`: compares `a` and `b` (extracting under `scratch`), reads
/// their manifests as `manifests` says, and explains the differences with
/// the recorded inputs.
pub fn diff_with_inputs(
    a: &Input,
    b: &Input,
    manifests: Manifests,
    scratch: &Path,
    options: Options,
) -> Result<Comparison, ComparisonError> {
    let (manifest_a, manifest_b) =
        if manifests.ignore { (None, None) } else { (manifest_of(a, manifests.a)?, manifest_of(b, manifests.b)?) };
    let report = diff::diff(a.path, b.path, scratch, options)?;
    Ok(explain(report, manifest_a.as_ref(), manifest_b.as_ref()))
}

/// A bundled library's origin as the manifest records it: `PACKAGE VERSION`.
fn bundled_from(manifest: &Manifest) -> BTreeMap<String, (Option<String>, Option<String>)> {
    manifest
        .bundled_libraries
        .iter()
        .map(|l| (l.name.clone(), (l.package.clone(), l.package_version.clone())))
        .collect()
}

/// The detail of a bundled library whose origin differs, in the words
/// "bundled from libssl3 3.0.19-1~deb12u2 in A and 3.0.22-1~deb12u2 in B".
fn bundled_detail(
    a: Option<&(Option<String>, Option<String>)>,
    b: Option<&(Option<String>, Option<String>)>,
) -> String {
    let origin = |o: &(Option<String>, Option<String>)| {
        format!("{} {}", o.0.as_deref().unwrap_or("an unknown package"), o.1.as_deref().unwrap_or("(version unknown)"))
    };
    match (a, b) {
        (Some(a), Some(b)) if a.0 == b.0 => format!(
            "bundled from {} {} in A and {} in B",
            a.0.as_deref().unwrap_or("an unknown package"),
            a.1.as_deref().unwrap_or("(version unknown)"),
            b.1.as_deref().unwrap_or("(version unknown)")
        ),
        (Some(a), Some(b)) => format!("bundled from {} in A and {} in B", origin(a), origin(b)),
        (Some(a), None) => format!("bundled from {} in A, not bundled in B", origin(a)),
        (None, Some(b)) => format!("not bundled in A, bundled from {} in B", origin(b)),
        (None, None) => String::new(),
    }
}

/// Every recorded input that differs between `a` and `b`; bundled
/// libraries are named by their path in the tree (`lib/NAME`).
pub fn input_changes(a: &Manifest, b: &Manifest) -> Vec<InputChange> {
    let mut out = Vec::new();
    let mut differ = |input: &str, va: String, vb: String| {
        if va != vb {
            out.push(InputChange { input: input.to_string(), a: Some(va), b: Some(vb) });
        }
    };
    differ("version", a.version.to_string(), b.version.to_string());
    differ("target", a.target.clone(), b.target.clone());
    differ("backend", a.backend.as_str().into(), b.backend.as_str().into());
    differ("source sha256", a.source.sha256.clone(), b.source.sha256.clone());
    differ("configure flags", a.configure_flags.join(" "), b.configure_flags.join(" "));
    differ("SOURCE_DATE_EPOCH", a.source_date_epoch.to_string(), b.source_date_epoch.to_string());
    differ("compiler", a.toolchain.compiler.clone(), b.toolchain.compiler.clone());
    let pin = |m: &Manifest| m.toolchain.nixpkgs.as_ref().map_or_else(String::new, |p| p.rev.clone());
    differ("nixpkgs", pin(a), pin(b));
    differ("pgbin", a.pgbin_version.clone(), b.pgbin_version.clone());
    out.extend(changes(&a.toolchain.packages, &b.toolchain.packages).into_iter().map(|c| InputChange {
        input: format!("package {}", c.package),
        a: c.before,
        b: c.after,
    }));
    let (bundled_a, bundled_b) = (bundled_from(a), bundled_from(b));
    let names: BTreeSet<&String> = bundled_a.keys().chain(bundled_b.keys()).collect();
    for name in names {
        let (la, lb) = (bundled_a.get(name), bundled_b.get(name));
        if la != lb {
            let show = |l: Option<&(Option<String>, Option<String>)>| {
                l.map(|(p, v)| format!("{} {}", p.as_deref().unwrap_or("?"), v.as_deref().unwrap_or("?")))
            };
            out.push(InputChange { input: format!("lib/{name}"), a: show(la), b: show(lb) });
        }
    }
    if out.is_empty() && a.cache_key != b.cache_key {
        out.push(InputChange {
            input: "cache key (recipe or an input the manifest does not list)".into(),
            a: Some(a.cache_key.clone()),
            b: Some(b.cache_key.clone()),
        });
    }
    out
}

/// Explains `report` with the two builds' manifests (when both are given):
/// each finding at a bundled library whose recorded origin differs becomes
/// [`Cause::InputChanged`] naming both versions, and the verdict says
/// whether the inputs differed or the same inputs gave different bytes.
pub fn explain(mut report: Report, a: Option<&Manifest>, b: Option<&Manifest>) -> Comparison {
    let (Some(a), Some(b)) = (a, b) else {
        let verdict = if report.identical { Verdict::Identical } else { Verdict::Different };
        let unexplained = report.causes.values().sum();
        return Comparison {
            verdict,
            report,
            inputs_recorded: false,
            input_changes: Vec::new(),
            unexplained,
            machine_changes: Vec::new(),
        };
    };
    let input_changes = input_changes(a, b);
    let (bundled_a, bundled_b) = (bundled_from(a), bundled_from(b));
    for finding in &mut report.findings {
        let Some(name) = finding.path.strip_prefix("lib/") else { continue };
        let (la, lb) = (bundled_a.get(name), bundled_b.get(name));
        if (la.is_none() && lb.is_none()) || la == lb || finding.cause == Cause::InputChanged {
            continue;
        }
        move_count(&mut report.causes, finding.cause, Cause::InputChanged);
        finding.cause = Cause::InputChanged;
        finding.fix = Cause::InputChanged.fix();
        finding.detail = bundled_detail(la, lb);
    }
    let unexplained = unexplained(&report);
    let verdict = match (report.identical, input_changes.is_empty()) {
        (true, _) => Verdict::Identical,
        (false, true) => Verdict::NotReproducible,
        (false, false) => Verdict::InputsDiffered,
    };
    Comparison { verdict, report, inputs_recorded: true, input_changes, unexplained, machine_changes: Vec::new() }
}

/// Moves one finding's count from cause `from` to cause `to`.
fn move_count(causes: &mut BTreeMap<Cause, usize>, from: Cause, to: Cause) {
    if let Some(count) = causes.get_mut(&from) {
        *count -= 1;
        if *count == 0 {
            causes.remove(&from);
        }
    }
    *causes.entry(to).or_insert(0) += 1;
}

/// Findings (reported or omitted) not attributed to a changed input.
fn unexplained(report: &Report) -> usize {
    report.causes.iter().filter(|(cause, _)| **cause != Cause::InputChanged).map(|(_, n)| n).sum()
}

/// A comparison of two builds from one set of inputs by construction (Nix's
/// `--rebuild` of one derivation): identical, or not reproducible.
pub fn same_inputs(report: Report) -> Comparison {
    let verdict = if report.identical { Verdict::Identical } else { Verdict::NotReproducible };
    let unexplained = report.causes.values().sum();
    Comparison {
        verdict,
        report,
        inputs_recorded: true,
        input_changes: Vec::new(),
        unexplained,
        machine_changes: Vec::new(),
    }
}

/// Most closure changes listed one by one; the rest are counted in one more.
const MAX_CLOSURE_CHANGES: usize = 200;

impl Comparison {
    /// Adds what the two Nix builds' derivations say (both recorded in
    /// their provenance): one derivation means one set of inputs, so a
    /// difference is not reproducible; two derivations mean the inputs
    /// differed, and the closures name which (paired by package name).
    /// Findings caused by an embedded store path then become
    /// [`Cause::InputChanged`].
    pub fn with_derivations(mut self, a: Option<&DerivationInputs>, b: Option<&DerivationInputs>) -> Comparison {
        let (Some(a), Some(b)) = (a, b) else { return self };
        if a.derivation == b.derivation {
            if self.verdict == Verdict::Different {
                self.verdict = Verdict::NotReproducible;
                self.inputs_recorded = true;
            }
            return self;
        }
        self.input_changes.push(InputChange {
            input: "derivation".into(),
            a: Some(a.derivation.clone()),
            b: Some(b.derivation.clone()),
        });
        let changes = changed_inputs(a, b);
        let listed = changes.len().min(MAX_CLOSURE_CHANGES);
        let joined = |paths: &[String]| (!paths.is_empty()).then(|| paths.join(" "));
        self.input_changes.extend(changes[..listed].iter().map(|change| InputChange {
            input: format!("input {}", change.name),
            a: joined(&change.a),
            b: joined(&change.b),
        }));
        if changes.len() > listed {
            self.input_changes.push(InputChange {
                input: format!("{} more inputs", changes.len() - listed),
                a: None,
                b: None,
            });
        }
        let report = &mut self.report;
        for finding in report.findings.iter_mut().filter(|f| f.cause == Cause::StorePathHash) {
            move_count(&mut report.causes, Cause::StorePathHash, Cause::InputChanged);
            finding.cause = Cause::InputChanged;
            finding.fix = Cause::InputChanged.fix();
            finding.detail = format!("{}; the two builds' input derivations differ", finding.detail);
        }
        self.unexplained = unexplained(&self.report);
        self.inputs_recorded = true;
        if !self.report.identical {
            self.verdict = Verdict::InputsDiffered;
        }
        self
    }

    /// Marks a `pgbin repro` run inconclusive because the machine's
    /// packages changed under it (`changes` not empty).
    pub fn machine_changed(mut self, changes: Vec<PackageChange>) -> Comparison {
        if !changes.is_empty() {
            self.verdict = Verdict::Inconclusive;
            self.machine_changes = changes;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::diff::{Code, Finding, Side};
    use crate::compare::tree::Format;

    fn fixture() -> Manifest {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/manifest-18.6-host.json"))
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The fixture with libssl3 at `version`, bundled and installed.
    fn with_libssl3(version: &str) -> Manifest {
        let mut manifest = fixture();
        for library in manifest.bundled_libraries.iter_mut().filter(|l| l.package.as_deref() == Some("libssl3")) {
            library.package_version = Some(version.into());
        }
        manifest.toolchain.packages.insert("libssl3".into(), version.into());
        manifest
    }

    fn report(findings: &[(&str, Cause)]) -> Report {
        let side = |path: &str| Side { path: path.into(), format: Format::TarGz, nar_hash: "sha256-x".into() };
        let findings: Vec<Finding> = findings
            .iter()
            .map(|(path, cause)| Finding {
                path: path.to_string(),
                code: Code::Content,
                cause: *cause,
                detail: "binary: first difference at byte 4096".into(),
                fix: cause.fix(),
                sections: vec![".text".into()],
                diff: None,
            })
            .collect();
        let mut causes = BTreeMap::new();
        for finding in &findings {
            *causes.entry(finding.cause).or_insert(0) += 1;
        }
        Report {
            schema: 1,
            identical: findings.is_empty(),
            a: side("a.tar.gz"),
            b: side("b.tar.gz"),
            causes,
            findings,
            omitted: 0,
        }
    }

    #[test]
    fn a_bundled_library_from_another_package_version_is_its_own_cause() {
        let (a, b) = (with_libssl3("3.0.19-1~deb12u2"), with_libssl3("3.0.22-1~deb12u2"));
        let compared = explain(report(&[("lib/libssl.so.3", Cause::Unknown)]), Some(&a), Some(&b));
        assert_eq!(compared.verdict, Verdict::InputsDiffered);
        assert_eq!(compared.verdict.exit_code(), 3);
        let finding = &compared.report.findings[0];
        assert_eq!(finding.cause, Cause::InputChanged);
        assert_eq!(finding.detail, "bundled from libssl3 3.0.19-1~deb12u2 in A and 3.0.22-1~deb12u2 in B");
        assert_eq!(compared.report.causes, BTreeMap::from([(Cause::InputChanged, 1)]));
        assert_eq!(compared.unexplained, 0);
        let inputs: Vec<String> = compared.input_changes.iter().map(ToString::to_string).collect();
        assert!(inputs.contains(&"package libssl3: 3.0.19-1~deb12u2 in A and 3.0.22-1~deb12u2 in B".to_string()));
        assert!(inputs.contains(
            &"lib/libcrypto.so.3: libssl3 3.0.19-1~deb12u2 in A and libssl3 3.0.22-1~deb12u2 in B".to_string()
        ));
    }

    #[test]
    fn two_derivations_are_differing_inputs_and_explain_embedded_store_paths() {
        let store = crate::nix::store::store_dir();
        let path = |hash: char, name: &str| format!("{store}/{}-{name}", hash.to_string().repeat(32));
        let derivation = |hash: char, closure: &[String]| DerivationInputs {
            derivation: path(hash, "archive.drv"),
            closure: closure.to_vec(),
        };
        let (a, b) = (
            derivation('x', &[path('a', "zlib-1.3.1.drv"), path('b', "openssl-3.0.13.drv")]),
            derivation('y', &[path('a', "zlib-1.3.1.drv"), path('c', "openssl-3.0.14.drv")]),
        );
        let findings = [("lib/libssl.so.3", Cause::StorePathHash), ("bin/postgres", Cause::BuildPath)];
        let compared = explain(report(&findings), None, None).with_derivations(Some(&a), Some(&b));
        assert_eq!(compared.verdict, Verdict::InputsDiffered);
        assert_eq!(compared.report.causes, BTreeMap::from([(Cause::BuildPath, 1), (Cause::InputChanged, 1)]));
        assert_eq!(compared.unexplained, 1, "a build path is not explained by the inputs");
        let inputs: Vec<&str> = compared.input_changes.iter().map(|c| c.input.as_str()).collect();
        assert_eq!(inputs, ["derivation", "input openssl"]);
        let same = explain(report(&findings), None, None).with_derivations(Some(&a), Some(&a));
        assert_eq!((same.verdict, same.inputs_recorded), (Verdict::NotReproducible, true));
        let unrecorded = explain(report(&findings), None, None).with_derivations(Some(&a), None);
        assert_eq!(unrecorded.verdict, Verdict::Different);
    }

    #[test]
    fn the_same_inputs_with_different_bytes_are_not_reproducible() {
        let a = fixture();
        let compared = explain(report(&[("bin/postgres", Cause::Unknown)]), Some(&a), Some(&a));
        assert_eq!(compared.verdict, Verdict::NotReproducible);
        assert_eq!(compared.verdict.exit_code(), 1);
        assert!(compared.input_changes.is_empty());
        assert_eq!((compared.unexplained, compared.report.findings[0].cause), (1, Cause::Unknown));
    }

    #[test]
    fn differences_outside_the_changed_libraries_stay_unexplained() {
        let (a, b) = (with_libssl3("3.0.19-1~deb12u2"), with_libssl3("3.0.22-1~deb12u2"));
        let findings = [("bin/postgres", Cause::BuildPath), ("lib/libssl.so.3", Cause::Unknown)];
        let compared = explain(report(&findings), Some(&a), Some(&b));
        assert_eq!(compared.verdict, Verdict::InputsDiffered);
        assert_eq!(compared.unexplained, 1);
        assert_eq!(compared.report.findings[0].cause, Cause::BuildPath);
    }

    #[test]
    fn without_manifests_or_differences_there_is_nothing_to_attribute() {
        let a = fixture();
        assert_eq!(explain(report(&[("x", Cause::Unknown)]), None, Some(&a)).verdict, Verdict::Different);
        assert_eq!(explain(report(&[]), Some(&a), Some(&with_libssl3("1"))).verdict, Verdict::Identical);
        let changed =
            vec![PackageChange { package: "libssl3".into(), before: Some("1".into()), after: Some("2".into()) }];
        let inconclusive = explain(report(&[]), Some(&a), Some(&a)).machine_changed(changed);
        assert_eq!((inconclusive.verdict, inconclusive.verdict.exit_code()), (Verdict::Inconclusive, 4));
        let json = serde_json::to_value(&inconclusive).unwrap();
        assert_eq!(json["verdict"], "inconclusive");
        assert_eq!(json["machine_changes"][0]["package"], "libssl3");
        assert_eq!(json["schema"], 1, "the report's fields stay at the top level");
    }

    #[test]
    fn a_manifest_must_describe_the_archive_it_is_found_with() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(&archive, b"archive").unwrap();
        assert!(manifest_of(&Input::new(&archive), None).unwrap().is_none(), "no manifest beside it");
        let mut manifest = fixture();
        manifest.archive = "a.tar.gz".into();
        let beside = dir.path().join("a.tar.gz.manifest.json");
        std::fs::write(&beside, serde_json::to_vec(&manifest).unwrap()).unwrap();
        assert!(matches!(manifest_of(&Input::new(&archive), None), Err(ComparisonError::OtherArchive { .. })));
        manifest.archive_sha256 = crate::util::digest::sha256_hex(b"archive");
        std::fs::write(&beside, serde_json::to_vec(&manifest).unwrap()).unwrap();
        assert!(manifest_of(&Input::new(&archive), None).unwrap().is_some());
        std::fs::write(&beside, b"{}").unwrap();
        assert!(matches!(manifest_of(&Input::new(&archive), None), Err(ComparisonError::NotAManifest { .. })));
        assert!(manifest_of(&Input::new(dir.path()), None).unwrap().is_none(), "a directory has no manifest beside it");
    }
}
