//! `triage eval --plot`: one SVG per dataset, quality against cost relative to always-top-tier. The
//! router's score sweep and the prompt-length sweep (cheapest to dearest tier of each row), the random
//! router's straight line, and points for each always-tier policy, the router's operating point,
//! prompt length at the router's shares and the oracle. Hand-written SVG 1.1, no scripts or fonts.

use std::fmt::Write;

use crate::eval::{Report, LENGTH_SAME_SHARES, ORACLE, ROUTER};
use crate::metrics::SweepPoint;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 640.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 460.0;
/// Points drawn per sweep curve (the curve is linear between vertices, so sampling is exact there).
const SAMPLES: usize = 200;

const ROUTER_COLOUR: &str = "#1f77b4";
const LENGTH_COLOUR: &str = "#ff7f0e";
const RANDOM_COLOUR: &str = "#7f7f7f";
const ORACLE_COLOUR: &str = "#2ca02c";
const OPERATING_COLOUR: &str = "#d62728";

/// The curve's (cost, quality) at `SAMPLES + 1` evenly spaced shares of strong calls.
fn sample(points: &[SweepPoint]) -> Vec<(f64, f64)> {
    if points.len() < 2 {
        return points.iter().map(|p| (p.cost, p.quality)).collect();
    }
    let mut segment = 0;
    (0..=SAMPLES)
        .map(|step| {
            let share = step as f64 / SAMPLES as f64;
            while segment + 2 < points.len() && points[segment + 1].share_strong < share {
                segment += 1;
            }
            let (a, b) = (points[segment], points[segment + 1]);
            let span = b.share_strong - a.share_strong;
            let t = if span > 0.0 {
                ((share - a.share_strong) / span).clamp(0.0, 1.0)
            } else {
                1.0
            };
            (
                a.cost + t * (b.cost - a.cost),
                a.quality + t * (b.quality - a.quality),
            )
        })
        .collect()
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most about `count` ticks over `span`.
pub(crate) fn tick_step(span: f64, count: f64) -> f64 {
    let raw = (span / count).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Axes {
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Axes {
    fn x(&self, value: f64) -> f64 {
        LEFT + (value / self.x_max) * (RIGHT - LEFT)
    }

    fn y(&self, value: f64) -> f64 {
        BOTTOM - (value - self.y_min) / (self.y_max - self.y_min) * (BOTTOM - TOP)
    }
}

/// One point marker: a square, circle, diamond or triangle.
#[derive(Clone, Copy)]
pub(crate) enum Marker {
    Square,
    Circle,
    Diamond,
    Triangle,
}

pub(crate) fn marker(out: &mut String, kind: Marker, x: f64, y: f64, fill: &str, stroke: &str) {
    let _ = match kind {
        Marker::Square => writeln!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
            x - 4.5,
            y - 4.5
        ),
        Marker::Circle => writeln!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{fill}" stroke="{stroke}" stroke-width="2"/>"#
        ),
        Marker::Diamond => writeln!(
            out,
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
            x,
            y - 7.0,
            x + 7.0,
            y,
            x,
            y + 7.0,
            x - 7.0,
            y
        ),
        Marker::Triangle => writeln!(
            out,
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
            x,
            y - 7.0,
            x + 6.5,
            y + 5.0,
            x - 6.5,
            y + 5.0
        ),
    };
}

pub(crate) fn polyline(out: &mut String, points: &[(f64, f64)], colour: &str, dash: &str) {
    let coordinates: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
        coordinates.join(" ")
    );
}

