//! `audit`: pipeline hygiene rules over a repository, so that the flaws of
//! the pipelines pgbin replaces (TLS verification off, unpinned base images
//! and packages, actions on mutable tags) cannot be merged.
//!
//! Each rule is a variant of [`RuleId`], which carries its id, name,
//! severity, summary and one-line fix; its reason is documented in
//! `docs/audit.md`. The rules are grouped by what they read: GitHub
//! workflows ([`actions`]), Dockerfiles ([`docker`]), any tracked text file
//! ([`insecure`]), Nix files and `flake.lock` ([`nix`]), and pgbin's own data
//! ([`project`]). The files read are the repository's tracked files (`git
//! ls-files`), or every file under a directory that is not a git checkout,
//! minus the paths `.pgbin-audit.toml` excludes, each with its reason.

pub mod actions;
pub mod docker;
pub mod insecure;
pub mod nix;
pub mod project;
pub mod sarif;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Weakens review or traceability.
    Low,
    /// Widens what an attacker can do.
    Medium,
    /// Lets unverified or attacker-controlled code or data in.
    High,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// Defines [`RuleId`], one variant per rule, with each rule's id, name,
/// severity, summary and fix, and [`RuleId::ALL`], from one list: a rule
/// exists exactly when it has a variant, so a finding cannot name an
/// unknown rule.
macro_rules! define_rules {
    ($(
        $variant:ident {
            id: $id:literal,
            name: $name:literal,
            severity: $severity:path,
            summary: $summary:literal,
            fix: $fix:literal $(,)?
        }
    ),* $(,)?) => {
        /// One audit rule, carrying its id, name, severity, summary and fix.
        /// It serializes and displays as its id (`GHA001`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RuleId {
            $(
                #[doc = concat!("`", $id, "` (`", $name, "`): ", $summary, ".")]
                $variant,
            )*
        }

        impl RuleId {
            /// Every rule, in the order defined, which is id order (so the
            /// groups sort: AUD, DKR, GHA, NIX, PGB, TLS).
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),*];

            /// Stable id (`GHA001`).
            pub const fn id(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $id,)*
                }
            }

            /// Short name (`unpinned-action`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $name,)*
                }
            }

            /// Severity of every finding of the rule.
            pub const fn severity(self) -> Severity {
                match self {
                    $(RuleId::$variant => $severity,)*
                }
            }

            /// What the rule finds, in one line.
            pub const fn summary(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $summary,)*
                }
            }

            /// The usual fix, in one line.
            pub const fn fix(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $fix,)*
                }
            }
        }
    };
}

