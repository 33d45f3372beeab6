//! SVG charts (plotters' SVG backend: text stays `<text>`, so no fonts are needed to draw).

use std::io;
use std::path::{Path, PathBuf};

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::format::{self, by_scenario};
use crate::Record;

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 600);
/// The font family of every text (the viewer picks the face).
const FONT: &str = "sans-serif";

const TEXT: RGBColor = RGBColor(40, 40, 40);
const MUTED: RGBColor = RGBColor(110, 110, 110);
const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);
const REFERENCE: RGBColor = RGBColor(120, 120, 120);
const FAILED: RGBColor = RGBColor(200, 30, 30);

/// Tableau 10 without its yellow and grey (too faint on white): distinct, colour-blind-aware.
const PALETTE: [RGBColor; 8] = [
    RGBColor(78, 121, 167),  // blue
    RGBColor(242, 142, 43),  // orange
    RGBColor(89, 161, 79),   // green
    RGBColor(225, 87, 89),   // red
    RGBColor(176, 122, 161), // purple
    RGBColor(118, 183, 178), // teal
    RGBColor(156, 117, 95),  // brown
    RGBColor(255, 157, 167), // pink
];

/// A backend's place in the palette (the same colour in every chart), or `None` if unknown.
fn backend_slot(backend: &str) -> Option<usize> {
    match backend {
        "threads" => Some(0),
        "process" => Some(1),
        "async" => Some(2),
        "cpython-threads" => Some(4),
        "cpython-process" => Some(3),
        _ => None,
    }
}

/// The order backends are listed in (serial first, then ours, then CPython's, then others).
fn backend_rank(backend: &str) -> usize {
    match backend {
        "serial" => 0,
        "threads" => 1,
        "process" => 2,
        "async" => 3,
        "cpython-threads" => 4,
        "cpython-process" => 5,
        _ => 6,
    }
}

/// The colours of `series` (their backends, in order): each backend its own colour (unknown
/// backends the palette's free ones) while no backend has two series, else the palette in order.
fn colours(series: &[&str]) -> Vec<RGBColor> {
    let unique = series
        .iter()
        .enumerate()
        .all(|(i, b)| !series[..i].contains(b));
    if !unique {
        return (0..series.len())
            .map(|i| PALETTE[i % PALETTE.len()])
            .collect();
    }
    let mut taken: Vec<usize> = series.iter().filter_map(|b| backend_slot(b)).collect();
    series
        .iter()
        .map(|b| {
            let slot = backend_slot(b).unwrap_or_else(|| {
                let free = (0..PALETTE.len())
                    .find(|i| !taken.contains(i))
                    .unwrap_or(taken.len() % PALETTE.len());
                taken.push(free);
                free
            });
            PALETTE[slot % PALETTE.len()]
        })
        .collect()
}

/// The kind of one chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChartKind {
    /// Median time against `chunksize` (log₂ axis), one line per (backend, workers).
    Chunksize,
    /// Speedup against `max_workers`, one line per backend, with the ideal.
    Workers,
    /// One bar per row: median time with min–max whiskers, labelled with the speedup.
    Bars,
}

impl ChartKind {
    /// What the chart shows, for alt texts.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ChartKind::Chunksize => "median time by chunksize",
            ChartKind::Workers => "speedup by max_workers",
            ChartKind::Bars => "median time per backend",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            ChartKind::Chunksize => "-chunksize",
            ChartKind::Workers => "-workers",
            ChartKind::Bars => "",
        }
    }
}

/// One chart to draw.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// The scenario it shows.
    pub(crate) scenario: String,
    /// What it shows.
    pub(crate) kind: ChartKind,
    /// Its file name (unique among the plan).
    pub(crate) file: String,
}

/// Which charts [`charts`] draws for `records`, and their file names.
pub(crate) fn plan(records: &[Record]) -> Vec<Planned> {
    let mut plan: Vec<Planned> = Vec::new();
    for (scenario, rows) in by_scenario(records) {
        // `auto` counts as one more chunk size: it is drawn on the chunksize chart too.
        let chunks = distinct_some(rows.iter().map(|r| r.chunksize))
            + usize::from(rows.iter().any(|r| r.chunksize_auto));
        let workers = distinct_some(rows.iter().map(|r| r.max_workers));
        let mut kinds = Vec::new();
        if chunks > 1 {
            kinds.push(ChartKind::Chunksize);
        }
        if workers > 1 {
            kinds.push(ChartKind::Workers);
        }
        if kinds.is_empty() {
            kinds.push(ChartKind::Bars);
        }
        let stem = sanitize(scenario);
        for kind in kinds {
            let mut file = format!("{stem}{}.svg", kind.suffix());
            let mut n = 2;
            while plan.iter().any(|p| p.file == file) {
                file = format!("{stem}-{n}{}.svg", kind.suffix());
                n += 1;
            }
            plan.push(Planned {
                scenario: scenario.to_string(),
                kind,
                file,
            });
        }
    }
    plan
}

