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

/// The most text a fetch's argument set or a read's argument is looked for
/// in: real ones are a few lines. Bounding each look keeps a hostile file
/// with many unclosed calls linear, not quadratic.
const ARGUMENT_WINDOW: usize = 16 << 10;

/// Most calls of one builtin examined in a file; a file with more gets a
/// finding instead of an unbounded audit.
const MAX_CALLS_EXAMINED: usize = 10_000;

/// At most [`ARGUMENT_WINDOW`] bytes of `text` from `at` (on a character boundary).
fn window(text: &str, at: usize) -> &str {
    let mut end = (at + ARGUMENT_WINDOW).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[at..end]
}

/// Most findings of one rule in one file; the rest are counted in one more.
const MAX_FINDINGS_PER_RULE: usize = 100;

/// Byte offset just past the `{ … }` starting at `open`, or the end of the
/// window (an argument set that long is not a pinned fetch).
fn matching_brace(text: &str, open: usize) -> usize {
    let mut depth = 0usize;
    let within = window(text, open);
    for (i, c) in within.char_indices() {
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
    open + within.len()
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
    let rest = window(text, at).trim_start();
    let start = at + (window(text, at).len() - rest.len());
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

/// Whether `c` can be part of a Nix identifier.
fn identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '\''
}

/// Every `name = value;` binding in the file, the first of each name: one
/// pass over the text, so that resolving many arguments stays linear.
fn bindings(text: &str) -> std::collections::HashMap<&str, &str> {
    let mut found = std::collections::HashMap::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (start, identifier_char(c)) {
            (None, true) if whole_word_start(text, i) && (c.is_alphabetic() || c == '_') => start = Some(i),
            (Some(_), true) => {}
            (Some(from), false) => {
                start = None;
                let name = &text[from..i];
                let rest = text[i..].trim_start();
                if let Some(value) = rest.strip_prefix('=').filter(|v| !v.starts_with('=')) {
                    let value_start = text.len() - value.len();
                    let value = window(text, value_start);
                    found.entry(name).or_insert(&value[..value.find(';').unwrap_or(value.len())]);
                }
            }
            _ => {}
        }
    }
    found
}

/// Whether an identifier may start at `at` (not inside another, nor after a dot).
fn whole_word_start(text: &str, at: usize) -> bool {
    !text[..at].chars().next_back().is_some_and(|c| identifier_char(c) || c == '.')
}

/// For an argument that is a bare name, the text bound to it in the same
/// file (`name = …;`), so that `import generated` is judged by what
/// `generated` is; any other argument as it is.
fn resolve_binding<'a>(bound: &std::collections::HashMap<&'a str, &'a str>, argument: &'a str) -> &'a str {
    let is_name = !argument.is_empty()
        && argument.chars().all(identifier_char)
        && argument.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if !is_name {
        return argument;
    }
    bound.get(argument).copied().unwrap_or(argument)
}

/// The first [`MAX_CALLS_EXAMINED`] calls of `name`, each with a flag
/// saying whether it is past the cap (only the first such is yielded).
fn examined_calls<'a>(text: &'a str, name: &'a str, global: bool) -> impl Iterator<Item = (usize, bool)> + 'a {
    builtin_calls(text, name, global)
        .enumerate()
        .take(MAX_CALLS_EXAMINED + 1)
        .map(|(i, at)| (at, i == MAX_CALLS_EXAMINED))
}

/// The finding for a file with more than [`MAX_CALLS_EXAMINED`] calls of `name`.
fn too_many_calls(name: &str) -> String {
    format!("more than {MAX_CALLS_EXAMINED} calls of `{name}`: the rest of the file is not examined; split it")
}

/// Findings of one rule, at most [`MAX_FINDINGS_PER_RULE`] of them with
/// their line, then one that counts the rest.
struct Capped<'f> {
    file: &'f SourceFile,
    rule: RuleId,
    kept: Vec<Finding>,
    more: usize,
}

