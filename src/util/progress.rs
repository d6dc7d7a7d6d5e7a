//! How long-running library work reports progress without printing: the
//! library calls a [`Progress`]; the CLI's one implementation draws it on a
//! terminal or prints plain lines.

/// Receives progress events; every method has a do-nothing default.
pub trait Progress {
    /// A one-line note worth showing now (a warning, where a log is).
    fn note(&mut self, _text: &str) {}
    /// A new phase of the work began (`configure`, `compile`, `smoke`).
    fn phase(&mut self, _name: &str) {}
    /// What the current phase is doing now, for a live display; reported
    /// a few times a second while a build step runs.
    fn activity(&mut self, _activity: &Activity<'_>) {}
    /// A download from `url` starts; `total` is its size if known.
    fn start(&mut self, _url: &str, _total: Option<u64>) {}
    /// `bytes` more arrived.
    fn advance(&mut self, _bytes: u64) {}
    /// The download attempt ended (successfully or not).
    fn finish(&mut self) {}
}

/// A build step's progress, read from its log as it grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity<'a> {
    /// Compiler invocations seen so far in this step (`cc ... -c -o x.o`).
    pub compiled: usize,
    /// The last complete line the step wrote.
    pub last_line: &'a str,
}

/// Progress that reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// Progress that names each phase with a prefix (`build 2: compile`) and
/// passes everything else on.
pub struct Prefixed<'a> {
    /// Where events go.
    pub inner: &'a mut dyn Progress,
    /// Put before each phase name.
    pub prefix: String,
}

impl Progress for Prefixed<'_> {
    fn note(&mut self, text: &str) {
        self.inner.note(text);
    }

    fn phase(&mut self, name: &str) {
        self.inner.phase(&format!("{}{name}", self.prefix));
    }

    fn activity(&mut self, activity: &Activity<'_>) {
        self.inner.activity(activity);
    }
}
