//! GitHub Actions rules (GHA001–GHA007) over `.github/workflows/*.yml`,
//! read with `marked-yaml`, which keeps every node's line.

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};

use super::{Finding, RuleId, SourceFile};

/// Whether `path` is a workflow file.
pub fn is_workflow(path: &str) -> bool {
    path.strip_prefix(".github/workflows/")
        .is_some_and(|name| !name.contains('/') && (name.ends_with(".yml") || name.ends_with(".yaml")))
}

/// Whether `path` is a composite or container action's metadata file
/// (`action.yml` anywhere): its `uses:` and `run:` steps are checked too.
pub fn is_action(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "action.yml" || name == "action.yaml"
}

/// Where each line of a file starts, so that reading line N costs the same
/// for every N (a 4 MiB workflow of many steps stays linear to check).
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|at| at + 1));
        Lines { text, starts }
    }

    /// Line `number` (1-based) without its line end; empty past the end.
    fn get(&self, number: usize) -> &'a str {
        let Some(&start) = number.checked_sub(1).and_then(|index| self.starts.get(index)) else { return "" };
        let end = self.starts.get(number).map_or(self.text.len(), |&next| next - 1);
        self.text[start..end].trim_end_matches('\r')
    }
}

fn scalar_line(node: &MarkedScalarNode) -> usize {
    node.span().start().map_or(1, |m| m.line())
}

/// Triggers named by `on:` (a name, a list of names, or a mapping).
fn triggers(root: &MarkedMappingNode) -> Vec<String> {
    match root.get_node("on") {
        Some(Node::Scalar(s)) => vec![s.as_str().to_string()],
        Some(Node::Sequence(seq)) => seq.iter().filter_map(|n| n.as_scalar()).map(|s| s.as_str().to_string()).collect(),
        Some(Node::Mapping(map)) => map.keys().map(|k| k.as_str().to_string()).collect(),
        None => Vec::new(),
    }
}

fn is_commit_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// GHA001/GHA002 for one `uses:` value on `line`.
fn check_uses(file: &SourceFile, lines: &Lines, value: &str, line: usize, out: &mut Vec<Finding>) {
    if value.starts_with("./") {
        return;
    }
    if let Some(image) = value.strip_prefix("docker://") {
        if !image.contains("@sha256:") {
            out.push(Finding::new(
                RuleId::UnpinnedAction,
                &file.path,
                line,
                format!("container action `{value}` is not pinned by digest"),
            ));
        }
        return;
    }
    let Some((_, reference)) = value.rsplit_once('@') else {
        out.push(Finding::new(
            RuleId::UnpinnedAction,
            &file.path,
            line,
            format!("`{value}` has no ref: it follows the default branch"),
        ));
        return;
    };
    if !is_commit_sha(reference) {
        out.push(Finding::new(
            RuleId::UnpinnedAction,
            &file.path,
            line,
            format!("`{value}` is pinned to the mutable ref `{reference}`"),
        ));
        return;
    }
    let raw = lines.get(line);
    let comment = raw.split_once(value).map_or("", |(_, rest)| rest).trim_start_matches(['"', '\'']).trim_start();
    let has_version = comment.strip_prefix('#').is_some_and(|c| c.chars().any(|ch| ch.is_ascii_digit()));
    if !has_version {
        out.push(Finding::new(
            RuleId::PinWithoutVersion,
            &file.path,
            line,
            format!("`{value}` has no `# vX.Y.Z` comment"),
        ));
    }
}

/// GHA004 for a `permissions:` node; `workflow_level` marks the top-level one.
fn check_permissions(file: &SourceFile, node: &Node, workflow_level: bool, out: &mut Vec<Finding>) {
    match node {
        Node::Scalar(s) if s.as_str() == "write-all" => {
            out.push(Finding::new(
                RuleId::BroadPermissions,
                &file.path,
                scalar_line(s),
                "`permissions: write-all` grants every scope",
            ));
        }
        Node::Mapping(map) if workflow_level => {
            for (scope, level) in map.iter() {
                if level.as_scalar().is_some_and(|l| l.as_str() == "write") {
                    out.push(Finding::new(
                        RuleId::BroadPermissions,
                        &file.path,
                        scalar_line(scope),
                        format!("`{}: write` at workflow level applies to every job", scope.as_str()),
                    ));
                }
            }
        }
        _ => {}
    }
}

