//! The host's NDIS work-item contract, as the WDK documents it: an item may
//! not be freed while it is queued, but may be freed while its routine runs,
//! even from inside the routine (NdisQueueIoWorkItem and IoFreeWorkItem
//! remarks: the system dequeues an item before running its routine). A
//! stricter host flagged the shell's halt, which frees the maintenance item
//! once its routine has said it is done, but before the routine returned.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ndis_host::contract::take_breaches;
use ndis_host::ke;
use ndis_sys::{NDIS_HANDLE, PVOID};

static RAN: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn frees_itself(_ctx: PVOID, item: NDIS_HANDLE) {
    ke::free_work_item(item);
    RAN.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "system" fn sleeps(_ctx: PVOID, _item: NDIS_HANDLE) {
    std::thread::sleep(Duration::from_millis(200));
    RAN.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn an_item_may_be_freed_while_its_routine_runs_but_not_while_queued() {
    // Freed from inside its own routine: allowed.
    let a = ke::allocate_work_item();
    ke::queue_work_item(a, frees_itself, std::ptr::null_mut());
    assert!(ke::settle(Duration::from_secs(5)), "the routine never ran");
    assert_eq!(RAN.load(Ordering::SeqCst), 1);
    assert!(take_breaches().is_empty());

    // Queued behind a routine that sleeps, then freed: a breach.
    let b = ke::allocate_work_item();
    let c = ke::allocate_work_item();
    ke::queue_work_item(b, sleeps, std::ptr::null_mut());
    ke::queue_work_item(c, sleeps, std::ptr::null_mut());
    std::thread::sleep(Duration::from_millis(50));
    ke::free_work_item(c);
    let breaches = take_breaches();
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert!(breaches[0].contains("while it is queued"), "{breaches:?}");
    // b is running now; settle waits for its routine to return.
    assert!(ke::settle(Duration::from_secs(5)));
    ke::free_work_item(b);
    assert!(take_breaches().is_empty());
    assert_eq!(ke::work_items(), 0);
}