/// The report's cost-quality plot as a standalone SVG document.
pub fn render(report: &Report) -> String {
    let top_cost = report
        .policy(&format!("always-{}", report.top_tier))
        .map_or(1.0, |policy| policy.cost_usd);
    let relative = |cost: f64| {
        if top_cost > 0.0 {
            cost / top_cost
        } else {
            0.0
        }
    };
    let to_plot = |points: &[SweepPoint]| -> Vec<(f64, f64)> {
        sample(points)
            .into_iter()
            .map(|(c, q)| (relative(c), q))
            .collect()
    };
    let router_curve = to_plot(&report.curves.router);
    let length_curve = to_plot(&report.curves.prompt_length);
    let random_line: Vec<(f64, f64)> = if report.curves.router.is_empty() {
        Vec::new()
    } else {
        report
            .curves
            .random
            .iter()
            .map(|p| (relative(p.cost), p.quality))
            .collect()
    };
    let always: Vec<(String, f64, f64)> = report
        .policies
        .iter()
        .filter_map(|policy| {
            let tier = policy.name.strip_prefix("always-")?;
            Some((tier.to_string(), policy.cost_vs_top, policy.quality))
        })
        .collect();
    let point_of = |name: &str| {
        report
            .policy(name)
            .map(|policy| (policy.cost_vs_top, policy.quality))
    };
    let operating = point_of(ROUTER);
    let length_point = point_of(LENGTH_SAME_SHARES);
    let oracle = point_of(ORACLE);

    let all_points: Vec<(f64, f64)> = router_curve
        .iter()
        .chain(&length_curve)
        .chain(&random_line)
        .copied()
        .chain(always.iter().map(|(_, x, y)| (*x, *y)))
        .chain([operating, length_point, oracle].into_iter().flatten())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let x_data = all_points.iter().map(|p| p.0).fold(1.0, f64::max);
    let y_low = all_points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_high = all_points
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let (y_low, y_high) = if y_low.is_finite() && y_high > y_low {
        (y_low, y_high)
    } else {
        (0.0, 1.0)
    };
    let x_step = tick_step(x_data, 6.0);
    let y_step = tick_step(y_high - y_low, 6.0);
    let axes = Axes {
        x_max: (x_data / x_step - 1e-9).ceil() * x_step,
        y_min: (y_low / y_step + 1e-9).floor() * y_step,
        y_max: (y_high / y_step - 1e-9).ceil() * y_step,
    };

    let mut out = String::new();
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
        r#"<text x="{:.1}" y="28" text-anchor="middle" font-size="15" font-weight="bold">{}: quality vs cost ({} rows)</text>"#,
        (LEFT + RIGHT) / 2.0,
        escape(&report.dataset),
        report.rows
    );

    // Grid, ticks and tick labels.
    let mut tick = 0.0;
    while tick <= axes.x_max + x_step / 1e6 {
        let x = axes.x(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="#e5e5e5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{:.0}%</text>"##,
            BOTTOM + 18.0,
            tick * 100.0
        );
        tick += x_step;
    }
    let decimals = if y_step >= 0.1 {
        1
    } else if y_step >= 0.01 {
        2
    } else {
        3
    };
    let mut tick = axes.y_min;
    while tick <= axes.y_max + y_step / 1e6 {
        let y = axes.y(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{tick:.decimals$}</text>"##,
            LEFT - 8.0,
            y + 4.0
        );
        tick += y_step;
    }
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">cost per request relative to always-{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 40.0,
        escape(&report.top_tier)
    );
    let _ = writeln!(
        out,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">mean quality</text>"#,
        (TOP + BOTTOM) / 2.0,
        (TOP + BOTTOM) / 2.0
    );

    let to_screen = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|(x, y)| (axes.x(*x), axes.y(*y)))
            .collect()
    };
    polyline(
        &mut out,
        &to_screen(&random_line),
        RANDOM_COLOUR,
        r#" stroke-dasharray="6 4""#,
    );
    polyline(&mut out, &to_screen(&length_curve), LENGTH_COLOUR, "");
    polyline(&mut out, &to_screen(&router_curve), ROUTER_COLOUR, "");
    for (tier, x, y) in &always {
        let (sx, sy) = (axes.x(*x), axes.y(*y));
        marker(&mut out, Marker::Square, sx, sy, "black", "black");
        // Labels right of the marker, or left of it near the plot's right edge.
        let (label_x, anchor) = if sx > RIGHT - 70.0 {
            (sx - 8.0, "end")
        } else {
            (sx + 8.0, "start")
        };
        let _ = writeln!(
            out,
            r#"<text x="{label_x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            if sy > BOTTOM - 24.0 {
                sy - 8.0
            } else {
                sy + 16.0
            },
            escape(tier)
        );
    }
    if let Some((x, y)) = length_point {
        marker(
            &mut out,
            Marker::Circle,
            axes.x(x),
            axes.y(y),
            "white",
            LENGTH_COLOUR,
        );
    }
    if let Some((x, y)) = oracle {
        marker(
            &mut out,
            Marker::Triangle,
            axes.x(x),
            axes.y(y),
            ORACLE_COLOUR,
            ORACLE_COLOUR,
        );
    }
    if let Some((x, y)) = operating {
        marker(
            &mut out,
            Marker::Diamond,
            axes.x(x),
            axes.y(y),
            OPERATING_COLOUR,
            "black",
        );
    }

    // Legend, right of the plot.
    let legend_x = RIGHT + 25.0;
    let mut legend_y = TOP + 10.0;
    let _ = writeln!(out, r#"<g id="legend">"#);
    let line_entry = |out: &mut String, colour: &str, dash: &str, label: &str, y: f64| {
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{label}</text>"#,
            legend_x + 28.0,
            legend_x + 36.0,
            y + 4.0
        );
    };
    line_entry(&mut out, ROUTER_COLOUR, "", "router score sweep", legend_y);
    legend_y += 22.0;
    line_entry(&mut out, LENGTH_COLOUR, "", "prompt length sweep", legend_y);
    legend_y += 22.0;
    line_entry(
        &mut out,
        RANDOM_COLOUR,
        r#" stroke-dasharray="6 4""#,
        "random router",
        legend_y,
    );
    legend_y += 22.0;
    let entries = [
        (
            Marker::Diamond,
            OPERATING_COLOUR,
            "black",
            "router (configured tiers)",
        ),
        (
            Marker::Circle,
            "white",
            LENGTH_COLOUR,
            "prompt length, router's shares",
        ),
        (Marker::Triangle, ORACLE_COLOUR, ORACLE_COLOUR, "oracle"),
        (Marker::Square, "black", "black", "always one tier"),
    ];
    for (kind, fill, stroke, label) in entries {
        marker(&mut out, kind, legend_x + 14.0, legend_y, fill, stroke);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
            legend_x + 36.0,
            legend_y + 4.0
        );
        legend_y += 22.0;
    }
    legend_y += 10.0;
    let sweep = &report.sweep;
    let number = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    for line in [
        "APGR (by calls / by cost):".to_string(),
        format!(
            "router {} / {}",
            number(sweep.router.apgr),
            number(sweep.router.apgr_by_cost)
        ),
        format!(
            "length {} / {}",
            number(sweep.prompt_length.apgr),
            number(sweep.prompt_length.apgr_by_cost)
        ),
        "random 0.500 / 0.500".to_string(),
        format!("sweep: {} scored rows", sweep.rows),
    ] {
        let _ = writeln!(
            out,
            r#"<text x="{legend_x}" y="{legend_y:.1}">{}</text>"#,
            escape(&line)
        );
        legend_y += 18.0;
    }
    let _ = writeln!(out, "</g>");
    out.push_str("</svg>\n");
    out
}

