//! Nix rules: NIX001 (every `flake.lock` input locked with `rev` and
//! `narHash`), NIX002 (no `builtins.fetchurl`/`fetchTarball`/`fetchGit`
//! without a hash) and NIX003 (no import-from-derivation).
//!
//! NIX002 and NIX003 read the Nix text, not an evaluated expression: a fetch
//! is hashed when its argument set names `sha256`, `hash` or `narHash` (or
//! `rev`, for `fetchGit`); an import or read is from a derivation when its
//! argument builds or fetches something. pgbin's own flake is also evaluated
//! with `allow-import-from-derivation = false` in `tests/e2e/nix.rs`.

use super::{Finding, RuleId, SourceFile};

/// Every NIX001 finding in a `flake.lock`.
pub fn check_flake_lock(file: &SourceFile) -> Vec<Finding> {
    let lock: serde_json::Value = match serde_json::from_str(&file.text) {
        Ok(lock) => lock,
        Err(e) => {
            return vec![Finding::new(
                RuleId::UnreadableFile,
                &file.path,
                e.line(),
                format!("does not parse as JSON: {e}"),
            )];
        }
    };
    let root = lock["root"].as_str().unwrap_or("root");
    let Some(nodes) = lock["nodes"].as_object() else {
        return vec![Finding::new(RuleId::UnreadableFile, &file.path, 1, "no `nodes`: not a flake lock file")];
    };
    let mut out = Vec::new();
    for (name, node) in nodes {
        if name == root {
            continue;
        }
        let locked = &node["locked"];
        let missing: Vec<&str> = ["rev", "narHash"].into_iter().filter(|k| !locked[*k].is_string()).collect();
        if !missing.is_empty() {
            let line = file.text.find(&format!("\"{name}\": {{")).map_or(1, |at| file.line_of(at));
            out.push(Finding::new(
                RuleId::UnlockedFlakeInput,
                &file.path,
                line,
                format!("input `{name}` is locked without {}", missing.join(" and ")),
            ));
        }
    }
    out
}

/// Byte offset just past the `{ … }` starting at `open`, or the text's end.
fn matching_brace(text: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// Whether `word` occurs at `at` as a whole identifier (not `x.word`,
/// `wordx` or `xword`).
fn whole_word(text: &str, at: usize, word: &str) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[at + word.len()..].chars().next();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '\'';
    !before.is_some_and(|c| ident(c) || c == '.') && !after.is_some_and(ident)
}

/// Occurrences of `name` that call the builtin: `builtins.name`, or the
/// bare name for the builtins Nix also puts in global scope.
fn builtin_calls<'a>(text: &'a str, name: &'a str, global: bool) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(name).filter_map(move |(at, _)| {
        let qualified = text[..at].ends_with("builtins.") && whole_word(text, at - "builtins.".len(), "builtins");
        let bare = global && whole_word(text, at, name);
        let ends = !text[at + name.len()..].chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_');
        ((qualified || bare) && ends).then_some(at + name.len())
    })
}

/// Keys of an attribute set's text that pin a fetch.
fn names_hash(set: &str, keys: &[&str]) -> bool {
    keys.iter().any(|key| {
        set.match_indices(key)
            .any(|(at, _)| whole_word(set, at, key) && set[at + key.len()..].trim_start().starts_with('='))
    })
}

/// The text with `#` comments blanked out (same length, so offsets hold).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut in_comment = false;
    let mut previous = '\0';
    for c in text.chars() {
        if in_comment {
            in_comment = c != '\n';
        } else if c == '"' && previous != '\\' {
            in_string = !in_string;
        } else if c == '#' && !in_string {
            in_comment = true;
        }
        if in_comment {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()))
        } else {
            out.push(c)
        }
        previous = c;
    }
    out
}

/// Calls that build or fetch something: evaluation-time use of their
/// output is import-from-derivation.
const DERIVATION_MAKERS: [&str; 10] = [
    "runCommand",
    "mkDerivation",
    "fetchFromGitHub",
    "fetchFromGitLab",
    "fetchurl",
    "fetchgit",
    "fetchzip",
    "callPackage",
    "writeText",
    "derivation",
];

/// The argument expression after `at`: a parenthesised group, an
/// interpolated string, or one word.
fn argument(text: &str, at: usize) -> &str {
    let rest = text[at..].trim_start();
    let start = text.len() - rest.len();
    let end = match rest.chars().next() {
        Some('(') => {
            let mut depth = 0usize;
            rest.char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i + 1)
        }
        Some('"') => rest[1..].find('"').map_or(rest.len(), |i| i + 2),
        _ => rest.find(|c: char| c.is_whitespace() || c == ';' || c == ')').unwrap_or(rest.len()),
    };
    &text[start..start + end]
}