define_rules! {
    UnreadableFile {
        id: "AUD001",
        name: "unreadable-file",
        severity: Severity::High,
        summary: "a workflow or lock file that does not parse, so no other rule can check it",
        fix: "fix its syntax; an unreadable file is never assumed clean",
    },
    UnpinnedBaseImage {
        id: "DKR001",
        name: "unpinned-base-image",
        severity: Severity::High,
        summary: "`FROM` image not pinned by `@sha256:` digest",
        fix: "pin `FROM image:tag@sha256:<64 hex>`",
    },
    UnpinnedPackage {
        id: "DKR002",
        name: "unpinned-package",
        severity: Severity::Medium,
        summary: "`apk add` / `apt-get install` package without `=version`",
        fix: "pin every package: `apk add name=1.2.3-r0`, `apt-get install name=1.2.3-1`",
    },
    PipeToShell {
        id: "DKR003",
        name: "pipe-to-shell",
        severity: Severity::High,
        summary: "downloaded script piped into a shell (`curl … | sh`)",
        fix: "download to a file, check its SHA-256 or signature, then run it",
    },
    RemoteAddWithoutChecksum {
        id: "DKR004",
        name: "remote-add-without-checksum",
        severity: Severity::High,
        summary: "`ADD` of a remote URL without `--checksum`",
        fix: "use `ADD --checksum=sha256:<hex> URL`, or `COPY` a file verified beforehand",
    },
    RootFinalStage {
        id: "DKR005",
        name: "root-final-stage",
        severity: Severity::Medium,
        summary: "the final image stage runs as root",
        fix: "add `USER <non-root>` to the final stage",
    },
    UnpinnedAction {
        id: "GHA001",
        name: "unpinned-action",
        severity: Severity::High,
        summary: "action not pinned to a full 40-hex commit SHA",
        fix: "pin `uses:` to the release's 40-hex commit SHA with `# vX.Y.Z` beside it",
    },
    PinWithoutVersion {
        id: "GHA002",
        name: "pin-without-version",
        severity: Severity::Low,
        summary: "SHA-pinned action without a version comment",
        fix: "add `# vX.Y.Z` after the SHA so reviewers and update tools can read it",
    },
    MissingPermissions {
        id: "GHA003",
        name: "missing-permissions",
        severity: Severity::Medium,
        summary: "job runs with the default token permissions (no `permissions:` on it or the workflow)",
        fix: "set `permissions: {}` at the top and grant each job only the scopes it needs",
    },
    BroadPermissions {
        id: "GHA004",
        name: "broad-permissions",
        severity: Severity::Medium,
        summary: "`write-all`, or write scopes granted to every job of the workflow",
        fix: "grant write scopes per job, only to the jobs that need them",
    },
    UntrustedCheckout {
        id: "GHA005",
        name: "untrusted-checkout",
        severity: Severity::High,
        summary: "`pull_request_target`/`workflow_run` workflow checks out the untrusted head",
        fix: "use `pull_request` for untrusted code, or never check out the head in a privileged workflow",
    },
    TemplateInjection {
        id: "GHA006",
        name: "template-injection",
        severity: Severity::High,
        summary: "attacker-controlled `${{ github.event.* }}` expanded into a `run:` script",
        fix: "pass the value through `env:` and use \"$VAR\" in the script",
    },
    SecretsInherit {
        id: "GHA007",
        name: "secrets-inherit",
        severity: Severity::Medium,
        summary: "`secrets: inherit` hands every secret to the called workflow",
        fix: "pass only the secrets the called workflow needs, by name",
    },
    UnlockedFlakeInput {
        id: "NIX001",
        name: "unlocked-flake-input",
        severity: Severity::High,
        summary: "`flake.lock` input without both `rev` and `narHash`",
        fix: "lock the input to a revision (`nix flake lock`) so it records `rev` and `narHash`",
    },
    UnhashedFetch {
        id: "NIX002",
        name: "unhashed-fetch",
        severity: Severity::High,
        summary: "`builtins.fetchurl`/`fetchTarball`/`fetchGit` without a hash",
        fix: "give `sha256`/`hash` (fetchurl, fetchTarball) or `rev`/`narHash` (fetchGit), or use a flake input",
    },
    ImportFromDerivation {
        id: "NIX003",
        name: "import-from-derivation",
        severity: Severity::High,
        summary: "evaluation imports or reads a build output (import-from-derivation)",
        fix: "generate the data before evaluation (as `pgbin generate` does) and commit it",
    },
    UnverifiedLockEntry {
        id: "PGB001",
        name: "unverified-lock-entry",
        severity: Severity::High,
        summary: "a locked PostgreSQL release whose evidence does not verify",
        fix: "fix or replace its evidence with `pgbin lock add VERSION --evidence FILE...`",
    },
    StaleGeneratedData {
        id: "PGB002",
        name: "stale-generated-data",
        severity: Severity::Medium,
        summary: "nix/generated differs from what the verified data generates",
        fix: "run `pgbin generate` and commit the result",
    },
    LockRollback {
        id: "PGB003",
        name: "lock-rollback",
        severity: Severity::High,
        summary: "compared with the base, the lock adds a downgrade, changes a hash, or removes or rewrites evidence without a recorded override",
        fix: "record it with `pgbin lock add --allow-downgrade`/`--allow-changed-evidence --reason TEXT`, or revert",
    },
    TlsVerificationDisabled {
        id: "TLS001",
        name: "tls-verification-disabled",
        severity: Severity::High,
        summary: "TLS certificate verification turned off",
        fix: "remove it; install the right CA bundle (ca-certificates) instead",
    },
}

