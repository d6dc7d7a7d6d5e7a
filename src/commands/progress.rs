//! The one progress display of the CLI, for downloads and build phases: on
//! a terminal a download bar and a phase spinner with elapsed time that
//! follows the running step (objects compiled so far and the build's last
//! log line, cut to the terminal's width); without one, or with `NO_COLOR`
//! set, a plain `pgbin: [  12.3s] phase` line per phase and nothing else.
//! Notes are always printed as `pgbin: text` on stderr.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use pgbin::util::progress::{Activity, Progress};

/// Progress on stderr.
pub struct TerminalProgress {
    terminal: bool,
    download: Option<ProgressBar>,
    phases: Option<(Option<ProgressBar>, Instant)>,
    phase: String,
}

impl TerminalProgress {
    /// A display for this process's stderr.
    pub fn downloads() -> TerminalProgress {
        let live = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        TerminalProgress { terminal: live, download: None, phases: None, phase: String::new() }
    }

    /// Clears the phase spinner (phase lines stay).
    pub fn finish_phases(&mut self) {
        if let Some((Some(bar), _)) = self.phases.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        self.finish_phases();
        self.finish();
    }
}

impl Progress for TerminalProgress {
    fn note(&mut self, text: &str) {
        match self.phases.as_ref().and_then(|(bar, _)| bar.as_ref()) {
            Some(bar) => bar.suspend(|| eprintln!("pgbin: {text}")),
            None => eprintln!("pgbin: {text}"),
        }
    }

    fn phase(&mut self, name: &str) {
        let terminal = self.terminal;
        let (bar, started) = self.phases.get_or_insert_with(|| {
            let bar = terminal.then(|| {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}").expect("static template"),
                );
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                bar
            });
            (bar, Instant::now())
        });
        match bar {
            Some(bar) => bar.set_message(name.to_string()),
            None => eprintln!("pgbin: [{:>6.1}s] {name}", started.elapsed().as_secs_f64()),
        }
        self.phase = name.to_string();
    }

    fn activity(&mut self, activity: &Activity<'_>) {
        if let Some((Some(bar), _)) = &self.phases {
            bar.set_message(activity_line(&self.phase, activity));
        }
    }

    fn start(&mut self, url: &str, total: Option<u64>) {
        if !self.terminal {
            return;
        }
        let bar = ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .expect("static template"),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        self.download = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.download {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.download.take() {
            bar.finish_and_clear();
        }
    }
}

/// The spinner's message while a step runs: the phase, objects compiled so
/// far, and the last log line.
fn activity_line(phase: &str, activity: &Activity<'_>) -> String {
    match activity.compiled {
        0 => format!("{phase} · {}", activity.last_line),
        n => format!("{phase} · {n} objects compiled · {}", activity.last_line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line_names_the_phase_the_count_and_the_last_log_line() {
        let activity = Activity { compiled: 812, last_line: "gcc -c -o pg_dump.o pg_dump.c" };
        assert_eq!(
            activity_line("compile", &activity),
            "compile · 812 objects compiled · gcc -c -o pg_dump.o pg_dump.c"
        );
        let configuring = Activity { compiled: 0, last_line: "checking for gcc... gcc" };
        assert_eq!(activity_line("configure", &configuring), "configure · checking for gcc... gcc");
    }
}
