//! Dockerfile rules (DKR001–DKR005): base images pinned by digest, packages
//! pinned by version, no `curl | sh`, no unchecked remote `ADD`, and a
//! non-root final stage. Instructions are read as Docker does: comment lines
//! dropped and `\` continuations joined.

use std::collections::{BTreeMap, BTreeSet};

use super::{Finding, RuleId, SourceFile};

/// Whether a file name is a Dockerfile (`Dockerfile`, `Dockerfile.x`,
/// `x.Dockerfile`, `Containerfile`).
pub fn is_dockerfile(name: &str) -> bool {
    name == "Dockerfile"
        || name == "Containerfile"
        || name.starts_with("Dockerfile.")
        || name.ends_with(".Dockerfile")
        || name.ends_with(".dockerfile")
}

/// One instruction: its 1-based first line, keyword (upper case) and
/// arguments with continuations joined.
struct Instruction {
    line: usize,
    keyword: String,
    arguments: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        // Docker drops comment lines and blank lines, also inside a `\`
        // continuation.
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let (continues, body) = match trimmed.strip_suffix('\\') {
            Some(body) => (true, body),
            None => (false, trimmed),
        };
        let (_, logical) = current.get_or_insert_with(|| (index + 1, String::new()));
        logical.push_str(body);
        logical.push(' ');
        if !continues {
            let (line, logical) = current.take().expect("set above");
            let logical = logical.trim();
            let (keyword, arguments) = logical.split_once(char::is_whitespace).unwrap_or((logical, ""));
            out.push(Instruction { line, keyword: keyword.to_ascii_uppercase(), arguments: arguments.trim().into() });
        }
    }
    out
}

fn is_digest_pinned(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(_, d)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `${NAME}` / `$NAME` replaced by known ARG defaults.
fn expand(text: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    out
}

/// Shell words of a command (quotes removed; no expansion).
fn words(command: &str) -> Vec<String> {
    command.split_whitespace().map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string()).collect()
}

/// The simple commands of a shell line, split at `&&`, `||`, `;` and `|`,
/// with the pipelines they belong to.
fn pipelines(script: &str) -> Vec<Vec<String>> {
    script
        .split("&&")
        .flat_map(|part| part.split("||"))
        .flat_map(|part| part.split(';'))
        .map(|pipeline| pipeline.split('|').map(|command| command.trim().to_string()).collect())
        .collect()
}

/// The command word, past `sudo`, `env`, `exec`, their options and
/// assignments (`sudo -E bash`, `env -i FOO=1 sh`).
fn command_word(words: &[String]) -> Option<&str> {
    let mut wrapped = false;
    for word in words.iter().map(String::as_str) {
        if matches!(word, "sudo" | "env" | "exec") {
            wrapped = true;
        } else if (wrapped && word.starts_with('-')) || word.contains('=') {
            continue;
        } else {
            return Some(word);
        }
    }
    None
}

/// A `# syntax=` parser directive not pinned by digest: BuildKit pulls that
/// frontend image before reading anything else.
fn unpinned_syntax_directive(text: &str) -> Option<(usize, String)> {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let Some(directive) = trimmed.strip_prefix('#') else { break };
        let directive = directive.trim();
        if let Some(image) = directive.strip_prefix("syntax").map(str::trim_start).and_then(|d| d.strip_prefix('=')) {
            let image = image.trim();
            if !is_digest_pinned(image) {
                return Some((index + 1, image.to_string()));
            }
        }
    }
    None
}

const SHELLS: [&str; 6] = ["sh", "bash", "ash", "dash", "zsh", "ksh"];
const DOWNLOADERS: [&str; 2] = ["curl", "wget"];

fn is_shell(word: &str) -> bool {
    SHELLS.contains(&word.rsplit('/').next().unwrap_or(word))
}

/// Packages of `apk add …` or `apt-get|apt install …` that carry no version.
fn unpinned_packages(command: &[String]) -> Vec<String> {
    let Some(position) = command.iter().position(|w| matches!(w.as_str(), "apk" | "apt-get" | "apt")) else {
        return Vec::new();
    };
    let tool = command[position].as_str();
    let rest = &command[position + 1..];
    let verb = if tool == "apk" { "add" } else { "install" };
    let Some(start) = rest.iter().position(|w| w == verb) else { return Vec::new() };
    let takes_value: &[&str] = if tool == "apk" {
        &["--virtual", "-t", "--repository", "-X", "--root", "-p", "--keys-dir", "--arch"]
    } else {
        &["-o", "--option", "-t", "--target-release", "-c", "--config-file"]
    };
    let mut unpinned = Vec::new();
    let mut skip_next = false;
    for word in &rest[start + 1..] {
        if skip_next {
            skip_next = false;
            continue;
        }
        if word.starts_with('-') {
            skip_next = takes_value.contains(&word.as_str());
            continue;
        }
        if word.starts_with('$') || word.contains('=') || word.ends_with(".deb") || word.ends_with(".apk") {
            continue;
        }
        unpinned.push(word.clone());
    }
    unpinned
}

