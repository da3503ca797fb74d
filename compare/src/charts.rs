//! The report's charts, as SVG drawn by plotters.

use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use primer_objectives::ObjectiveConfig;
use primer_objectives::info::Metric;

use super::jobs::Method;
use super::results::{Cell, PretrainResult, TaskResult};
use super::stats::mean_std;

const SIZE: (u32, u32) = (720, 420);
/// Twelve colours, so that two objectives' six lines each stay apart.
const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
];

/// The validation metric an objective is judged by during pre-training (its main one), and its
/// axis name.
pub fn curve_metric(objective: &ObjectiveConfig) -> (String, impl Fn(&super::results::CurvePoint) -> f64) {
    let info = objective.info();
    let metric = info.metrics[0];
    let better = if metric.lower_is_better() { "lower" } else { "higher" };
    let value = move |p: &super::results::CurvePoint| match metric {
        Metric::BitsPerByte => p.bpb,
        Metric::Accuracy => p.accuracy,
        // Measured once, after training.
        Metric::PseudoPerplexity => f64::NAN,
        Metric::FromObjective { key, .. } => p.objective_metrics.get(key).copied().unwrap_or(f64::NAN),
    };
    (format!("valid {} ({better} is better)", metric.name(info)), value)
}

fn draw(build: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        build(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// A chart of values against tokens seen, from 0 to `x_max`: caption, axes and mesh drawn.
fn tokens_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    y_desc: &str,
    x_max: f64,
    (y_lo, y_hi): (f64, f64),
) -> anyhow::Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("tokens seen")
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{:.2}M", x / 1e6))
        .draw()?;
    Ok(chart)
}

/// Draws the chart's legend at `position`, on a light box.
fn legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Bounds of values with a margin; a flat series gets a unit-wide range.
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}

/// One objective's pre-training curve: its own validation metric against tokens seen, the
/// mean over seeds as a line and the range over seeds shaded.
pub fn pretrain_curve(
    objective: &ObjectiveConfig,
    runs: &[&PretrainResult],
    color_index: usize,
) -> anyhow::Result<String> {
    let (metric_name, metric) = curve_metric(objective);
    // Seeds share the evaluation steps; points are averaged position by position.
    let points = runs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
    let series: Vec<(f64, f64, f64, f64)> = (0..points)
        .map(|i| {
            let values: Vec<f64> = runs.iter().map(|r| metric(&r.curve[i])).collect();
            let (mean, _) = mean_std(&values);
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (runs[0].curve[i].tokens_seen as f64, mean, lo, hi)
        })
        .collect();
    let x_max = series.iter().map(|p| p.0).fold(1.0, f64::max);
    let (y_lo, y_hi) = padded(series.iter().flat_map(|p| [p.2, p.3]));
    let color = PALETTE[color_index % PALETTE.len()];
    draw(|root| {
        let caption = format!("{} pre-training ({} seeds)", objective.name(), runs.len());
        let mut chart = tokens_chart(root, &caption, &metric_name, x_max, (y_lo, y_hi))?;
        let mut band: Vec<(f64, f64)> = series.iter().map(|p| (p.0, p.3)).collect();
        band.extend(series.iter().rev().map(|p| (p.0, p.2)));
        chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.2))))?;
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?
            .label(format!("{} mean, range over seeds shaded", objective.name()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        Ok(())
    })
}

