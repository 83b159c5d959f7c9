//! The exported NVML C ABI. This is the only module with `unsafe`.
//!
//! Every exported function follows one pattern: [`guard`] runs the body under `catch_unwind`
//! (a panic must never cross the FFI boundary) and turns the body's `NvmlResult` into an
//! `nvmlReturn_t`; output pointers are checked for NULL *before* anything changes (the real
//! library rejects a create with a NULL out-pointer without creating anything); the machine is
//! read through [`with_state`] (queries) or read, changed and written back through
//! [`with_state_mut`], both under the state file lock.
//!
//! # Safety (all exported functions)
//! Callers follow nvml.h: pointers are NULL or valid for the documented element count, strings
//! are NUL-terminated, buffers are at least `length` bytes. Handles need no trust: they are
//! decoded and checked against the current state (see [`crate::handle`]).
#![allow(non_snake_case, clippy::missing_safety_doc)]

mod compute_instance;
mod device;
mod events;
mod gpm;
mod gpu_instance;
mod system;
pub mod types;
pub(crate) mod usage;
mod vgpu;
mod vgpu_types;

use std::ffi::{CStr, c_char, c_uint};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::code::{NvmlCode, NvmlResult};
use crate::handle::Handle;
use crate::state::{SimGpu, SimState};
use crate::store::{STATE_ENV, Store, StoreError};
use types::{NvmlReturn, RawHandle};

/// Library-wide init state: nvmlInit is reference counted (nvml.h) and the state file path is
/// fixed at the first successful init, so later env changes do not move a running client.
struct Runtime {
    refcount: u32,
    store: Option<Store>,
}

static RUNTIME: Mutex<Runtime> = Mutex::new(Runtime {
    refcount: 0,
    store: None,
});

fn runtime() -> MutexGuard<'static, Runtime> {
    // A panic while holding the lock cannot leave Runtime inconsistent (two plain fields).
    RUNTIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `nvmlInit_v2`: the first init reads `NVML_SIM_STATE` and checks the file.
fn init() -> NvmlResult<()> {
    let mut rt = runtime();
    if rt.refcount > 0 {
        rt.refcount += 1;
        return Ok(());
    }
    // Without a state file there is no (simulated) driver: the real library answers
    // DRIVER_NOT_LOADED when the kernel module is absent.
    let path = std::env::var_os(STATE_ENV)
        .filter(|p| !p.is_empty())
        .ok_or(NvmlCode::DRIVER_NOT_LOADED)?;
    let store = Store::new(path);
    match store.read(|_| ()) {
        Ok(()) => {}
        Err(StoreError::Missing { .. }) => return Err(NvmlCode::DRIVER_NOT_LOADED),
        Err(_) => return Err(NvmlCode::UNKNOWN),
    }
    rt.store = Some(store);
    rt.refcount = 1;
    Ok(())
}

/// `nvmlShutdown`: the last shutdown forgets the state file and, if [`CALL_COUNT_ENV`] names
/// a file, appends the number of calls made so far to it.
fn shutdown() -> NvmlResult<()> {
    let mut rt = runtime();
    if rt.refcount == 0 {
        return Err(NvmlCode::UNINITIALIZED);
    }
    rt.refcount -= 1;
    if rt.refcount == 0 {
        rt.store = None;
        if let Some(path) = std::env::var_os(CALL_COUNT_ENV).filter(|p| !p.is_empty()) {
            // A benchmark aid only: failing to write it must not fail the client's shutdown.
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, format!("{}\n", call_count()).as_bytes())
                });
        }
    }
    Ok(())
}

/// Environment variable naming a file to which the last `nvmlShutdown` appends the number of
/// NVML calls this process made (`cargo xtask footprint` uses it to report calls per poll).
pub const CALL_COUNT_ENV: &str = "NVML_SIM_CALL_COUNT_FILE";

/// NVML calls (every exported function that returns `nvmlReturn_t`) made in this process.
static CALLS: AtomicU64 = AtomicU64::new(0);

fn call_count() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

/// `nvmlSimGetCallCount`: not an NVML function. How many NVML calls this process has made
/// through the library, so tests and benchmarks can measure a client's calls per operation
/// (the real cost driver on a GPU host, where each call is an ioctl).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSimGetCallCount(count: *mut u64) -> NvmlReturn {
    // Not counted itself, so reading the counter does not move it.
    // SAFETY: `count` is this export's `unsigned long long *` out-parameter, passed on
    // unchanged: the caller (a test or benchmark using the documented signature) gives NULL,
    // which `put` refuses, or a writable u64.
    match catch_unwind(AssertUnwindSafe(|| unsafe { put(count, call_count()) })) {
        Ok(Ok(())) => NvmlCode::SUCCESS,
        Ok(Err(code)) => code.raw(),
        Err(_) => NvmlCode::UNKNOWN.raw(),
    }
}