/// Draws the SVG charts of `records` into `dir` (created if missing) and returns their paths,
/// in scenario order (scenarios in first-seen order). Per scenario:
///
/// - more than one distinct `chunksize` (`auto` counts as one): `<scenario>-chunksize.svg`, the
///   median time per run against the chunksize (log₂ axis), one line per (backend,
///   `max_workers`), and the serial median as a dashed horizontal reference; a row whose chunk
///   size `map` chose (`auto`) is a ring in its line's colour at the size it chose, labelled
///   `auto N`, apart from the line;
/// - more than one distinct `max_workers`: `<scenario>-workers.svg`, the speedup over serial
///   against `max_workers`, one line per backend (the best chunksize at each point where that
///   varies too), with the ideal `min(workers, serial median ÷ ideal_s)` dashed and the serial
///   1× line (the median time instead, where no speedup was measured);
/// - neither: `<scenario>.svg`, one bar per row with its median time, fastest–slowest whisker
///   and speedup.
///
/// Each chart has a title, axis labels with units, gridlines and a legend; every series has its
/// own colour and marker (a backend keeps its colour across charts where it has one line).
/// Scenario names are made file-name safe (lowercase letters, digits and `-`; names that
/// collide get `-2`, `-3`...). Rows with non-finite or non-positive times are left out, and so
/// are [skipped](Record::skipped) rows; a scenario left with no row to draw gets no chart.
///
/// ```
/// use bench_harness::{report, Record};
/// let dir = std::env::temp_dir().join(format!("charts-doc-{}", std::process::id()));
/// let rows: Vec<Record> = [1, 4, 16]
///     .into_iter()
///     .map(|c| Record { chunksize: Some(c), median_s: 0.1 / c as f64, ..Record::example() })
///     .collect();
/// let files = report::charts(&rows, &dir)?;
/// assert_eq!(files, vec![dir.join("primes-chunksize.svg")]);
/// let svg = std::fs::read_to_string(&files[0])?;
/// assert!(svg.starts_with("<svg") && svg.contains("threads, 2 workers"));
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn charts(records: &[Record], dir: &Path) -> io::Result<Vec<PathBuf>> {
    let groups = by_scenario(records);
    let mut written = Vec::new();
    for planned in plan(records) {
        let Some((_, rows)) = groups.iter().find(|(s, _)| *s == planned.scenario) else {
            continue;
        };
        let rows: Vec<&Record> = rows.iter().copied().filter(|r| usable(r)).collect();
        let svg = match planned.kind {
            ChartKind::Chunksize => chunksize_chart(&planned.scenario, &rows),
            ChartKind::Workers => workers_chart(&planned.scenario, &rows),
            ChartKind::Bars => bar_chart(&planned.scenario, &rows),
        }
        .map_err(|e| io::Error::other(format!("drawing {}: {e}", planned.file)))?;
        let Some(svg) = svg else { continue };
        if written.is_empty() {
            std::fs::create_dir_all(dir)?;
        }
        let path = dir.join(&planned.file);
        std::fs::write(&path, svg)?;
        written.push(path);
    }
    Ok(written)
}

/// A row the charts can place: not skipped, finite, positive times. (A failed row with times
/// is drawn, marked `check failed`; a skipped one has no times, and is no failure either.)
fn usable(r: &Record) -> bool {
    !r.skipped
        && [r.median_s, r.min_s, r.max_s]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
}

