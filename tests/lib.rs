//! Integration tests: one binary, linked once.
