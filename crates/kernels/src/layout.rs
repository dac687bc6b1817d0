//! Model input layout: 8-bit pixels to normalised channel-first floats in one pass.

/// `out[c * n + i] = px[i][c] * scale[c] - shift[c]` for `n` pixels of `channels` (1 or 3)
/// bytes each; one channel is repeated into all three (gray as RGB). `out` has `3 * n` values.
pub fn to_chw(px: &[u8], channels: usize, scale: [f32; 3], shift: [f32; 3], out: &mut [f32]) {
    assert!(channels == 1 || channels == 3, "1 or 3 channels");
    let n = px.len() / channels;
    assert_eq!(out.len(), 3 * n, "CHW output");
    let (r, rest) = out.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    if channels == 1 {
        for (i, &v) in px.iter().enumerate() {
            let v = v as f32;
            r[i] = v * scale[0] - shift[0];
            g[i] = v * scale[1] - shift[1];
            b[i] = v * scale[2] - shift[2];
        }
    } else {
        for (i, p) in px.chunks_exact(3).enumerate() {
            r[i] = p[0] as f32 * scale[0] - shift[0];
            g[i] = p[1] as f32 * scale[1] - shift[1];
            b[i] = p[2] as f32 * scale[2] - shift[2];
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gray_is_repeated_and_rgb_is_split() {
        let (scale, shift) = ([1.0, 2.0, 3.0], [0.5, 0.0, 1.0]);
        let mut out = vec![0f32; 6];
        super::to_chw(&[10, 20], 1, scale, shift, &mut out);
        assert_eq!(out, [9.5, 19.5, 20.0, 40.0, 29.0, 59.0]);
        super::to_chw(&[1, 2, 3, 4, 5, 6], 3, scale, shift, &mut out);
        assert_eq!(out, [0.5, 3.5, 4.0, 10.0, 8.0, 17.0]);
    }
}
