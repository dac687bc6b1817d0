//! Choosing where the backbone runs, at run time: a real GPU through wgpu when one answers,
//! else the flex CPU backend. Probing never panics: burn's lazy wgpu device panics at the first
//! operation when there is no adapter, so `wgpu_options().init_with_setup()` is used instead,
//! and a software adapter (llvmpipe/lavapipe) does not count as a GPU for `auto`.

use burn::tensor::Device;

/// Where the backbone runs: `auto`, `cpu`, `flex`, `ndarray`, `gpu` or `gpu:K` (the K-th
/// hardware adapter of `osteoai devices`, counting from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU if one answers, else the CPU (flex).
    Auto,
    /// wgpu, whatever the adapter (fails when none answers).
    Gpu,
    /// The K-th hardware GPU adapter, as `osteoai devices` lists them.
    GpuIndex(usize),
    /// osteoai's own CPU kernels (`osteoai-kernels`: NHWC, fused epilogues, AVX-512/AVX2
    /// chosen at run time) on the burn model's weights.
    Cpu,
    /// burn-flex, burn's pure-Rust CPU backend, on standard ops (for comparison).
    Flex,
    /// burn-ndarray (deprecated in burn 0.22, slower; kept for comparison).
    Ndarray,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "auto" => DeviceChoice::Auto,
            "gpu" => DeviceChoice::Gpu,
            "cpu" => DeviceChoice::Cpu,
            "flex" => DeviceChoice::Flex,
            "ndarray" => DeviceChoice::Ndarray,
            _ => match t.strip_prefix("gpu:").map(str::parse::<usize>) {
                Some(Ok(k)) => DeviceChoice::GpuIndex(k),
                _ => {
                    return Err(format!(
                        "device {s:?}: auto, cpu, flex, ndarray, gpu or gpu:K (K from `osteoai devices`)"
                    ));
                }
            },
        })
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Gpu => f.write_str("gpu"),
            DeviceChoice::GpuIndex(k) => write!(f, "gpu:{k}"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Flex => f.write_str("flex"),
            DeviceChoice::Ndarray => f.write_str("ndarray"),
        }
    }
}

/// One wgpu adapter of this machine.
#[derive(Clone, Debug)]
pub struct Adapter {
    pub name: String,
    pub backend: String,
    /// `discrete`, `integrated`, `virtual`, `cpu` (software) or `other`.
    pub kind: &'static str,
    pub driver: String,
    /// `gpu:K` for hardware adapters.
    pub gpu_index: Option<usize>,
    /// How burn selects it.
    selector: Option<burn::tensor::DeviceKind>,
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// The wgpu adapters of the graphics API burn would use here (the first of Vulkan, Metal,
/// DirectX 12, OpenGL that has any), in burn's order: hardware ones numbered `gpu:0`, `gpu:1`…
pub fn adapters() -> Vec<Adapter> {
    use burn::tensor::wgpu::wgpu;
    let listed = std::panic::catch_unwind(|| {
        for backend in [
            wgpu::Backend::Vulkan,
            wgpu::Backend::Metal,
            wgpu::Backend::Dx12,
            wgpu::Backend::Gl,
        ] {
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                backends: backend.into(),
                ..wgpu::InstanceDescriptor::new_without_display_handle()
            });
            let found: Vec<wgpu::AdapterInfo> =
                block_on(instance.enumerate_adapters(backend.into()))
                    .iter()
                    .map(|a| a.get_info())
                    .collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    })
    .unwrap_or_default();
    let (mut per_type, mut hardware) = ([0usize; 3], 0usize);
    listed
        .into_iter()
        .map(|info| {
            let (kind, slot) = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => ("discrete", Some(0)),
                wgpu::DeviceType::IntegratedGpu => ("integrated", Some(1)),
                wgpu::DeviceType::VirtualGpu => ("virtual", Some(2)),
                wgpu::DeviceType::Cpu => ("cpu", None),
                wgpu::DeviceType::Other => ("other", None),
            };
            let selector = slot.map(|t| {
                let n = per_type[t];
                per_type[t] += 1;
                match t {
                    0 => burn::tensor::DeviceKind::DiscreteGpu(n),
                    1 => burn::tensor::DeviceKind::IntegratedGpu(n),
                    _ => burn::tensor::DeviceKind::VirtualGpu(n),
                }
            });
            let gpu_index = slot.map(|_| {
                hardware += 1;
                hardware - 1
            });
            Adapter {
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                kind,
                driver: format!("{} {}", info.driver, info.driver_info)
                    .trim()
                    .to_string(),
                gpu_index,
                selector,
            }
        })
        .collect()
}

