//! Singly linked NET_BUFFER_LIST chains, as the data path splits and
//! restores them, without allocating. The kernel glue implements [`Linked`]
//! for NET_BUFFER_LIST; the tests use a plain node.
//!
//! Two NDIS rules these functions exist for:
//! * FilterSendNetBufferListsComplete receives the filter's own NBLs mixed
//!   with those of overlying drivers; the others must go up with
//!   NdisFSendNetBufferListsComplete ([`partition`] by SourceHandle).
//! * FilterReceiveNetBufferLists with NDIS_RECEIVE_FLAGS_RESOURCES: the
//!   miniport reclaims its NBLs when the call returns, so their linkage must
//!   be as it came in; passed NBLs are indicated in runs whose end is cut
//!   and restored around each indication ([`for_each_run`]).

use core::ptr::null_mut;

/// A chain node (`NET_BUFFER_LIST::Next`).
pub trait Linked {
    fn next(&self) -> *mut Self;
    fn set_next(&mut self, next: *mut Self);
}

/// A chain built by appending: head, tail and count.
#[derive(Debug)]
pub struct Chain<T> {
    pub head: *mut T,
    tail: *mut T,
    pub count: u32,
}

impl<T: Linked> Chain<T> {
    pub const fn new() -> Self {
        Chain {
            head: null_mut(),
            tail: null_mut(),
            count: 0,
        }
    }

    /// Appends `node` (its `next` is cleared).
    ///
    /// # Safety
    /// `node` is valid and not in this chain; the tail, if any, is valid.
    pub unsafe fn push(&mut self, node: *mut T) {
        // SAFETY: per the contract.
        unsafe {
            (*node).set_next(null_mut());
            if self.tail.is_null() {
                self.head = node;
            } else {
                (*self.tail).set_next(node);
            }
        }
        self.tail = node;
        self.count += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }
}

impl<T: Linked> Default for Chain<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits the chain at `head` into (matching, others), each in its
/// original order. Consumes the linkage.
///
/// # Safety
/// `head` is null or a valid, acyclic chain the caller owns.
pub unsafe fn partition<T: Linked>(
    head: *mut T,
    mut matches: impl FnMut(&T) -> bool,
) -> (Chain<T>, Chain<T>) {
    let (mut yes, mut no) = (Chain::new(), Chain::new());
    let mut node = head;
    while !node.is_null() {
        // SAFETY: a node of the caller's chain; read before it is relinked.
        unsafe {
            let next = (*node).next();
            if matches(&*node) {
                yes.push(node);
            } else {
                no.push(node);
            }
            node = next;
        }
    }
    (yes, no)
}

/// Walks the chain at `head`, asks `keep` for each node (in order; `true`
/// keeps it out of the runs, e.g. consumed), and calls `run(first, count)`
/// for each maximal run of consecutive other nodes, with the run's last node
/// cut from the rest during the call. On return every `next` is as it was.
///
/// # Safety
/// `head` is null or a valid, acyclic chain; `run` must not relink it.
pub unsafe fn for_each_run<T: Linked>(
    head: *mut T,
    mut keep: impl FnMut(&T) -> bool,
    mut run: impl FnMut(*mut T, u32),
) {
    let mut node = head;
    let (mut first, mut last, mut count) = (null_mut::<T>(), null_mut::<T>(), 0u32);
    while !node.is_null() {
        // SAFETY: a node of the caller's chain.
        let next = unsafe { (*node).next() };
        // SAFETY: as above.
        if unsafe { keep(&*node) } {
            // SAFETY: `last` ends the pending run and is valid.
            unsafe { flush(&mut first, last, &mut count, &mut run) };
        } else {
            if first.is_null() {
                first = node;
            }
            last = node;
            count += 1;
        }
        node = next;
    }
    // SAFETY: as above.
    unsafe { flush(&mut first, last, &mut count, &mut run) };
}

