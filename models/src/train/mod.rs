//! Training recipes and trainers.