fn check_run(file: &SourceFile, instruction: &Instruction, out: &mut Vec<Finding>) {
    let script = &instruction.arguments;
    for pipeline in pipelines(script) {
        let commands: Vec<Vec<String>> = pipeline.iter().map(|c| words(c)).collect();
        let downloads = commands.first().and_then(|c| command_word(c)).is_some_and(|w| DOWNLOADERS.contains(&w));
        let into_shell = commands.iter().skip(1).any(|c| command_word(c).is_some_and(is_shell));
        if downloads && into_shell {
            out.push(Finding::new(
                RuleId::PipeToShell,
                &file.path,
                instruction.line,
                format!("`{}` runs a downloaded script", pipeline.join(" | ")),
            ));
        }
        for command in &commands {
            let unpinned = unpinned_packages(command);
            if !unpinned.is_empty() {
                out.push(Finding::new(
                    RuleId::UnpinnedPackage,
                    &file.path,
                    instruction.line,
                    format!("unpinned package(s): {}", unpinned.join(", ")),
                ));
            }
        }
    }
    for substitution in ["$(curl", "$(wget", "<(curl", "<(wget", "`curl", "`wget"] {
        if script.contains(substitution) && words(script).iter().any(|w| is_shell(w)) {
            out.push(Finding::new(
                RuleId::PipeToShell,
                &file.path,
                instruction.line,
                "a shell runs a script fetched by command substitution",
            ));
            break;
        }
    }
}

fn check_add(file: &SourceFile, instruction: &Instruction, out: &mut Vec<Finding>) {
    let words = words(&instruction.arguments);
    let has_checksum = words.iter().any(|w| w.starts_with("--checksum="));
    let sources: Vec<&String> = words.iter().filter(|w| !w.starts_with("--")).collect();
    let remote = sources
        .iter()
        .take(sources.len().saturating_sub(1))
        .find(|s| s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@"));
    if let (Some(url), false) = (remote, has_checksum) {
        out.push(Finding::new(
            RuleId::RemoteAddWithoutChecksum,
            &file.path,
            instruction.line,
            format!("`ADD {url}` is not checked against a checksum"),
        ));
    }
}

fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user);
    name == "root" || name == "0"
}

