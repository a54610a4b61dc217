//! The guest's allocator: libc's malloc while the snapshot is built, a fresh
//! dlmalloc arena above the snapshot for every invocation after it.
//!
//! Why: after loading the prelude and lodash, libc's free lists point into
//! holes all over the 10 MB snapshot heap. An invocation allocating from them
//! dirties pages scattered across the whole heap; the host resets dirtied pages
//! after each invocation and, past 32 separate runs of dirty pages, falls back
//! to unmapping the rest of the memory (every page is then faulted back in by
//! the next invocation). A fresh arena keeps an invocation's allocations in a
//! few contiguous pages at the top of memory.
//!
//! Memory freed by an invocation that was allocated before the snapshot is
//! left alone (the instance is discarded after one invocation anyway);
//! memory allocated after it is freed and reused as usual.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

use dlmalloc::Dlmalloc;

struct Heap {
    /// 0 until [`start_fresh_arena`]; then the first address the arena may use.
    fresh_from: UnsafeCell<usize>,
    arena: UnsafeCell<Dlmalloc>,
}

// SAFETY: the guest is single-threaded (wasm32-wasip1 without threads).
unsafe impl Sync for Heap {}

#[global_allocator]
static HEAP: Heap = Heap {
    fresh_from: UnsafeCell::new(0),
    arena: UnsafeCell::new(Dlmalloc::new()),
};

/// Switches every later allocation to the fresh arena; called at the end of
/// the snapshot's initialization.
pub fn start_fresh_arena() {
    let pages = core::arch::wasm32::memory_size(0);
    // SAFETY: single-threaded; no allocation is in progress.
    unsafe { *HEAP.fresh_from.get() = pages * 65536 };
}

impl Heap {
    fn fresh_from(&self) -> usize {
        // SAFETY: single-threaded; only written by `start_fresh_arena`.
        unsafe { *self.fresh_from.get() }
    }

    #[allow(clippy::mut_from_ref)]
    unsafe fn arena(&self) -> &mut Dlmalloc {
        // SAFETY: single-threaded and never re-entered (dlmalloc does not allocate).
        unsafe { &mut *self.arena.get() }
    }
}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.fresh_from() == 0 {
            return unsafe { System.alloc(layout) };
        }
        unsafe { self.arena().malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.fresh_from() == 0 {
            return unsafe { System.alloc_zeroed(layout) };
        }
        unsafe { self.arena().calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let from = self.fresh_from();
        if from == 0 {
            unsafe { System.dealloc(ptr, layout) }
        } else if ptr as usize >= from {
            unsafe { self.arena().free(ptr, layout.size(), layout.align()) }
        }
        // else: allocated before the snapshot; left as it is.
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let from = self.fresh_from();
        if from == 0 {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if ptr as usize >= from {
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