/// The device in use and how to describe it to a person.
#[derive(Clone)]
pub struct Selected {
    pub device: Device,
    /// e.g. `CPU (burn-flex, 2 threads)` or `GPU: NVIDIA H100 80GB HBM3 (Vulkan)`.
    pub description: String,
    pub is_gpu: bool,
    /// The backbone runs on osteoai's CPU kernels (weights loaded on `device`, burn-flex).
    pub native: bool,
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

/// burn-flex on standard ops.
pub fn flex() -> Selected {
    Selected {
        device: Device::flex(),
        description: format!("CPU (burn-flex, {} threads)", cpu_threads()),
        is_gpu: false,
        native: false,
        note: None,
    }
}

/// osteoai's CPU kernels, at the vector level this CPU has (or `OSTEOAI_CPU_ISA` asks for).
pub fn cpu() -> Selected {
    Selected {
        description: format!(
            "CPU (osteoai kernels, {}, {} threads)",
            osteoai_kernels::isa::active().name(),
            cpu_threads()
        ),
        native: true,
        ..flex()
    }
}

struct Probe {
    device: Device,
    name: String,
    backend: String,
    software: bool,
}

fn probe_wgpu() -> Result<Probe, String> {
    probe_kind(None)
}

fn probe_kind(kind: Option<burn::tensor::DeviceKind>) -> Result<Probe, String> {
    let attempt = std::panic::catch_unwind(|| match kind {
        Some(k) => Device::wgpu_options().device_kind(k).init_with_setup(),
        None => Device::wgpu_options().init_with_setup(),
    });
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
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Flex => Ok(flex()),
        #[allow(deprecated)]
        DeviceChoice::Ndarray => Ok(Selected {
            device: Device::ndarray(),
            description: format!("CPU (burn-ndarray, {} threads)", cpu_threads()),
            is_gpu: false,
            native: false,
            note: None,
        }),
        DeviceChoice::GpuIndex(k) => {
            let all = adapters();
            let hw: Vec<&Adapter> = all.iter().filter(|a| a.gpu_index.is_some()).collect();
            let a = hw.get(k).ok_or_else(|| {
                format!(
                    "gpu:{k}: this machine has {} hardware GPU adapter{} (see `osteoai devices`)",
                    hw.len(),
                    if hw.len() == 1 { "" } else { "s" }
                )
            })?;
            let p = probe_kind(a.selector.clone())?;
            Ok(Selected {
                device: p.device,
                description: format!("GPU {k}: {} ({})", p.name, p.backend),
                is_gpu: true,
                native: false,
                note: None,
            })
        }
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
                native: false,
                note: None,
            })
        }
        DeviceChoice::Auto => match probe_wgpu() {
            Ok(p) if !p.software => Ok(Selected {
                device: p.device,
                description: format!("GPU: {} ({})", p.name, p.backend),
                is_gpu: true,
                native: false,
                note: None,
            }),
            Ok(p) => Ok(Selected {
                note: Some(format!(
                    "only a software GPU adapter ({}); using the CPU",
                    p.name
                )),
                ..cpu()
            }),
            Err(e) => Ok(Selected {
                note: Some(format!("{e}; using the CPU")),
                ..cpu()
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print() {
        for s in ["auto", "gpu", "gpu:3", "cpu", "flex", "ndarray"] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap().to_string(), s);
        }
        assert_eq!(
            "GPU:1".parse::<DeviceChoice>(),
            Ok(DeviceChoice::GpuIndex(1))
        );
        assert!(
            "gpu:x"
                .parse::<DeviceChoice>()
                .unwrap_err()
                .contains("gpu:K")
        );
        assert!("tpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn a_gpu_index_past_the_adapters_is_a_clear_error() {
        let hw = adapters().iter().filter(|a| a.gpu_index.is_some()).count();
        let e = select(DeviceChoice::GpuIndex(hw + 7))
            .unwrap_err()
            .to_string();
        assert!(e.contains("osteoai devices"), "{e}");
    }

    #[test]
    fn auto_never_fails_and_cpu_is_the_kernels() {
        let s = select(DeviceChoice::Auto).unwrap();
        assert!(s.description.starts_with("CPU") || s.description.starts_with("GPU"));
        assert!(s.is_gpu || s.native, "auto without a GPU runs the kernels");
        let cpu = select(DeviceChoice::Cpu).unwrap();
        assert!(cpu.native && cpu.description.contains("osteoai kernels"));
        let flex = select(DeviceChoice::Flex).unwrap();
        assert!(!flex.native && flex.description.contains("burn-flex"));
    }
}