/// How many distinct `Some` values.
fn distinct_some(values: impl Iterator<Item = Option<usize>>) -> usize {
    let mut seen: Vec<usize> = values.flatten().collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// A file-name-safe version of a scenario name: lowercase ASCII letters, digits and `-`.
pub(crate) fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() {
        "scenario".to_string()
    } else {
        out.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Axes

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log2,
    Log10,
}

/// An axis: its scale, its range and ticks (in coordinate space: log₂/log₁₀ of the value on log
/// axes), and a unit multiplier for labels.
#[derive(Debug, Clone)]
struct Axis {
    scale: Scale,
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Axis {
    /// A linear axis from 0 up to past `max` (with `headroom`, e.g. 1.2 for 20 % more).
    fn linear_from_zero(max: f64, headroom: f64) -> Axis {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let step = nice_step(max * headroom, 6);
        let hi = (max * headroom / step).ceil() * step;
        Axis::linear_ticks(0.0, hi, step)
    }

    /// A linear axis from `lo` to `hi` with ticks every `step` (multiples of `step`).
    fn linear_ticks(lo: f64, hi: f64, step: f64) -> Axis {
        let ticks = |step: f64| -> Vec<f64> {
            let first = (lo / step).ceil() as i64;
            let last = (hi / step + 1e-9).floor() as i64;
            (first..=last).map(|k| k as f64 * step).collect()
        };
        let bold = ticks(step);
        let light = ticks(step / 5.0);
        Axis {
            scale: Scale::Linear,
            lo,
            hi,
            bold,
            light,
        }
    }

    /// A linear axis over `values` (already sorted, distinct), ticks at the values themselves
    /// while there are few of them.
    fn linear_at(values: &[f64]) -> Axis {
        let (min, max) = (values[0], values[values.len() - 1]);
        let pad = ((max - min) * 0.05).max(0.5);
        let (lo, hi) = (min - pad, max + pad);
        if values.len() <= 16 {
            Axis {
                scale: Scale::Linear,
                lo,
                hi,
                bold: values.to_vec(),
                light: Vec::new(),
            }
        } else {
            Axis::linear_ticks(lo, hi, nice_step(hi - lo, 8))
        }
    }

    /// A log₂ axis over `values` (positive, sorted, distinct); ticks at the values while there
    /// are few of them, else at powers of two.
    fn log2_at(values: &[f64]) -> Axis {
        let (min, max) = (values[0].log2(), values[values.len() - 1].log2());
        let pad = ((max - min) * 0.04).max(0.3);
        let (lo, hi) = (min - pad, max + pad);
        let bold = if values.len() <= 14 {
            values.iter().map(|v| v.log2()).collect()
        } else {
            let every = ((max - min) / 12.0).ceil().max(1.0) as i64;
            (min.floor() as i64..=max.ceil() as i64)
                .filter(|k| k % every == 0)
                .map(|k| k as f64)
                .filter(|k| (lo..=hi).contains(k))
                .collect()
        };
        Axis {
            scale: Scale::Log2,
            lo,
            hi,
            bold,
            light: Vec::new(),
        }
    }

    /// A log₁₀ axis over [`min`, `max`] (positive): whole decades, ticks at 1, 2, 5 × 10ᵏ.
    fn log10(min: f64, max: f64) -> Axis {
        let lo = min.log10().floor();
        let hi = (max * 1.3).log10().ceil();
        let mut bold = Vec::new();
        let mut light = Vec::new();
        let decades = (hi - lo) as i64;
        for k in lo as i64..hi as i64 {
            for m in 1..10 {
                let v = (m as f64).log10() + k as f64;
                if m == 1 || (decades <= 3 && (m == 2 || m == 5)) {
                    bold.push(v);
                }
                light.push(v);
            }
        }
        bold.push(hi);
        Axis {
            scale: Scale::Log10,
            lo,
            hi,
            bold,
            light,
        }
    }

    /// Where `v` goes on this axis.
    fn coord(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => v,
            Scale::Log2 => v.log2(),
            Scale::Log10 => v.log10(),
        }
    }

    /// The value at position `c`.
    fn value(&self, c: f64) -> f64 {
        match self.scale {
            Scale::Linear => c,
            Scale::Log2 => c.exp2(),
            Scale::Log10 => 10f64.powf(c),
        }
    }

    /// A tick label: the value, with as few digits as it needs.
    fn label(&self, c: f64) -> String {
        number(self.value(c))
    }

    /// The plotters range with these ticks and gridlines.
    fn range(&self) -> Ticks {
        Ticks {
            lo: self.lo,
            hi: self.hi,
            bold: self.bold.clone(),
            light: self.light.clone(),
        }
    }
}

/// A linear plotters axis whose ticks (bold gridlines) and light gridlines are given.
struct Ticks {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span == 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let t = ((value - self.lo) / span).clamp(-10.0, 10.0);
        let t = if t.is_nan() { 0.0 } else { t };
        limit.0 + (f64::from(limit.1 - limit.0) * t + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// A step of 1, 2, 2.5 or 5 × 10ᵏ giving about `target` ticks over `span`.
fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A tick value without float noise or trailing zeros (`2`, `0.25`, `1500`).
fn number(v: f64) -> String {
    if v.abs() >= 1e6 || v == 0.0 {
        return format!("{v:.0}");
    }
    let digits = (4 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The unit that keeps the longest of `seconds` readable: (multiplier, name).
fn time_unit(max_seconds: f64) -> (f64, &'static str) {
    if max_seconds >= 1.0 {
        (1.0, "s")
    } else if max_seconds >= 1e-3 {
        (1e3, "ms")
    } else if max_seconds >= 1e-6 {
        (1e6, "µs")
    } else {
        (1e9, "ns")
    }
}

/// A y axis for times `values` (in the display unit): linear from zero, or log₁₀ where they
/// span more than 30× (a linear axis would flatten the fast ones).
fn time_axis(values: &[f64]) -> Axis {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    if min > 0.0 && max / min > 30.0 {
        Axis::log10(min, max)
    } else {
        Axis::linear_from_zero(max, 1.25)
    }
}

// ---------------------------------------------------------------------------------------------
// Markers and series

/// A point marker; with the colour, it tells series apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
    Ring,
}

const MARKERS: [Marker; 6] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
    Marker::Ring,
];

/// Runs `$body` with `$shape` bound to a function that makes `$kind`'s shape in `$colour`
/// (relative backend coordinates: compose it with an `EmptyElement`); each marker has its own
/// element type, hence a macro rather than a function returning one type.
macro_rules! with_marker {
    ($kind:expr, $colour:expr, $shape:ident => $body:expr) => {{
        let colour: RGBColor = $colour;
        let filled = colour.filled();
        match $kind {
            Marker::Circle => {
                let $shape = move || Circle::new((0, 0), 5, filled);
                $body
            }
            Marker::Square => {
                let $shape = move || Rectangle::new([(-4, -4), (4, 4)], filled);
                $body
            }
            Marker::Triangle => {
                let $shape = move || TriangleMarker::new((0, 0), 6, filled);
                $body
            }
            Marker::Diamond => {
                let $shape = move || Polygon::new(vec![(0, -6), (6, 0), (0, 6), (-6, 0)], filled);
                $body
            }
            Marker::Cross => {
                let $shape = move || Cross::new((0, 0), 5, colour.stroke_width(3));
                $body
            }
            Marker::Ring => {
                let $shape = move || Circle::new((0, 0), 5, colour.stroke_width(2));
                $body
            }
        }
    }};
}

/// How a series' line is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stroke {
    Solid,
    /// Dashed, for references (serial, ideal).
    Dashed,
}

/// A labelled point drawn apart from the lines (in coordinate space): a ring in `colour` and
/// `text` above it.
#[derive(Debug, Clone)]
struct Callout {
    at: (f64, f64),
    colour: RGBColor,
    text: String,
}

/// One line of a line chart, in coordinate space.
#[derive(Debug, Clone)]
struct Series {
    label: String,
    colour: RGBColor,
    stroke: Stroke,
    width: u32,
    marker: Option<Marker>,
    points: Vec<(f64, f64)>,
}

/// A line chart, ready to draw.
struct LineChart {
    title: String,
    subtitle: String,
    x: Axis,
    y: Axis,
    x_desc: String,
    y_desc: String,
    legend: Corner,
    series: Vec<Series>,
    /// Extra y-axis label formatting (`"4×"`): appended to each y tick.
    y_suffix: &'static str,
    /// Points drawn apart from the lines, and their legend entry (one for all of them).
    callouts: Vec<Callout>,
    callout_legend: String,
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Corner {
    UpperLeft,
    UpperRight,
}

impl Corner {
    fn position(self) -> SeriesLabelPosition {
        match self {
            Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
        }
    }
}

type DrawResult<T> = Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draws `chart` into an SVG document.
fn render_lines(chart: &LineChart) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let area = titled(&root, &chart.title, &chart.subtitle)?;
        let x_fmt = |c: &f64| chart.x.label(*c);
        let y_fmt = |c: &f64| format!("{}{}", chart.y.label(*c), chart.y_suffix);
        let mut ctx = ChartBuilder::on(&area)
            .margin(16)
            .margin_right(32)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(chart.x.range(), chart.y.range())
            .map_err(err)?;
        mesh(&mut ctx, true, &chart.x_desc, &chart.y_desc, &x_fmt, &y_fmt)?;

        for s in &chart.series {
            let style = s.colour.stroke_width(s.width);
            let anno = match s.stroke {
                Stroke::Solid => ctx
                    .draw_series(LineSeries::new(s.points.iter().copied(), style))
                    .map_err(err)?,
                Stroke::Dashed => ctx
                    .draw_series(DashedLineSeries::new(s.points.clone(), 8, 6, style))
                    .map_err(err)?,
            };
            let label = s.label.clone();
            match (s.marker, s.stroke) {
                (None, Stroke::Solid) => {
                    anno.label(label).legend(move |(x, y)| {
                        PathElement::new(vec![(x - 12, y), (x + 12, y)], style)
                    });
                }
                (None, Stroke::Dashed) => {
                    anno.label(label).legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(-13, 0), (-3, 0)], style)
                            + PathElement::new(vec![(3, 0), (13, 0)], style)
                    });
                }
                (Some(kind), _) => with_marker!(kind, s.colour, shape => {
                    ctx.draw_series(s.points.iter().map(|&p| EmptyElement::at(p) + shape()))
                        .map_err(err)?
                        .label(label)
                        .legend(move |(x, y)| {
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(-12, 0), (12, 0)], style)
                                + shape()
                        });
                }),
            }
        }
        callouts(&mut ctx, &chart.callouts, &chart.callout_legend)?;
        legend(&mut ctx, chart.legend)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Draws `points` as rings with their text just above (or below) them. A text goes to the
