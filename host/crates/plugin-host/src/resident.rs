//! Whether freed pool slots keep the pages a call wrote, reset in place.
//!
//! Every call instantiates a component afresh into a slot of wasmtime's
//! pooling allocator. Returning the slot's pages to the kernel after each
//! call makes the next call fault every page it touches back in, which on
//! several cores also interrupts the other cores to flush their TLBs: the
//! largest cost of a small plugin's call and most of an interpreter's.
//! With `PAGEMAP_SCAN` (Linux 6.7+) wasmtime can instead ask which pages
//! the call wrote, copy only those back from the memory image and keep
//! them mapped.
//!
//! The scan in wasmtime 48 reports only *present* pages: a written page
//! that is swapped out, or being migrated by the kernel at that moment, is
//! neither reset nor decommitted, and the slot's next instance could read
//! what the earlier call wrote there. So this is an operator's choice, off
//! unless configured, and refused while swap is on. (`assay run`, where
//! every call is the same user's, asks for it; `assay serve` and `assay
//! worker` only with `--keep-resident-mib`.)

/// What the host decided, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepResident {
    /// Freed slots keep up to this many written bytes each.
    Kept(usize),
    /// Not configured (0).
    Off,
    /// Configured, but the kernel has no `PAGEMAP_SCAN`: resetting a fixed
    /// range on every release instead would cost more than the faults.
    NoPagemapScan,
    /// Configured, but swap is on (or `/proc/swaps` is unreadable): a
    /// swapped-out written page would escape the reset.
    SwapOn,
}

impl KeepResident {
    /// Decides for `configured` bytes per slot on this machine.
    pub fn decide(configured: usize) -> Self {
        if configured == 0 {
            Self::Off
        } else if !wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
            Self::NoPagemapScan
        } else if swap_may_be_on() {
            Self::SwapOn
        } else {
            Self::Kept(configured)
        }
    }

    /// Bytes kept per freed slot (0 unless [`KeepResident::Kept`]).
    pub fn bytes(self) -> usize {
        match self {
            Self::Kept(bytes) => bytes,
            _ => 0,
        }
    }
}

/// Whether any swap area is active, from `/proc/swaps` (a header line, then
/// one line per area). Unreadable counts as on: the safe answer.
fn swap_may_be_on() -> bool {
    match std::fs::read_to_string("/proc/swaps") {
        Ok(text) => swap_areas(&text) > 0,
        Err(_) => true,
    }
}

fn swap_areas(proc_swaps: &str) -> usize {
    proc_swaps
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_off_whatever_the_machine() {
        assert_eq!(KeepResident::decide(0), KeepResident::Off);
        assert_eq!(KeepResident::decide(0).bytes(), 0);
    }

    #[test]
    fn only_a_kept_decision_keeps_bytes() {
        assert_eq!(KeepResident::Kept(4096).bytes(), 4096);
        assert_eq!(KeepResident::SwapOn.bytes(), 0);
        assert_eq!(KeepResident::NoPagemapScan.bytes(), 0);
    }

    #[test]
    fn swap_areas_are_the_lines_after_the_header() {
        let none = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert_eq!(swap_areas(none), 0);
        let one = format!(
            "{none}/dev/zram0                              partition\t4194300\t\t0\t\t100\n"
        );
        assert_eq!(swap_areas(&one), 1);
        assert_eq!(swap_areas(""), 0);
    }
}
