//! ops-cuda