/// Checks that an SVG document is well-formed XML as this module writes it: every element closes in
/// order, attribute values are quoted, and `&` starts an entity. Returns the number of elements.
pub fn well_formed(svg: &str) -> Result<usize, String> {
    let mut open: Vec<&str> = Vec::new();
    let mut elements = 0;
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        check_entities(&rest[..start])?;
        let end = rest[start..].find('>').ok_or("unterminated tag")? + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            let opened = open.pop().ok_or(format!("</{name}> closes nothing"))?;
            if opened != name.trim() {
                return Err(format!("<{opened}> closed by </{name}>"));
            }
        } else if !tag.starts_with('?') && !tag.starts_with('!') {
            let name = tag.split_whitespace().next().ok_or("empty tag")?;
            if tag.matches('"').count() % 2 != 0
                || tag.matches("=\"").count() != tag.matches('=').count()
            {
                return Err(format!("unquoted attribute in <{tag}>"));
            }
            check_entities(tag)?;
            elements += 1;
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    check_entities(rest)?;
    match open.as_slice() {
        [] if elements > 0 => Ok(elements),
        [] => Err("no element".into()),
        unclosed => Err(format!("unclosed {unclosed:?}")),
    }
}

fn check_entities(text: &str) -> Result<(), String> {
    for (index, _) in text.match_indices('&') {
        let entity = &text[index..];
        if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
            .iter()
            .any(|known| entity.starts_with(known))
        {
            return Err(format!("bare & in {text:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(1.0, 6.0), 0.2);
        assert_eq!(tick_step(0.3, 6.0), 0.05);
        assert_eq!(tick_step(0.07, 6.0), 0.02);
    }

    #[test]
    fn sampling_follows_the_piecewise_linear_curve() {
        let point = |share_strong, quality, cost| SweepPoint {
            share_strong,
            quality,
            cost,
        };
        let curve = [
            point(0.0, 0.0, 1.0),
            point(0.5, 1.0, 2.0),
            point(1.0, 1.0, 3.0),
        ];
        let samples = sample(&curve);
        assert_eq!(samples.len(), SAMPLES + 1);
        assert_eq!(samples[0], (1.0, 0.0));
        let quarter = samples[SAMPLES / 4];
        assert!((quarter.0 - 1.5).abs() < 1e-12 && (quarter.1 - 0.5).abs() < 1e-12);
        assert_eq!(samples[SAMPLES], (3.0, 1.0));
    }

    #[test]
    fn well_formed_catches_what_a_viewer_would_refuse() {
        assert_eq!(
            well_formed(r#"<svg a="1"><g><text>a &amp; b</text></g></svg>"#),
            Ok(3)
        );
        for bad in [
            "<svg><g></svg>",
            "<svg>",
            "</svg>",
            "<svg a=1></svg>",
            "<svg><text>a & b</text></svg>",
            "<svg",
            "",
        ] {
            assert!(well_formed(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b>&\"c"), "a&lt;b&gt;&amp;&quot;c");
    }
}
