//! The async runtime a component's `main` builds from its `--worker-threads` flag.

use tokio::runtime::{Builder, Runtime};

/// A tokio runtime with `worker_threads` workers. 1 runs everything on the calling thread (a
/// current-thread runtime: no cross-thread wake-ups, one stack and one allocator arena, which is all
/// a component waiting on the network needs); more add parallelism; 0 means one worker per CPU the
/// process sees, which on a large node without a CPU limit is many threads.
pub fn build(worker_threads: usize) -> std::io::Result<Runtime> {
    let mut builder = if worker_threads == 1 {
        Builder::new_current_thread()
    } else {
        Builder::new_multi_thread()
    };
    if worker_threads > 1 {
        builder.worker_threads(worker_threads);
    }
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    use super::*;

    #[test]
    fn one_worker_is_the_calling_thread() {
        let runtime = build(1).expect("runtime");
        assert_eq!(runtime.handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        let here = std::thread::current().id();
        assert_eq!(runtime.block_on(async { std::thread::current().id() }), here);
    }

    #[test]
    fn more_workers_are_a_pool_of_that_size() {
        let runtime = build(3).expect("runtime");
        assert_eq!(runtime.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(runtime.metrics().num_workers(), 3);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(build(0).expect("runtime").metrics().num_workers(), cpus);
    }
}