/// nearest place, alternately above and below its ring, where it covers neither a ring nor a
/// text placed before it, so that rings close together keep readable labels. The rings are
/// drawn last: nothing hides them.
fn callouts(ctx: &mut Ctx<'_, '_>, points: &[Callout], legend_label: &str) -> DrawResult<()> {
    if points.is_empty() {
        return Ok(());
    }
    const RADIUS: i32 = 9;
    const LINE: i32 = 16;
    const GAP: i32 = 3;
    let font = (FONT, 13).into_font().style(FontStyle::Bold);
    let anchor = Pos::new(HPos::Center, VPos::Bottom);
    // Pixel boxes (left, top, right, bottom) that a text must not cover: every ring, and the
    // texts placed so far.
    let mut taken: Vec<(i32, i32, i32, i32)> = points
        .iter()
        .map(|c| {
            let (x, y) = ctx.backend_coord(&c.at);
            let r = RADIUS + 2;
            (x - r, y - r, x + r, y + r)
        })
        .collect();
    for c in points {
        let (px, py) = ctx.backend_coord(&c.at);
        // About 8 px per character at 13 px bold; exact metrics would need a font.
        let half = (c.text.chars().count() as i32 * 8) / 2 + 2;
        // The text's bottom edge, relative to the ring's centre: above, below, further above...
        let above = -(RADIUS + GAP);
        let below = RADIUS + GAP + LINE;
        let placed = |dy: i32| (px - half, py + dy - LINE, px + half, py + dy);
        let free = |dy: i32, taken: &[(i32, i32, i32, i32)]| {
            let (l, t, r, b) = placed(dy);
            !taken
                .iter()
                .any(|&(l2, t2, r2, b2)| l < r2 && l2 < r && t < b2 && t2 < b)
        };
        let dy = (0..12)
            .map(|k| {
                let step = (k / 2) * LINE;
                if k % 2 == 0 {
                    above - step
                } else {
                    below + step
                }
            })
            .find(|&dy| free(dy, &taken))
            .unwrap_or(above);
        taken.push(placed(dy));
        // On a white box, so that the lines and gridlines under it do not cross the text.
        ctx.draw_series(std::iter::once(
            EmptyElement::at(c.at)
                + Rectangle::new([(-half, dy - LINE), (half, dy)], WHITE.mix(0.85).filled())
                + Text::new(c.text.clone(), (0, dy), font.color(&c.colour).pos(anchor)),
        ))
        .map_err(err)?;
    }
    let ring = |colour: RGBColor| Circle::new((0, 0), RADIUS, colour.stroke_width(3));
    ctx.draw_series(
        points
            .iter()
            .map(|c| EmptyElement::at(c.at) + ring(c.colour)),
    )
    .map_err(err)?
    .label(legend_label)
    .legend(|(x, y)| Circle::new((x, y), 7, TEXT.stroke_width(2)));
    Ok(())
}

