//! Project data, parsed and validated but not yet trusted: versions, the
//! repository layout, the release catalog, the target matrix, the source
//! lock and release plans.

pub mod catalog;
pub mod lock;
pub mod matrix;
pub mod release;
pub mod repo;
pub mod version;
