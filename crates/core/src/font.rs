//! A 5 x 7 bitmap font for the labels of overlay images and learning-curve plots (no font
//! files, no dependency).

/// Rows of a glyph, top first; bit 4 is the leftmost pixel. Letters are upper case only.
const GLYPHS: &[(char, [u8; 7])] = &[
    ('A', [14, 17, 17, 31, 17, 17, 17]),
    ('B', [30, 17, 17, 30, 17, 17, 30]),
    ('C', [14, 17, 16, 16, 16, 17, 14]),
    ('D', [30, 17, 17, 17, 17, 17, 30]),
    ('E', [31, 16, 16, 30, 16, 16, 31]),
    ('F', [31, 16, 16, 30, 16, 16, 16]),
    ('G', [14, 17, 16, 23, 17, 17, 15]),
    ('H', [17, 17, 17, 31, 17, 17, 17]),
    ('I', [14, 4, 4, 4, 4, 4, 14]),
    ('J', [7, 2, 2, 2, 2, 18, 12]),
    ('K', [17, 18, 20, 24, 20, 18, 17]),
    ('L', [16, 16, 16, 16, 16, 16, 31]),
    ('M', [17, 27, 21, 21, 17, 17, 17]),
    ('N', [17, 17, 25, 21, 19, 17, 17]),
    ('O', [14, 17, 17, 17, 17, 17, 14]),
    ('P', [30, 17, 17, 30, 16, 16, 16]),
    ('Q', [14, 17, 17, 17, 21, 18, 13]),
    ('R', [30, 17, 17, 30, 20, 18, 17]),
    ('S', [15, 16, 16, 14, 1, 1, 30]),
    ('T', [31, 4, 4, 4, 4, 4, 4]),
    ('U', [17, 17, 17, 17, 17, 17, 14]),
    ('V', [17, 17, 17, 17, 17, 10, 4]),
    ('W', [17, 17, 17, 21, 21, 21, 10]),
    ('X', [17, 17, 10, 4, 10, 17, 17]),
    ('Y', [17, 17, 10, 4, 4, 4, 4]),
    ('Z', [31, 1, 2, 4, 8, 16, 31]),
    ('0', [14, 17, 19, 21, 25, 17, 14]),
    ('1', [4, 12, 4, 4, 4, 4, 14]),
    ('2', [14, 17, 1, 2, 4, 8, 31]),
    ('3', [31, 2, 4, 2, 1, 17, 14]),
    ('4', [2, 6, 10, 18, 31, 2, 2]),
    ('5', [31, 16, 30, 1, 1, 17, 14]),
    ('6', [6, 8, 16, 30, 17, 17, 14]),
    ('7', [31, 1, 2, 4, 8, 8, 8]),
    ('8', [14, 17, 17, 14, 17, 17, 14]),
    ('9', [14, 17, 17, 15, 1, 2, 12]),
    ('.', [0, 0, 0, 0, 0, 12, 12]),
    (',', [0, 0, 0, 0, 12, 4, 8]),
    (':', [0, 12, 12, 0, 12, 12, 0]),
    ('=', [0, 0, 31, 0, 31, 0, 0]),
    ('-', [0, 0, 0, 31, 0, 0, 0]),
    ('+', [0, 4, 4, 31, 4, 4, 0]),
    ('%', [24, 25, 2, 4, 8, 19, 3]),
    ('(', [2, 4, 8, 8, 8, 4, 2]),
    (')', [8, 4, 2, 2, 2, 4, 8]),
    ('/', [0, 1, 2, 4, 8, 16, 0]),
    ('_', [0, 0, 0, 0, 0, 0, 31]),
    ('<', [2, 4, 8, 16, 8, 4, 2]),
    ('>', [8, 4, 2, 1, 2, 4, 8]),
    ('\'', [4, 4, 0, 0, 0, 0, 0]),
    ('?', [14, 17, 1, 2, 4, 0, 4]),
];

/// Width and height of a glyph cell in font pixels (one column of spacing).
pub const CELL: (u32, u32) = (6, 8);

/// The glyph of a character (lower case as upper case; unknown characters as `?`, space blank).
pub fn glyph(c: char) -> [u8; 7] {
    if c == ' ' {
        return [0; 7];
    }
    let u = c.to_ascii_uppercase();
    GLYPHS
        .iter()
        .find(|(g, _)| *g == u)
        .or_else(|| GLYPHS.iter().find(|(g, _)| *g == '?'))
        .map(|(_, rows)| *rows)
        .unwrap_or([0; 7])
}

/// Calls `set(x, y)` for every lit pixel of `text` drawn at `scale` from `(x0, y0)`.
pub fn draw(text: &str, x0: u32, y0: u32, scale: u32, mut set: impl FnMut(u32, u32)) {
    let s = scale.max(1);
    for (i, c) in text.chars().enumerate() {
        let gx = x0 + i as u32 * CELL.0 * s;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5u32 {
                if bits & (1 << (4 - col)) != 0 {
                    for dy in 0..s {
                        for dx in 0..s {
                            set(gx + col * s + dx, y0 + row as u32 * s + dy);
                        }
                    }
                }
            }
        }
    }
}

/// The width in pixels of `text` at `scale`.
pub fn width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * CELL.0 * scale.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_distinct_and_lower_case_maps_to_upper() {
        for (i, (a, ga)) in GLYPHS.iter().enumerate() {
            for (b, gb) in &GLYPHS[i + 1..] {
                assert_ne!(ga, gb, "{a} and {b} look the same");
            }
        }
        assert_eq!(glyph('p'), glyph('P'));
        assert_eq!(glyph('\u{263A}'), glyph('?'));
        let mut n = 0;
        draw("P=0.5", 0, 0, 2, |_, _| n += 1);
        assert!(n > 0);
        assert_eq!(width("abc", 2), 36);
    }
}
