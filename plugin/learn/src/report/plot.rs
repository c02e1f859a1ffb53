//! `triage report --plot`: two SVGs over the report's windows, oldest left. `cost_per_task` draws
//! each window's requests as bars (right axis) under its cost per task (left axis); `rates` draws
//! routing accuracy, override rate and escalation rate per window with the accuracy and override
//! targets dashed. A window without a value for a series leaves a gap rather than a line across it.
//! Hand-written SVG 1.1 with the eval plot's helpers.

use std::fmt::Write;

use super::{Report, Summary, ACCURACY_TARGET, OVERRIDE_TARGET};
use crate::plot::{escape, marker, polyline, tick_step, Marker};

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 690.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 390.0;
/// Most window labels on the x axis; every k-th window is labelled beyond that.
const MAX_LABELS: usize = 12;

const COST_COLOUR: &str = "#1f77b4";
const VOLUME_COLOUR: &str = "#c7c7c7";
const ACCURACY_COLOUR: &str = "#2ca02c";
const OVERRIDE_COLOUR: &str = "#d62728";
const ESCALATION_COLOUR: &str = "#ff7f0e";
const DASHED: &str = r#" stroke-dasharray="6 4""#;

/// The windows laid out left to right, one slot each.
struct Frame<'a> {
    report: &'a Report,
}

impl Frame<'_> {
    fn slots(&self) -> usize {
        self.report.windows.len().max(1)
    }

    fn slot_width(&self) -> f64 {
        (RIGHT - LEFT) / self.slots() as f64
    }

    fn x(&self, window: usize) -> f64 {
        LEFT + (window as f64 + 0.5) * self.slot_width()
    }

    fn summaries(&self) -> impl Iterator<Item = &Summary> {
        self.report.windows.iter().map(|window| &window.summary)
    }
}

/// A vertical scale from 0 to a round maximum at least `data_max`.
struct Scale {
    max: f64,
    step: f64,
}

impl Scale {
    fn new(data_max: f64) -> Scale {
        let data_max = if data_max.is_finite() && data_max > 0.0 {
            data_max
        } else {
            1.0
        };
        let step = tick_step(data_max, 5.0);
        Scale {
            max: (data_max / step - 1e-9).ceil() * step,
            step,
        }
    }

    fn y(&self, value: f64) -> f64 {
        BOTTOM - value / self.max * (BOTTOM - TOP)
    }

    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let count = (self.max / self.step).round() as usize;
        (0..=count).map(|tick| tick as f64 * self.step)
    }
}

fn open_svg(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="28" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        escape(title)
    );
}

/// The plot's border, the window labels (slanted, thinned to [`MAX_LABELS`]) and the x-axis title.
fn frame_and_windows(out: &mut String, frame: &Frame) {
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let every = frame.report.windows.len().div_ceil(MAX_LABELS).max(1);
    for (index, window) in frame.report.windows.iter().enumerate() {
        if index % every != 0 {
            continue;
        }
        let (x, y) = (frame.x(index), BOTTOM + 14.0);
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-30 {x:.1} {y:.1})">{}</text>"#,
            escape(&window.start)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">window start (UTC), {} windows</text>"#,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 12.0,
        escape(&frame.report.window)
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

/// Ticks, labels and grid lines of one vertical scale, and its title.
fn y_axis(out: &mut String, scale: &Scale, side: Side, label: impl Fn(f64) -> String, title: &str) {
    let (x, anchor, title_x) = match side {
        Side::Left => (LEFT - 8.0, "end", 22.0),
        Side::Right => (RIGHT + 8.0, "start", RIGHT + 60.0),
    };
    for tick in scale.ticks() {
        let y = scale.y(tick);
        if side == Side::Left {
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#e5e5e5"/>"##
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            y + 4.0,
            escape(&label(tick))
        );
    }
    let middle = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        out,
        r#"<text x="{title_x:.1}" y="{middle:.1}" text-anchor="middle" transform="rotate(-90 {title_x:.1} {middle:.1})">{}</text>"#,
        escape(title)
    );
}

/// Lines through consecutive windows that have a value, and a marker on each value.
fn series(out: &mut String, points: &[Option<(f64, f64)>], colour: &str) {
    for run in points.split(Option::is_none) {
        let run: Vec<(f64, f64)> = run.iter().flatten().copied().collect();
        if run.len() >= 2 {
            polyline(out, &run, colour, "");
        }
        for (x, y) in run {
            marker(out, Marker::Circle, x, y, colour, colour);
        }
    }
}

