//! Placeholder; filled in by the media work.
