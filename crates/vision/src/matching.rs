//! Descriptor matching: mutual nearest neighbours in Hamming distance, with a distance ceiling
//! and a ratio test.
//!
//! Every descriptor of one image against every one of the other, twice (as it is and
//! mirrored), for each candidate pair — tens of thousands of pairs in one audit: the audit's
//! hottest loop. One rule in three builds, chosen at run time from CPUID and giving the same
//! matches: AVX-512 with VPOPCNTDQ (eight distances per instruction), POPCNT (every x86-64 CPU
//! since 2008, but not the baseline Rust compiles for), and plain Rust.

use crate::orb::hamming;

/// The nearest and second-nearest distances from one descriptor of `a` to those of `b`, and
/// the index in `b` of the nearest (the first in `b`'s order on ties). `u32::MAX`: none.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Nearest {
    d1: u32,
    d2: u32,
    j1: usize,
}

/// Mutual nearest neighbours `(index in a, index in b)` whose distance is at most
/// `max_hamming` and below `ratio` times the second-nearest's.
pub fn match_descriptors(
    a: &[[u64; 4]],
    b: &[[u64; 4]],
    max_hamming: u32,
    ratio: f32,
) -> Vec<(usize, usize)> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let (fwd, back) = nearest(a, b);
    mutual(&fwd, &back, max_hamming, ratio)
}

/// For each descriptor of `a` its `Nearest` in `b`; for each of `b` the index of its nearest in
/// `a` (the first on ties).
fn nearest(a: &[[u64; 4]], b: &[[u64; 4]]) -> (Vec<Nearest>, Vec<usize>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
        {
            // SAFETY: the CPU has both features, checked just above.
            return unsafe { nearest_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has POPCNT, checked just above.
            return unsafe { nearest_popcnt(a, b) };
        }
    }
    nearest_plain(a, b)
}

