//! pgbin's own data, when the audited repository is a pgbin checkout
//! (`data/catalog.toml` exists): PGB001 every locked release's evidence
//! verifies, PGB002 `nix/generated/` is what the verified data generates,
//! and, given a base revision, PGB003 the lock adds no downgrade, changes no
//! hash and removes or rewrites no evidence without a recorded override (the
//! anti-rollback rules of `pgbin lock add`, enforced on hand edits too).

use std::path::Path;

use crate::data::lock::{LockedSource, SourceLock};
use crate::data::repo::Repo;
use crate::nix::data::{self, Staleness};
use crate::source::project::Project;

use super::{Finding, RuleId};

const LOCK: &str = "data/sources.lock.json";

/// The line of `"version": "X.Y"` in the lock text.
fn lock_line(text: &str, version: &str) -> usize {
    text.find(&format!("\"version\": \"{version}\""))
        .map_or(1, |at| text[..at].bytes().filter(|&b| b == b'\n').count() + 1)
}

fn overrides_of(entry: &LockedSource, rule: &str) -> usize {
    entry.overrides.iter().filter(|o| o.rule == rule).count()
}

/// PGB003: what `current` adds, changes or removes relative to `base`
/// without the override `pgbin lock add` would have recorded in this very
/// change (an override the base already had covers an earlier change, not
/// this one).
pub fn rollbacks(base: &SourceLock, current: &SourceLock, current_text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for old in &base.sources {
        if current.get(old.version).is_none() {
            out.push(Finding::new(
                RuleId::LockRollback,
                LOCK,
                1,
                format!(
                    "{} was removed from the lock; a later re-add would escape the changed-evidence check",
                    old.version
                ),
            ));
        }
    }
    for entry in &current.sources {
        let version = entry.version.to_string();
        let line = lock_line(current_text, &version);
        match base.get(entry.version) {
            Some(old)
                if old.sha256 != entry.sha256
                    && overrides_of(entry, "changed-evidence") <= overrides_of(old, "changed-evidence") =>
            {
                out.push(Finding::new(
                    RuleId::LockRollback,
                    LOCK,
                    line,
                    format!(
                        "{version}: SHA-256 changed from {}… to {}… with no changed-evidence override",
                        &old.sha256[..12],
                        &entry.sha256[..12]
                    ),
                ));
            }
            Some(old) if overrides_of(entry, "changed-evidence") <= overrides_of(old, "changed-evidence") => {
                for evidence in &old.evidence {
                    let (document, sha256) = evidence.document();
                    if !entry.evidence.iter().any(|e| e.document().1 == sha256) {
                        out.push(Finding::new(
                            RuleId::LockRollback,
                            LOCK,
                            line,
                            format!(
                                "{version}: {} evidence {document} was removed or rewritten with no changed-evidence override (its level may drop, or a witness may lose its checkable blob id)",
                                evidence.kind()
                            ),
                        ));
                    }
                }
            }
            Some(_) => {}
            None => {
                let higher = base
                    .sources
                    .iter()
                    .filter(|b| b.version.major == entry.version.major && b.version > entry.version)
                    .map(|b| b.version)
                    .max();
                if let Some(higher) = higher.filter(|_| overrides_of(entry, "downgrade") == 0) {
                    out.push(Finding::new(
                        RuleId::LockRollback,
                        LOCK,
                        line,
                        format!("{version} added below the already locked {higher} with no downgrade override"),
                    ));
                }
            }
        }
    }
    out
}

/// Why the base revision's lock could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BaseLockError(pub String);

fn git_show(root: &Path, revision: &str, path: &str) -> Result<String, BaseLockError> {
    let spec = format!("{revision}:{path}");
    let bound = crate::data::lock::LOCK_BOUND.bytes;
    let bytes = crate::data::repo::git_limited(root, &["show", &spec], bound).map_err(|e| BaseLockError(e.0))?;
    String::from_utf8(bytes).map_err(|e| BaseLockError(e.to_string()))
}

