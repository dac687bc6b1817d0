//! One rule from stored pixel values to what is shown and scored, for every image deeper than
//! 8 bits (DICOM, 16-bit PNG/TIFF):
//!
//! 1. stored values become *modality values* (DICOM: Modality LUT Sequence, else rescale slope
//!    and intercept; pixel padding is set aside and shown black);
//! 2. a VOI transform maps them to [0, 1]: the file's own (VOI LUT Sequence items first, then
//!    window centre/width pairs with their VOI LUT function: LINEAR, LINEAR_EXACT, SIGMOID), else
//!    a robust window from the 0.5th to the 99.5th percentile of the non-padding pixels. 8-bit
//!    data with no VOI is used as stored, as a JPEG would be;
//! 3. MONOCHROME1 is inverted (the transform's offset is negated, so a MONOCHROME1 file and its
//!    MONOCHROME2 twin give the same values exactly);
//! 4. the result is quantised to 8 bits (`round(255 y)`), and the model's preprocessing follows.

use image::GrayImage;

/// The lower and upper percentiles of the automatic window.
pub const AUTO_PERCENTILES: (f64, f64) = (0.5, 99.5);

/// How a window's centre and width map values (DICOM PS3.3 C.11.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    pub fn parse(s: &str) -> Option<VoiFunction> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LINEAR" => Some(VoiFunction::Linear),
            "LINEAR_EXACT" => Some(VoiFunction::LinearExact),
            "SIGMOID" => Some(VoiFunction::Sigmoid),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VoiFunction::Linear => "LINEAR",
            VoiFunction::LinearExact => "LINEAR_EXACT",
            VoiFunction::Sigmoid => "SIGMOID",
        }
    }
}

/// A window: centre, width and function, in modality units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiFunction,
}

impl Window {
    /// The value in [0, 1] for `x`; `invert` negates the offset from the centre (MONOCHROME1),
    /// which gives exactly `1 - y` without a rounding difference.
    fn map(&self, x: f64, invert: bool) -> f64 {
        let sign = if invert { -1.0 } else { 1.0 };
        let y = match self.function {
            VoiFunction::Linear => {
                let w = (self.width - 1.0).max(f64::MIN_POSITIVE);
                sign * (x - (self.center - 0.5)) / w + 0.5
            }
            VoiFunction::LinearExact => {
                sign * (x - self.center) / self.width.max(f64::MIN_POSITIVE) + 0.5
            }
            VoiFunction::Sigmoid => {
                let t = sign * (x - self.center) / self.width.max(f64::MIN_POSITIVE);
                1.0 / (1.0 + (-4.0 * t).exp())
            }
        };
        y.clamp(0.0, 1.0)
    }
}

/// A VOI lookup table (DICOM VOI LUT Sequence item).
#[derive(Clone, Debug, PartialEq)]
pub struct VoiLut {
    /// First input value mapped (values below map to the first entry).
    pub first: f64,
    /// Largest output value (2^bits - 1).
    pub max: f64,
    pub data: Vec<f64>,
}

impl VoiLut {
    fn map(&self, x: f64, invert: bool) -> f64 {
        let last = self.data.len().saturating_sub(1);
        let i = (x - self.first).round().clamp(0.0, last as f64) as usize;
        let v = self
            .data
            .get(i)
            .copied()
            .unwrap_or(0.0)
            .clamp(0.0, self.max);
        let v = if invert { self.max - v } else { v };
        v / self.max.max(1.0)
    }
}

/// One of the file's own VOI transforms, with the file's explanation when it gives one.
#[derive(Clone, Debug, PartialEq)]
pub enum Voi {
    Window(Window, Option<String>),
    Lut(VoiLut, Option<String>),
}

impl Voi {
    pub fn describe(&self) -> String {
        match self {
            Voi::Window(w, e) => {
                let f = if w.function == VoiFunction::Linear {
                    String::new()
                } else {
                    format!(" {}", w.function.name())
                };
                let e = e.as_deref().map(|e| format!(" {e}")).unwrap_or_default();
                format!("W {} L {}{f}{e}", num(w.width), num(w.center))
            }
            Voi::Lut(l, e) => format!(
                "VOI LUT ({} entries){}",
                l.data.len(),
                e.as_deref().map(|e| format!(" {e}")).unwrap_or_default()
            ),
        }
    }
}

/// Which transform a view uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Choice {
    /// The file's own transform number `i` (0 = the first).
    File(usize),
    /// The robust percentile window.
    Auto,
    /// From the smallest to the largest value in the image.
    Full,
    /// A window set by hand (LINEAR_EXACT: exactly `width` values wide).
    Manual { center: f64, width: f64 },
}

/// What the viewer chose: a transform and whether to invert on top of the file's own rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub choice: Choice,
    pub invert: bool,
}

