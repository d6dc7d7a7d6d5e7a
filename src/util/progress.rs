//! How long-running library work reports progress without printing: the
//! library calls a [`Progress`]; the CLI's one implementation draws it on a
//! terminal or prints plain lines.

/// Receives progress events; every method has a do-nothing default.
pub trait Progress {
    /// A one-line note worth showing now (a warning, where a log is).
    fn note(&mut self, _text: &str) {}
    /// A new phase of the work began (`configure`, `compile`, `smoke`).
    fn phase(&mut self, _name: &str) {}
    /// A download from `url` starts; `total` is its size if known.
    fn start(&mut self, _url: &str, _total: Option<u64>) {}
    /// `bytes` more arrived.
    fn advance(&mut self, _bytes: u64) {}
    /// The download attempt ended (successfully or not).
    fn finish(&mut self) {}
}

/// Progress that reports nothing.
pub struct Silent;

impl Progress for Silent {}
