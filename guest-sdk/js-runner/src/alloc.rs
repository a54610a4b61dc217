//! The guest's allocator: libc's malloc while the snapshot is built, a fresh
//! dlmalloc arena for every invocation after it.
//!
//! Why: after loading the prelude and lodash, libc's free lists point into
//! holes all over the 10 MB snapshot heap. An invocation allocating from them
//! dirties pages scattered across the whole heap; the host resets dirtied pages
//! after each invocation and, past 32 separate runs of dirty pages, gives up and
//! unmaps the rest of the memory (every page is then faulted back in by the next
//! invocation). The fresh arena keeps an invocation's allocations together.
//!
//! The arena's first [`RESERVED_PAGES`] are grown before the context is built,
//! so they sit below Boa's heap (the host scans for dirty pages from the bottom
//! up) and belong to the snapshot's initial memory (zeros: not stored in the
//! image): a typical invocation never grows memory, which the host would pay
//! for with two `mprotect` calls. Larger needs grow memory as usual.
//!
//! Memory freed by an invocation that was allocated before the snapshot is
//! left alone (the instance is discarded after one invocation anyway);
//! memory allocated after it is freed and reused as usual.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

use dlmalloc::{Allocator, Dlmalloc};

/// Wasm pages (64 KiB each) reserved for the arena: 2 MiB.
const RESERVED_PAGES: usize = 32;
const PAGE: usize = 65536;

struct Heap {
    /// The reserved pages: (address, length).
    reserved: UnsafeCell<(usize, usize)>,
    /// 0 until [`start_fresh_arena`]; then the memory size at the snapshot:
    /// every block at or above it belongs to the arena.
    snapshot_top: UnsafeCell<usize>,
    arena: UnsafeCell<Dlmalloc<Pages>>,
}

// SAFETY: the guest is single-threaded (wasm32-wasip1 without threads).
unsafe impl Sync for Heap {}

#[global_allocator]
static HEAP: Heap = Heap {
    reserved: UnsafeCell::new((0, 0)),
    snapshot_top: UnsafeCell::new(0),
    arena: UnsafeCell::new(Dlmalloc::new_with_allocator(Pages {
        unused: UnsafeCell::new((0, 0)),
    })),
};

/// Grows the arena's reserved pages; called first thing while the snapshot is
/// built, before the context allocates anything.
pub fn reserve_arena() {
    // libc's malloc claims all memory above the data on its first call: make
    // that call happen now, so the pages grown below are not claimed too.
    let probe = Layout::new::<u64>();
    // SAFETY: a valid layout; the block is freed at once. (black_box: the
    // compiler would otherwise remove an allocation nobody uses.)
    unsafe { System.dealloc(std::hint::black_box(System.alloc(probe)), probe) };
    let first = core::arch::wasm32::memory_grow(0, RESERVED_PAGES);
    if first == usize::MAX {
        return;
    }
    let region = (first * PAGE, RESERVED_PAGES * PAGE);
    // SAFETY: single-threaded; no allocation is in progress.
    unsafe {
        *HEAP.reserved.get() = region;
        *(*HEAP.arena.get()).allocator().unused.get() = region;
    }
}

/// Switches every later allocation to the arena; called last while the
/// snapshot is built.
pub fn start_fresh_arena() {
    // SAFETY: single-threaded; no allocation is in progress.
    unsafe { *HEAP.snapshot_top.get() = core::arch::wasm32::memory_size(0) * PAGE };
}

impl Heap {
    fn started(&self) -> bool {
        // SAFETY: single-threaded; only written while the snapshot is built.
        unsafe { *self.snapshot_top.get() != 0 }
    }

    fn in_arena(&self, ptr: *mut u8) -> bool {
        let at = ptr as usize;
        // SAFETY: as above.
        let ((from, len), top) = unsafe { (*self.reserved.get(), *self.snapshot_top.get()) };
        (at >= from && at < from + len) || at >= top
    }

    #[allow(clippy::mut_from_ref)]
    unsafe fn arena(&self) -> &mut Dlmalloc<Pages> {
        // SAFETY: single-threaded and never re-entered (dlmalloc does not allocate).
        unsafe { &mut *self.arena.get() }
    }
}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !self.started() {
            return unsafe { System.alloc(layout) };
        }
        unsafe { self.arena().malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !self.started() {
            return unsafe { System.alloc_zeroed(layout) };
        }
        unsafe { self.arena().calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.started() {
            unsafe { System.dealloc(ptr, layout) }
        } else if self.in_arena(ptr) {
            unsafe { self.arena().free(ptr, layout.size(), layout.align()) }
        }
        // else: allocated before the snapshot; left as it is.
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.started() {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if self.in_arena(ptr) {
            return unsafe {
                self.arena()
                    .realloc(ptr, layout.size(), layout.align(), new_size)
            };
        }
        // Moves a pre-snapshot block into the arena.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

/// The arena's source of memory: the reserved pages first, then `memory.grow`.
struct Pages {
    /// The reserved pages, until the arena takes them.
    unused: UnsafeCell<(usize, usize)>,
}

// SAFETY: the guest is single-threaded.
unsafe impl Send for Pages {}

unsafe impl Allocator for Pages {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        // SAFETY: single-threaded.
        let unused = unsafe { &mut *self.unused.get() };
        if unused.1 >= size && unused.1 > 0 {
            let (at, len) = std::mem::take(unused);
            return (at as *mut u8, len, 0);
        }
        let pages = size.div_ceil(PAGE);
        match core::arch::wasm32::memory_grow(0, pages) {
            usize::MAX => (std::ptr::null_mut(), 0, 0),
            first => ((first * PAGE) as *mut u8, pages * PAGE, 0),
        }
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        std::ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}
