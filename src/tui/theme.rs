//! Colours, or none when `NO_COLOR` is set (https://no-color.org): then only bold, reverse and
//! underline carry meaning.

use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
    pub palette: Palette,
}

/// The colours of `[colors]` in the configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Palette {
    pub title: Color,
    pub warning: Color,
    pub good: Color,
    pub bad: Color,
    pub dim: Color,
    pub selected_bg: Color,
    pub selected_fg: Color,
    pub focus: Color,
    pub positive: Color,
    pub negative: Color,
}

impl Default for Palette {
    fn default() -> Palette {
        Palette {
            title: Color::Cyan,
            warning: Color::Yellow,
            good: Color::Green,
            bad: Color::Red,
            dim: Color::DarkGray,
            selected_bg: Color::Blue,
            selected_fg: Color::White,
            focus: Color::Yellow,
            positive: Color::LightRed,
            negative: Color::LightGreen,
        }
    }
}

impl Theme {
    /// Colours on unless `NO_COLOR` is set.
    pub fn new(color: bool) -> Theme {
        Theme {
            color,
            palette: Palette::default(),
        }
    }

    pub fn from_env() -> Theme {
        Theme::new(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
    }

    /// Colours named in the configuration replace the defaults.
    pub fn with_colors(mut self, colors: &[(String, Color)]) -> Theme {
        let p = &mut self.palette;
        for (name, c) in colors {
            let slot = match name.as_str() {
                "title" => &mut p.title,
                "warning" => &mut p.warning,
                "good" => &mut p.good,
                "bad" => &mut p.bad,
                "dim" => &mut p.dim,
                "selected_bg" => &mut p.selected_bg,
                "selected_fg" => &mut p.selected_fg,
                "focus" => &mut p.focus,
                "positive" => &mut p.positive,
                "negative" => &mut p.negative,
                _ => continue,
            };
            *slot = *c;
        }
        self
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn title(&self) -> Style {
        self.fg(self.palette.title).add_modifier(Modifier::BOLD)
    }
    pub fn warning(&self) -> Style {
        self.fg(self.palette.warning).add_modifier(Modifier::BOLD)
    }
    pub fn good(&self) -> Style {
        self.fg(self.palette.good)
    }
    pub fn bad(&self) -> Style {
        self.fg(self.palette.bad).add_modifier(Modifier::BOLD)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(self.palette.dim)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }
    pub fn selected(&self) -> Style {
        if self.color {
            Style::new()
                .bg(self.palette.selected_bg)
                .fg(self.palette.selected_fg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
    pub fn focus(&self) -> Style {
        self.fg(self.palette.focus)
    }
    pub fn positive(&self) -> Style {
        self.fg(self.palette.positive)
    }
    pub fn negative(&self) -> Style {
        self.fg(self.palette.negative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_default_is_the_default() {
        use crate::options::config::{COLORS, Config, DEFAULT_TOML, parse};
        let mut c = parse(DEFAULT_TOML).unwrap();
        // Its colours are the built-in palette, named.
        assert_eq!(c.colors.len(), COLORS.len());
        assert_eq!(
            Theme::new(true).with_colors(&c.colors).palette,
            Palette::default()
        );
        c.colors.clear();
        assert_eq!(c, Config::default());
        assert_eq!(parse("").unwrap(), Config::default());
    }
}
