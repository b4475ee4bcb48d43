//! Hypercall numbers (the value a guest puts in `x16`), with Xen's numbering.
//!
//! Every number Xen assigns is listed so that a number is never reused for
//! something else, including the x86-PV-only calls that Xen on Arm does not
//! wire up (`mmu_update`, `mmuext_op`, `update_va_mapping`, ...). Which of
//! them a given monitor implements is a property of the monitor, not of this
//! ABI: an unimplemented number returns `-ENOSYS`
//! ([`Errno::ENOSYS`](crate::Errno::ENOSYS)).
//!
//! The constant names are Xen's `__HYPERVISOR_<name>` in upper case.

/// The immediate of the hypercall trap instruction: `hvc #0xEA1`
/// (Xen's `XEN_HYPERCALL_TAG`).
///
/// The monitor reads it from `ESR_EL2.ISS`. `hvc #0` is *not* a hypercall:
/// it is routed to the SMCCC/PSCI handler (see [`crate::psci`]). Any other
/// immediate is reserved; the monitor injects an undefined-instruction
/// exception into the guest.
pub const HVC_IMM: u16 = 0xEA1;

/// `__HYPERVISOR_set_trap_table` (x86 PV only in Xen).
pub const SET_TRAP_TABLE: u64 = 0;
/// `__HYPERVISOR_mmu_update`: batched page-table updates (x86 PV only in Xen).
pub const MMU_UPDATE: u64 = 1;
/// `__HYPERVISOR_set_gdt` (x86 PV only in Xen).
pub const SET_GDT: u64 = 2;
/// `__HYPERVISOR_stack_switch` (x86 PV only in Xen).
pub const STACK_SWITCH: u64 = 3;
/// `__HYPERVISOR_set_callbacks` (x86 PV only in Xen).
pub const SET_CALLBACKS: u64 = 4;
/// `__HYPERVISOR_fpu_taskswitch` (x86 PV only in Xen).
pub const FPU_TASKSWITCH: u64 = 5;
/// `__HYPERVISOR_sched_op_compat`: obsolete form of [`SCHED_OP`].
pub const SCHED_OP_COMPAT: u64 = 6;
/// `__HYPERVISOR_platform_op`: privileged platform operations.
pub const PLATFORM_OP: u64 = 7;
/// `__HYPERVISOR_set_debugreg` (x86 PV only in Xen).
pub const SET_DEBUGREG: u64 = 8;
/// `__HYPERVISOR_get_debugreg` (x86 PV only in Xen).
pub const GET_DEBUGREG: u64 = 9;
/// `__HYPERVISOR_update_descriptor` (x86 PV only in Xen).
pub const UPDATE_DESCRIPTOR: u64 = 10;
// 11 is unused in Xen.
/// `__HYPERVISOR_memory_op`: reservations, physmap changes, ballooning.
pub const MEMORY_OP: u64 = 12;
/// `__HYPERVISOR_multicall`: run a batch of hypercalls in order.
pub const MULTICALL: u64 = 13;
/// `__HYPERVISOR_update_va_mapping`: update one L1 entry by virtual address
/// (x86 PV only in Xen).
pub const UPDATE_VA_MAPPING: u64 = 14;
/// `__HYPERVISOR_set_timer_op` (x86 PV only in Xen; Arm guests use the
/// generic timer).
pub const SET_TIMER_OP: u64 = 15;
/// `__HYPERVISOR_event_channel_op_compat`: obsolete form of
/// [`EVENT_CHANNEL_OP`].
pub const EVENT_CHANNEL_OP_COMPAT: u64 = 16;
/// `__HYPERVISOR_xen_version`: version and feature queries, see
/// [`crate::version`].
pub const XEN_VERSION: u64 = 17;
/// `__HYPERVISOR_console_io`: early debug console, see [`crate::console`].
pub const CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_physdev_op_compat`: obsolete form of [`PHYSDEV_OP`].
pub const PHYSDEV_OP_COMPAT: u64 = 19;
/// `__HYPERVISOR_grant_table_op`: grant-table operations.
pub const GRANT_TABLE_OP: u64 = 20;
/// `__HYPERVISOR_vm_assist`: enable/disable optional monitor assists.
pub const VM_ASSIST: u64 = 21;
/// `__HYPERVISOR_update_va_mapping_otherdomain` (x86 PV only in Xen).
pub const UPDATE_VA_MAPPING_OTHERDOMAIN: u64 = 22;
/// `__HYPERVISOR_iret` (x86 PV only in Xen).
pub const IRET: u64 = 23;
/// `__HYPERVISOR_vcpu_op`: per-vCPU operations (vcpu_info registration, ...).
pub const VCPU_OP: u64 = 24;
/// `__HYPERVISOR_set_segment_base` (x86 PV only in Xen).
pub const SET_SEGMENT_BASE: u64 = 25;
/// `__HYPERVISOR_mmuext_op`: pin/unpin tables, new base pointer, TLB flushes
/// (x86 PV only in Xen).
pub const MMUEXT_OP: u64 = 26;
/// `__HYPERVISOR_xsm_op`: security-module operations.
pub const XSM_OP: u64 = 27;
/// `__HYPERVISOR_nmi_op` (x86 PV only in Xen).
pub const NMI_OP: u64 = 28;
/// `__HYPERVISOR_sched_op`: yield, block, shutdown, ..., see [`crate::sched`].
pub const SCHED_OP: u64 = 29;
/// `__HYPERVISOR_callback_op` (x86 PV only in Xen).
pub const CALLBACK_OP: u64 = 30;
/// `__HYPERVISOR_xenoprof_op`: profiling.
pub const XENOPROF_OP: u64 = 31;
/// `__HYPERVISOR_event_channel_op`: event-channel operations.
pub const EVENT_CHANNEL_OP: u64 = 32;
/// `__HYPERVISOR_physdev_op`: physical-device operations.
pub const PHYSDEV_OP: u64 = 33;
/// `__HYPERVISOR_hvm_op`: parameters (`set_param`/`get_param`) and friends.
pub const HVM_OP: u64 = 34;
/// `__HYPERVISOR_sysctl`: privileged system-wide control.
pub const SYSCTL: u64 = 35;
/// `__HYPERVISOR_domctl`: privileged domain control.
pub const DOMCTL: u64 = 36;
/// `__HYPERVISOR_kexec_op` (x86 only in Xen).
pub const KEXEC_OP: u64 = 37;
/// Number 38: formerly `__HYPERVISOR_tmem_op`, now reserved in Xen.
pub const TMEM_OP: u64 = 38;
/// `__HYPERVISOR_argo_op`: Argo inter-domain messaging.
pub const ARGO_OP: u64 = 39;
/// `__HYPERVISOR_xenpmu_op` (x86 only in Xen).
pub const XENPMU_OP: u64 = 40;
/// `__HYPERVISOR_dm_op`: device-model operations.
pub const DM_OP: u64 = 41;
/// `__HYPERVISOR_hypfs_op`: hypervisor filesystem.
pub const HYPFS_OP: u64 = 42;
/// `__HYPERVISOR_arch_0`: first of eight architecture-specific numbers
/// (48..=55). This ABI assigns none of them yet.
pub const ARCH_0: u64 = 48;
/// `__HYPERVISOR_arch_7`: last architecture-specific number.
pub const ARCH_7: u64 = 55;

/// Xen's lower-case name of hypercall number `nr` (for logs), or `None` if
/// Xen assigns no name to it.
///
/// ```
/// use hypercall_abi::nr;
/// assert_eq!(nr::name(nr::CONSOLE_IO), Some("console_io"));
/// assert_eq!(nr::name(11), None);
/// ```
pub const fn name(nr: u64) -> Option<&'static str> {
    Some(match nr {
        SET_TRAP_TABLE => "set_trap_table",
        MMU_UPDATE => "mmu_update",
        SET_GDT => "set_gdt",
        STACK_SWITCH => "stack_switch",
        SET_CALLBACKS => "set_callbacks",
        FPU_TASKSWITCH => "fpu_taskswitch",
        SCHED_OP_COMPAT => "sched_op_compat",
        PLATFORM_OP => "platform_op",
        SET_DEBUGREG => "set_debugreg",
        GET_DEBUGREG => "get_debugreg",
        UPDATE_DESCRIPTOR => "update_descriptor",
        MEMORY_OP => "memory_op",
        MULTICALL => "multicall",
        UPDATE_VA_MAPPING => "update_va_mapping",
        SET_TIMER_OP => "set_timer_op",
        EVENT_CHANNEL_OP_COMPAT => "event_channel_op_compat",
        XEN_VERSION => "xen_version",
        CONSOLE_IO => "console_io",
        PHYSDEV_OP_COMPAT => "physdev_op_compat",
        GRANT_TABLE_OP => "grant_table_op",
        VM_ASSIST => "vm_assist",
        UPDATE_VA_MAPPING_OTHERDOMAIN => "update_va_mapping_otherdomain",
        IRET => "iret",
        VCPU_OP => "vcpu_op",
        SET_SEGMENT_BASE => "set_segment_base",
        MMUEXT_OP => "mmuext_op",
        XSM_OP => "xsm_op",
        NMI_OP => "nmi_op",
        SCHED_OP => "sched_op",
        CALLBACK_OP => "callback_op",
        XENOPROF_OP => "xenoprof_op",
        EVENT_CHANNEL_OP => "event_channel_op",
        PHYSDEV_OP => "physdev_op",
        HVM_OP => "hvm_op",
        SYSCTL => "sysctl",
        DOMCTL => "domctl",
        KEXEC_OP => "kexec_op",
        TMEM_OP => "tmem_op",
        ARGO_OP => "argo_op",
        XENPMU_OP => "xenpmu_op",
        DM_OP => "dm_op",
        HYPFS_OP => "hypfs_op",
        48 => "arch_0",
        49 => "arch_1",
        50 => "arch_2",
        51 => "arch_3",
        52 => "arch_4",
        53 => "arch_5",
        54 => "arch_6",
        55 => "arch_7",
        _ => return None,
    })
}
