//! Not built yet: see docs/ARCHITECTURE.md for the plan of this crate.
