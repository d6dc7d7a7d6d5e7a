//! Child processes that cannot outlive pgbin, whole process trees included.
//!
//! A build step such as `make -j` is a tree of processes (sub-makes,
//! compiler drivers, `cc1`). When pgbin dies, by Ctrl-C, `kill` or
//! `kill -9` (which no signal handler sees), the whole tree must stop, not
//! only its top process: a parent-death signal reaches one child only, and
//! the sub-makes below an orphaned `make` keep compiling for minutes.
//!
//! [`supervise`] arranges this for one [`Command`]: it runs in a new process
//! group whose leader is a small supervisor (`pgbin-watchdog` in `ps`),
//! forked from pgbin and running nothing but system calls. It forks the
//! command itself, then waits for whichever comes first:
//!
//! - the command exits: the supervisor exits with the same status (or dies
//!   of the same signal), so the caller sees the command's own status;
//! - pgbin dies, however it dies: the supervisor sees the end of the
//!   *lifeline*, a pipe whose only writer is pgbin and which the kernel
//!   closes with pgbin's last descriptor, and kills its process group (the
//!   command and everything it started) with SIGKILL.
//!
//! On Linux the command's own process also has the parent-death signal
//! SIGKILL, in case the supervisor itself is killed. pgbin installs no
//! signal handler: every way of dying is handled by the supervisors, and
//! the shell sees the conventional status of the signal that killed pgbin.
//!
//! A program that leaves its process group on purpose (a daemon calling
//! `setsid`, as `pg_ctl start` does for the PostgreSQL server) is beyond
//! reach; such a program is run in the foreground instead.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

/// The two ends of a lifeline pipe. Both are close-on-exec and at least 3,
/// so that no executed program inherits them and the supervisor can point
/// its standard descriptors elsewhere without losing the read end.
#[derive(Debug, Clone, Copy)]
struct Lifeline {
    read: libc::c_int,
    write: libc::c_int,
}

impl Lifeline {
    /// A new pipe.
    fn new() -> io::Result<Lifeline> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        #[cfg(target_os = "linux")]
        let made = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        // SAFETY: as above; the descriptors are made close-on-exec at once
        // (without pipe2, a fork in another thread may see them before).
        #[cfg(not(target_os = "linux"))]
        let made = unsafe {
            let made = libc::pipe(fds.as_mut_ptr());
            for fd in fds {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            made
        };
        if made != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Lifeline { read: above_stdio(fds[0])?, write: above_stdio(fds[1])? })
    }

    /// This process's lifeline: created on first use, never closed, so it
    /// ends exactly when the process does.
    fn of_this_process() -> io::Result<Lifeline> {
        static LIFELINE: OnceLock<Result<Lifeline, i32>> = OnceLock::new();
        let made = LIFELINE.get_or_init(|| Lifeline::new().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)));
        made.map_err(io::Error::from_raw_os_error)
    }
}

/// `fd`, moved to a number above the standard descriptors if needed.
fn above_stdio(fd: libc::c_int) -> io::Result<libc::c_int> {
    if fd > 2 {
        return Ok(fd);
    }
    // SAFETY: duplicating and closing a descriptor this module owns.
    let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    let error = io::Error::last_os_error();
    // SAFETY: as above.
    unsafe { libc::close(fd) };
    if moved < 0 { Err(error) } else { Ok(moved) }
}

/// Makes `command`, and every process it starts within its process group,
/// die with this process (see the module documentation). Call it before
/// spawning; the command's exit status is reported as without it.
pub fn supervise(command: &mut Command) -> io::Result<&mut Command> {
    let lifeline = Lifeline::of_this_process()?;
    Ok(supervise_with(command, lifeline))
}

fn supervise_with(command: &mut Command, lifeline: Lifeline) -> &mut Command {
    command.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions; it allocates nothing.
    unsafe { command.pre_exec(move || supervisor(lifeline)) }
}

/// Runs in the forked child, which std has made the leader of a new
/// process group. Forks again: the new child returns (and std executes the
/// command in it), this process becomes the supervisor and never returns.
fn supervisor(lifeline: Lifeline) -> io::Result<()> {
    // SAFETY: every call below is async-signal-safe; the descriptors are
    // the lifeline's, inherited through fork.
    unsafe {
        libc::close(lifeline.write);
        let leader = libc::getpid();
        let child = libc::fork();
        if child < 0 {
            return Err(io::Error::last_os_error());
        }
        if child == 0 {
            die_with(leader);
            return Ok(());
        }
        watch(lifeline.read, child)
    }
}

/// In the command's process: SIGKILL when the supervisor `parent` dies.
///
/// # Safety
/// Only between fork and exec.
unsafe fn die_with(parent: libc::pid_t) {
    // SAFETY: prctl and getppid are async-signal-safe.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
}

