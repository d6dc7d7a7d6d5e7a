//! Project data, parsed and validated but not yet trusted: versions, the
//! repository layout, the release catalog, the target matrix, each target's
//! instruction set, the source lock, release plans and the grammars of
//! names data puts into paths and URLs.

pub mod catalog;
pub mod isa;
pub mod lock;
pub mod matrix;
pub mod names;
pub mod release;
pub mod repo;
pub mod version;
