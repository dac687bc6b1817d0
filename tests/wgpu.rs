//! The GPU path (burn-wgpu), exercised on machines without a GPU through Mesa's software Vulkan
//! driver (lavapipe, from Debian's mesa-vulkan-drivers): `--device gpu` selection and the
//! backbone with the committed weights must give the CPU's features, and `auto` must not pick a
//! software adapter. A small input keeps it quick: on lavapipe every kernel is compiled by LLVM
//! and one 224x224 image takes minutes (see docs/tests.md).

mod common;

use burn::tensor::{Tensor, TensorData};
use osteoai_core::device::{DeviceChoice, select};
use osteoai_core::model::effnet::{FeatureSpec, Pool, Tap};
use osteoai_core::model::import::load_burnpack;

use common::{osteoai, root, run};

#[test]
fn gpu_path_matches_the_cpu() {
    // Fewer autotune candidates: each one is compiled and timed on the software device.
    // SAFETY: set before any thread of this test binary reads it (the GPU runtime starts below).
    unsafe { std::env::set_var("CUBECL_AUTOTUNE_LEVEL", "minimal") };
    let gpu = match select(DeviceChoice::Gpu) {
        Ok(s) => s,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI installs mesa-vulkan-drivers, so wgpu must find an adapter: {e}"
            );
            eprintln!(
                "SKIPPED: no wgpu adapter at all on this machine (install mesa-vulkan-drivers): {e}"
            );
            return;
        }
    };
    println!("wgpu adapter: {}", gpu.description);
    let cpu = select(DeviceChoice::Cpu).unwrap();
    let weights = root().join("models/default/backbone.bpk");
    let spec = FeatureSpec {
        taps: vec![Tap::Head, Tap::Block(10)],
        pools: vec![Pool::Avg, Pool::Max],
        flip_average: true,
    };
    let input: Vec<f32> = (0..3 * 64 * 64)
        .map(|i| ((i as f32) * 0.37).sin() * 2.0)
        .collect();
    let features = |dev: &burn::tensor::Device| {
        let net = load_burnpack(&weights, true, dev).unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [1, 3, 64, 64]), dev);
        net.forward_features(x, &spec)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (a, b) = (features(&cpu.device), features(&gpu.device));
    assert_eq!(a.len(), spec.dim());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    println!("max |wgpu - flex| over {} features: {worst:.2e}", a.len());
    assert!(worst < 1e-3, "wgpu and flex differ by {worst}");
}

#[test]
fn auto_does_not_pick_a_software_adapter() {
    let cache = tempfile::tempdir().unwrap();
    let (code, _, err) = run(osteoai(cache.path()).args([
        "classify",
        "fixtures/demo/val/fracture",
        "--device",
        "auto",
    ]));
    assert_eq!(code, 0, "{err}");
    let line = err.lines().find(|l| l.contains("osteoai: device")).unwrap();
    // Without a hardware GPU auto must choose the CPU; on a GPU machine, a hardware adapter.
    assert!(
        line.contains("CPU (osteoai kernels")
            || (line.contains("GPU:") && !line.contains("software")),
        "{line}"
    );
}