/// Every PGB finding for the repository at `root` (none if it is not a
/// pgbin checkout). `.pgbin-audit.toml` cannot exclude these checks: the
/// file is part of the change under review. An unreadable `base` lock is an
/// error, not a finding.
pub fn check(root: &Path, base: Option<&str>) -> Result<Vec<Finding>, BaseLockError> {
    if !root.join("data/catalog.toml").is_file() {
        return Ok(Vec::new());
    }
    let project = match Repo::discover(Some(root))
        .map_err(|e| e.to_string())
        .and_then(|repo| Project::load(&repo).map_err(|e| e.to_string()))
    {
        Ok(project) => project,
        Err(e) => {
            return Ok(vec![Finding::new(
                RuleId::UnverifiedLockEntry,
                LOCK,
                1,
                format!("the project data does not load: {e}"),
            )]);
        }
    };
    let lock_text =
        crate::util::io::read_text_limited(&root.join(LOCK), crate::data::lock::LOCK_BOUND.bytes).unwrap_or_default();
    let mut out = Vec::new();
    let mut all_verified = true;
    for entry in &project.lock.sources {
        if let Err(e) = project.assess(entry.version) {
            all_verified = false;
            out.push(Finding::new(
                RuleId::UnverifiedLockEntry,
                LOCK,
                lock_line(&lock_text, &entry.version.to_string()),
                format!("{}: {e}", entry.version),
            ));
        }
    }
    if all_verified {
        let assessments = project.assess_all().unwrap_or_default();
        let entries = data::entries(&project.catalog, &project.matrix, &project.lock, &assessments);
        let files = data::render(&entries, &project.matrix);
        match data::stale_files(&project.repo.generated(), &files) {
            Ok(stale) => {
                for staleness in stale {
                    let (name, what) = match staleness {
                        Staleness::Outdated(name) => (name, "is out of date"),
                        Staleness::Extra(name) => (name, "should not exist"),
                    };
                    out.push(Finding::new(
                        RuleId::StaleGeneratedData,
                        &format!("nix/generated/{name}"),
                        1,
                        format!("nix/generated/{name} {what}"),
                    ));
                }
            }
            Err(e) => out.push(Finding::new(
                RuleId::StaleGeneratedData,
                "nix/generated",
                1,
                format!("cannot read nix/generated: {e}"),
            )),
        }
    }
    if let Some(revision) = base {
        let base_lock = git_show(root, revision, LOCK)
            .and_then(|text| SourceLock::parse(&text, revision).map_err(|e| BaseLockError(e.to_string())))
            .map_err(|e| BaseLockError(format!("cannot read {LOCK} at base {revision}: {e}")))?;
        out.extend(rollbacks(&base_lock, &project.lock, &lock_text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(text: &str) -> SourceLock {
        SourceLock::parse(text, "test").unwrap()
    }

    #[test]
    fn an_old_override_does_not_cover_a_new_hash_change_and_removals_are_reported() {
        let real = include_str!("../../data/sources.lock.json");
        let base = lock(real);
        let mut value: serde_json::Value = serde_json::from_str(real).unwrap();
        let sources = value["sources"].as_array_mut().unwrap();
        let entry = sources.iter_mut().find(|s| s["overrides"].as_array().is_some_and(|o| !o.is_empty())).unwrap();
        let version = entry["version"].as_str().unwrap().to_string();
        entry["sha256"] = serde_json::json!("0".repeat(64));
        let changed = serde_json::to_string_pretty(&value).unwrap();
        let findings = rollbacks(&base, &lock(&changed), &changed);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].message.starts_with(&format!("{version}: SHA-256 changed")));

        let mut value: serde_json::Value = serde_json::from_str(real).unwrap();
        value["sources"].as_array_mut().unwrap().retain(|s| s["version"] != version);
        let removed = serde_json::to_string_pretty(&value).unwrap();
        let findings = rollbacks(&base, &lock(&removed), &removed);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("removed from the lock"));
    }

    #[test]
    fn evidence_removed_or_rewritten_in_a_change_is_reported() {
        let real = include_str!("../../data/sources.lock.json");
        let base = lock(real);
        let mut value: serde_json::Value = serde_json::from_str(real).unwrap();
        let sources = value["sources"].as_array_mut().unwrap();
        let entry = sources.iter_mut().find(|s| s["version"] == "17.9").unwrap();
        let witness = entry["evidence"].as_array_mut().unwrap().iter_mut().find(|e| e["blob"].is_string()).unwrap();
        witness.as_object_mut().unwrap().remove("blob");
        witness["document_sha256"] = serde_json::json!("1".repeat(64));
        let changed = serde_json::to_string_pretty(&value).unwrap();
        let findings = rollbacks(&base, &lock(&changed), &changed);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].message.starts_with("17.9: witness evidence evidence/witness/17.9-"), "{findings:?}");
        assert!(rollbacks(&base, &base, real).is_empty());
    }
}