/// Environment variable naming a file whose existence stalls every state-reading NVML call
/// until it is removed: a hung driver, for tests of a client's timeouts (the agent must keep
/// its heartbeat and answer SIGTERM while a call hangs).
pub const STALL_FILE_ENV: &str = "NVML_SIM_STALL_FILE";

/// Blocks while the [`STALL_FILE_ENV`] file exists.
fn stall_while_flagged() {
    let Some(path) = std::env::var_os(STALL_FILE_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    while path.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The store of the initialised library, or `UNINITIALIZED`.
fn current_store() -> NvmlResult<Store> {
    runtime().store.clone().ok_or(NvmlCode::UNINITIALIZED)
}

/// What a failing store means to an NVML caller.
fn store_code(e: StoreError) -> NvmlCode {
    match e {
        // The file vanished under a running client: the "driver" is gone.
        StoreError::Missing { .. } => NvmlCode::DRIVER_NOT_LOADED,
        _ => NvmlCode::UNKNOWN,
    }
}

/// Run a query `f` on the current machine state under the file lock. The state is the
/// store's cached parse unless another process changed the file (see [`crate::store`]).
fn with_state<R>(f: impl FnOnce(&SimState) -> NvmlResult<R>) -> NvmlResult<R> {
    stall_while_flagged();
    current_store()?.read(f).map_err(store_code)?
}

/// Run a call that may change the machine under the file lock; changes are saved.
fn with_state_mut<R>(f: impl FnOnce(&mut SimState) -> NvmlResult<R>) -> NvmlResult<R> {
    stall_while_flagged();
    current_store()?.update(f).map_err(store_code)?
}

/// Run an exported function's body: panics become `NVML_ERROR_UNKNOWN`.
fn guard(f: impl FnOnce() -> NvmlResult<()>) -> NvmlReturn {
    CALLS.fetch_add(1, Ordering::Relaxed);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => NvmlCode::SUCCESS,
        Ok(Err(code)) => code.raw(),
        Err(_) => NvmlCode::UNKNOWN.raw(),
    }
}

/// Decode a handle and check that what it names still exists.
fn resolve(state: &SimState, raw: RawHandle) -> NvmlResult<Handle> {
    let h = Handle::decode(raw as u64).ok_or(NvmlCode::INVALID_ARGUMENT)?;
    let gpu = state.gpu(h.gpu())?;
    let live = match h {
        Handle::Device { .. } => true,
        Handle::GpuInstance { gi, .. } => gpu.mig_mode.current && gpu.gpu_instance(gi).is_some(),
        Handle::ComputeInstance { gi, ci, .. } | Handle::MigDevice { gi, ci, .. } => {
            gpu.mig_mode.current && gpu.compute_instance(gi, ci).is_some()
        }
    };
    if live {
        Ok(h)
    } else {
        Err(NvmlCode::INVALID_ARGUMENT)
    }
}

/// A device handle (GPU or MIG device): the GPU index and, for MIG, (gi, ci).
fn resolve_device(state: &SimState, raw: RawHandle) -> NvmlResult<(u32, Option<(u32, u32)>)> {
    match resolve(state, raw)? {
        Handle::Device { gpu } => Ok((gpu, None)),
        Handle::MigDevice { gpu, gi, ci } => Ok((gpu, Some((gi, ci)))),
        _ => Err(NvmlCode::INVALID_ARGUMENT),
    }
}

/// A physical GPU handle only; MIG device handles get `NOT_SUPPORTED` (parent-only queries).
fn resolve_gpu(state: &SimState, raw: RawHandle) -> NvmlResult<u32> {
    match resolve_device(state, raw)? {
        (gpu, None) => Ok(gpu),
        (_, Some(_)) => Err(NvmlCode::NOT_SUPPORTED),
    }
}

/// A GPU instance handle: (GPU index, GI id).
fn resolve_gi(state: &SimState, raw: RawHandle) -> NvmlResult<(u32, u32)> {
    match resolve(state, raw)? {
        Handle::GpuInstance { gpu, gi } => Ok((gpu, gi)),
        _ => Err(NvmlCode::INVALID_ARGUMENT),
    }
}

/// A compute instance handle: (GPU index, GI id, CI id).
fn resolve_ci(state: &SimState, raw: RawHandle) -> NvmlResult<(u32, u32, u32)> {
    match resolve(state, raw)? {
        Handle::ComputeInstance { gpu, gi, ci } => Ok((gpu, gi, ci)),
        _ => Err(NvmlCode::INVALID_ARGUMENT),
    }
}

fn raw(h: Handle) -> RawHandle {
    h.encode() as RawHandle
}

fn gpu_of(state: &SimState, gpu: u32) -> NvmlResult<&SimGpu> {
    state.gpu(gpu)
}

/// NULL → `INVALID_ARGUMENT`, checked before any change is made.
fn non_null<T>(p: *const T) -> NvmlResult<()> {
    if p.is_null() {
        Err(NvmlCode::INVALID_ARGUMENT)
    } else {
        Ok(())
    }
}

/// Write `v` through an out-pointer; NULL → `INVALID_ARGUMENT`.
///
/// # Safety
/// `p` is NULL or valid for a write of one `T` (an nvml.h out-parameter of that type).
unsafe fn put<T>(p: *mut T, v: T) -> NvmlResult<()> {
    non_null(p)?;
    // SAFETY: not NULL (checked above), so by this function's contract valid for one write
    // of `T`; `write` does not read or drop the uninitialised old value.
    unsafe { p.write(v) };
    Ok(())
}

/// Read a value the caller passed by pointer; NULL → `INVALID_ARGUMENT`.
///
/// # Safety
/// `p` is NULL or points to an initialised `T` (an nvml.h in-parameter of that type).
unsafe fn get<T: Copy>(p: *const T) -> NvmlResult<T> {
    non_null(p)?;
    // SAFETY: not NULL (checked above), so by this function's contract an initialised `T`;
    // `T: Copy`, so reading it out leaves the caller's value intact.
    Ok(unsafe { p.read() })
}

/// Copy `items` into a caller buffer; nothing to copy → nothing touched, NULL →
/// `INVALID_ARGUMENT`.
///
/// # Safety
/// `buf` is NULL or valid for writes of at least `items.len()` elements: the caller has
/// checked `items.len()` against the capacity the C caller declared or the documented bound.
unsafe fn put_slice<T: Copy>(buf: *mut T, items: &[T]) -> NvmlResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    non_null(buf)?;
    // SAFETY: not NULL (checked above) and, by this function's contract, room for
    // `items.len()` elements; `items` is our own Vec or slice, so the two cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), buf, items.len()) };
    Ok(())
}

