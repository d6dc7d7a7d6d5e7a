//! The grammars of names that data supplies and pgbin puts into paths and
//! URLs: Debian package, version and file names, GitHub owners and
//! repositories, commits, and paths inside a repository. A name outside its
//! grammar is refused where the data is parsed and again where it is used,
//! so a hostile lock or witness cannot steer a URL or a file name, or spell
//! one owner two ways.

/// A name that breaks the grammar of what it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {rule}")]
pub struct NameError {
    /// What the name names ("Debian package name").
    pub what: &'static str,
    /// The name as given.
    pub value: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

fn check(what: &'static str, value: &str, rule: &'static str, ok: bool) -> Result<(), NameError> {
    if ok { Ok(()) } else { Err(NameError { what, value: value.to_string(), rule }) }
}

/// A Debian package name (Debian policy 5.6.1, 5.6.7): at least two characters,
/// lowercase letters, digits, `+`, `-` and `.`, starting with a letter or digit.
pub fn debian_package(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let ok = bytes.len() >= 2
        && bytes.len() <= 100
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(b));
    check(
        "Debian package name",
        name,
        "it must be 2-100 lowercase letters, digits, '+', '-' or '.', starting with a letter or digit",
        ok,
    )
}

/// A Debian version (Debian policy 5.6.12): an optional numeric epoch and
/// `:`, then letters, digits, `.`, `+`, `~` and `-`, starting with a digit.
pub fn debian_version(version: &str) -> Result<(), NameError> {
    let rest = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => rest,
        Some(_) => "",
        None => version,
    };
    let ok = version.len() <= 100
        && rest.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~-".contains(&b));
    check(
        "Debian version",
        version,
        "it must be [EPOCH:]VERSION, up to 100 letters, digits, '.', '+', '~' or '-', starting with a digit",
        ok,
    )
}

/// A file name in a Debian pool directory: 1-255 letters, digits, `.`, `+`,
/// `~`, `_` and `-`, not starting with `.` and without `..` (so never a path).
pub fn debian_file_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains("..")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~_-".contains(&b));
    check(
        "Debian file name",
        name,
        "it must be 1-255 letters, digits, '.', '+', '~', '_' or '-', not starting with '.' and without '..' or '/'",
        ok,
    )
}

/// A GitHub user or organisation name: 1-39 letters, digits and single
/// hyphens, not starting or ending with a hyphen. GitHub compares them
/// case-insensitively, so compare them lower-cased.
pub fn github_owner(owner: &str) -> Result<(), NameError> {
    let ok = !owner.is_empty()
        && owner.len() <= 39
        && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--");
    check(
        "GitHub owner",
        owner,
        "it must be 1-39 letters, digits or single hyphens, not starting or ending with a hyphen",
        ok,
    )
}

/// A GitHub repository name: 1-100 letters, digits, `.`, `_` and `-`, not
/// `.` or `..`.
pub fn github_repository(repository: &str) -> Result<(), NameError> {
    let ok = !repository.is_empty()
        && repository.len() <= 100
        && repository != "."
        && repository != ".."
        && repository.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    check(
        "GitHub repository name",
        repository,
        "it must be 1-100 letters, digits, '.', '_' or '-', and not '.' or '..'",
        ok,
    )
}

/// A full git commit id: exactly 40 hex digits.
pub fn git_commit(commit: &str) -> Result<(), NameError> {
    let ok = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    check("commit", commit, "it must be a full commit id, exactly 40 hex digits", ok)
}

/// A file path inside a repository: non-empty `/`-separated names, none
/// empty, `.` or `..`, and no control characters or whitespace.
pub fn repository_path(path: &str) -> Result<(), NameError> {
    let ok = !path.is_empty()
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    check(
        "path in the repository",
        path,
        "it must be a relative path of non-empty names, without '.', '..', whitespace or control characters",
        ok,
    )
}

crate::util::error::usage_errors!(NameError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_package_names() {
        for good in ["postgresql-18", "libpq5", "g++", "0ad", "python3.11"] {
            assert!(debian_package(good).is_ok(), "{good}");
        }
        for bad in ["", "p", "Postgresql-18", "-x", ".x", "../x", "a/b", "a_b", "pkg name", "p\n"] {
            assert!(debian_package(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debian_versions() {
        for good in ["18.6-3", "15.18-0+deb12u1", "1:13.16-0+deb11u1", "2.0~rc1-1"] {
            assert!(debian_version(good).is_ok(), "{good}");
        }
        for bad in ["", "a1.0", ":1.0", "x:1.0", "1:", "18.6-3/../x", "18.6 3", "18.6-3\n", "1:2:3"] {
            assert!(debian_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debian_file_names() {
        for good in ["postgresql-18_18.6.orig.tar.bz2", "postgresql-13_13.16-0+deb11u1.dsc", "a~b"] {
            assert!(debian_file_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", ".hidden", "a..b", "a b", "x?y", "x#y", "%2e%2e"] {
            assert!(debian_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(debian_file_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn github_owners_follow_githubs_grammar() {
        for good in ["docker-library", "Homebrew", "a", "conda-forge", "x1", &"a".repeat(39)] {
            assert!(github_owner(good).is_ok(), "{good}");
        }
        for bad in ["", "docker_library", "docker.library", "-docker", "docker-", "docker--library", "a b", "ü"] {
            assert!(github_owner(bad).is_err(), "{bad:?}");
        }
        assert!(github_owner(&"a".repeat(40)).is_err());
        let err = github_owner("docker_library").unwrap_err();
        assert_eq!(
            err.to_string(),
            "GitHub owner \"docker_library\" is not valid: it must be 1-39 letters, digits or single hyphens, not starting or ending with a hyphen"
        );
    }

    #[test]
    fn github_repositories_commits_and_paths() {
        for good in ["postgres", "homebrew-core", "freebsd-ports", "a.b_c-d", ".github", "..."] {
            assert!(github_repository(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a@b", &"a".repeat(101)] {
            assert!(github_repository(bad).is_err(), "{bad:?}");
        }
        assert!(git_commit("e34fc9d23c4eab656e9037701d71962c9b46a2e7").is_ok());
        assert!(git_commit("e34fc9d").is_err());
        assert!(git_commit("g34fc9d23c4eab656e9037701d71962c9b46a2e7").is_err());
        assert!(repository_path("Formula/p/postgresql@18.rb").is_ok());
        assert!(repository_path("17/alpine3.22/Dockerfile").is_ok());
        for bad in ["", "/etc/passwd", "a/../b", "..", "a//b", "./a", "a/", "a b", "a\nb"] {
            assert!(repository_path(bad).is_err(), "{bad:?}");
        }
    }
}
