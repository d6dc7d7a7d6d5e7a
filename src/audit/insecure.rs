//! TLS001 over every tracked text file: certificate verification turned off
//! (`http.sslVerify false`, `GIT_SSL_NO_VERIFY`, `curl -k`/`--insecure`,
//! `wget --no-check-certificate`).

use super::{Finding, RuleId, SourceFile};

/// `sslVerify` (any case) set to false: `sslVerify false`, `sslVerify=false`,
/// `sslVerify = false`, `"sslVerify": false`.
fn disables_ssl_verify(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("sslverify") {
        let after = rest[at + "sslverify".len()..].trim_start_matches(['"', '\'']);
        let value = after.trim_start_matches(|c: char| c.is_whitespace() || c == '=' || c == ':');
        if value.starts_with("false") || value.starts_with("0") || value.starts_with("no") {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// `curl` with `-k`, a short-option cluster holding `k`, or `--insecure`,
/// before the command ends (`|`, `&&`, `||`, `;`). One pass over the
/// words, so a long line of many `curl`s costs linear time.
fn curl_insecure(line: &str) -> bool {
    let mut in_curl = false;
    for word in line.split_whitespace() {
        let insecure = word == "--insecure"
            || (word.starts_with('-')
                && !word.starts_with("--")
                && word[1..].chars().all(|c| c.is_ascii_alphabetic())
                && word.contains('k'));
        if in_curl && insecure {
            return true;
        }
        if matches!(word, "|" | "&&" | "||" | ";") {
            in_curl = false;
        }
        if word.trim_start_matches(['(', '`', '"', '\'']).ends_with("curl") {
            in_curl = true;
        }
    }
    false
}

/// Every TLS001 finding in one file.
pub fn check(file: &SourceFile) -> Vec<Finding> {
    let mut out = Vec::new();
    for (index, line) in file.text.lines().enumerate() {
        let what = if disables_ssl_verify(line) {
            Some("git `sslVerify` set to false")
        } else if line.contains("GIT_SSL_NO_VERIFY") {
            Some("`GIT_SSL_NO_VERIFY` turns off git's certificate checks")
        } else if curl_insecure(line) {
            Some("`curl -k`/`--insecure` accepts any certificate")
        } else if line.contains("--no-check-certificate") {
            Some("`wget --no-check-certificate` accepts any certificate")
        } else {
            None
        };
        if let Some(what) = what {
            out.push(Finding::new(RuleId::TlsVerificationDisabled, &file.path, index + 1, what));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_form_and_not_their_safe_neighbours() {
        for bad in [
            "git config --global http.sslVerify false",
            "git -c http.sslVerify=false clone x",
            "  sslVerify = false",
            "export GIT_SSL_NO_VERIFY=1",
            "curl -k https://x",
            "curl -fsSLk https://x",
            "RUN curl --insecure -o x https://x",
            "wget --no-check-certificate https://x",
        ] {
            let file = SourceFile { path: "x".into(), text: bad.into() };
            assert_eq!(check(&file).len(), 1, "{bad}");
        }
        for good in [
            "git config http.sslVerify true",
            "curl -fsSL https://x -o keys.txt",
            "curl --proto =https https://x",
            "wget https://x",
        ] {
            let file = SourceFile { path: "x".into(), text: good.into() };
            assert!(check(&file).is_empty(), "{good}");
        }
        assert!(!curl_insecure("curl https://x | tar -xkf -"), "a flag of the next command");
        assert!(curl_insecure("curl https://x; curl -k https://y"));
    }

    #[test]
    fn a_long_line_of_curls_is_checked_in_linear_time() {
        let text = "curl ".repeat(800_000);
        let started = std::time::Instant::now();
        assert!(check(&SourceFile { path: "x".into(), text }).is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