/// Copy `s` plus NUL into `buf` of `len` bytes; `INSUFFICIENT_SIZE` if it does not fit.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes (nvml.h's `char *, unsigned int length`
/// pairs).
unsafe fn put_str(buf: *mut c_char, len: c_uint, s: &str) -> NvmlResult<()> {
    non_null(buf)?;
    if (len as usize) < s.len() + 1 {
        return Err(NvmlCode::INSUFFICIENT_SIZE);
    }
    // SAFETY: `buf` is not NULL and holds `len` bytes (this function's contract), and
    // `len >= s.len() + 1` (checked above), so the text and its NUL fit; `s` is Rust memory
    // and cannot overlap the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr().cast::<c_char>(), buf, s.len());
        buf.add(s.len()).write(0);
    }
    Ok(())
}

/// Read a NUL-terminated input string (lossily: UUIDs and bus ids are ASCII).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays unchanged during the call.
unsafe fn read_str(p: *const c_char) -> NvmlResult<String> {
    non_null(p)?;
    // SAFETY: not NULL (checked above) and NUL-terminated by this function's contract; the
    // borrow ends with the copy made below, before we return to the caller.
    let s = unsafe { CStr::from_ptr(p) };
    Ok(s.to_string_lossy().into_owned())
}

/// The `(count, buffer)` protocol shared by list queries: `*count` is the capacity on input;
/// too small (including the `*count == 0` size query) → `INSUFFICIENT_SIZE` with the needed
/// count written back, or SUCCESS when nothing needs reporting.
///
/// # Safety
/// `count` is NULL or a readable and writable `unsigned int`; `buf` is NULL or holds the
/// `*count` elements that value declares (the nvml.h contract of every such query).
unsafe fn put_counted<T: Copy>(count: *mut c_uint, buf: *mut T, items: &[T]) -> NvmlResult<()> {
    // SAFETY: `count` is NULL (refused by `get`) or a readable `unsigned int` (our contract).
    let capacity = unsafe { get(count)? };
    // SAFETY: `get` above returned, so `count` is not NULL, and it is writable (our contract).
    unsafe { put(count, items.len() as c_uint)? };
    if (capacity as usize) < items.len() {
        return Err(NvmlCode::INSUFFICIENT_SIZE);
    }
    // SAFETY: `buf` holds `capacity` elements (our contract) and `capacity >= items.len()`
    // (checked above), which is what `put_slice` needs.
    unsafe { put_slice(buf, items) }
}
