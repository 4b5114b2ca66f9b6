//! Placeholder; filled in by the panel work.