/// Minimal-pair accuracy of each objective's subset against tokens seen during pre-training,
/// the mean over seeds; `None` when the runs scored no pairs.
pub fn minimal_pairs_curves(objectives: &[ObjectiveConfig], runs: &[PretrainResult]) -> anyhow::Result<Option<String>> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = objectives
        .iter()
        .map(|objective| {
            let seeds: Vec<&PretrainResult> = runs.iter().filter(|r| &r.objective == objective).collect();
            let points = seeds.iter().map(|r| r.curve.len()).min().unwrap_or(0);
            let line = (0..points)
                .filter_map(|i| {
                    let values: Option<Vec<f64>> = seeds.iter().map(|r| r.curve[i].minimal_pairs).collect();
                    Some((seeds[0].curve[i].tokens_seen as f64, mean_std(&values?).0))
                })
                .collect();
            (objective.label(), line)
        })
        .collect();
    if lines.iter().all(|(_, line)| line.is_empty()) {
        return Ok(None);
    }
    let x_max = lines
        .iter()
        .flat_map(|(_, l)| l.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let (y_lo, y_hi) = padded(lines.iter().flat_map(|(_, l)| l.iter().map(|p| p.1)));
    draw(|root| {
        let caption = "minimal pairs during pre-training";
        let mut chart = tokens_chart(root, caption, "minimal-pair accuracy (subset)", x_max, (y_lo, y_hi))?;
        for (i, (label, line)) in lines.into_iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
    .map(Some)
}

/// The lines of the label-efficiency chart, in drawing order: trained classifiers, then
/// prompting with demonstrations (dashed), each where it has cells.
const LINES: [Method; 6] = [
    Method::Finetune,
    Method::Probe,
    Method::Scratch,
    Method::ShotFinetune,
    Method::KShot,
    Method::KShotCalibrated,
];

/// Accuracy against labelled examples (log scale) for every objective and trained method, and
/// for k-shot prompting beside fine-tuning on the same shots, mean over seeds with ±1 standard
/// deviation bars; zero-shot and the majority label as horizontal lines.
pub fn label_efficiency(task: &TaskResult, objectives: &[ObjectiveConfig]) -> anyhow::Result<String> {
    let placed: Vec<&Cell> = task
        .cells
        .iter()
        .filter(|c| c.method != Method::ZeroShot && c.labels_used > 0)
        .collect();
    let x_lo = placed
        .iter()
        .map(|c| c.labels_used as f64)
        .fold(f64::INFINITY, f64::min);
    let x_hi = placed.iter().map(|c| c.labels_used as f64).fold(1.0, f64::max);
    let (x_lo, x_hi) = (x_lo.max(1.0) / 1.5, (x_hi * 1.5).max(x_lo.max(1.0) * 2.0));
    let (y_lo, y_hi) = padded(
        task.cells
            .iter()
            .flat_map(|c| [c.mean - c.std, c.mean + c.std])
            .chain([task.majority_accuracy]),
    );
    draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{}: accuracy against labels", task.task), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("labelled training examples (log scale)")
            .y_desc("dev accuracy")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
        let mut color_index = 0;
        for objective in objectives {
            for method in LINES {
                let mut cells: Vec<&Cell> = placed
                    .iter()
                    .copied()
                    .filter(|c| &c.objective == objective && c.method == method)
                    .collect();
                if cells.is_empty() {
                    continue;
                }
                cells.sort_by_key(|c| c.labels_used);
                let color = PALETTE[color_index % PALETTE.len()];
                color_index += 1;
                method_line(&mut chart, &cells, format!("{objective} {}", method.name()), color)?;
            }
        }
        let mut horizontal = |y: f64, label: String, color: RGBColor| -> anyhow::Result<()> {
            chart
                .draw_series(LineSeries::new([(x_lo, y), (x_hi, y)], color.stroke_width(1)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            Ok(())
        };
        for (i, objective) in objectives.iter().enumerate() {
            if let Some(cell) = task
                .cells
                .iter()
                .find(|c| &c.objective == objective && c.method == Method::ZeroShot)
            {
                horizontal(
                    cell.mean,
                    format!("{objective} zero-shot"),
                    PALETTE[(color_index + i) % PALETTE.len()],
                )?;
            }
        }
        horizontal(task.majority_accuracy, "majority label".into(), RGBColor(120, 120, 120))?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
}

/// One method's cells of one objective as a line with ±1 standard deviation bars: thin for
/// scratch, dashed for prompting.
fn method_line<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, RangedCoordf64>>,
    cells: &[&Cell],
    label: String,
    color: RGBColor,
) -> anyhow::Result<()> {
    let method = cells[0].method;
    let style = if method == Method::Scratch {
        color.stroke_width(1)
    } else {
        color.stroke_width(2)
    };
    let points = cells.iter().map(|c| (c.labels_used as f64, c.mean));
    let series = match method {
        Method::KShot | Method::KShotCalibrated => {
            chart.draw_series(DashedLineSeries::new(points.collect::<Vec<_>>(), 6, 4, style))?
        }
        _ => chart.draw_series(LineSeries::new(points, style))?,
    };
    series
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    chart.draw_series(cells.iter().map(|c| {
        ErrorBar::new_vertical(
            c.labels_used as f64,
            c.mean - c.std,
            c.mean,
            c.mean + c.std,
            color.filled(),
            8,
        )
    }))?;
    Ok(())
}