impl RuleId {
    /// The rule's position in [`RuleId::ALL`] (SARIF's `ruleIndex`).
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.id())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The rule (serialized as its id).
    pub rule: RuleId,
    /// The rule's name.
    pub name: &'static str,
    /// Severity.
    pub severity: Severity,
    /// File, relative to the audited root, `/`-separated.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong here.
    pub message: String,
    /// The usual fix.
    pub fix: &'static str,
}

impl Finding {
    /// A finding of `rule` at `path:line`.
    pub fn new(rule: RuleId, path: &str, line: usize, message: impl Into<String>) -> Finding {
        Finding {
            rule,
            name: rule.name(),
            severity: rule.severity(),
            path: path.to_string(),
            line: line.max(1),
            message: message.into(),
            fix: rule.fix(),
        }
    }
}

/// A file to audit: its path relative to the root and its text.
pub struct SourceFile {
    /// Relative, `/`-separated path.
    pub path: String,
    /// Its text (files that are not UTF-8 text are not audited).
    pub text: String,
}

impl SourceFile {
    /// The file's name (last path component).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        memchr::memchr_iter(b'\n', &self.text.as_bytes()[..offset.min(self.text.len())]).count() + 1
    }
}

/// A path the audit skips, and why.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    /// A file, or a directory prefix, relative to the root.
    pub path: String,
    /// Why it is not audited.
    pub reason: String,
}

/// `.pgbin-audit.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    exclude: Vec<Exclusion>,
}

/// Name of the configuration file at the audited root.
pub const CONFIG_FILE: &str = ".pgbin-audit.toml";

/// Why an audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The root or a file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The configuration file is malformed.
    #[error("{CONFIG_FILE}: {0}")]
    Config(String),
    /// The base revision's lock could not be read.
    #[error(transparent)]
    Base(#[from] project::BaseLockError),
}

/// What an audit saw and found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The audited root.
    pub root: PathBuf,
    /// How many files were read.
    pub files: usize,
    /// Paths skipped by configuration.
    pub excluded: Vec<Exclusion>,
    /// Every finding, sorted by path, line and rule.
    pub findings: Vec<Finding>,
}

/// Options beyond the root.
#[derive(Debug, Default)]
pub struct Options {
    /// A git revision to compare pgbin's source lock against (PGB003).
    pub base: Option<String>,
}

/// The repository's files: tracked files in a git checkout, else every file
/// below `root` outside `.git` and `target`.
/// The files to audit under `root`: each as shown in findings (`/`-separated,
/// lossy UTF-8) and as its real relative path (the name's own bytes, so a
/// file whose name is not UTF-8 is still read).
fn list_files(root: &Path) -> Result<Vec<(String, std::path::PathBuf)>, AuditError> {
    use std::os::unix::ffi::OsStrExt;
    let io = |source| AuditError::Io { path: root.display().to_string(), source };
    if root.join(".git").exists() {
        if let Ok(listing) = crate::data::repo::git(root, &["ls-files", "-z"]) {
            let mut files: Vec<(String, std::path::PathBuf)> = listing
                .split(|&b| b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| (String::from_utf8_lossy(p).into_owned(), std::ffi::OsStr::from_bytes(p).into()))
                .collect();
            files.sort();
            return Ok(files);
        }
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !matches!(e.file_name().to_str(), Some(".git") | Some("target")));
    for entry in walker {
        let entry = entry.map_err(|e| io(e.into()))?;
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(root).expect("walk stays below the root");
            files.push((relative.to_string_lossy().replace('\\', "/"), relative.to_path_buf()));
        }
    }
    Ok(files)
}

fn read_config(root: &Path) -> Result<Config, AuditError> {
    match crate::util::io::read_text_limited(&root.join(CONFIG_FILE), MAX_FILE_BYTES) {
        Ok(text) => toml::from_str(&text).map_err(|e| AuditError::Config(e.message().to_string())),
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(AuditError::Io { path: CONFIG_FILE.into(), source: e.source }),
    }
}

fn excluded(path: &str, exclusions: &[Exclusion]) -> bool {
    exclusions.iter().any(|e| {
        let prefix = e.path.trim_end_matches('/');
        path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
    })
}

/// A checker of single files, and which files it reads.
struct FileCheck {
    /// Whether the checker reads this file.
    applies_to: fn(&SourceFile) -> bool,
    /// Every finding of the checker in this file.
    check: fn(&SourceFile) -> Vec<Finding>,
}