/// Expressions an outside contributor controls.
fn attacker_controlled(expression: &str) -> bool {
    expression.contains("github.event.") || expression.contains("github.head_ref")
}

/// GHA006 for one script (`run:`, or `actions/github-script`'s `script:`).
/// Each finding is on the line holding its expression: the script's first
/// line plus the line breaks before it (plus one, below a `|` or `>`
/// indicator); a folded expression not found there is reported at that
/// guess. Finding every line costs time linear in the script.
fn check_script(file: &SourceFile, lines: &Lines, run: &MarkedScalarNode, out: &mut Vec<Finding>) {
    let script = run.as_str();
    let first = scalar_line(run);
    let mut breaks = 0;
    let mut rest = script;
    while let Some(start) = rest.find("${{") {
        breaks += memchr::memchr_iter(b'\n', &rest.as_bytes()[..start]).count();
        let after = &rest[start..];
        let end = after.find("}}").map_or(after.len(), |e| e + 2);
        let expression = &after[..end];
        if attacker_controlled(expression) {
            let guess = first + breaks;
            let line = (guess..=guess + 2)
                .chain(first..guess.min(first + 64))
                .find(|&n| lines.get(n).contains(expression))
                .unwrap_or(guess);
            out.push(Finding::new(
                RuleId::TemplateInjection,
                &file.path,
                line,
                format!("`{expression}` is expanded into the script before it runs"),
            ));
        }
        breaks += memchr::memchr_iter(b'\n', expression.as_bytes()).count();
        rest = &after[end..];
    }
}

/// Refs of `actions/checkout` that name the untrusted head.
fn checks_out_head(reference: &str) -> bool {
    ["github.event.pull_request.head", "github.head_ref", "github.event.workflow_run.head", "refs/pull/"]
        .iter()
        .any(|needle| reference.contains(needle))
}

/// Every GHA finding in one workflow.
pub fn check(file: &SourceFile) -> Vec<Finding> {
    let mut out = Vec::new();
    let lines = Lines::new(&file.text);
    let lines = &lines;
    let root = match marked_yaml::parse_yaml(0, &file.text) {
        Ok(Node::Mapping(map)) => map,
        Ok(_) => return vec![Finding::new(RuleId::UnreadableFile, &file.path, 1, "a workflow must be a YAML mapping")],
        Err(e) => {
            return vec![Finding::new(RuleId::UnreadableFile, &file.path, 1, format!("does not parse as YAML: {e}"))];
        }
    };
    let privileged = triggers(&root).iter().any(|t| t == "pull_request_target" || t == "workflow_run");
    let top_permissions = root.get_node("permissions");
    if let Some(node) = top_permissions {
        check_permissions(file, node, true, &mut out);
    }
    let Some(jobs) = root.get_mapping("jobs") else { return out };
    for (name, job) in jobs.iter() {
        let Some(job) = job.as_mapping() else { continue };
        match job.get_node("permissions") {
            Some(node) => check_permissions(file, node, false, &mut out),
            None if top_permissions.is_none() => out.push(Finding::new(
                RuleId::MissingPermissions,
                &file.path,
                scalar_line(name),
                format!("job `{}` gets the repository's default token permissions", name.as_str()),
            )),
            None => {}
        }
        if let Some(uses) = job.get_scalar("uses") {
            check_uses(file, lines, uses.as_str(), scalar_line(uses), &mut out);
        }
        if let Some(secrets) = job.get_scalar("secrets").filter(|s| s.as_str() == "inherit") {
            out.push(Finding::new(
                RuleId::SecretsInherit,
                &file.path,
                scalar_line(secrets),
                format!("job `{}` passes every secret to its called workflow", name.as_str()),
            ));
        }
        if let Some(steps) = job.get_sequence("steps") {
            check_steps(file, lines, steps, privileged, &mut out);
        }
    }
    out
}