impl<'f> Capped<'f> {
    fn new(file: &'f SourceFile, rule: RuleId) -> Self {
        Capped { file, rule, kept: Vec::new(), more: 0 }
    }

    fn push(&mut self, at: usize, message: impl FnOnce() -> String) {
        if self.kept.len() < MAX_FINDINGS_PER_RULE {
            self.kept.push(Finding::new(self.rule, &self.file.path, self.file.line_of(at), message()));
        } else {
            self.more += 1;
        }
    }

    /// A finding kept whatever the cap.
    fn always(&mut self, at: usize, message: String) {
        self.kept.push(Finding::new(self.rule, &self.file.path, self.file.line_of(at), message));
    }

    fn into_findings(mut self) -> Vec<Finding> {
        if self.more > 0 {
            let line = self.kept.last().map_or(1, |f| f.line);
            let message = format!("and {} more like the ones above in this file", self.more);
            self.kept.push(Finding::new(self.rule, &self.file.path, line, message));
        }
        self.kept
    }
}

/// Every NIX002/NIX003 finding in a `.nix` file.
pub fn check_nix_file(file: &SourceFile) -> Vec<Finding> {
    let text = without_comments(&file.text);
    let mut unhashed = Capped::new(file, RuleId::UnhashedFetch);
    for (name, global, keys) in [
        ("fetchurl", false, &["sha256", "hash"][..]),
        ("fetchTarball", true, &["sha256", "hash"][..]),
        ("fetchGit", true, &["rev", "narHash"][..]),
    ] {
        for (after, past_cap) in examined_calls(&text, name, global) {
            if past_cap {
                unhashed.always(after, too_many_calls(name));
                break;
            }
            let rest = window(&text, after).trim_start();
            let pinned = rest.starts_with('{') && {
                let open = after + (window(&text, after).len() - rest.len());
                names_hash(&text[open..matching_brace(&text, open)], keys)
            };
            if !pinned {
                unhashed.push(after, || format!("`{name}` without {}: its result can change", keys.join(" or ")));
            }
        }
    }
    let bound = bindings(&text);
    let mut from_derivation = Capped::new(file, RuleId::ImportFromDerivation);
    for (reader, global) in [("import", true), ("readFile", true), ("readDir", false), ("pathExists", false)] {
        for (after, past_cap) in examined_calls(&text, reader, global) {
            if past_cap {
                from_derivation.always(after, too_many_calls(reader));
                break;
            }
            let argument = resolve_binding(&bound, argument(&text, after));
            if let Some(maker) = DERIVATION_MAKERS.iter().find(|m| argument.contains(*m)) {
                from_derivation
                    .push(after, || format!("`{reader}` of a `{maker}` output runs a build during evaluation"));
            }
        }
    }
    let mut out = unhashed.into_findings();
    out.extend(from_derivation.into_findings());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 MiB file of unclosed fetches and imports of one another: each
    /// call used to scan the rest of the file (hours); now each looks at a
    /// bounded window, and the findings are capped.
    #[test]
    fn a_hostile_file_of_unclosed_calls_is_audited_in_bounded_work() {
        let unit = "x = fetchTarball { url = y; import x (fetchurl {\n";
        let text = unit.repeat((4 << 20) / unit.len());
        let findings = check_nix_file(&SourceFile { path: "evil.nix".into(), text });
        let unhashed = findings.iter().filter(|f| f.rule == RuleId::UnhashedFetch).count();
        // The cap, a finding per builtin past the call cap, one counting the rest.
        assert!((MAX_FINDINGS_PER_RULE..MAX_FINDINGS_PER_RULE + 4).contains(&unhashed), "{unhashed}");
        assert!(findings.iter().any(|f| f.message.contains("not examined")));
        assert!(findings.iter().any(|f| f.message.contains("more like the ones above")));
    }

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