/// Every DKR finding in one Dockerfile.
pub fn check(file: &SourceFile) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some((line, image)) = unpinned_syntax_directive(&file.text) {
        out.push(Finding::new(
            RuleId::UnpinnedBaseImage,
            &file.path,
            line,
            format!("`# syntax={image}` makes BuildKit pull a frontend image that can change under the same tag"),
        ));
    }
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut stage_users: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut final_stage: Option<(usize, Option<String>)> = None;
    let mut current_name: Option<String> = None;
    let mut seen_from = false;
    for instruction in instructions(&file.text) {
        match instruction.keyword.as_str() {
            "ARG" if !seen_from => {
                if let Some((name, value)) = instruction.arguments.split_once('=') {
                    args.insert(name.trim().into(), value.trim().trim_matches('"').into());
                }
            }
            "FROM" => {
                if let (Some(name), Some((_, user))) = (current_name.take(), &final_stage) {
                    stage_users.insert(name, user.clone());
                }
                seen_from = true;
                let words: Vec<String> =
                    words(&instruction.arguments).into_iter().filter(|w| !w.starts_with("--")).collect();
                let image = expand(words.first().map_or("", String::as_str), &args);
                let alias = match (words.get(1), words.get(2)) {
                    (Some(as_word), Some(name)) if as_word.eq_ignore_ascii_case("as") => Some(name.to_lowercase()),
                    _ => None,
                };
                let from_stage = stages.contains(&image.to_lowercase());
                let inherited =
                    if from_stage { stage_users.get(&image.to_lowercase()).cloned().flatten() } else { None };
                if !from_stage && image != "scratch" && !is_digest_pinned(&image) {
                    out.push(Finding::new(
                        RuleId::UnpinnedBaseImage,
                        &file.path,
                        instruction.line,
                        format!("`FROM {image}` can change under the same tag"),
                    ));
                }
                if let Some(alias) = &alias {
                    stages.insert(alias.clone());
                }
                current_name = alias;
                final_stage = Some((instruction.line, inherited));
            }
            "USER" => {
                if let Some((_, user)) = &mut final_stage {
                    *user = Some(instruction.arguments.clone());
                }
            }
            "RUN" => check_run(file, &instruction, &mut out),
            "ADD" => check_add(file, &instruction, &mut out),
            _ => {}
        }
    }
    if let Some((line, user)) = final_stage {
        match user {
            None => out.push(Finding::new(
                RuleId::RootFinalStage,
                &file.path,
                line,
                "the final stage sets no USER, so it runs as root",
            )),
            Some(user) if is_root(&user) => out.push(Finding::new(
                RuleId::RootFinalStage,
                &file.path,
                line,
                format!("the final stage runs as `{user}`"),
            )),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str) -> Vec<(&'static str, usize)> {
        let file = SourceFile { path: "Dockerfile".into(), text: text.into() };
        check(&file).into_iter().map(|f| (f.rule.id(), f.line)).collect()
    }

    #[test]
    fn a_pinned_multi_stage_file_is_clean() {
        let digest = "a".repeat(64);
        let text = format!(
            "ARG ALPINE=alpine:3.20@sha256:{digest}\nFROM ${{ALPINE}} AS build\nRUN apk add --no-cache \\\n    gcc=13.2.1-r0 \\\n    make=4.4.1-r2\nUSER builder\nFROM build AS final\nCOPY . /src\n"
        );
        assert_eq!(findings(&text), vec![]);
    }

    #[test]
    fn continuation_lines_keep_the_instruction_line() {
        let digest = "b".repeat(64);
        let text = format!(
            "FROM debian@sha256:{digest}\n# comment\nRUN apt-get update && \\\n  apt-get install -y -o Dpkg::Options::=x curl\nUSER 1000\n"
        );
        assert_eq!(findings(&text), vec![("DKR002", 3)]);
    }

    #[test]
    fn blank_lines_inside_a_continuation_do_not_end_it() {
        let digest = "e".repeat(64);
        let text = format!("FROM x@sha256:{digest}\nRUN apk add \\\n\n    curl\nUSER app\n");
        assert_eq!(findings(&text), vec![("DKR002", 2)]);
    }

    #[test]
    fn an_unpinned_syntax_directive_is_an_unpinned_image() {
        let digest = "f".repeat(64);
        let text = format!("# syntax=docker/dockerfile:1\nFROM x@sha256:{digest}\nUSER app\n");
        assert_eq!(findings(&text), vec![("DKR001", 1)]);
        let pinned = format!("# syntax=docker/dockerfile:1@sha256:{digest}\nFROM x@sha256:{digest}\nUSER app\n");
        assert_eq!(findings(&pinned), vec![]);
    }

    #[test]
    fn root_is_detected_by_name_and_uid_and_inherited_from_stages() {
        let digest = "c".repeat(64);
        assert_eq!(findings(&format!("FROM x@sha256:{digest}\nUSER 0:0\n")), vec![("DKR005", 1)]);
        assert_eq!(findings(&format!("FROM x@sha256:{digest} AS a\nUSER app\nFROM a\n")), vec![]);
        assert_eq!(findings("FROM scratch\nUSER 65534\n"), vec![]);
    }

    #[test]
    fn pipes_into_shells_and_remote_adds() {
        let digest = "d".repeat(64);
        let base = format!("FROM x@sha256:{digest}\nUSER app\n");
        assert_eq!(findings(&format!("{base}RUN curl -fsSL https://x/i.sh | sudo bash -s\n")), vec![("DKR003", 3)]);
        assert_eq!(findings(&format!("{base}RUN curl -fsSL https://x/i.sh | sudo -E bash -\n")), vec![("DKR003", 3)]);
        assert_eq!(findings(&format!("{base}RUN curl -fsSL https://x/i.sh | env -i sh\n")), vec![("DKR003", 3)]);
        assert_eq!(findings(&format!("{base}RUN sh -c \"$(wget -O- https://x/i.sh)\"\n")), vec![("DKR003", 3)]);
        assert_eq!(findings(&format!("{base}RUN curl -fsSLo x https://x/x && sha256sum -c x.sha256\n")), vec![]);
        assert_eq!(findings(&format!("{base}ADD https://x/a.tgz /a.tgz\n")), vec![("DKR004", 3)]);
        assert_eq!(findings(&format!("{base}ADD --checksum=sha256:{digest} https://x/a.tgz /a.tgz\n")), vec![]);
    }
}
