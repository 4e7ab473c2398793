//! The report's data model, apart from rendering: charts and tables as
//! plain data, built from results by `charts` and `sections`, drawn by
//! `render` and `markdown`.

/// One named line of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart: several series on the same axes.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Small print under the plot (machine, date, revision).
    pub note: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Logarithmic y axis.
    pub y_log: bool,
    /// The lines.
    pub series: Vec<Series>,
}

/// One bar of a [`BarChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Group label under the axis (bars with the same group stand together).
    pub group: String,
    /// Which bar of the group (legend text; bars with the same name share a
    /// colour).
    pub name: String,
    /// Height.
    pub value: f64,
}

/// A grouped bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// Title above the plot.
    pub title: String,
    /// Small print under the plot.
    pub note: String,
    /// Y axis description.
    pub y_label: String,
    /// The bars, in order.
    pub bars: Vec<Bar>,
}

/// A chart of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Lines.
    Line(LineChart),
    /// Bars.
    Bars(BarChart),
}

/// A markdown table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells, as many as headers.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers and no rows.
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

/// At most `max` points: the x range is cut into `max` buckets and each
/// bucket keeps its largest y (so peaks survive), at the bucket's first x.
pub fn downsample_max(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per_bucket = points.len().div_ceil(max);
    points
        .chunks(per_bucket)
        .filter_map(|bucket| {
            let x = bucket.first()?.0;
            let y = bucket.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            Some((x, y))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_peaks_and_the_count_bound() {
        let points: Vec<(f64, f64)> = (0..1000)
            .map(|i| (f64::from(i), if i == 517 { 99.0 } else { 1.0 }))
            .collect();
        let small = downsample_max(&points, 100);
        assert!(small.len() <= 100);
        assert!(small.iter().any(|p| (p.1 - 99.0).abs() < f64::EPSILON));
        assert_eq!(downsample_max(&points[..10], 100).len(), 10);
    }
}
