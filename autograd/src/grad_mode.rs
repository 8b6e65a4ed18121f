//! Whether ops record history: [`no_grad`] and its guard, per thread (like
//! `torch.no_grad()`). Backward rules run with recording off.

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread currently record history.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// While alive, ops on this thread record no history (like `torch.no_grad()`).
pub struct NoGradGuard {
    previous: bool,
}

impl NoGradGuard {
    /// Disables gradient recording on this thread until the guard is dropped.
    pub fn new() -> NoGradGuard {
        let previous = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { previous }
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Runs `f` with gradient recording disabled on this thread.
///
/// ```
/// use autograd::{Tensor, no_grad};
/// let w = Tensor::from_vec(vec![1.0f32], &[1]).requires_grad();
/// let y = no_grad(|| &w * &w);
/// assert!(!y.is_tracked());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = NoGradGuard::new();
    f()
}