/// Fills the title and subtitle band of `root`, returning the area below it.
fn titled<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    title: &str,
    subtitle: &str,
) -> DrawResult<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>> {
    let (band, rest) = root.split_vertically(64);
    let centre = (SIZE.0 as i32) / 2;
    band.draw(&Text::new(
        title.to_string(),
        (centre, 12),
        (FONT, 24)
            .into_font()
            .style(FontStyle::Bold)
            .color(&TEXT)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(err)?;
    band.draw(&Text::new(
        subtitle.to_string(),
        (centre, 42),
        (FONT, 15)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(err)?;
    Ok(rest)
}

type Ctx<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticks, Ticks>>;

/// Gridlines (vertical ones only with `x_grid`), axes, tick labels and axis descriptions.
fn mesh(
    ctx: &mut Ctx<'_, '_>,
    x_grid: bool,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
) -> DrawResult<()> {
    let mut style = ctx.configure_mesh();
    if !x_grid {
        style.disable_x_mesh();
    }
    style
        .bold_line_style(GRID_BOLD.stroke_width(1))
        .light_line_style(GRID_LIGHT.stroke_width(1))
        .axis_style(MUTED.stroke_width(1))
        .label_style((FONT, 14).into_font().color(&TEXT))
        .axis_desc_style((FONT, 16).into_font().color(&TEXT))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .draw()
        .map_err(err)
}

/// The legend box.
fn legend<'a, 'b: 'a>(ctx: &mut Ctx<'a, 'b>, corner: Corner) -> DrawResult<()> {
    ctx.configure_series_labels()
        .position(corner.position())
        .margin(12)
        .legend_area_size(34)
        .label_font((FONT, 14).into_font().color(&TEXT))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID_BOLD)
        .draw()
        .map_err(err)
}

/// The words for a row's series (`threads, 4 workers`), naming only what varies.
fn series_label(backend: &str, workers: Option<usize>, buffer: Option<Option<usize>>) -> String {
    let mut label = backend.to_string();
    if let Some(w) = workers {
        label.push_str(&format!(
            ", {w} {}",
            if w == 1 { "worker" } else { "workers" }
        ));
    }
    if let Some(b) = buffer {
        label.push_str(&format!(", buffer {}", format::opt(b)));
    }
    label
}

/// The subtitle facts shared by a scenario's rows: tasks and repeats.
fn facts(rows: &[&Record]) -> String {
    let mut tasks: Vec<usize> = rows.iter().map(|r| r.tasks).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let mut repeats: Vec<usize> = rows.iter().map(|r| r.repeats).collect();
    repeats.sort_unstable();
    repeats.dedup();
    let list = |v: &[usize]| {
        v.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    let workload = rows.first().map_or("", |r| r.workload.as_str());
    format!(
        "workload {workload}, {} tasks, median of {} runs",
        list(&tasks),
        list(&repeats)
    )
}

/// The rows' backends in display order (serial first).
fn sorted_backends<'r>(rows: &[&'r Record]) -> Vec<&'r str> {
    let mut backends: Vec<&str> = Vec::new();
    for r in rows {
        if !backends.contains(&r.backend.as_str()) {
            backends.push(&r.backend);
        }
    }
    backends.sort_by_key(|b| backend_rank(b));
    backends
}

// ---------------------------------------------------------------------------------------------
// The three charts

