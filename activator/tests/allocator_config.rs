//! The activator's allocator runs with the settings the workspace builds it with: one jemalloc arena
//! shared by every thread (`.cargo/config.toml`), so the pages a burst freed settle in one place and
//! are returned together (docs/activator.md, "Memory"). A build that lost the setting (another
//! target directory's stale jemalloc, an environment overriding it) fails here, not in a bench.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[test]
fn one_arena_serves_every_thread() {
    let arenas = tikv_jemalloc_ctl::opt::narenas::read();
    assert!(
        matches!(arenas, Ok(1)),
        "jemalloc runs with {arenas:?} arenas; the workspace builds it with one (JEMALLOC_SYS_WITH_MALLOC_CONF)"
    );
}
