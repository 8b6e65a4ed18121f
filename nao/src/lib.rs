//! nao
