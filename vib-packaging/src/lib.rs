//! vib-packaging (placeholder, filled in by its issue).
