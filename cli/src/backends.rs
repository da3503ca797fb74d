//! `primer backends`: what this binary can run on, checked.

use burn::tensor::{Device, Tensor, TensorData};

use crate::devices::Devices;
use primer_options::Backend;

/// One backend's state.
#[derive(Debug, serde::Serialize)]
struct Probe {
    backend: &'static str,
    compiled: bool,
    /// What answered (adapter, library), or why nothing did.
    device: String,
    /// Largest difference of a 64×64 matmul from flex's; `None` when it could not run.
    max_abs_diff_vs_flex: Option<f32>,
}

/// A 64×64 matmul of fixed inputs, read back to the host.
fn matmul(device: &Device) -> Vec<f32> {
    let values: Vec<f32> = (0..64 * 64).map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5).collect();
    let a = Tensor::<2>::from_data(TensorData::new(values.clone(), [64, 64]), device);
    let b = Tensor::<2>::from_data(TensorData::new(values, [64, 64]), device).transpose();
    a.matmul(b)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// Runs `f`, turning a panic (a backend that cannot start) into `Err` without printing it.
fn quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(f).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the backend panicked".into())
    });
    std::panic::set_hook(hook);
    result
}

fn describe(backend: Backend) -> anyhow::Result<(Device, String)> {
    match backend {
        Backend::Flex => Ok((backend.device()?, "cpu".into())),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => crate::devices::wgpu_device_and_adapter(None).map(|(d, name)| (d, format!("adapter {name}"))),
        #[cfg(feature = "tch")]
        Backend::Tch => {
            let cuda = quietly(|| {
                let device = Backend::Tch.device_at(Some("cuda:0")).ok()?;
                Some(matmul(&device).len())
            });
            let cuda = if matches!(cuda, Ok(Some(_))) {
                "available"
            } else {
                "not available"
            };
            let device = backend.device()?;
            Ok((
                device,
                format!("libtorch {} (cpu; cuda {cuda})", crate::libtorch::BUILT_FOR),
            ))
        }
        _ => Ok((backend.device()?, "default device".into())),
    }
}

/// Runs `primer backends`; `ranks` is the number of processes this one was launched among.
pub fn run(json: bool, ranks: usize) -> anyhow::Result<()> {
    let reference = matmul(&Device::flex());
    for backend in Backend::ALL {
        let probe = if !backend.compiled() {
            Probe {
                backend: backend.name(),
                compiled: false,
                device: format!("not compiled in (cargo feature `{}`)", backend.name()),
                max_abs_diff_vs_flex: None,
            }
        } else {
            match describe(backend).and_then(|(device, name)| {
                let result = quietly(move || matmul(&device)).map_err(anyhow::Error::msg)?;
                Ok((name, result))
            }) {
                Ok((name, result)) => Probe {
                    backend: backend.name(),
                    compiled: true,
                    device: name,
                    max_abs_diff_vs_flex: Some(
                        result
                            .iter()
                            .zip(&reference)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0.0, f32::max),
                    ),
                },
                Err(error) => Probe {
                    backend: backend.name(),
                    compiled: true,
                    device: format!("no device: {error}"),
                    max_abs_diff_vs_flex: None,
                },
            }
        };
        if json {
            println!("{}", serde_json::to_string(&probe).expect("probes serialize"));
        } else {
            let check = match probe.max_abs_diff_vs_flex {
                Some(diff) if diff < 1e-3 => format!("matmul ok (max |diff| vs flex {diff:.1e})"),
                Some(diff) => format!("matmul DIFFERS from flex by {diff:.1e}"),
                None => "-".into(),
            };
            println!(
                "{:<5} {:<12} {:<60} {check}",
                probe.backend,
                if probe.compiled { "compiled" } else { "-" },
                probe.device
            );
        }
    }
    data_parallel(json, ranks);
    Ok(())
}

/// Says whether data-parallel pre-training on MPI is compiled in, with which MPI library, and
/// how many ranks this process was launched among.
fn data_parallel(json: bool, ranks: usize) {
    let library = primer_distributed::mpi_library();
    if json {
        let line = serde_json::json!({
            "data_parallel": "mpi",
            "compiled": library.is_some(),
            "library": library,
            "world_size": ranks,
        });
        println!("{line}");
        return;
    }
    let (compiled, what) = match library {
        Some(library) => ("compiled", format!("{library}; world size {ranks}")),
        None => ("-", "not compiled in (cargo feature `mpi`)".to_string()),
    };
    println!("{:<5} {compiled:<12} {what}", "mpi");
}
