//! The package's allocator: blocks of power-of-two sizes, each size with a free list, carved
//! from the end of the wasm memory, which grows as needed.
//!
//! Why not talc or dlmalloc: a socket's core allocates a handful of `Vec`s that grow by
//! doubling (channels, pushes, timers, the send buffer) and small entries of a few fixed sizes,
//! so a free list per power of two reuses every freed block exactly, in constant time, with a
//! few hundred bytes of code. talc (1.3 KB of code) and dlmalloc (3-4 KB) split and merge
//! blocks to serve any mix of sizes with little waste, which this module does not need. The
//! cost: a block takes up to twice what was asked, and memory once used for one size stays with
//! that size (the peak of each size, not of the whole, is what the module keeps).
//!
//! Blocks are at least 16 bytes and all sizes are powers of two, so every block is 16-byte
//! aligned; a larger alignment, which nothing in the package asks for, fails as out of memory.
//! wasm32 without atomics has one thread, which [`SizeClasses`]'s `Sync` relies on.
#![expect(
    unsafe_code,
    reason = "a global allocator: `GlobalAlloc` is an unsafe trait, and free blocks hold the next free block's address"
)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;

/// A wasm page.
const PAGE: usize = 64 * 1024;
/// The smallest block, 2^4 bytes: the alignment every block has.
const MIN_CLASS: u32 = 4;
/// One free list per power of two a wasm32 address can hold.
const CLASSES: usize = 32;

/// The allocator; one per module ([`ALLOCATOR`](crate::ALLOCATOR)).
pub(crate) struct SizeClasses(UnsafeCell<State>);

struct State {
    /// The first free block of each size, 2^class bytes; each free block begins with the
    /// address of the next (null: the last).
    free: [*mut u8; CLASSES],
    /// Memory never handed out: `next..end`, at the end of the wasm memory.
    next: usize,
    end: usize,
}

// SAFETY: wasm32 without atomics runs one thread (the module is built only for it).
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    pub(crate) const fn new() -> Self {
        Self(UnsafeCell::new(State {
            free: [ptr::null_mut(); CLASSES],
            next: 0,
            end: 0,
        }))
    }
}

/// The power of two of the block for `layout` (`% CLASSES` where it indexes: `alloc` refused
/// the others, and the remainder keeps a bounds check and its panic out of `dealloc`).
fn class_of(layout: Layout) -> usize {
    let size = layout.size().max(1 << MIN_CLASS);
    (usize::BITS - (size - 1).leading_zeros()) as usize
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread, and no allocation happens while another runs.
        let state = unsafe { &mut *self.0.get() };
        let class = class_of(layout);
        if layout.align() > 1 << MIN_CLASS || class >= CLASSES {
            return ptr::null_mut();
        }
        let head = state.free[class];
        if !head.is_null() {
            // SAFETY: a free block of this size, which holds the next one's address.
            state.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = 1 << class;
        if state.end - state.next < size {
            let pages = size.div_ceil(PAGE);
            let old = wasm32::memory_grow(0, pages);
            if old == usize::MAX {
                return ptr::null_mut();
            }
            // Contiguous with what was left unless something else grew the memory (or this is
            // the first block): then start at the new pages.
            if old * PAGE != state.end {
                state.next = old * PAGE;
            }
            state.end = (old + pages) * PAGE;
        }
        let block = state.next;
        state.next += size;
        block as *mut u8
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`; `block` came from `alloc` with this layout, so it is a block of
        // this size and at least as large as an address.
        let state = unsafe { &mut *self.0.get() };
        let class = class_of(layout) % CLASSES;
        unsafe { block.cast::<*mut u8>().write(state.free[class]) };
        state.free[class] = block;
    }
}