/// A gray image deeper than 8 bits, kept in modality values so it can be windowed again.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepGray {
    pub width: u32,
    pub height: u32,
    /// Modality values, row by row; NaN marks pixel padding.
    pub values: Vec<f32>,
    /// The file's VOI transforms, in the order they are offered.
    pub vois: Vec<Voi>,
    /// MONOCHROME1: higher values are darker.
    pub monochrome1: bool,
    /// 8-bit data with the identity modality transform: shown as stored when no VOI is given.
    pub eight_bit: bool,
}

impl DeepGray {
    /// The view the rule gives (step 2 above), with no inversion by the viewer.
    pub fn default_view(&self) -> View {
        let choice = if !self.vois.is_empty() {
            Choice::File(0)
        } else if self.eight_bit {
            Choice::Manual {
                center: 127.5,
                width: 255.0,
            }
        } else {
            Choice::Auto
        };
        View {
            choice,
            invert: false,
        }
    }

    /// The smallest and largest non-padding values (None when every pixel is padding).
    pub fn range(&self) -> Option<(f64, f64)> {
        let mut it = self
            .values
            .iter()
            .filter(|v| !v.is_nan())
            .map(|&v| v as f64);
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }

    /// Nearest-rank percentiles `lo` and `hi` (0 to 100) of the non-padding values, with the
    /// ranks mirrored (floor below, ceil above) so that an inverted image gets the mirrored
    /// window.
    pub fn percentiles(&self, lo: f64, hi: f64) -> Option<(f64, f64)> {
        let mut v: Vec<f32> = self
            .values
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        if v.is_empty() {
            return None;
        }
        let last = (v.len() - 1) as f64;
        let i = ((lo / 100.0) * last).floor() as usize;
        let j = last as usize - i;
        let j = j
            .max(((hi / 100.0) * last).ceil().min(last) as usize)
            .max(i);
        let (_, a, _) = v.select_nth_unstable_by(i, f32::total_cmp);
        let a = *a as f64;
        let (_, b, _) = v.select_nth_unstable_by(j, f32::total_cmp);
        Some((a, *b as f64))
    }

    /// The window a choice amounts to, for the title and for adjusting by hand (None for a
    /// lookup table).
    pub fn window_of(&self, choice: Choice) -> Option<Window> {
        let span = |(lo, hi): (f64, f64)| Window {
            center: (lo + hi) / 2.0,
            width: (hi - lo).max(1.0),
            function: VoiFunction::LinearExact,
        };
        match choice {
            Choice::File(i) => match self.vois.get(i)? {
                Voi::Window(w, _) => Some(*w),
                Voi::Lut(..) => None,
            },
            Choice::Auto => self
                .percentiles(AUTO_PERCENTILES.0, AUTO_PERCENTILES.1)
                .map(span),
            Choice::Full => self.range().map(span),
            Choice::Manual { center, width } => Some(Window {
                center,
                width: width.max(1.0),
                function: VoiFunction::LinearExact,
            }),
        }
    }

    /// Renders with a view: 8-bit gray, padding black.
    pub fn render(&self, view: &View) -> GrayImage {
        let invert = self.monochrome1 != view.invert;
        let lut = match view.choice {
            Choice::File(i) => match self.vois.get(i) {
                Some(Voi::Lut(l, _)) => Some(l),
                _ => None,
            },
            _ => None,
        };
        let window = if lut.is_none() {
            self.window_of(view.choice)
                .or_else(|| self.window_of(Choice::Auto))
        } else {
            None
        };
        let px: Vec<u8> = self
            .values
            .iter()
            .map(|&v| {
                if v.is_nan() {
                    return 0;
                }
                let y = match (lut, &window) {
                    (Some(l), _) => l.map(v as f64, invert),
                    (None, Some(w)) => w.map(v as f64, invert),
                    (None, None) => 0.0,
                };
                (y * 255.0).round().clamp(0.0, 255.0) as u8
            })
            .collect();
        GrayImage::from_raw(self.width, self.height, px)
            .unwrap_or_else(|| GrayImage::new(self.width, self.height))
    }

    /// What a view shows, for the preview's title.
    pub fn describe(&self, view: &View) -> String {
        let what = match view.choice {
            Choice::File(i) => {
                let d = self.vois.get(i).map(Voi::describe).unwrap_or_default();
                if self.vois.len() > 1 {
                    format!("{d} · file {}/{}", i + 1, self.vois.len())
                } else {
                    format!("{d} · file")
                }
            }
            Choice::Auto => self
                .window_of(Choice::Auto)
                .map(|w| format!("W {} L {} · auto", num(w.width), num(w.center)))
                .unwrap_or_else(|| "auto".into()),
            Choice::Full => self
                .window_of(Choice::Full)
                .map(|w| format!("W {} L {} · full range", num(w.width), num(w.center)))
                .unwrap_or_else(|| "full range".into()),
            Choice::Manual { center, width }
                if self.eight_bit && center == 127.5 && width == 255.0 =>
            {
                "8-bit, as stored".to_string()
            }
            Choice::Manual { center, width } => {
                format!("W {} L {} · manual", num(width), num(center))
            }
        };
        if view.invert {
            format!("{what} · inverted")
        } else {
            what
        }
    }
}

