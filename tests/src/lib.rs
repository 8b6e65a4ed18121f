//! Shared helpers for the workspace's gradient-check and end-to-end tests.