/// For an argument that is a bare name, the text bound to it in the same
/// file (`name = …;`), so that `import generated` is judged by what
/// `generated` is; any other argument as it is.
fn resolve_binding<'a>(text: &'a str, argument: &'a str) -> &'a str {
    let is_name = !argument.is_empty()
        && argument.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '\'')
        && argument.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if !is_name {
        return argument;
    }
    text.match_indices(argument)
        .filter(|(at, _)| whole_word(text, *at, argument))
        .find_map(|(at, _)| {
            let rest = text[at + argument.len()..].trim_start();
            let value = rest.strip_prefix('=').filter(|v| !v.starts_with('='))?;
            let start = text.len() - value.len();
            Some(&text[start..start + value.find(';').unwrap_or(value.len())])
        })
        .unwrap_or(argument)
}

/// Every NIX002/NIX003 finding in a `.nix` file.
pub fn check_nix_file(file: &SourceFile) -> Vec<Finding> {
    let text = without_comments(&file.text);
    let mut out = Vec::new();
    for (name, global, keys) in [
        ("fetchurl", false, &["sha256", "hash"][..]),
        ("fetchTarball", true, &["sha256", "hash"][..]),
        ("fetchGit", true, &["rev", "narHash"][..]),
    ] {
        for after in builtin_calls(&text, name, global) {
            let rest = text[after..].trim_start();
            let pinned = rest.starts_with('{') && {
                let open = text.len() - rest.len();
                names_hash(&text[open..matching_brace(&text, open)], keys)
            };
            if !pinned {
                out.push(Finding::new(
                    RuleId::UnhashedFetch,
                    &file.path,
                    file.line_of(after),
                    format!("`{name}` without {}: its result can change", keys.join(" or ")),
                ));
            }
        }
    }
    for (reader, global) in [("import", true), ("readFile", true), ("readDir", false), ("pathExists", false)] {
        for after in builtin_calls(&text, reader, global) {
            let argument = resolve_binding(&text, argument(&text, after));
            if let Some(maker) = DERIVATION_MAKERS.iter().find(|m| argument.contains(*m)) {
                out.push(Finding::new(
                    RuleId::ImportFromDerivation,
                    &file.path,
                    file.line_of(after),
                    format!("`{reader}` of a `{maker}` output runs a build during evaluation"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        check_nix_file(&SourceFile { path: "x.nix".into(), text: text.into() })
            .into_iter()
            .map(|f| f.rule.id())
            .collect()
    }

    #[test]
    fn hashed_fetches_pass_and_unhashed_ones_do_not() {
        assert_eq!(rules("builtins.fetchurl { url = \"https://x\"; sha256 = \"abc\"; }"), Vec::<&str>::new());
        assert_eq!(rules("fetchTarball { url = \"https://x\"; sha256 = \"abc\"; }"), Vec::<&str>::new());
        assert_eq!(rules("builtins.fetchGit { url = \"https://x\"; rev = \"abc\"; }"), Vec::<&str>::new());
        assert_eq!(rules("fetchTarball \"https://x/archive/master.tar.gz\""), vec!["NIX002"]);
        assert_eq!(rules("builtins.fetchurl { url = \"https://x\"; }"), vec!["NIX002"]);
        assert_eq!(rules("builtins.fetchGit { url = \"https://x\"; ref = \"main\"; }"), vec!["NIX002"]);
        assert_eq!(
            rules("pkgs.fetchurl { url = \"https://x\"; }"),
            Vec::<&str>::new(),
            "pkgs.fetchurl needs a hash anyway"
        );
        assert_eq!(rules("# fetchTarball \"https://x\"\n"), Vec::<&str>::new(), "comments are not code");
    }

    #[test]
    fn import_from_derivation_is_an_import_of_something_built() {
        assert_eq!(rules("import (pkgs.runCommand \"x\" {} \"echo {} > $out\")"), vec!["NIX003"]);
        assert_eq!(rules("builtins.readFile \"${pkgs.writeText \"a\" \"b\"}\""), vec!["NIX003"]);
        assert_eq!(rules("builtins.fromJSON (builtins.readFile ./generated/x.json)"), Vec::<&str>::new());
        assert_eq!(rules("import ./nix/lib.nix { inherit lib; }"), Vec::<&str>::new());
        assert_eq!(rules("let g = pkgs.runCommand \"g\" { } \"x\"; in import g"), vec!["NIX003"]);
        assert_eq!(rules("let g = ./g.nix; in import g"), Vec::<&str>::new());
    }
}
