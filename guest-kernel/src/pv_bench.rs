//! `bench=pv`: instruction counts (under `-icount`) of `EVTCHNOP_send` on
//! a port whose peer end is already pending, and of a grant map + unmap
//! pair, each against the same loop doing nothing.

use crate::console::println;
use crate::dt::BootInfo;
use crate::events;
use core::arch::asm;
use hypercall_abi::event_channel::{EvtchnSend, DOMID_SELF, EVTCHNOP_SEND};
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::gnttab_guest as gt;
use hypercall_abi::guest;
use hypercall_abi::memory::{GUEST_GNTTAB_BASE, GUEST_GRANT_MAP_BASE};
use hypercall_abi::nr::{EVENT_CHANNEL_OP, HVC_IMM};

const N: u64 = 20_000;

fn counter() -> u64 {
    let t: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

/// `n` sends on the port in `arg`, as a tight `hvc` loop.
fn time_send(arg: &EvtchnSend, n: u64, real: bool) -> u64 {
    let p = core::ptr::from_ref(arg) as u64;
    let t0 = counter();
    for _ in 0..n {
        if real {
            // SAFETY: EVTCHNOP_send only reads `arg`, a live EvtchnSend.
            unsafe {
                asm!("hvc #{imm}", imm = const HVC_IMM,
                     inout("x16") EVENT_CHANNEL_OP => _, inout("x0") EVTCHNOP_SEND => _,
                     inout("x1") p => _, out("x2") _, out("x3") _, out("x4") _, options(nostack));
            }
        } else {
            // SAFETY: the same register moves, without the call.
            unsafe {
                asm!("nop", inout("x16") EVENT_CHANNEL_OP => _, inout("x0") EVTCHNOP_SEND => _,
                     inout("x1") p => _, out("x2") _, out("x3") _, out("x4") _, options(nostack));
            }
        }
    }
    counter() - t0
}

/// Runs the benchmarks and powers off.
pub fn run(_info: &BootInfo) -> ! {
    if events::init().is_err() {
        println!("guest: bench: FAIL: no shared info");
        guest::crash()
    }
    // A loopback channel; the first send makes the other end pending, so
    // every timed send finds it pending already (IRQs stay masked).
    let a = ev::alloc_unbound(DOMID_SELF).unwrap_or(0);
    let b = ev::bind_interdomain(DOMID_SELF, a).unwrap_or(0);
    let arg = EvtchnSend { port: b };
    let _ = ev::send(b);
    let hvc = time_send(&arg, N, true);
    let nop = time_send(&arg, N, false);
    println!("BENCH evtchn_send_ticks {hvc} {nop} {N}");
    // Grant map + unmap of the domain's own page.
    let Ok(table) = gt::map_table_frame(0, GUEST_GNTTAB_BASE >> 12) else {
        println!("guest: bench: FAIL: no grant table");
        guest::crash()
    };
    #[repr(C, align(4096))]
    struct P([u8; 4096]);
    static PAGE: P = P([0; 4096]);
    let me = crate::pv_checks::peer_self();
    table[8].grant(me, (core::ptr::addr_of!(PAGE) as u64 >> 12) as u32, false);
    let m = N / 10;
    let t0 = counter();
    for _ in 0..m {
        let h = gt::map_grant_ref(DOMID_SELF, 8, GUEST_GRANT_MAP_BASE, false).unwrap_or(u32::MAX);
        let _ = gt::unmap_grant_ref(GUEST_GRANT_MAP_BASE, h);
    }
    let map = counter() - t0;
    println!("BENCH grant_map_unmap_ticks {map} 0 {m}");
    guest::poweroff()
}
