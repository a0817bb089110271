//! The heap between looks: a look at 1 000 bindings builds and frees ~100 000 small blocks,
//! and glibc's malloc keeps what was freed mapped; the agent gives it back while it sleeps.

/// Returns freed heap pages to the kernel (`malloc_trim`). Cheap when little is free.
pub fn give_back() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no preconditions.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}