/// GHA001/2/5/6 for a list of steps; `privileged` when the workflow runs
/// on `pull_request_target` or `workflow_run`.
fn check_steps(
    file: &SourceFile,
    lines: &Lines,
    steps: &marked_yaml::types::MarkedSequenceNode,
    privileged: bool,
    out: &mut Vec<Finding>,
) {
    for step in steps.iter() {
        let Some(step) = step.as_mapping() else { continue };
        if let Some(uses) = step.get_scalar("uses") {
            check_uses(file, lines, uses.as_str(), scalar_line(uses), out);
            let with = step.get_mapping("with");
            let reference = with.and_then(|with| with.get_scalar("ref"));
            if let Some(reference) = reference.filter(|r| privileged && checks_out_head(r.as_str())) {
                if uses.as_str().starts_with("actions/checkout") {
                    out.push(Finding::new(
                        RuleId::UntrustedCheckout,
                        &file.path,
                        scalar_line(reference),
                        format!(
                            "checks out `{}` in a workflow that runs with secrets and a write token",
                            reference.as_str()
                        ),
                    ));
                }
            }
            if uses.as_str().starts_with("actions/github-script") {
                if let Some(script) = with.and_then(|with| with.get_scalar("script")) {
                    check_script(file, lines, script, out);
                }
            }
        }
        if let Some(run) = step.get_scalar("run") {
            check_script(file, lines, run, out);
        }
    }
}

