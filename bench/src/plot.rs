//! The plot in BENCHMARKS.md: produce and consume throughput (MB/s) and p99 produce
//! latency (ms) across the configurations, drawn with plotters into a PNG.
//!
//! Text is rendered by ab_glyph from a TrueType file read at run time (Debian's
//! fonts-dejavu-core), so building needs no fontconfig or freetype.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::Row;

/// Where Debian's fonts-dejavu-core puts its sans-serif face, and a few other places.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn register_font() -> Result<(), String> {
    let path = FONT_PATHS
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| {
            format!(
                "no TrueType font for the plot's text at {FONT_PATHS:?}: install one with \
                 `apt-get install fonts-dejavu-core`"
            )
        })?;
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    // plotters keeps fonts for the life of the process; one small file, read once.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path}: not a TrueType font plotters can read"))
}

/// Draws the plot into `path`.
pub(crate) fn draw(path: &Path, rows: &[Row]) -> Result<(), String> {
    register_font()?;
    draw_inner(path, rows).map_err(|e| format!("drawing {}: {e}", path.display()))
}

fn draw_inner(path: &Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    let n = rows.len() as i32;
    let names: Vec<String> = rows.iter().map(|r| r.config.short()).collect();
    let label = |x: &i32| {
        usize::try_from(*x)
            .ok()
            .and_then(|i| names.get(i).cloned())
            .unwrap_or_default()
    };
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(450);

    let produce: Vec<(i32, f64)> = (0..n)
        .map(|i| (i, rows[i as usize].throughput.mb_per_sec))
        .collect();
    let consume: Vec<(i32, f64)> = (0..n)
        .map(|i| (i, rows[i as usize].consumed.mb_per_sec))
        .collect();
    let y_max = produce
        .iter()
        .chain(&consume)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            "Eddy throughput, one producer / one consumer, one partition (MB/s)",
            ("sans-serif", 24),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-1..n, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_labels(n as usize + 2)
        .x_label_formatter(&label)
        .x_label_style(("sans-serif", 13))
        .y_desc("MB/s")
        .draw()?;
    for (points, color, name) in [(&produce, BLUE, "produce"), (&consume, RED, "consume")] {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(PointSeries::of_element(
            points.iter().copied(),
            5,
            color.filled(),
            &|c, s, st| Circle::new(c, s, st),
        ))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()?;

    let p99: Vec<(i32, f64)> = (0..n)
        .map(|i| (i, rows[i as usize].latency.p99_ms))
        .collect();
    let y_max = p99.iter().map(|p| p.1).fold(0.1, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "p99 produce latency (send to acknowledgement) at a fixed rate (ms)",
            ("sans-serif", 24),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-1..n, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_labels(n as usize + 2)
        .x_label_formatter(&label)
        .x_label_style(("sans-serif", 13))
        .y_desc("ms")
        .draw()?;
    chart.draw_series(LineSeries::new(p99.iter().copied(), GREEN))?;
    chart.draw_series(PointSeries::of_element(
        p99.iter().copied(),
        5,
        GREEN.filled(),
        &|c, s, st| Circle::new(c, s, st),
    ))?;
    root.present()?;
    Ok(())
}