/// Median time against chunksize; `None` if nothing to draw.
fn chunksize_chart(scenario: &str, rows: &[&Record]) -> DrawResult<Option<String>> {
    let fixed: Vec<&Record> = rows
        .iter()
        .copied()
        .filter(|r| r.chunksize.is_some_and(|c| c > 0))
        .collect();
    // Rows whose chunk size `map` chose: placed at the size it chose.
    let auto: Vec<(&Record, usize)> = rows
        .iter()
        .filter(|r| r.chunksize_auto)
        .filter_map(|r| r.chunksize_chosen.filter(|c| *c > 0).map(|c| (*r, c)))
        .collect();
    if fixed.is_empty() && auto.is_empty() {
        return Ok(None);
    }
    let swept: Vec<&Record> = fixed
        .iter()
        .copied()
        .chain(auto.iter().map(|(r, _)| *r))
        .collect();
    let serial = rows.iter().find(|r| r.backend == "serial");
    let buffers_vary = distinct_some(swept.iter().map(|r| r.buffersize)) > 1
        || (swept.iter().any(|r| r.buffersize.is_none())
            && swept.iter().any(|r| r.buffersize.is_some()));

    // Series: (backend, workers, buffer) in backend order, then workers, then buffer.
    let mut keys: Vec<(&str, Option<usize>, Option<usize>)> = Vec::new();
    for r in &swept {
        let key = (r.backend.as_str(), r.max_workers, r.buffersize);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.sort_by_key(|(b, w, buf)| (backend_rank(b), *b, *w, *buf));

    // Ticks at the fixed sizes (at the chosen ones only where there are none); the range
    // stretched to take in every chosen size.
    let mut chunks: Vec<f64> = fixed
        .iter()
        .filter_map(|r| r.chunksize)
        .map(|c| c as f64)
        .collect();
    if chunks.is_empty() {
        chunks.extend(auto.iter().map(|(_, c)| *c as f64));
    }
    chunks.sort_by(f64::total_cmp);
    chunks.dedup();
    let mut x = Axis::log2_at(&chunks);
    for &(_, c) in &auto {
        let at = (c as f64).log2();
        x.lo = x.lo.min(at - 0.3);
        x.hi = x.hi.max(at + 0.3);
    }

    let mut times: Vec<f64> = swept.iter().map(|r| r.median_s).collect();
    times.extend(serial.map(|s| s.median_s));
    let (unit_mul, unit) = time_unit(times.iter().copied().fold(0.0, f64::max));
    let shown: Vec<f64> = times.iter().map(|t| t * unit_mul).collect();
    let y = time_axis(&shown);

    let colour_keys: Vec<&str> = keys.iter().map(|k| k.0).collect();
    let palette = colours(&colour_keys);
    let mut series = Vec::new();
    let mut notes = Vec::new();
    for (i, &(backend, workers, buffer)) in keys.iter().enumerate() {
        let mut points: Vec<(usize, f64)> = Vec::new();
        let ours =
            |r: &Record| r.backend == backend && r.max_workers == workers && r.buffersize == buffer;
        for &(r, chosen) in auto.iter().filter(|(r, _)| ours(r)) {
            notes.push(Callout {
                at: (x.coord(chosen as f64), y.coord(r.median_s * unit_mul)),
                colour: palette[i],
                text: format!("auto {chosen}"),
            });
        }
        for r in fixed.iter().filter(|r| ours(r)) {
            let c = r.chunksize.unwrap_or(1);
            match points.iter_mut().find(|(pc, _)| *pc == c) {
                Some(p) => p.1 = p.1.min(r.median_s),
                None => points.push((c, r.median_s)),
            }
        }
        points.sort_by_key(|p| p.0);
        series.push(Series {
            label: series_label(backend, workers, buffers_vary.then_some(buffer)),
            colour: palette[i],
            stroke: Stroke::Solid,
            width: 2,
            marker: Some(MARKERS[i % MARKERS.len()]),
            points: points
                .into_iter()
                .map(|(c, t)| (x.coord(c as f64), y.coord(t * unit_mul)))
                .collect(),
        });
    }
    if let Some(s) = serial {
        let t = y.coord(s.median_s * unit_mul);
        series.push(Series {
            label: format!("serial ({})", format::human_duration(s.median_s)),
            colour: REFERENCE,
            stroke: Stroke::Dashed,
            width: 2,
            marker: None,
            points: vec![(x.lo, t), (x.hi, t)],
        });
    }
    let log_note = if y.scale == Scale::Log10 {
        ", log scale"
    } else {
        ""
    };
    render_lines(&LineChart {
        title: format!("{scenario}: median time by chunksize"),
        subtitle: format!("{}; lower is better", facts(rows)),
        x,
        y,
        x_desc: "chunksize (items per task, log₂ scale)".to_string(),
        y_desc: format!("median time per run ({unit}{log_note})"),
        legend: Corner::UpperRight,
        series,
        y_suffix: "",
        callouts: notes,
        callout_legend: "auto: the chunksize map chose".to_string(),
    })
    .map(Some)
}

/// Speedup (or, without a serial baseline, median time) against max_workers.
fn workers_chart(scenario: &str, rows: &[&Record]) -> DrawResult<Option<String>> {
    let pooled: Vec<&Record> = rows
        .iter()
        .copied()
        .filter(|r| r.max_workers.is_some_and(|w| w > 0))
        .collect();
    if pooled.is_empty() {
        return Ok(None);
    }
    // The serial median: its row, or any row's speedup × median.
    let serial_median = rows
        .iter()
        .find(|r| r.backend == "serial")
        .map(|r| r.median_s)
        .or_else(|| {
            rows.iter().find_map(|r| {
                r.speedup
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(|s| s * r.median_s)
            })
        });
    let speedup_of = |r: &Record| -> Option<f64> {
        r.speedup
            .filter(|s| s.is_finite() && *s > 0.0)
            .or_else(|| serial_median.map(|s| s / r.median_s))
    };
    let as_speedup = serial_median.is_some();
    let several_configs = pooled.iter().any(|r| {
        pooled.iter().any(|o| {
            o.backend == r.backend
                && o.max_workers == r.max_workers
                && (o.chunksize != r.chunksize
                    || o.chunksize_auto != r.chunksize_auto
                    || o.buffersize != r.buffersize)
        })
    });

    let mut workers: Vec<f64> = pooled
        .iter()
        .filter_map(|r| r.max_workers)
        .map(|w| w as f64)
        .collect();
    workers.sort_by(f64::total_cmp);
    workers.dedup();
    let wide = workers[workers.len() - 1] / workers[0] >= 8.0;
    let x = if wide {
        Axis::log2_at(&workers)
    } else {
        Axis::linear_at(&workers)
    };

    let backends: Vec<&str> = sorted_backends(&pooled);
    let palette = colours(&backends);
    // Per backend: (workers, best value) — the highest speedup or the lowest time.
    let mut lines: Vec<(&str, Vec<(usize, f64)>)> = Vec::new();
    for &b in &backends {
        let mut points: Vec<(usize, f64)> = Vec::new();
        for r in pooled.iter().filter(|r| r.backend == b) {
            let w = r.max_workers.unwrap_or(1);
            let v = if as_speedup {
                match speedup_of(r) {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                r.median_s
            };
            match points.iter_mut().find(|(pw, _)| *pw == w) {
                Some(p) if as_speedup => p.1 = p.1.max(v),
                Some(p) => p.1 = p.1.min(v),
                None => points.push((w, v)),
            }
        }
        points.sort_by_key(|p| p.0);
        lines.push((b, points));
    }
    // The ideal at each worker count: the smallest ideal_s measured there.
    let ideal_at = |w: usize| -> Option<f64> {
        pooled
            .iter()
            .filter(|r| r.max_workers == Some(w))
            .filter_map(|r| r.ideal_s)
            .filter(|v| v.is_finite() && *v > 0.0)
            .reduce(f64::min)
    };
    let ideal: Vec<(usize, f64)> = workers
        .iter()
        .filter_map(|&w| {
            let w = w as usize;
            if as_speedup {
                let limit = match (serial_median, ideal_at(w)) {
                    (Some(s), Some(i)) => s / i,
                    _ => f64::INFINITY,
                };
                Some((w, (w as f64).min(limit)))
            } else {
                ideal_at(w).map(|i| (w, i))
            }
        })
        .collect();
    let ideal_label = if !as_speedup {
        "ideal (physical limit)"
    } else if workers.iter().any(|&w| ideal_at(w as usize).is_some()) {
        "ideal: min(workers, serial ÷ ideal time)"
    } else {
        "ideal: linear scaling"
    };

    let (unit_mul, unit) = if as_speedup {
        (1.0, "×")
    } else {
        time_unit(pooled.iter().map(|r| r.median_s).fold(0.0, f64::max))
    };
    let mut values: Vec<f64> = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1 * unit_mul))
        .collect();
    values.extend(ideal.iter().map(|p| p.1 * unit_mul));
    if as_speedup {
        values.push(1.0);
    }
    let y = if as_speedup {
        Axis::linear_from_zero(values.iter().copied().fold(1.0, f64::max), 1.15)
    } else {
        time_axis(&values)
    };

    let mut series = Vec::new();
    if !ideal.is_empty() {
        series.push(Series {
            label: ideal_label.to_string(),
            colour: REFERENCE,
            stroke: Stroke::Dashed,
            width: 2,
            marker: None,
            points: ideal
                .iter()
                .map(|&(w, v)| (x.coord(w as f64), y.coord(v * unit_mul)))
                .collect(),
        });
    }
    if as_speedup {
        series.push(Series {
            label: "serial (1×)".to_string(),
            colour: RGBColor(170, 170, 170),
            stroke: Stroke::Dashed,
            width: 1,
            marker: None,
            points: vec![(x.lo, 1.0), (x.hi, 1.0)],
        });
    }
    for (i, (backend, points)) in lines.into_iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        series.push(Series {
            label: backend.to_string(),
            colour: palette[i],
            stroke: Stroke::Solid,
            width: 2,
            marker: Some(MARKERS[i % MARKERS.len()]),
            points: points
                .into_iter()
                .map(|(w, v)| (x.coord(w as f64), y.coord(v * unit_mul)))
                .collect(),
        });
    }
    let best = if several_configs {
        " (best chunksize/buffer at each point)"
    } else {
        ""
    };
    let axis_note = if wide { ", log₂ scale" } else { "" };
    let (title, subtitle, y_desc, legend_at, suffix) = if as_speedup {
        (
            format!("{scenario}: speedup by max_workers"),
            format!("{}; higher is better{best}", facts(rows)),
            "speedup over serial (×)".to_string(),
            Corner::UpperLeft,
            "×",
        )
    } else {
        (
            format!("{scenario}: median time by max_workers"),
            format!("{}; no serial baseline; lower is better{best}", facts(rows)),
            format!("median time per run ({unit})"),
            Corner::UpperRight,
            "",
        )
    };
    render_lines(&LineChart {
        title,
        subtitle,
        x,
        y,
        x_desc: format!("max_workers (pool size{axis_note})"),
        y_desc,
        legend: legend_at,
        series,
        y_suffix: suffix,
        callouts: Vec::new(),
        callout_legend: String::new(),
    })
    .map(Some)
}