/// The per-file checkers, each run on every file it applies to, in this
/// order (which the sort by path, line and rule keeps among findings with
/// equal keys). pgbin's own data is checked once per repository, by
/// [`project::check`], not here.
static FILE_CHECKS: &[FileCheck] = &[
    FileCheck { applies_to: |file| actions::is_workflow(&file.path), check: actions::check },
    // A workflow named `action.yml` is read as a workflow only.
    FileCheck {
        applies_to: |file| actions::is_action(&file.path) && !actions::is_workflow(&file.path),
        check: actions::check_action,
    },
    FileCheck { applies_to: |file| docker::is_dockerfile(file.name()), check: docker::check },
    FileCheck { applies_to: |file| file.path.ends_with(".nix"), check: nix::check_nix_file },
    FileCheck { applies_to: |file| file.name() == "flake.lock", check: nix::check_flake_lock },
    FileCheck { applies_to: |_| true, check: insecure::check },
];

/// Every finding of the checkers in [`FILE_CHECKS`] that apply to `file`.
fn check_file(file: &SourceFile) -> Vec<Finding> {
    FILE_CHECKS
        .iter()
        .filter(|file_check| (file_check.applies_to)(file))
        .flat_map(|file_check| (file_check.check)(file))
        .collect()
}

/// Files larger than this are not read (no source or config file is).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Audits the repository at `root`.
pub fn audit(root: &Path, options: &Options) -> Result<Report, AuditError> {
    let config = read_config(root)?;
    let mut files = Vec::new();
    for (path, relative) in list_files(root)? {
        if excluded(&path, &config.exclude) {
            continue;
        }
        let full = root.join(&relative);
        let Ok(meta) = std::fs::symlink_metadata(&full) else { continue };
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            continue;
        }
        let bytes = match crate::util::io::read_limited(&full, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.source.kind() == std::io::ErrorKind::FileTooLarge => continue,
            Err(e) => return Err(AuditError::Io { path: path.clone(), source: e.source }),
        };
        if bytes.contains(&0) {
            continue;
        }
        if let Ok(text) = String::from_utf8(bytes) {
            files.push(SourceFile { path, text });
        }
    }
    let mut findings: Vec<Finding> = files.iter().flat_map(check_file).collect();
    findings.extend(project::check(root, options.base.as_deref()).map_err(AuditError::Base)?);
    findings.sort_by(|a, b| (&a.path, a.line, a.rule.id()).cmp(&(&b.path, b.line, b.rule.id())));
    findings.dedup_by(|a, b| a.path == b.path && a.line == b.line && a.rule == b.rule && a.message == b.message);
    Ok(Report { root: root.to_path_buf(), files: files.len(), excluded: config.exclude, findings })
}

crate::util::error::usage_errors!(AuditError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_sorted() {
        let ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn each_rule_index_is_its_position_in_the_list_of_all_rules() {
        for (position, rule) in RuleId::ALL.iter().enumerate() {
            assert_eq!(rule.index(), position, "{rule}");
        }
    }

    #[test]
    fn a_workflow_named_action_yml_is_read_as_a_workflow_only() {
        let text = "on: push\npermissions: {}\njobs:\n  a:\n    permissions: {}\n    steps:\n      - uses: actions/cache@v4\nruns:\n  using: composite\n  steps:\n    - uses: actions/setup-node@v4\n";
        let found = |path: &str| -> Vec<(&'static str, usize)> {
            let file = SourceFile { path: path.into(), text: text.into() };
            check_file(&file).into_iter().map(|f| (f.rule.id(), f.line)).collect()
        };
        assert_eq!(found(".github/workflows/action.yml"), vec![("GHA001", 7)]);
        assert_eq!(found(".github/actions/a/action.yml"), vec![("GHA001", 11)]);
    }

    #[test]
    fn exclusions_match_files_and_directories_only_at_boundaries() {
        let exclusions = vec![Exclusion { path: "tests/audit".into(), reason: "corpus".into() }];
        assert!(excluded("tests/audit/bad.yml", &exclusions));
        assert!(excluded("tests/audit", &exclusions));
        assert!(!excluded("tests/audit.rs", &exclusions));
    }
}
