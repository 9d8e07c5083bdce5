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

/// One line (with a dot per configuration) in a panel, named in the legend if `name`.
struct Line<'a> {
    points: &'a [(i32, f64)],
    color: RGBColor,
    name: Option<&'static str>,
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

    let column = |f: &dyn Fn(&Row) -> f64| -> Vec<(i32, f64)> {
        (0..n).map(|i| (i, f(&rows[i as usize]))).collect()
    };
    let produce = column(&|r| r.throughput.mb_per_sec);
    let consume = column(&|r| r.consumed.mb_per_sec);
    let p99 = column(&|r| r.latency.p99_ms);
    panel(
        &top,
        "Eddy throughput, one producer / one consumer, one partition (MB/s)",
        "MB/s",
        n,
        &label,
        &[
            Line {
                points: &produce,
                color: BLUE,
                name: Some("produce"),
            },
            Line {
                points: &consume,
                color: RED,
                name: Some("consume"),
            },
        ],
    )?;
    panel(
        &bottom,
        "p99 produce latency (send to acknowledgement) at a fixed rate (ms)",
        "ms",
        n,
        &label,
        &[Line {
            points: &p99,
            color: GREEN,
            name: None,
        }],
    )?;
    root.present()?;
    Ok(())
}

/// One chart over the `n` configurations: a caption, the mesh, and `lines`.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    n: i32,
    label: &dyn Fn(&i32) -> String,
    lines: &[Line<'_>],
) -> Result<(), Box<dyn std::error::Error>> {
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.1, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-1..n, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_labels(n as usize + 2)
        .x_label_formatter(label)
        .x_label_style(("sans-serif", 13))
        .y_desc(y_desc)
        .draw()?;
    for line in lines {
        let color = line.color;
        let series = chart.draw_series(LineSeries::new(line.points.iter().copied(), color))?;
        if let Some(name) = line.name {
            series
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart.draw_series(PointSeries::of_element(
            line.points.iter().copied(),
            5,
            color.filled(),
            &|c, s, st| Circle::new(c, s, st),
        ))?;
    }
    if lines.iter().any(|l| l.name.is_some()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_into_a_png() {
        if FONT_PATHS.iter().all(|p| !Path::new(p).exists()) {
            eprintln!("skipped: no font for the plot's text (apt-get install fonts-dejavu-core)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("eddy-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("plot.png");
        let rows = vec![crate::report::tests::sample_row(); 3];
        draw(&path, &rows).expect("draws");
        let png = std::fs::read(&path).expect("written");
        assert_eq!(&png[1..4], b"PNG", "a PNG file");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
