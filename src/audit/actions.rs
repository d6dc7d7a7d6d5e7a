//! GitHub Actions rules (GHA001–GHA007) over `.github/workflows/*.yml`,
//! read with `marked-yaml`, which keeps every node's line.

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};

use super::{Finding, SourceFile};

/// Whether `path` is a workflow file.
pub fn is_workflow(path: &str) -> bool {
    path.strip_prefix(".github/workflows/")
        .is_some_and(|name| !name.contains('/') && (name.ends_with(".yml") || name.ends_with(".yaml")))
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
fn check_uses(file: &SourceFile, value: &str, line: usize, out: &mut Vec<Finding>) {
    if value.starts_with("./") {
        return;
    }
    if let Some(image) = value.strip_prefix("docker://") {
        if !image.contains("@sha256:") {
            out.push(Finding::new(
                "GHA001",
                &file.path,
                line,
                format!("container action `{value}` is not pinned by digest"),
            ));
        }
        return;
    }
    let Some((_, reference)) = value.rsplit_once('@') else {
        out.push(Finding::new(
            "GHA001",
            &file.path,
            line,
            format!("`{value}` has no ref: it follows the default branch"),
        ));
        return;
    };
    if !is_commit_sha(reference) {
        out.push(Finding::new(
            "GHA001",
            &file.path,
            line,
            format!("`{value}` is pinned to the mutable ref `{reference}`"),
        ));
        return;
    }
    let raw = file.text.lines().nth(line - 1).unwrap_or("");
    let comment = raw.split_once(value).map_or("", |(_, rest)| rest).trim_start();
    let has_version = comment.strip_prefix('#').is_some_and(|c| c.chars().any(|ch| ch.is_ascii_digit()));
    if !has_version {
        out.push(Finding::new("GHA002", &file.path, line, format!("`{value}` has no `# vX.Y.Z` comment")));
    }
}

/// GHA004 for a `permissions:` node; `workflow_level` marks the top-level one.
fn check_permissions(file: &SourceFile, node: &Node, workflow_level: bool, out: &mut Vec<Finding>) {
    match node {
        Node::Scalar(s) if s.as_str() == "write-all" => {
            out.push(Finding::new("GHA004", &file.path, scalar_line(s), "`permissions: write-all` grants every scope"));
        }
        Node::Mapping(map) if workflow_level => {
            for (scope, level) in map.iter() {
                if level.as_scalar().is_some_and(|l| l.as_str() == "write") {
                    out.push(Finding::new(
                        "GHA004",
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

/// GHA006 for one `run:` script.
fn check_script(file: &SourceFile, run: &MarkedScalarNode, out: &mut Vec<Finding>) {
    let script = run.as_str();
    let mut rest = script;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start..];
        let end = after.find("}}").map_or(after.len(), |e| e + 2);
        let expression = &after[..end];
        if attacker_controlled(expression) {
            let first = scalar_line(run);
            let line = file
                .text
                .lines()
                .enumerate()
                .skip(first - 1)
                .find(|(_, l)| l.contains(expression))
                .map_or(first, |(i, _)| i + 1);
            out.push(Finding::new(
                "GHA006",
                &file.path,
                line,
                format!("`{expression}` is expanded into the script before it runs"),
            ));
        }
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
    let root = match marked_yaml::parse_yaml(0, &file.text) {
        Ok(Node::Mapping(map)) => map,
        Ok(_) => return vec![Finding::new("AUD001", &file.path, 1, "a workflow must be a YAML mapping")],
        Err(e) => return vec![Finding::new("AUD001", &file.path, 1, format!("does not parse as YAML: {e}"))],
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
                "GHA003",
                &file.path,
                scalar_line(name),
                format!("job `{}` gets the repository's default token permissions", name.as_str()),
            )),
            None => {}
        }
        if let Some(uses) = job.get_scalar("uses") {
            check_uses(file, uses.as_str(), scalar_line(uses), &mut out);
        }
        if let Some(secrets) = job.get_scalar("secrets").filter(|s| s.as_str() == "inherit") {
            out.push(Finding::new(
                "GHA007",
                &file.path,
                scalar_line(secrets),
                format!("job `{}` passes every secret to its called workflow", name.as_str()),
            ));
        }
        let Some(steps) = job.get_sequence("steps") else { continue };
        for step in steps.iter() {
            let Some(step) = step.as_mapping() else { continue };
            if let Some(uses) = step.get_scalar("uses") {
                check_uses(file, uses.as_str(), scalar_line(uses), &mut out);
                let reference = step.get_mapping("with").and_then(|with| with.get_scalar("ref"));
                if let Some(reference) = reference.filter(|r| privileged && checks_out_head(r.as_str())) {
                    if uses.as_str().starts_with("actions/checkout") {
                        out.push(Finding::new(
                            "GHA005",
                            &file.path,
                            scalar_line(reference),
                            format!(
                                "checks out `{}` in a workflow that runs with secrets and a write token",
                                reference.as_str()
                            ),
                        ));
                    }
                }
            }
            if let Some(run) = step.get_scalar("run") {
                check_script(file, run, &mut out);
            }
        }
    }
    out
}