/// A number for a title: integers without decimals, others with up to two.
fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(values: Vec<f32>, vois: Vec<Voi>, m1: bool) -> DeepGray {
        DeepGray {
            width: values.len() as u32,
            height: 1,
            values,
            vois,
            monochrome1: m1,
            eight_bit: false,
        }
    }

    fn win(center: f64, width: f64, function: VoiFunction) -> Voi {
        Voi::Window(
            Window {
                center,
                width,
                function,
            },
            None,
        )
    }

    #[test]
    fn linear_window_follows_the_standard_formula() {
        // c = 2048, w = 4096: x <= c - 0.5 - (w-1)/2 = 0 -> 0; x > 4095 -> 255.
        let g = img(
            vec![-10.0, 0.0, 2047.5, 4095.0, 5000.0],
            vec![win(2048.0, 4096.0, VoiFunction::Linear)],
            false,
        );
        let r = g.render(&g.default_view());
        assert_eq!(r.as_raw(), &[0, 0, 128, 255, 255]);
        let exact = img(
            vec![0.0, 50.0, 100.0],
            vec![win(50.0, 100.0, VoiFunction::LinearExact)],
            false,
        );
        assert_eq!(exact.render(&exact.default_view()).as_raw(), &[0, 128, 255]);
        let sig = img(
            vec![50.0],
            vec![win(50.0, 100.0, VoiFunction::Sigmoid)],
            false,
        );
        assert_eq!(sig.render(&sig.default_view()).as_raw(), &[128]);
    }

    #[test]
    fn monochrome1_twins_render_identically_for_every_choice() {
        let k = 4095.0f32;
        let vals: Vec<f32> = (0..500).map(|i| ((i * 37) % 4096) as f32).collect();
        let twin: Vec<f32> = vals.iter().map(|v| k - v).collect();
        for (voi2, voi1) in [
            (vec![], vec![]),
            (
                vec![win(1000.0, 801.0, VoiFunction::Linear)],
                // LINEAR's centre is mirrored with its half-value offset: K + 1 - c.
                vec![win(k as f64 + 1.0 - 1000.0, 801.0, VoiFunction::Linear)],
            ),
            (
                vec![win(1000.0, 800.0, VoiFunction::LinearExact)],
                vec![win(k as f64 - 1000.0, 800.0, VoiFunction::LinearExact)],
            ),
        ] {
            let a = img(vals.clone(), voi2, false);
            let b = img(twin.clone(), voi1, true);
            assert_eq!(
                a.render(&a.default_view()),
                b.render(&b.default_view()),
                "{:?}",
                a.vois
            );
        }
        let a = img(vals.clone(), vec![], false);
        let b = img(twin, vec![], true);
        let full = View {
            choice: Choice::Full,
            invert: false,
        };
        assert_eq!(a.render(&full), b.render(&full));
    }

    #[test]
    fn auto_window_ignores_outliers_and_padding() {
        let mut v: Vec<f32> = (0..1000).map(|i| 1000.0 + i as f32).collect();
        v[0] = 60_000.0; // a hot pixel
        v[1] = f32::NAN; // padding
        let g = img(v, vec![], false);
        let w = g.window_of(Choice::Auto).unwrap();
        assert!(w.center > 1400.0 && w.center < 1600.0, "{w:?}");
        assert!(w.width < 1100.0, "{w:?}");
        let r = g.render(&g.default_view());
        assert_eq!(r.as_raw()[1], 0, "padding is black");
        assert_eq!(r.as_raw()[0], 255, "the hot pixel saturates");
    }

    #[test]
    fn lut_maps_and_inverts() {
        let lut = VoiLut {
            first: 10.0,
            max: 255.0,
            data: vec![0.0, 100.0, 255.0],
        };
        let g = img(vec![0.0, 11.0, 99.0], vec![Voi::Lut(lut, None)], false);
        assert_eq!(g.render(&g.default_view()).as_raw(), &[0, 100, 255]);
        let inv = View {
            choice: Choice::File(0),
            invert: true,
        };
        assert_eq!(g.render(&inv).as_raw(), &[255, 155, 0]);
        assert!(g.describe(&inv).contains("inverted"));
    }

    #[test]
    fn eight_bit_data_without_voi_is_shown_as_stored() {
        let mut g = img((0..=255).map(|v| v as f32).collect(), vec![], false);
        g.eight_bit = true;
        let r = g.render(&g.default_view());
        assert!(r.as_raw().iter().enumerate().all(|(i, &v)| v as usize == i));
    }

    #[test]
    fn describes_views_for_the_title() {
        let g = img(
            vec![0.0, 1.0],
            vec![
                win(40.0, 400.0, VoiFunction::Linear),
                win(300.0, 1500.5, VoiFunction::Sigmoid),
            ],
            false,
        );
        assert_eq!(g.describe(&g.default_view()), "W 400 L 40 · file 1/2");
        let v = View {
            choice: Choice::File(1),
            invert: false,
        };
        assert_eq!(g.describe(&v), "W 1500.5 L 300 SIGMOID · file 2/2");
    }
}
