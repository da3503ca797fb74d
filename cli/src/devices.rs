//! The one place that names concrete backends.

use anyhow::bail;
use burn::tensor::Device;
use primer_model::Precision;
use primer_options::{Backend, BackendArgs};

/// The devices of a backend, as this binary was built.
pub trait Devices: Sized {
    /// Whether this binary was built with the backend.
    fn compiled(self) -> bool;

    /// The backend's default device.
    fn device(self) -> anyhow::Result<Device> {
        self.device_at(None)
    }

    /// A device of this backend. `selector` picks one: wgpu `default`, `cpu`, `discrete[:N]`,
    /// `integrated[:N]`, `virtual[:N]`; tch `cpu` or `cuda[:N]`; cuda `N`.
    fn device_at(self, selector: Option<&str>) -> anyhow::Result<Device>;
}

impl Devices for Backend {
    fn compiled(self) -> bool {
        match self {
            Backend::Flex => true,
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Tch => cfg!(feature = "tch"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    fn device_at(self, selector: Option<&str>) -> anyhow::Result<Device> {
        if !self.compiled() {
            bail!(
                "backend {0} is not compiled into this primer: rebuild with `cargo build --release -p primer-cli --features {0}` (see README, Backends)",
                self.name()
            );
        }
        match self {
            Backend::Flex => match selector {
                None | Some("cpu") => Ok(Device::flex()),
                Some(other) => bail!("--device {other} does not exist for flex: it has one device, `cpu`"),
            },
            Backend::Wgpu => wgpu_device(selector),
            Backend::Tch => tch_device(selector),
            Backend::Cuda => cuda_device(selector),
        }
    }
}

/// Refuses, in one line, a `--precision` that `backend` cannot train in on `device`: wgpu has
/// no bfloat16 (WGSL has no such type), and a device that cannot compute in the dtype (Burn's
/// `supports_dtype`: a wgpu adapter without shader-f16, a CUDA card before bfloat16) has neither.
pub fn check_precision(backend: Backend, device: &Device, precision: Precision) -> anyhow::Result<()> {
    let name = precision.name();
    if backend == Backend::Wgpu && precision == Precision::Bf16 {
        bail!(
            "--precision bf16 is not available on wgpu: WGSL has no bfloat16 type; use --precision f16 (where the adapter has shader-f16) or f32, or the tch or cuda backend"
        );
    }
    if !device.supports_dtype(precision.dtype()) {
        bail!(
            "--precision {name} is not available on {} with this device, which cannot compute in {name}: use --precision f32, or a device that can",
            backend.name()
        );
    }
    Ok(())
}

/// The chosen backend of `args` and its device.
pub fn resolve(args: &BackendArgs) -> anyhow::Result<(Backend, Device)> {
    let backend = args.backend()?;
    Ok((backend, backend.device_at(args.device.as_deref())?))
}

/// Splits `name[:N]` into the name and the index (default 0).
fn indexed(selector: &str) -> anyhow::Result<(&str, usize)> {
    match selector.split_once(':') {
        Some((name, index)) => match index.parse() {
            Ok(index) => Ok((name, index)),
            Err(_) => bail!("--device {selector}: `{index}` is not a device index"),
        },
        None => Ok((selector, 0)),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device(selector: Option<&str>) -> anyhow::Result<Device> {
    wgpu_device_and_adapter(selector).map(|(device, _)| device)
}

/// A wgpu device and the adapter behind it: its name and graphics API.
#[cfg(feature = "wgpu")]
pub fn wgpu_device_and_adapter(selector: Option<&str>) -> anyhow::Result<(Device, String)> {
    use burn::tensor::DeviceKind;
    let (name, index) = indexed(selector.unwrap_or("default"))?;
    let kind = match name {
        "default" => DeviceKind::DefaultDevice,
        "cpu" => DeviceKind::Cpu,
        "discrete" => DeviceKind::DiscreteGpu(index),
        "integrated" => DeviceKind::IntegratedGpu(index),
        "virtual" => DeviceKind::VirtualGpu(index),
        other => bail!(
            "--device {other} is not a wgpu device: use default, cpu, discrete[:N], integrated[:N] or virtual[:N]"
        ),
    };
    match Device::wgpu_options().device_kind(kind).init_with_setup() {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            Ok((device, format!("{} ({:?})", info.name, info.backend)))
        }
        Err(error) => bail!(
            "wgpu found no usable adapter ({}): install a Vulkan driver, or Mesa's software one with `apt-get install mesa-vulkan-drivers` (scripts/setup-wgpu)",
            error.to_string().replace('\n', " ")
        ),
    }
}

/// Mesa's Vulkan drivers print an `error:` line each when `XDG_RUNTIME_DIR` is unset, as on
/// headless servers; give them a private one. Call before any thread starts.
#[cfg(all(feature = "wgpu", target_os = "linux"))]
pub fn quiet_mesa() {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("primer-runtime-{uid}"));
    if std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok() || dir.is_dir() {
        // SAFETY: called first thing in `main`, while the process has a single thread.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
}

#[cfg(not(all(feature = "wgpu", target_os = "linux")))]
pub fn quiet_mesa() {}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_: Option<&str>) -> anyhow::Result<Device> {
    unreachable!("checked by Backend::compiled")
}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream; primer keeps it for PyTorch parity.
fn tch_device(selector: Option<&str>) -> anyhow::Result<Device> {
    crate::libtorch::check_version()?;
    crate::libtorch::keep_freed_memory();
    match indexed(selector.unwrap_or("cpu"))? {
        ("cpu", _) => Ok(Device::libtorch()),
        ("cuda", index) => Ok(Device::libtorch_cuda(index)),
        (other, _) => bail!("--device {other} is not a tch device: use cpu or cuda[:N]"),
    }
}

#[cfg(not(feature = "tch"))]
fn tch_device(_: Option<&str>) -> anyhow::Result<Device> {
    unreachable!("checked by Backend::compiled")
}

#[cfg(feature = "cuda")]
fn cuda_device(selector: Option<&str>) -> anyhow::Result<Device> {
    let index = match selector {
        None => 0,
        Some(text) => match text.trim_start_matches("cuda:").parse() {
            Ok(index) => index,
            Err(_) => bail!("--device {text} is not a CUDA device index"),
        },
    };
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_: Option<&str>) -> anyhow::Result<Device> {
    unreachable!("checked by Backend::compiled")
}