/// GHA001/2/6 in an action's metadata (`runs.steps` of a composite action,
/// `runs.image` of a container action).
pub fn check_action(file: &SourceFile) -> Vec<Finding> {
    let mut out = Vec::new();
    let lines = Lines::new(&file.text);
    let root = match marked_yaml::parse_yaml(0, &file.text) {
        Ok(Node::Mapping(map)) => map,
        Ok(_) => return vec![Finding::new(RuleId::UnreadableFile, &file.path, 1, "an action must be a YAML mapping")],
        Err(e) => {
            return vec![Finding::new(RuleId::UnreadableFile, &file.path, 1, format!("does not parse as YAML: {e}"))];
        }
    };
    let Some(runs) = root.get_mapping("runs") else { return out };
    if let Some(steps) = runs.get_sequence("steps") {
        check_steps(file, &lines, steps, false, &mut out);
    }
    if let Some(image) = runs.get_scalar("image").filter(|i| i.as_str().starts_with("docker://")) {
        check_uses(file, &lines, image.as_str(), scalar_line(image), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "11bd71901bbe5b1630ceea73d27597364c9af683";

    fn rules(findings: Vec<Finding>) -> Vec<&'static str> {
        findings.into_iter().map(|f| f.rule.id()).collect()
    }

    fn workflow(steps: &str) -> Vec<&'static str> {
        let text = format!(
            "name: x\non: issues\npermissions: {{}}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    permissions: {{}}\n    steps:\n{steps}"
        );
        rules(check(&SourceFile { path: ".github/workflows/x.yml".into(), text }))
    }

    #[test]
    fn a_quoted_pin_with_its_comment_is_clean() {
        assert_eq!(workflow(&format!("      - uses: \"actions/checkout@{SHA}\" # v4.2.2\n")), Vec::<&str>::new());
    }

    #[test]
    fn github_script_is_a_script_too() {
        let steps = format!(
            "      - uses: actions/github-script@{SHA} # v7.0.1\n        with:\n          script: console.log('${{{{ github.event.issue.title }}}}')\n"
        );
        assert_eq!(workflow(&steps), vec!["GHA006"]);
    }

    #[test]
    fn composite_actions_are_checked() {
        let text = "name: a\nruns:\n  using: composite\n  steps:\n    - uses: actions/cache@v4\n    - run: echo ok\n      shell: bash\n";
        let found = check_action(&SourceFile { path: ".github/actions/a/action.yml".into(), text: text.into() });
        assert_eq!(rules(found), vec!["GHA001"]);
        assert!(is_action(".github/actions/a/action.yml") && !is_workflow(".github/actions/a/action.yml"));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;

    fn workflow(text: String) -> SourceFile {
        SourceFile { path: ".github/workflows/x.yml".into(), text }
    }

    const SHA: &str = "11bd71901bbe5b1630ceea73d27597364c9af683";

    /// A workflow of one job whose steps are `steps`.
    fn with_steps(steps: &str) -> SourceFile {
        workflow(format!("on: push\npermissions: {{}}\njobs:\n  a:\n    permissions: {{}}\n    steps:\n{steps}"))
    }

    #[test]
    fn anchors_and_aliases_are_refused_not_expanded() {
        let laughs =
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n";
        let found = check(&workflow(laughs.into()));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, RuleId::UnreadableFile);
        assert!(found[0].message.contains("anchor"), "{}", found[0].message);
    }

    #[test]
    fn a_large_workflow_is_checked_in_linear_time() {
        let many_uses = format!("      - uses: actions/checkout@{SHA}\n").repeat(60_000);
        let started = std::time::Instant::now();
        assert_eq!(check(&with_steps(&many_uses)).len(), 60_000);
        let filler = "      # filler\n".repeat(100_000);
        let expressions = "${{ github.event.issue.title }}".repeat(60_000);
        let script = format!("{filler}      - run: |\n          {expressions}\n");
        assert_eq!(check(&with_steps(&script)).len(), 60_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        for depth in [1_000, 100_000, 2_000_000] {
            let text = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
            let _ = check(&workflow(text));
        }
    }

    /// Pieces of YAML and of workflows, glued into documents that are
    /// mostly valid workflows and sometimes YAML at its strangest.
    fn piece() -> impl Strategy<Value = String> {
        let pieces = vec![
            "on: push\n",
            "on: [pull_request_target, workflow_run]\n",
            "on:\n  workflow_run:\n",
            "permissions: write-all\n",
            "permissions:\n  contents: write\n",
            "jobs:\n",
            "  a:\n",
            "    permissions: {}\n",
            "    uses: org/repo/.github/workflows/w.yml@main\n",
            "    secrets: inherit\n",
            "    steps:\n",
            "      - uses: actions/checkout@v4\n",
            "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n",
            "        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
            "      - run: echo ${{ github.event.issue.title }}\n",
            "      - run: |\n          echo \"${{ github.head_ref }}\"\n          ls\n",
            "      - run: >\n          a ${{ github.event.\n          x }}\n",
            "      - uses: docker://alpine:3\n",
            "      - uses: ./local\n",
            "      - uses: actions/github-script@v7\n        with:\n          script: ${{ github.event.comment.body }}\n",
            "- ",
            "  ",
            ": ",
            "\n",
            "[",
            "]",
            "{",
            "}",
            ", ",
            "? ",
            "&a ",
            "*a",
            "!!str ",
            "---\n",
            "...\n",
            "|",
            ">",
            "'",
            "\"",
            "#",
            "\t",
            "\u{feff}",
            "${{",
            "}}",
            "é",
            "\r\n",
            "%YAML 1.2\n",
            "<<: *a\n",
        ];
        prop::sample::select(pieces).prop_map(str::to_string)
    }

    proptest! {
        #![proptest_config(fuzz::config(1536))]

        #[test]
        fn fuzz_workflow_pieces(pieces in prop::collection::vec(piece(), 0..40)) {
            let file = workflow(pieces.concat());
            for finding in check(&file).into_iter().chain(check_action(&file)) {
                prop_assert!(finding.line >= 1);
            }
        }

        #[test]
        fn fuzz_workflow_mutated(pieces in prop::collection::vec(piece(), 0..24), mutations in fuzz::mutations(4)) {
            let text = String::from_utf8_lossy(&fuzz::apply(pieces.concat().as_bytes(), &mutations)).into_owned();
            let file = workflow(text);
            let _ = check(&file);
            let _ = check_action(&file);
        }

        #[test]
        fn fuzz_committed_workflows_mutated(which in 0usize..3, mutations in fuzz::mutations(6)) {
            let original = [
                include_str!("../../.github/workflows/build.yml"),
                include_str!("../../.github/workflows/ci.yml"),
                include_str!("../../.github/workflows/release.yml"),
            ][which];
            let text = String::from_utf8_lossy(&fuzz::apply(original.as_bytes(), &mutations)).into_owned();
            let _ = check(&workflow(text));
        }

        #[test]
        fn fuzz_workflow_arbitrary(text in "(.|\n){0,200}") {
            let _ = check(&workflow(text));
        }
    }
}
