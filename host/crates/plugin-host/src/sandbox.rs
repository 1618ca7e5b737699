//! One call's sandbox: a fresh `Store` with nothing granted, memory and time
//! limits, captured output, and the mapping of whatever went wrong to a
//! [`CallError`].

use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::config::{HostConfig, Limits};
use crate::error::CallError;
use crate::logs::{CappedPipe, CapturedLogs, panic_message};
use crate::net_access::NetworkAccess;
use crate::net_report::NetLog;
use crate::net_send::NetHooks;

/// The data of one call's `Store`.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    /// Checks and sends the guest's outbound requests (wasi:http).
    net: NetHooks,
    limiter: MemoryLimiter,
    stdout: CappedPipe,
    stderr: CappedPipe,
    /// Past this instant the epoch callback traps the guest.
    hard_deadline: Instant,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.net,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

/// Caps linear memory and remembers whether it refused a growth, so that the
/// trap that follows (Rust's `rust_oom` aborts) is reported as a memory limit.
///
/// It also bounds what one component may create (instances, memories,
/// tables) when instances are allocated on demand; the pooling allocator
/// enforces the same numbers per component.
struct MemoryLimiter {
    max_memory: usize,
    denied: bool,
    max_instances: usize,
    max_memories: usize,
    max_tables: usize,
}

/// Most table elements an instance may have (function tables of big guests).
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory && maximum.is_none_or(|max| desired <= max);
        if !allowed {
            self.denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn memories(&self) -> usize {
        self.max_memories
    }

    fn tables(&self) -> usize {
        self.max_tables
    }
}

/// Raised by the epoch callback when a guest runs past its hard deadline.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// A fresh store for one call.
///
/// WASI grants nothing: no preopened directories, no environment, no
/// arguments, no sockets or name lookups, an empty stdin; stdout and stderr
/// go to capped in-memory pipes. Outbound HTTP (wasi:http) goes through
/// [`NetHooks`], checked against `access` and recorded in `net_log`.
///
/// Every epoch tick the guest yields to the async executor (so it never
/// blocks a tokio worker and a dropped future stops it); once the deadline
/// has passed the next tick traps it, even if nobody polls a timeout.
pub(crate) fn new_store(
    engine: &Engine,
    limits: &Limits,
    host: &HostConfig,
    access: &NetworkAccess,
    net_log: &NetLog,
) -> Store<CallState> {
    let stdout = CappedPipe::new(limits.max_log_bytes);
    let stderr = CappedPipe::new(limits.max_log_bytes);
    let wasi = WasiCtx::builder()
        .max_random_size(host.max_random_bytes)
        .stdin(wasmtime_wasi::p2::pipe::ClosedInputStream)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let state = CallState {
        wasi,
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
        net: NetHooks::new(access.clone(), net_log.clone()),
        limiter: MemoryLimiter {
            max_memory: limits.max_memory_bytes.min(host.max_memory_bytes),
            denied: false,
            max_instances: host.max_core_instances_per_component as usize,
            max_memories: host.max_memories_per_component as usize,
            max_tables: host.max_tables_per_component as usize,
        },
        stdout,
        stderr,
        hard_deadline: deadline_after(limits.timeout),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().hard_deadline {
            Err(DeadlineExceeded.into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// `now + timeout`, saturating (a "no limit" of `Duration::MAX` is fine).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl CallState {
    /// Takes the captured stdout/stderr.
    pub(crate) fn logs(&self) -> CapturedLogs {
        let (stdout, out_cut) = self.stdout.take();
        let (stderr, err_cut) = self.stderr.take();
        CapturedLogs {
            stdout,
            stderr,
            truncated: out_cut || err_cut,
        }
    }

    /// The memory limit that applied to this call.
    fn memory_limit(&self) -> usize {
        self.limiter.max_memory
    }
}

/// Maps a failed instantiation or call to the error a user should see.
pub(crate) fn classify(
    err: &wasmtime::Error,
    state: &CallState,
    logs: &CapturedLogs,
    timeout: Duration,
) -> CallError {
    if err.downcast_ref::<DeadlineExceeded>().is_some() {
        return CallError::Timeout { after: timeout };
    }
    if state.limiter.denied {
        return CallError::MemoryLimit {
            limit_bytes: state.memory_limit(),
        };
    }
    if let Some(pool) = err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return CallError::Host(format!("no free plugin instance slot: {pool}"));
    }
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return CallError::Trap {
            message: format!("plugin exited with status {}", exit.0),
        };
    }
    let trap = err.downcast_ref::<Trap>().copied();
    match trap {
        Some(Trap::Interrupt) => return CallError::Timeout { after: timeout },
        Some(Trap::StackOverflow) => return stack_overflow(),
        Some(Trap::MemoryOutOfBounds) if shadow_stack_overflow(err) => return stack_overflow(),
        _ => {}
    }
    if let Some(message) = panic_message(&logs.stderr) {
        return CallError::Panic { message };
    }
    match trap {
        Some(trap) => CallError::Trap {
            message: format!("plugin trapped: {trap}"),
        },
        None => CallError::Trap {
            message: format!("plugin failed: {}", root_message(err)),
        },
    }
}

fn stack_overflow() -> CallError {
    CallError::Trap {
        message: "plugin overflowed its stack".into(),
    }
}

/// Whether an out-of-bounds access is a guest's shadow stack overflowing.
///
/// Rust and C guests keep their stack in linear memory below their data,
/// so deep recursion runs the stack pointer below address 0 and the next
/// store (often a `memory.fill` of a local array) is out of bounds, rather
/// than exhausting wasmtime's native stack. The trap itself does not say
/// so; the backtrace does: a full backtrace made of a handful of functions
/// calling each other.
fn shadow_stack_overflow(err: &wasmtime::Error) -> bool {
    let Some(trace) = err.downcast_ref::<WasmBacktrace>() else {
        return false;
    };
    let frames = trace.frames();
    if frames.len() < RECURSION_FRAMES {
        return false;
    }
    let mut functions: Vec<u32> = frames.iter().map(|f| f.func_index()).collect();
    functions.sort_unstable();
    functions.dedup();
    functions.len() <= 4
}

/// Backtrace depth (wasmtime keeps 20 frames) that counts as deep recursion.
const RECURSION_FRAMES: usize = 16;

/// The innermost message of an error chain, without backtraces.
fn root_message(err: &wasmtime::Error) -> String {
    err.root_cause().to_string()
}
