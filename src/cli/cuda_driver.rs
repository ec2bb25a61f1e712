//! Checks for a usable NVIDIA driver before `--backend cuda` hands the GPU to burn.
//!
//! burn 0.22's CUDA backend has no fallible initialisation (unlike wgpu's
//! `wgpu_options().init()`): CubeCL initialises the driver on its device thread at the first
//! tensor operation and unwraps the result, so a machine without the driver, or with one that
//! sees no GPU, panics deep inside burn. Asking the driver API ourselves first (`cuInit`,
//! `cuDeviceGetCount`, loaded at run time as CubeCL loads it) turns those cases into an error
//! that says what is missing and what to use instead.
//!
//! Only a `--features cuda` build calls it; test builds compile it as well, to test it.

use std::ffi::{CStr, c_char, c_int, c_uint};

use thiserror::Error;

/// The CUDA driver API's shared library, as the NVIDIA driver installs it on Linux.
#[cfg(target_os = "windows")]
pub const DRIVER_LIBRARY: &str = "nvcuda.dll";
#[cfg(not(target_os = "windows"))]
pub const DRIVER_LIBRARY: &str = "libcuda.so.1";

/// Why `--backend cuda` cannot run here; each message ends with what to do instead.
#[derive(Debug, Error)]
pub enum CudaDriverError {
    #[error(
        "--backend cuda found no NVIDIA driver ({library} could not be loaded: {reason}): install \
         the NVIDIA driver (`nvidia-smi` should list the GPU), or use --backend wgpu or flex"
    )]
    NotInstalled { library: String, reason: String },
    #[error(
        "--backend cuda: {library} lacks `{symbol}`, so it is not a usable CUDA driver: \
         reinstall the NVIDIA driver, or use --backend wgpu or flex"
    )]
    MissingSymbol {
        library: String,
        symbol: &'static str,
    },
    #[error(
        "--backend cuda: the NVIDIA driver failed in {call} with error {code} ({name}): check \
         `nvidia-smi`, or use --backend wgpu or flex"
    )]
    Failed {
        call: &'static str,
        code: c_int,
        name: String,
    },
    #[error(
        "--backend cuda: the NVIDIA driver sees no GPU: check `nvidia-smi` (and \
         CUDA_VISIBLE_DEVICES), or use --backend wgpu or flex"
    )]
    NoDevice,
}

type CuInit = unsafe extern "C" fn(flags: c_uint) -> c_int;
type CuDeviceGetCount = unsafe extern "C" fn(count: *mut c_int) -> c_int;
type CuGetErrorName = unsafe extern "C" fn(error: c_int, name: *mut *const c_char) -> c_int;

/// `CUDA_ERROR_NO_DEVICE`: the driver is there but sees no GPU.
const CUDA_ERROR_NO_DEVICE: c_int = 100;

/// The number of GPUs the NVIDIA driver in `library` sees (at least one), or why there is
/// none to use.
pub fn check(library: &str) -> Result<usize, CudaDriverError> {
    // SAFETY: loading the NVIDIA driver library runs only its initialisers, which are made to
    // be loaded by any process (CubeCL loads the same library the same way).
    let driver = unsafe { libloading::Library::new(library) }.map_err(|err| {
        CudaDriverError::NotInstalled {
            library: library.to_owned(),
            reason: err.to_string(),
        }
    })?;
    // Never unloaded: `cuInit` may start the driver's own threads, and CubeCL loads the same
    // library right after; unloading it in between could pull code from under them.
    let driver: &'static libloading::Library = Box::leak(Box::new(driver));
    let symbol = |name: &'static str| CudaDriverError::MissingSymbol {
        library: library.to_owned(),
        symbol: name,
    };
    // SAFETY: the three signatures are those of the CUDA driver API (cuda.h), where `CUresult`
    // is a C enum (`int`); `driver` stays loaded for the whole process.
    unsafe {
        let init = driver
            .get::<CuInit>(b"cuInit\0")
            .map_err(|_| symbol("cuInit"))?;
        let device_count = driver
            .get::<CuDeviceGetCount>(b"cuDeviceGetCount\0")
            .map_err(|_| symbol("cuDeviceGetCount"))?;
        let error_name = driver.get::<CuGetErrorName>(b"cuGetErrorName\0").ok();
        let failed = |call: &'static str, code: c_int| {
            if code == CUDA_ERROR_NO_DEVICE {
                return CudaDriverError::NoDevice;
            }
            let mut name: *const c_char = std::ptr::null();
            let known = error_name.as_ref().is_some_and(|f| f(code, &mut name) == 0);
            let name = if known && !name.is_null() {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            } else {
                "unknown error".to_owned()
            };
            CudaDriverError::Failed { call, code, name }
        };
        match init(0) {
            0 => {}
            code => return Err(failed("cuInit", code)),
        }
        let mut count: c_int = 0;
        match device_count(&mut count) {
            0 => {}
            code => return Err(failed("cuDeviceGetCount", code)),
        }
        match usize::try_from(count) {
            Ok(count) if count > 0 => Ok(count),
            _ => Err(CudaDriverError::NoDevice),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_is_an_error_that_names_it_and_the_way_out() {
        let err = check("libcuda-that-does-not-exist.so.1").unwrap_err();
        assert!(
            matches!(err, CudaDriverError::NotInstalled { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("libcuda-that-does-not-exist.so.1"),
            "{message}"
        );
        assert!(message.contains("--backend wgpu or flex"), "{message}");
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_library_that_is_not_the_driver_is_refused() {
        // The C library loads everywhere this test runs and has no CUDA entry points.
        let err = check("libc.so.6").unwrap_err();
        assert!(
            matches!(
                err,
                CudaDriverError::MissingSymbol {
                    symbol: "cuInit",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// The other half, for a machine with an NVIDIA GPU (this project's CPU machines and CI
    /// have none): `cargo test --release --bin bisenet cuda_driver -- --ignored`.
    #[test]
    #[ignore = "needs an NVIDIA GPU and its driver"]
    fn the_driver_of_a_machine_with_an_nvidia_gpu_counts_it() {
        let count = check(DRIVER_LIBRARY).unwrap_or_else(|err| panic!("{err}"));
        assert!(count >= 1);
    }
}
