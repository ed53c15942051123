//! SVG plots for the report, drawn with `plotters` (SVG backend only: no fonts or C libraries).

use crate::Target;
use plotters::prelude::*;
use std::path::Path;

/// One line of a plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub target: Target,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

fn color(target: Target) -> RGBColor {
    match target {
        Target::Ours => RGBColor(0xc0, 0x39, 0x2b),
        Target::Socketio => RGBColor(0x29, 0x80, 0xb9),
        Target::Floor => RGBColor(0x7f, 0x8c, 0x8d),
    }
}

fn bounds(series: &[Series]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return (0.0, 1.0, 0.0, 1.0);
    }
    (x0, x1, y0, y1)
}

fn draw_lines<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    series: &[Series],
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    for s in series {
        let c = color(s.target);
        let style = ShapeStyle {
            color: c.to_rgba(),
            filled: false,
            stroke_width: if s.dashed { 1 } else { 2 },
        };
        let pts = s.points.clone();
        let anno = chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(|e| e.to_string())?;
        anno.label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}

/// p50/p99 latency (log scale) against offered deliveries per second.
pub fn latency_svg(path: &Path, series: &[Series]) -> Result<(), String> {
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (_, x1, y0, y1) = bounds(series);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "End-to-end latency vs offered load (fanout, medians)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x1 * 1.05, (y0.max(0.01) * 0.8..y1 * 1.5).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("offered deliveries per second")
        .y_desc("latency (ms, log scale)")
        .draw()
        .map_err(|e| e.to_string())?;
    draw_lines(&mut chart, series)?;
    root.present().map_err(|e| e.to_string())
}

/// Server RSS (MiB) against idle connections.
pub fn memory_svg(path: &Path, series: &[Series]) -> Result<(), String> {
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (_, x1, _, y1) = bounds(series);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Server RSS vs idle authenticated connections (medians)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x1 * 1.05, 0f64..y1 * 1.1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("idle connections")
        .y_desc("RSS of the server process (MiB)")
        .draw()
        .map_err(|e| e.to_string())?;
    draw_lines(&mut chart, series)?;
    root.present().map_err(|e| e.to_string())
}