/// One bar per row: median time with fastest–slowest whiskers, labelled with the speedup.
fn bar_chart(scenario: &str, rows: &[&Record]) -> DrawResult<Option<String>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut bars: Vec<&Record> = rows.to_vec();
    bars.sort_by_key(|r| backend_rank(&r.backend)); // stable: input order within a backend
    let duplicated = |r: &Record| bars.iter().filter(|o| o.backend == r.backend).count() > 1;
    let names: Vec<String> = bars
        .iter()
        .map(|r| {
            if duplicated(r) {
                let mut name = r.backend.clone();
                if let Some(w) = r.max_workers {
                    name.push_str(&format!(" w={w}"));
                }
                if let Some(c) = r.chunksize {
                    name.push_str(&format!(" c={c}"));
                } else if r.chunksize_auto {
                    name.push_str(" c=auto");
                }
                name.push_str(&format!(" b={}", format::opt(r.buffersize)));
                name
            } else {
                r.backend.clone()
            }
        })
        .collect();
    let backends: Vec<&str> = sorted_backends(&bars);
    let palette = colours(&backends);
    let colour_of = |r: &Record| -> RGBColor {
        if r.backend == "serial" {
            RGBColor(140, 140, 140)
        } else {
            backends
                .iter()
                .position(|b| *b == r.backend)
                .map_or(PALETTE[0], |i| palette[i])
        }
    };

    let (unit_mul, unit) = time_unit(bars.iter().map(|r| r.max_s).fold(0.0, f64::max));
    let y = Axis::linear_from_zero(
        bars.iter().map(|r| r.max_s * unit_mul).fold(0.0, f64::max),
        1.2,
    );
    let n = bars.len();
    let x = Axis {
        scale: Scale::Linear,
        lo: -0.6,
        hi: n as f64 - 0.4,
        bold: (0..n).map(|i| i as f64).collect(),
        light: Vec::new(),
    };

    let mut pooled: Vec<String> = Vec::new();
    if let Some(w) = bars.iter().find_map(|r| r.max_workers) {
        pooled.push(format!("max_workers {w}"));
    }
    if let Some(r) = bars
        .iter()
        .find(|r| r.chunksize.is_some() || r.chunksize_auto)
    {
        pooled.push(format!("chunksize {}", r.chunk_label()));
    }
    let pooled = if pooled.is_empty() {
        String::new()
    } else {
        format!("; {}", pooled.join(", "))
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let area = titled(
            &root,
            &format!("{scenario}: median time per backend"),
            &format!("{}{pooled}; lower is better", facts(rows)),
        )?;
        let x_fmt = |c: &f64| {
            let i = c.round();
            if (c - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let y_fmt = |c: &f64| y.label(*c);
        let mut ctx = ChartBuilder::on(&area)
            .margin(16)
            .margin_right(32)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(x.range(), y.range())
            .map_err(err)?;
        mesh(
            &mut ctx,
            false,
            "backend",
            &format!("median time per run ({unit})"),
            &x_fmt,
            &y_fmt,
        )?;

        let half = 0.32;
        ctx.draw_series(bars.iter().enumerate().map(|(i, r)| {
            let i = i as f64;
            Rectangle::new(
                [(i - half, 0.0), (i + half, r.median_s * unit_mul)],
                colour_of(r).mix(0.85).filled(),
            )
        }))
        .map_err(err)?
        .label("median")
        .legend(|(x, y)| Rectangle::new([(x - 8, y - 6), (x + 8, y + 6)], MUTED.mix(0.7).filled()));

        let whisker = TEXT.stroke_width(2);
        ctx.draw_series(bars.iter().enumerate().map(|(i, r)| {
            let i = i as f64;
            PathElement::new(
                vec![(i, r.min_s * unit_mul), (i, r.max_s * unit_mul)],
                whisker,
            )
        }))
        .map_err(err)?
        .label("fastest–slowest run")
        .legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, -7), (0, 7)], whisker)
                + PathElement::new(vec![(-5, -7), (5, -7)], whisker)
                + PathElement::new(vec![(-5, 7), (5, 7)], whisker)
        });
        // The caps at both ends of each whisker.
        ctx.draw_series(bars.iter().enumerate().flat_map(|(i, r)| {
            [r.min_s, r.max_s].map(|t| {
                EmptyElement::at((i as f64, t * unit_mul))
                    + PathElement::new(vec![(-7, 0), (7, 0)], whisker)
            })
        }))
        .map_err(err)?;

        // Labels above the whiskers: the median and the speedup.
        let label_font = (FONT, 14).into_font().style(FontStyle::Bold);
        let anchor = Pos::new(HPos::Center, VPos::Bottom);
        ctx.draw_series(bars.iter().enumerate().map(|(i, r)| {
            let speed = if r.backend == "serial" {
                "baseline".to_string()
            } else {
                format::speedup(r.speedup)
            };
            let mut text = format!("{} · {speed}", format::human_duration(r.median_s));
            let colour = if r.check_passed() {
                TEXT
            } else {
                text.push_str(" · check failed");
                FAILED
            };
            EmptyElement::at((i as f64, r.max_s * unit_mul))
                + Text::new(text, (0, -6), label_font.color(&colour).pos(anchor))
        }))
        .map_err(err)?;
        legend(&mut ctx, Corner::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(Some(svg))
}
