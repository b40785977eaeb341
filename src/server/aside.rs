//! Async look-ups (registries, the Kubernetes API) from the synchronous analysis of a review.

/// Runs a future to completion from synchronous code that may itself be on a runtime thread:
/// on a scoped helper thread, with the current runtime's handle (for its timers and I/O).
/// `None` when no runtime could run it (the caller treats that as a failed look-up).
pub fn block_on_aside<F: std::future::Future + Send>(future: F) -> Option<F::Output>
where
    F::Output: Send,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            std::thread::scope(|scope| scope.spawn(|| handle.block_on(future)).join().ok())
        }
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()
            .map(|runtime| runtime.block_on(future)),
    }
}
