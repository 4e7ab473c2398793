//! Draws the chart models with plotters, as SVG and as PNG, with the
//! embedded font only.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::Error;
use crate::font::{self, FAMILY};
use crate::model::{BarChart, Chart, LineChart};

/// Width and height of every chart, pixels.
pub const SIZE: (u32, u32) = (1000, 560);

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Writes `chart` to `<stem>.svg` and `<stem>.png`.
///
/// # Errors
///
/// When the font cannot be registered or drawing or writing fails.
pub fn write_chart(chart: &Chart, stem: &Path) -> Result<(), Error> {
    font::ensure_registered().map_err(|message| Error::Render {
        chart: stem.display().to_string(),
        message,
    })?;
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let failed = |message: String| Error::Render {
        chart: stem.display().to_string(),
        message,
    };
    draw(chart, &SVGBackend::new(&svg, SIZE).into_drawing_area()).map_err(failed)?;
    draw(chart, &BitMapBackend::new(&png, SIZE).into_drawing_area()).map_err(failed)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let note = match chart {
        Chart::Line(c) => &c.note,
        Chart::Bars(c) => &c.note,
    };
    let (plot, foot) = root.split_vertically(SIZE.1 - 26);
    if !note.is_empty() {
        foot.draw_text(note, &(FAMILY, 13).into_font().color(&RGBColor(90, 90, 90)), (12, 4))
            .map_err(|e| e.to_string())?;
    }
    match chart {
        Chart::Line(c) => line(c, &plot),
        Chart::Bars(c) => bars(c, &plot),
    }
    .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn line<DB: DrawingBackend>(chart: &LineChart, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let x_max = points.clone().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let y_max = points.clone().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&chart.title, (FAMILY, 22).into_font().style(FontStyle::Bold))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72);
    if chart.y_log {
        let y_min = points.map(|p| p.1).filter(|y| *y > 0.0).fold(f64::INFINITY, f64::min);
        let y_min = if y_min.is_finite() { y_min * 0.8 } else { 0.1 };
        let mut ctx = builder.build_cartesian_2d(0.0..x_max * 1.02, (y_min..y_max * 1.5).log_scale())?;
        ctx.configure_mesh()
            .x_desc(&chart.x_label)
            .y_desc(&chart.y_label)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()?;
        for (i, series) in chart.series.iter().enumerate() {
            let style = colour(i).stroke_width(stroke(series.points.len()));
            let positive = series.points.iter().copied().filter(|p| p.1 > 0.0);
            ctx.draw_series(LineSeries::new(positive, style))?
                .label(&series.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour(i).stroke_width(3)));
        }
        legend(&mut ctx)
    } else {
        let mut ctx = builder.build_cartesian_2d(0.0..x_max * 1.02, 0.0..y_max * 1.08)?;
        ctx.configure_mesh()
            .x_desc(&chart.x_label)
            .y_desc(&chart.y_label)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()?;
        for (i, series) in chart.series.iter().enumerate() {
            let style = colour(i).stroke_width(stroke(series.points.len()));
            ctx.draw_series(LineSeries::new(series.points.iter().copied(), style))?
                .label(&series.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour(i).stroke_width(3)));
        }
        legend(&mut ctx)
    }
}

/// Thin lines for dense, jagged series: thick ones grow spikes at sharp
/// turns in the bitmap backend.
fn stroke(points: usize) -> u32 {
    if points > 300 { 1 } else { 2 }
}

fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    ctx: &mut ChartContext<'a, DB, CT>,
) -> DrawResult<DB> {
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()
}

fn bars<DB: DrawingBackend>(chart: &BarChart, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let mut groups: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for bar in &chart.bars {
        if !groups.contains(&bar.group.as_str()) {
            groups.push(&bar.group);
        }
        if !names.contains(&bar.name.as_str()) {
            names.push(&bar.name);
        }
    }
    let y_max = chart.bars.iter().map(|b| b.value).fold(0.0, f64::max).max(1e-9);
    let width = 0.8 / names.len().max(1) as f64;
    let group_count = groups.len().max(1) as f64;
    let labels = groups.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>();
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, (FAMILY, 22).into_font().style(FontStyle::Bold))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..group_count, 0.0..y_max * 1.2)?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let centre = x - x.floor();
            if (centre - 0.5).abs() < 1e-6 {
                labels.get(x.floor() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(&chart.y_label)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 15))
        .draw()?;
    for (n, name) in names.iter().enumerate() {
        let rects = chart.bars.iter().filter(|b| b.name == *name).filter_map(|b| {
            let g = groups.iter().position(|g| *g == b.group)? as f64;
            let left = g + 0.1 + n as f64 * width;
            Some(Rectangle::new(
                [(left, 0.0), (left + width * 0.92, b.value)],
                colour(n).filled(),
            ))
        });
        ctx.draw_series(rects)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour(n).filled()));
    }
    for bar in &chart.bars {
        if let (Some(g), Some(n)) = (
            groups.iter().position(|g| *g == bar.group),
            names.iter().position(|n| *n == bar.name),
        ) {
            let x = g as f64 + 0.1 + n as f64 * width + width * 0.2;
            ctx.draw_series(std::iter::once(Text::new(
                format!("{:.1}", bar.value),
                (x, bar.value + y_max * 0.03),
                (FAMILY, 14),
            )))?;
        }
    }
    legend(&mut ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bar, Series};

    #[test]
    fn line_and_bar_charts_are_written_as_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let line = Chart::Line(LineChart {
            title: "RSS".into(),
            note: "test machine".into(),
            x_label: "s".into(),
            y_label: "MiB".into(),
            y_log: true,
            series: vec![Series {
                name: "a".into(),
                points: vec![(0.0, 1.0), (1.0, 100.0)],
            }],
        });
        write_chart(&line, &dir.path().join("line")).unwrap();
        let bars = Chart::Bars(BarChart {
            title: "throughput".into(),
            note: String::new(),
            y_label: "GB/s".into(),
            bars: vec![
                Bar {
                    group: "null".into(),
                    name: "engine".into(),
                    value: 3.0,
                },
                Bar {
                    group: "null".into(),
                    name: "plain".into(),
                    value: 4.0,
                },
            ],
        });
        write_chart(&bars, &dir.path().join("bars")).unwrap();
        for name in ["line.svg", "line.png", "bars.svg", "bars.png"] {
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            assert!(bytes.len() > 1000, "{name} is {} bytes", bytes.len());
        }
        let svg = std::fs::read_to_string(dir.path().join("line.svg")).unwrap();
        assert!(svg.contains("test machine"));
        assert!(
            std::fs::read(dir.path().join("bars.png"))
                .unwrap()
                .starts_with(b"\x89PNG")
        );
    }
}
