//! pass.