/// The supervisor's life: wait for `child` to exit or the lifeline to end.
///
/// # Safety
/// Only in the supervisor process, after fork.
unsafe fn watch(lifeline: libc::c_int, child: libc::pid_t) -> ! {
    // SAFETY: async-signal-safe system calls on this process's own
    // descriptors and child.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_NAME, c"pgbin-watchdog".as_ptr(), 0, 0, 0);
        release_descriptors(lifeline);
        #[cfg(target_os = "linux")]
        let pidfd = libc::syscall(libc::SYS_pidfd_open, child, 0) as libc::c_int;
        #[cfg(not(target_os = "linux"))]
        let pidfd = -1;
        loop {
            let mut fds = [
                libc::pollfd { fd: lifeline, events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 },
            ];
            // Without a pidfd (kernels before 5.3), look at the child every 100 ms.
            let (count, timeout) = if pidfd >= 0 { (2, -1) } else { (1, 100) };
            if libc::poll(fds.as_mut_ptr(), count, timeout) < 0 {
                if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    libc::poll(std::ptr::null_mut(), 0, 100);
                }
                continue;
            }
            if fds[0].revents != 0 {
                // pgbin is gone: end the whole group, this process included.
                libc::kill(0, libc::SIGKILL);
                libc::_exit(128 + libc::SIGKILL);
            }
            let mut status = 0;
            match libc::waitpid(child, &mut status, libc::WNOHANG) {
                reaped if reaped == child => exit_as(status),
                -1 if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) => libc::_exit(127),
                _ => {}
            }
        }
    }
}

/// Points the standard descriptors at `/dev/null` and closes every other
/// one but `keep`: the supervisor must not hold the caller's pipes, log
/// files or locks (nor std's exec-error channel, whose end tells the
/// caller that the command started).
///
/// # Safety
/// Only in the supervisor process, after fork.
unsafe fn release_descriptors(keep: libc::c_int) {
    // SAFETY: async-signal-safe calls on this process's own descriptors.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
        #[cfg(target_os = "linux")]
        let closed = {
            let range = |first: libc::c_int, last: libc::c_uint| {
                libc::syscall(libc::SYS_close_range, first as libc::c_uint, last, 0 as libc::c_uint) == 0
            };
            (keep <= 3 || range(3, (keep - 1) as libc::c_uint)) && range(keep + 1, libc::c_uint::MAX)
        };
        #[cfg(not(target_os = "linux"))]
        let closed = false;
        if !closed {
            for fd in 3..65536 {
                if fd != keep {
                    libc::close(fd);
                }
            }
        }
    }
}

/// Ends the supervisor the way its child ended.
///
/// # Safety
/// Only in the supervisor process, after fork.
unsafe fn exit_as(status: libc::c_int) -> ! {
    // SAFETY: async-signal-safe calls on this process only.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// Whether `pid` is a live process (not gone, not a zombie).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    }

    #[test]
    fn the_command_s_own_status_is_reported() {
        let status = |script: &str| supervise(Command::new("sh").args(["-c", script])).unwrap().status().unwrap();
        assert_eq!(status("exit 3").code(), Some(3));
        assert!(status("true").success());
        assert_eq!(status("kill -TERM $$").signal(), Some(libc::SIGTERM));
        let missing = supervise(&mut Command::new("/nonexistent/pgbin-test")).unwrap().status().unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let output = supervise(Command::new("sh").args(["-c", "echo out; echo err >&2"])).unwrap().output().unwrap();
        assert_eq!((&output.stdout[..], &output.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    }

    #[test]
    fn the_command_runs_in_its_own_process_group() {
        // The group from /proc (proc(5): the fifth field of stat), not from
        // ps, which Nix's build sandbox does not have.
        let output = supervise(Command::new("sh").args(["-c", "cat /proc/$$/stat"])).unwrap().output().unwrap();
        let stat = String::from_utf8_lossy(&output.stdout);
        let after_name = &stat[stat.rfind(')').expect("stat names the command in parentheses") + 1..];
        let group: i32 = after_name.split_whitespace().nth(2).unwrap().parse().unwrap();
        // SAFETY: getpgrp has no preconditions.
        assert_ne!(group, unsafe { libc::getpgrp() });
    }

    #[test]
    fn the_end_of_the_lifeline_kills_the_whole_tree() {
        let lifeline = Lifeline::new().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & echo $!; sh -c 'sleep 300 & echo $!; wait' & wait"]).stdout(Stdio::piped());
        let mut child = supervise_with(&mut command, lifeline).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let grandchildren: Vec<i32> = (0..2).map(|_| lines.next().unwrap().unwrap().parse().unwrap()).collect();
        assert!(grandchildren.iter().all(|&pid| alive(pid)));
        // What the kernel does when pgbin dies: its end of the pipe closes.
        // SAFETY: closing this test's own descriptor.
        unsafe { libc::close(lifeline.write) };
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        let deadline = Instant::now() + Duration::from_secs(10);
        while grandchildren.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(grandchildren.iter().all(|&pid| !alive(pid)), "left running: {grandchildren:?}");
        // SAFETY: closing this test's own descriptor.
        unsafe { libc::close(lifeline.read) };
    }
}