/// Indicates the pending run with its end cut, then restores the link.
///
/// # Safety
/// `last` is valid when `*first` is not null.
unsafe fn flush<T: Linked>(
    first: &mut *mut T,
    last: *mut T,
    count: &mut u32,
    run: &mut impl FnMut(*mut T, u32),
) {
    if first.is_null() {
        return;
    }
    // SAFETY: per the contract.
    unsafe {
        let rest = (*last).next();
        (*last).set_next(null_mut());
        run(*first, *count);
        (*last).set_next(rest);
    }
    *first = null_mut();
    *count = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[derive(Debug)]
    struct Node {
        id: u32,
        source: usize,
        next: *mut Node,
    }

    impl Linked for Node {
        fn next(&self) -> *mut Self {
            self.next
        }
        fn set_next(&mut self, next: *mut Self) {
            self.next = next;
        }
    }

    /// Nodes 0..n linked in order; `source(i)` for each.
    fn chain(sources: &[usize]) -> Vec<Node> {
        let mut v: Vec<Node> = sources
            .iter()
            .enumerate()
            .map(|(i, &s)| Node {
                id: i as u32,
                source: s,
                next: null_mut(),
            })
            .collect();
        let p = v.as_mut_ptr();
        for i in 0..v.len().saturating_sub(1) {
            // SAFETY: both inside `v`.
            unsafe { (*p.add(i)).next = p.add(i + 1) };
        }
        v
    }

    fn ids(head: *mut Node) -> Vec<u32> {
        let mut out = Vec::new();
        let mut n = head;
        while !n.is_null() {
            // SAFETY: test nodes.
            unsafe {
                out.push((*n).id);
                n = (*n).next;
            }
        }
        out
    }

    /// The send-complete split: the filter's own NBLs (SourceHandle = the
    /// filter) and the overlying drivers' (any other SourceHandle), each in
    /// order, none lost. The old code treated all five as its own slots and
    /// completed none of the others.
    #[test]
    fn send_complete_split_by_source_handle() {
        const OURS: usize = 0xF1;
        let mut v = chain(&[OURS, 0x7C, 0x7C, OURS, 0x99]);
        // SAFETY: the test chain.
        let (own, others) = unsafe { partition(v.as_mut_ptr(), |n| n.source == OURS) };
        assert_eq!(ids(own.head), [0, 3]);
        assert_eq!(own.count, 2);
        assert_eq!(ids(others.head), [1, 2, 4]);
        assert_eq!(others.count, 3);
    }

    #[test]
    fn partition_of_nothing_and_of_one_side() {
        // SAFETY: null is an empty chain.
        let (a, b) = unsafe { partition::<Node>(null_mut(), |_| true) };
        assert!(a.is_empty() && b.is_empty());
        let mut v = chain(&[1, 1, 1]);
        // SAFETY: the test chain.
        let (a, b) = unsafe { partition(v.as_mut_ptr(), |n| n.source == 1) };
        assert_eq!((ids(a.head), b.count), (vec![0, 1, 2], 0));
    }

    /// NDIS_RECEIVE_FLAGS_RESOURCES: passed NBLs go up in runs, each run
    /// terminated during its indication, and the chain is exactly as it came
    /// in afterwards. (The old code left it split into two lists.)
    #[test]
    fn runs_indicate_passed_frames_and_restore_the_chain() {
        // Sources: 1 = consumed by us, 0 = passed up.
        let mut v = chain(&[0, 0, 1, 0, 1, 1, 0, 0, 0]);
        let head = v.as_mut_ptr();
        let mut seen = Vec::new();
        // SAFETY: the test chain; `run` only reads.
        unsafe {
            for_each_run(
                head,
                |n| n.source == 1,
                |first, count| {
                    seen.push((ids(first), count));
                },
            )
        };
        assert_eq!(seen, [(vec![0, 1], 2), (vec![3], 1), (vec![6, 7, 8], 3)]);
        assert_eq!(ids(head), (0..9).collect::<Vec<_>>());
    }

    #[test]
    fn runs_of_all_kept_and_all_passed() {
        let mut v = chain(&[1, 1]);
        let mut calls = 0;
        // SAFETY: the test chain.
        unsafe { for_each_run(v.as_mut_ptr(), |_| true, |_, _| calls += 1) };
        assert_eq!(calls, 0);
        let mut v = chain(&[0, 0, 0]);
        let head = v.as_mut_ptr();
        let mut seen = Vec::new();
        // SAFETY: the test chain.
        unsafe { for_each_run(head, |_| false, |f, c| seen.push((ids(f), c))) };
        assert_eq!(seen, [(vec![0, 1, 2], 3)]);
        assert_eq!(ids(head), [0, 1, 2]);
    }
}
