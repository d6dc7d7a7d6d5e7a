//! A Nix build's inputs: the derivation that produced an output and its
//! closure (every derivation and source it was made from), queried from
//! the store with `nix-store --query`, and how two such closures differ.
//! Two outputs of the same derivation had the same inputs; outputs of two
//! derivations had different ones, and the closures say which.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::nix::store::{package_of, store_dir};

/// The derivation an output came from, and the store paths of everything
/// it was built from (derivations and sources; the derivation itself left
/// out), sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivationInputs {
    /// The `.drv` store path.
    pub derivation: String,
    /// Its closure, without itself.
    pub closure: Vec<String>,
}

/// Why the store could not say where an output came from.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClosureError(pub String);

crate::util::error::usage_errors!(ClosureError);

/// Runs `nix-store --query <flag> <path>` and returns its output lines.
fn query(flag: &str, path: &str) -> Result<Vec<String>, ClosureError> {
    let output = Command::new("nix-store")
        .args(["--query", flag, path])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ClosureError(format!("cannot run nix-store: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(ClosureError(format!("nix-store --query {flag} {path} failed: {}", first.trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// The derivation that built `output` and its closure.
pub fn derivation_inputs(output: &Path) -> Result<DerivationInputs, ClosureError> {
    let output = output.display().to_string();
    let derivation = query("--deriver", &output)?.into_iter().next().unwrap_or_default();
    if !derivation.ends_with(".drv") || !derivation.starts_with(&store_dir()) {
        return Err(ClosureError(format!("the store knows no derivation of {output} (deriver: {derivation:?})")));
    }
    let mut closure: Vec<String> =
        query("--requisites", &derivation)?.into_iter().filter(|p| *p != derivation).collect();
    closure.sort();
    Ok(DerivationInputs { derivation, closure })
}

/// One input (by package name) whose store paths differ between two closures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosureChange {
    /// The input's name as `builtins.parseDrvName` reads it (`openssl`).
    pub name: String,
    /// Its store paths only in A.
    pub a: Vec<String>,
    /// Its store paths only in B.
    pub b: Vec<String>,
}

/// The inputs whose store paths differ between closures `a` and `b`,
/// paired by package name so that `openssl-3.0.13.drv` and
/// `openssl-3.0.14.drv` are one change, sorted by name.
pub fn changed_inputs(a: &DerivationInputs, b: &DerivationInputs) -> Vec<ClosureChange> {
    let (set_a, set_b): (BTreeSet<&String>, BTreeSet<&String>) =
        (a.closure.iter().collect(), b.closure.iter().collect());
    let store = store_dir();
    let name_of = |path: &str| {
        let trimmed = path.strip_suffix(".drv").unwrap_or(path);
        package_of(&store, trimmed).map_or_else(|| path.to_string(), |(name, _)| name)
    };
    let mut by_name: BTreeMap<String, ClosureChange> = BTreeMap::new();
    for (paths, side_a) in [(set_a.difference(&set_b), true), (set_b.difference(&set_a), false)] {
        for path in paths {
            let name = name_of(path);
            let change =
                by_name.entry(name.clone()).or_insert_with(|| ClosureChange { name, a: Vec::new(), b: Vec::new() });
            if side_a { change.a.push((*path).clone()) } else { change.b.push((*path).clone()) }
        }
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(derivation: &str, closure: &[&str]) -> DerivationInputs {
        DerivationInputs { derivation: derivation.into(), closure: closure.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn changed_inputs_pair_versions_of_one_package_and_leave_the_rest() {
        let store = store_dir();
        let path = |hash: char, name: &str| format!("{store}/{}-{name}", hash.to_string().repeat(32));
        let common = path('a', "zlib-1.3.1.drv");
        let (old, new) = (path('b', "openssl-3.0.13.drv"), path('c', "openssl-3.0.14.drv"));
        let patch = path('d', "fix.patch");
        let a = inputs(&path('x', "postgresql-18.6.drv"), &[&common, &old, &patch]);
        let b = inputs(&path('y', "postgresql-18.6.drv"), &[&common, &new]);
        let changes = changed_inputs(&a, &b);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[1], ClosureChange { name: "openssl".into(), a: vec![old], b: vec![new] });
        assert_eq!(changes[0], ClosureChange { name: "fix.patch".into(), a: vec![patch], b: vec![] });
        assert!(changed_inputs(&a, &a).is_empty());
    }
}