fn mutual(fwd: &[Nearest], back: &[usize], max_hamming: u32, ratio: f32) -> Vec<(usize, usize)> {
    fwd.iter()
        .enumerate()
        .filter(|(i, n)| {
            n.d1 <= max_hamming
                && (n.d2 == u32::MAX || (n.d1 as f32) < ratio * n.d2 as f32)
                && back[n.j1] == *i
        })
        .map(|(i, n)| (i, n.j1))
        .collect()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn nearest_popcnt(a: &[[u64; 4]], b: &[[u64; 4]]) -> (Vec<Nearest>, Vec<usize>) {
    nearest_plain(a, b)
}

#[inline(always)]
fn nearest_plain(a: &[[u64; 4]], b: &[[u64; 4]]) -> (Vec<Nearest>, Vec<usize>) {
    let mut back = vec![(u32::MAX, 0usize); b.len()];
    let mut fwd = Vec::with_capacity(a.len());
    for (i, da) in a.iter().enumerate() {
        let mut n = Nearest {
            d1: u32::MAX,
            d2: u32::MAX,
            j1: 0,
        };
        for (j, (db, bb)) in b.iter().zip(back.iter_mut()).enumerate() {
            let d = hamming(da, db);
            if d < n.d1 {
                n.d2 = n.d1;
                n.d1 = d;
                n.j1 = j;
            } else if d < n.d2 {
                n.d2 = d;
            }
            if d < bb.0 {
                *bb = (d, i);
            }
        }
        fwd.push(n);
    }
    (fwd, back.into_iter().map(|(_, i)| i).collect())
}

/// `nearest_plain` eight descriptors of `b` at a time: `b` laid out word by word (word `k` of
/// `b[8q..8q + 8]` in one vector), one lane per descriptor. Each lane keeps the two smallest
/// distances it saw and the first index of the smallest; the lanes are merged at the end of
/// each descriptor of `a`, which gives exactly the plain loop's answer, ties included.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn nearest_avx512(a: &[[u64; 4]], b: &[[u64; 4]]) -> (Vec<Nearest>, Vec<usize>) {
    use std::arch::x86_64::*;
    // Added to the lanes past `b`'s end: farther than any real distance (at most 256).
    const FAR: u64 = 1 << 40;
    let blocks = b.len().div_ceil(8);
    let mut words = vec![0u64; blocks * 32];
    for (j, d) in b.iter().enumerate() {
        for (k, w) in d.iter().enumerate() {
            words[(j / 8) * 32 + k * 8 + j % 8] = *w;
        }
    }
    let mut pad = vec![0u64; blocks * 8];
    for p in &mut pad[b.len()..] {
        *p = FAR;
    }
    // For each descriptor of `b`: the nearest distance so far and its index in `a`.
    let mut back_d = vec![u64::MAX; blocks * 8];
    let mut back_i = vec![0u64; blocks * 8];
    let mut fwd = Vec::with_capacity(a.len());
    // SAFETY (the block): every pointer is into `words`, `pad`, `back_d` or `back_i` at an
    // offset below `blocks * 32` or `blocks * 8` words, as allocated above.
    unsafe {
        let lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        for (i, da) in a.iter().enumerate() {
            let w = da.map(|x| _mm512_set1_epi64(x as i64));
            let iv = _mm512_set1_epi64(i as i64);
            let mut m1 = _mm512_set1_epi64(-1);
            let mut m2 = m1;
            let mut j1 = _mm512_setzero_si512();
            for q in 0..blocks {
                let s = words.as_ptr().add(q * 32);
                let mut d = _mm512_loadu_si512(pad.as_ptr().add(q * 8) as *const _);
                for (k, wk) in w.iter().enumerate() {
                    let x = _mm512_xor_si512(*wk, _mm512_loadu_si512(s.add(k * 8) as *const _));
                    d = _mm512_add_epi64(d, _mm512_popcnt_epi64(x));
                }
                let jv = _mm512_add_epi64(lanes, _mm512_set1_epi64((q * 8) as i64));
                let lt1 = _mm512_cmplt_epu64_mask(d, m1);
                m2 = _mm512_mask_blend_epi64(lt1, _mm512_min_epu64(m2, d), m1);
                m1 = _mm512_mask_blend_epi64(lt1, m1, d);
                j1 = _mm512_mask_blend_epi64(lt1, j1, jv);
                let bd = back_d.as_mut_ptr().add(q * 8);
                let bi = back_i.as_mut_ptr().add(q * 8);
                let cur = _mm512_loadu_si512(bd as *const _);
                let better = _mm512_cmplt_epu64_mask(d, cur);
                _mm512_storeu_si512(bd as *mut _, _mm512_mask_blend_epi64(better, cur, d));
                let ci = _mm512_loadu_si512(bi as *const _);
                _mm512_storeu_si512(bi as *mut _, _mm512_mask_blend_epi64(better, ci, iv));
            }
            let (mut l1, mut l2, mut lj) = ([0u64; 8], [0u64; 8], [0u64; 8]);
            _mm512_storeu_si512(l1.as_mut_ptr() as *mut _, m1);
            _mm512_storeu_si512(l2.as_mut_ptr() as *mut _, m2);
            _mm512_storeu_si512(lj.as_mut_ptr() as *mut _, j1);
            let (d1, j) = (0..8).map(|l| (l1[l], lj[l])).min().expect("eight lanes");
            let mut all = [l1, l2].concat();
            all.sort_unstable();
            let real = |v: u64| if v >= FAR { u32::MAX } else { v as u32 };
            fwd.push(Nearest {
                d1: real(d1),
                d2: real(all[1]),
                j1: j as usize,
            });
        }
    }
    let back = back_i[..b.len()].iter().map(|&i| i as usize).collect();
    (fwd, back)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    #[test]
    fn finds_noisy_copies_and_not_unrelated_descriptors() {
        let mut next = rng(0x1234_5678_9ABC_DEF0);
        let a: Vec<[u64; 4]> = (0..300).map(|_| [next(), next(), next(), next()]).collect();
        // The first 200 again with about 8 of 256 bits flipped, then 100 unrelated ones.
        let mut b: Vec<[u64; 4]> = a[..200]
            .iter()
            .map(|d| {
                let mut d = *d;
                d[1] ^= next() & next() & next();
                d
            })
            .collect();
        b.extend((0..100).map(|_| [next(), next(), next(), next()]));
        let m = match_descriptors(&a, &b, 80, 0.85);
        assert!(m.len() >= 190, "{} matches", m.len());
        assert!(m.iter().all(|&(i, j)| i == j), "{m:?}");
        assert!(match_descriptors(&a, &[], 80, 0.85).is_empty());
    }

    /// Every build this CPU runs gives the plain loop's answer, on lengths that leave lanes
    /// empty and on descriptors with few bits set (many ties).
    #[test]
    fn every_build_agrees_with_the_plain_loop_ties_included() {
        let mut next = rng(7);
        for (na, nb, sparse) in [
            (1, 1, false),
            (5, 3, true),
            (40, 9, true),
            (300, 257, false),
        ] {
            let mut draw = || {
                let v = [next(), next(), next(), next()];
                if sparse {
                    v.map(|x| x & next() & next() & next())
                } else {
                    v
                }
            };
            let a: Vec<[u64; 4]> = (0..na).map(|_| draw()).collect();
            let b: Vec<[u64; 4]> = (0..nb).map(|_| draw()).collect();
            let plain = nearest_plain(&a, &b);
            assert_eq!(nearest(&a, &b), plain, "{na} x {nb}");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("popcnt") {
                    assert_eq!(unsafe { nearest_popcnt(&a, &b) }, plain);
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
                {
                    assert_eq!(unsafe { nearest_avx512(&a, &b) }, plain, "{na} x {nb}");
                } else {
                    eprintln!("no AVX-512 VPOPCNTDQ on this CPU: its build not compared");
                }
            }
        }
    }
}
