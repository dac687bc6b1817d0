//! Which vector instructions the kernels use, chosen at run time.
//!
//! The binary is built for baseline x86-64; the kernels carry AVX-512 and AVX2+FMA versions
//! (`#[target_feature]`) and pick one from what the CPU reports. `OSTEOAI_CPU_ISA=avx2` or
//! `baseline` forces a lower level (never a higher one than the CPU has), so that the fallback
//! paths can be run and tested on an AVX-512 machine.

use std::sync::OnceLock;

/// Instruction-set level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// What every x86-64 (or other) CPU has: SSE2 on x86-64.
    Baseline,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512F (x86-64-v4).
    Avx512,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "AVX2",
            Isa::Avx512 => "AVX-512",
        }
    }

    /// Every level this CPU can run, lowest first.
    pub fn supported() -> Vec<Isa> {
        let top = detected();
        [Isa::Baseline, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| *i <= top)
            .collect()
    }
}

impl std::str::FromStr for Isa {
    type Err = String;
    fn from_str(s: &str) -> Result<Isa, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "baseline" | "sse2" | "scalar" => Ok(Isa::Baseline),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx-512" => Ok(Isa::Avx512),
            other => Err(format!(
                "OSTEOAI_CPU_ISA={other:?}: baseline, avx2 or avx512"
            )),
        }
    }
}

/// The highest level this CPU supports.
pub fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// The level in use: the detected one, or lower when `OSTEOAI_CPU_ISA` asks (a request above
/// what the CPU has is capped; an unreadable value is ignored with the detected level).
pub fn active() -> Isa {
    static ACTIVE: OnceLock<Isa> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let top = detected();
        match std::env::var("OSTEOAI_CPU_ISA")
            .ok()
            .map(|v| v.parse::<Isa>())
        {
            Some(Ok(want)) => want.min(top),
            _ => top,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_parse() {
        assert!(Isa::Baseline < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
        assert_eq!("AVX2".parse::<Isa>(), Ok(Isa::Avx2));
        assert_eq!("avx-512".parse::<Isa>(), Ok(Isa::Avx512));
        assert!("neon".parse::<Isa>().is_err());
        assert!(active() <= detected());
        assert_eq!(Isa::supported()[0], Isa::Baseline);
        assert_eq!(*Isa::supported().last().unwrap(), detected());
    }
}
