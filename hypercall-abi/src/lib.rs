//! The hypercall ABI (placeholder, filled in by the ABI work).
#![cfg_attr(not(test), no_std)]