/// One legend entry right of the plot: a line (dashed or not) and its label.
fn legend_entry(out: &mut String, row: usize, colour: &str, dash: &str, label: &str) {
    let (x, y) = (RIGHT + 110.0, TOP + 10.0 + 22.0 * row as f64);
    let _ = writeln!(
        out,
        r#"<line x1="{x}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
        x + 24.0,
        x + 30.0,
        y + 4.0,
        escape(label)
    );
}

/// Cost per task (line, left axis) over requests per window (bars, right axis).
pub fn cost_per_task(report: &Report) -> String {
    let frame = Frame { report };
    let mut out = String::new();
    open_svg(&mut out, "cost per task and volume per window");
    let volume = Scale::new(
        frame
            .summaries()
            .map(|s| s.requests as f64)
            .fold(0.0, f64::max),
    );
    let cost = Scale::new(
        frame
            .summaries()
            .filter_map(|s| s.cost_per_task_usd)
            .fold(0.0, f64::max),
    );
    let decimals = (-cost.step.log10()).ceil().max(0.0) as usize;
    y_axis(
        &mut out,
        &cost,
        Side::Left,
        |v| format!("${v:.decimals$}"),
        "cost per task (USD)",
    );
    y_axis(
        &mut out,
        &volume,
        Side::Right,
        |v| format!("{v:.0}"),
        "requests",
    );
    let bar_width = 0.6 * frame.slot_width();
    for (index, summary) in frame.summaries().enumerate() {
        let top = volume.y(summary.requests as f64);
        let _ = writeln!(
            out,
            r#"<rect x="{:.1}" y="{top:.1}" width="{bar_width:.1}" height="{:.1}" fill="{VOLUME_COLOUR}"/>"#,
            frame.x(index) - bar_width / 2.0,
            BOTTOM - top
        );
    }
    let points: Vec<Option<(f64, f64)>> = frame
        .summaries()
        .enumerate()
        .map(|(index, s)| Some((frame.x(index), cost.y(s.cost_per_task_usd?))))
        .collect();
    series(&mut out, &points, COST_COLOUR);
    frame_and_windows(&mut out, &frame);
    legend_entry(&mut out, 0, COST_COLOUR, "", "cost per task");
    let (x, y) = (RIGHT + 110.0, TOP + 32.0);
    let _ = writeln!(
        out,
        r#"<rect x="{x}" y="{:.1}" width="24" height="10" fill="{VOLUME_COLOUR}"/><text x="{:.1}" y="{:.1}">requests</text>"#,
        y - 5.0,
        x + 30.0,
        y + 4.0
    );
    out.push_str("</svg>\n");
    out
}

/// One rate of a window's summary.
type Rate = fn(&Summary) -> Option<f64>;

/// Routing accuracy, override rate and escalation rate per window, with the targets.
pub fn rates(report: &Report) -> String {
    let frame = Frame { report };
    let mut out = String::new();
    open_svg(
        &mut out,
        "routing accuracy, override and escalation rates per window",
    );
    let scale = Scale {
        max: 1.0,
        step: 0.2,
    };
    y_axis(
        &mut out,
        &scale,
        Side::Left,
        |v| format!("{:.0}%", 100.0 * v),
        "rate",
    );
    for (target, colour) in [
        (ACCURACY_TARGET, ACCURACY_COLOUR),
        (OVERRIDE_TARGET, OVERRIDE_COLOUR),
    ] {
        let y = scale.y(target);
        let _ = writeln!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{colour}" stroke-width="1.5"{DASHED}/>"#
        );
    }
    let rates: [(Rate, &str, &str); 3] = [
        (|s| s.accuracy, ACCURACY_COLOUR, "routing accuracy"),
        (|s| s.override_rate, OVERRIDE_COLOUR, "override rate"),
        (|s| s.escalation_rate, ESCALATION_COLOUR, "escalation rate"),
    ];
    for (rate, colour, _) in rates {
        let points: Vec<Option<(f64, f64)>> = frame
            .summaries()
            .enumerate()
            .map(|(index, s)| Some((frame.x(index), scale.y(rate(s)?))))
            .collect();
        series(&mut out, &points, colour);
    }
    frame_and_windows(&mut out, &frame);
    for (row, (_, colour, label)) in rates.iter().enumerate() {
        legend_entry(&mut out, row, colour, "", label);
    }
    legend_entry(
        &mut out,
        3,
        ACCURACY_COLOUR,
        DASHED,
        &format!("accuracy target {:.0}%", 100.0 * ACCURACY_TARGET),
    );
    legend_entry(
        &mut out,
        4,
        OVERRIDE_COLOUR,
        DASHED,
        &format!("override target {:.0}%", 100.0 * OVERRIDE_TARGET),
    );
    out.push_str("</svg>\n");
    out
}
