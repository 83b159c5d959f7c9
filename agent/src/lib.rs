//! vmig-agent (placeholder, filled in by its issue).
