//! Choosing where the backbone runs, at run time: a real GPU through wgpu when one answers,
//! else the flex CPU backend. Probing never panics: burn's lazy wgpu device panics at the first
//! operation when there is no adapter, so `wgpu_options().init_with_setup()` is used instead,
//! and a software adapter (llvmpipe/lavapipe) does not count as a GPU for `auto`.

use burn::tensor::Device;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU if one answers, else the CPU (flex).
    Auto,
    /// wgpu, whatever the adapter (fails when none answers).
    Gpu,
    /// burn-flex, the fast pure-Rust CPU backend.
    Cpu,
    /// burn-ndarray (deprecated in burn 0.22, slower; kept for comparison).
    Ndarray,
}

/// The device in use and how to describe it to a person.
#[derive(Clone)]
pub struct Selected {
    pub device: Device,
    /// e.g. `CPU (burn-flex, 2 threads)` or `GPU: NVIDIA H100 80GB HBM3 (Vulkan)`.
    pub description: String,
    pub is_gpu: bool,
    /// Why `auto` did not pick a GPU, when it did not.
    pub note: Option<String>,
}

impl std::fmt::Debug for Selected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

fn cpu_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn flex() -> Selected {
    Selected {
        device: Device::flex(),
        description: format!("CPU (burn-flex, {} threads)", cpu_threads()),
        is_gpu: false,
        note: None,
    }
}

struct Probe {
    device: Device,
    name: String,
    backend: String,
    software: bool,
}

fn probe_wgpu() -> Result<Probe, String> {
    let attempt = std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup());
    match attempt {
        Ok(Ok((device, setup))) => {
            let info = setup.adapter.get_info();
            let software = info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
            Ok(Probe {
                device,
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                software,
            })
        }
        Ok(Err(e)) => Err(format!("no GPU adapter ({e})")),
        Err(_) => Err("the GPU probe panicked".into()),
    }
}

/// Selects the device. Only `gpu` can fail (no adapter at all).
pub fn select(choice: DeviceChoice) -> crate::error::Result<Selected> {
    use crate::error::Kind;
    select_msg(choice).kind(crate::error::Error::Device)
}

fn select_msg(choice: DeviceChoice) -> Result<Selected, String> {
    match choice {
        DeviceChoice::Cpu => Ok(flex()),
        #[allow(deprecated)]
        DeviceChoice::Ndarray => Ok(Selected {
            device: Device::ndarray(),
            description: format!("CPU (burn-ndarray, {} threads)", cpu_threads()),
            is_gpu: false,
            note: None,
        }),
        DeviceChoice::Gpu => {
            let p = probe_wgpu()?;
            let kind = if p.software {
                "software adapter, slower than --device cpu"
            } else {
                "hardware"
            };
            Ok(Selected {
                device: p.device,
                description: format!("GPU: {} ({}, {kind})", p.name, p.backend),
                is_gpu: !p.software,
                note: None,
            })
        }
        DeviceChoice::Auto => match probe_wgpu() {
            Ok(p) if !p.software => Ok(Selected {
                device: p.device,
                description: format!("GPU: {} ({})", p.name, p.backend),
                is_gpu: true,
                note: None,
            }),
            Ok(p) => Ok(Selected {
                note: Some(format!(
                    "only a software GPU adapter ({}); using the CPU",
                    p.name
                )),
                ..flex()
            }),
            Err(e) => Ok(Selected {
                note: Some(format!("{e}; using the CPU")),
                ..flex()
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_never_fails_and_cpu_is_flex() {
        let s = select(DeviceChoice::Auto).unwrap();
        assert!(s.description.starts_with("CPU") || s.description.starts_with("GPU"));
        assert!(
            select(DeviceChoice::Cpu)
                .unwrap()
                .description
                .contains("flex")
        );
    }
}
