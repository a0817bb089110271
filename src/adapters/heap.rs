//! The heap between looks: a look at 1 000 bindings builds and frees ~100 000 small blocks,
//! and glibc's malloc keeps what was freed mapped. Giving it back after every look would make
//! the next look fault every page in again (~1 000 faults a look at 1 000 bindings), so the
//! agent gives it back only when a look grew the heap (the first look, which reads every
//! consumer; a larger configuration; a backlog) and every [`TRIM_EVERY`] otherwise (the need
//! may have shrunk). Between those, the free pages wait for the next look, which needs them.

use std::time::{Duration, Instant};

/// Freed heap is given back at least this often.
pub const TRIM_EVERY: Duration = Duration::from_secs(600);

/// Growth of the heap since it was last given back that counts as a look having grown it.
pub const GROWN_BY: usize = 1 << 20;

/// When the heap was last given back, and how big it was then; at first never, so the first
/// look's end gives back what it freed.
#[derive(Debug, Default)]
pub struct Heap {
    trimmed: Option<(Instant, usize)>,
}

impl Heap {
    /// After a look: returns freed heap pages to the kernel (`malloc_trim`) when
    /// [`should_trim`] says so; `true` if it did.
    pub fn after_look(&mut self) -> bool {
        let size = heap_size();
        let last = self.trimmed.map(|(at, size)| (at.elapsed(), size));
        if !should_trim(size, last) {
            return false;
        }
        give_back();
        self.trimmed = Some((Instant::now(), size));
        true
    }
}

/// Whether to give the free heap back now: never given back yet, `size` (the heap's bytes)
/// more than [`GROWN_BY`] above its size when last given back (`last`: how long ago, and
/// the size then), or [`TRIM_EVERY`] passed since.
pub fn should_trim(size: usize, last: Option<(Duration, usize)>) -> bool {
    match last {
        None => true,
        Some((ago, then)) => ago >= TRIM_EVERY || size > then.saturating_add(GROWN_BY),
    }
}

/// The bytes of the heap: the process's private writable memory (`VmData`, from
/// `/proc/self/statm`), which holds every arena of malloc's; 0 where that cannot be read.
/// Read in a few microseconds, where `mallinfo2` walks every free list (~0.5 ms a look at
/// 1 000 bindings).
fn heap_size() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    data_bytes(&statm, page_size())
}

/// `VmData` in bytes from a `/proc/<pid>/statm` line (its sixth field, in pages).
fn data_bytes(statm: &str, page: usize) -> usize {
    statm
        .split_ascii_whitespace()
        .nth(5)
        .and_then(|d| d.parse::<usize>().ok())
        .map_or(0, |pages| pages.saturating_mul(page))
}

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096)
}

/// Returns freed heap pages to the kernel (`malloc_trim`).
fn give_back() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no preconditions.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// The heap's size, the last give-back (how long ago, the size then), whether to trim, why.
    type Row = (usize, Option<(Duration, usize)>, bool, &'static str);

    #[test]
    fn trims_after_growth_or_at_last_every_ten_minutes() {
        let s = Duration::from_secs;
        let table: &[Row] = &[
            (30 * MIB, None, true, "the first look"),
            (
                20 * MIB,
                Some((s(5), 20 * MIB)),
                false,
                "a look like the last",
            ),
            (
                20 * MIB + GROWN_BY,
                Some((s(5), 20 * MIB)),
                false,
                "grown by no more than GROWN_BY",
            ),
            (21 * MIB + 1, Some((s(5), 20 * MIB)), true, "grown by more"),
            (
                12 * MIB,
                Some((s(5), 20 * MIB)),
                false,
                "shrunk: the top was given back by free",
            ),
            (
                20 * MIB,
                Some((s(599), 20 * MIB)),
                false,
                "not yet ten minutes",
            ),
            (20 * MIB, Some((s(600), 20 * MIB)), true, "ten minutes"),
            (usize::MAX, Some((s(1), usize::MAX)), false, "no overflow"),
        ];
        for &(size, last, want, why) in table {
            assert_eq!(should_trim(size, last), want, "{why}");
        }
    }

    #[test]
    fn data_is_the_sixth_field_of_statm() {
        assert_eq!(
            data_bytes("5000 1200 800 300 0 2100 0\n", 4096),
            2100 * 4096
        );
        assert_eq!(data_bytes("", 4096), 0, "unreadable: never grown");
        assert_eq!(data_bytes("1 2 3", 4096), 0);
        assert_eq!(data_bytes("1 2 3 4 5 x 7", 4096), 0);
        assert!(heap_size() > 0, "this process's own");
    }

    #[test]
    fn a_heap_gives_back_after_it_grew() {
        let mut h = Heap::default();
        assert!(h.after_look(), "the first look's end gives back");
        let before = heap_size();
        // 16 MiB in blocks of 1 KiB: below the mmap threshold, so the heap itself grows.
        let blocks: Vec<Box<[u8; 1024]>> = (0..16 * 1024).map(|_| Box::new([1; 1024])).collect();
        assert!(heap_size() > before + GROWN_BY, "the heap grew");
        assert!(h.after_look(), "a look that grew the heap gives back");
        assert_eq!(
            blocks.iter().map(|b| b[1023] as usize).sum::<usize>(),
            16 * 1024
        );
    }
}
