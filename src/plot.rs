//! Training curves as a PNG: loss per iteration with its trend, and validation mIoU (red; green
//! for the weights' moving average, where a run keeps one).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Fonts tried for the chart's text; plotters ships none, and without one the charts are drawn
/// without captions rather than not at all.
const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

fn font_available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        FONT_PATHS.iter().any(|path| {
            std::fs::read(path).is_ok_and(|bytes| {
                register_font(
                    "sans-serif",
                    FontStyle::Normal,
                    Box::leak(bytes.into_boxed_slice()),
                )
                .is_ok()
            })
        })
    })
}

/// Reads a training `log.jsonl` and draws loss and validation mIoU against iterations.
pub fn plot_curves(log: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(log)?;
    let mut losses = Vec::new();
    let mut mious = Vec::new();
    let mut ema_mious = Vec::new();
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(iteration) = value["iteration"].as_f64() else {
            continue;
        };
        if let Some(loss) = value["loss"].as_f64() {
            losses.push((iteration, loss));
        }
        if let Some(miou) = value["val_miou"].as_f64() {
            mious.push((iteration, miou * 100.0));
        }
        if let Some(miou) = value["ema_val_miou"].as_f64() {
            ema_mious.push((iteration, miou * 100.0));
        }
    }
    let max_iteration = losses.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_loss = losses.iter().map(|p| p.1).fold(0.1, f64::max);
    let miou_range = miou_axis(mious.iter().chain(&ema_mious).map(|p| p.1));
    // About 200 independent points across the run: the trend shows through the noise of
    // single batches.
    let trend = smooth(&losses, (losses.len() / 200).max(1));

    let root = BitMapBackend::new(out, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let text = font_available();
    let chart = |area, caption: &str, y: std::ops::Range<f64>| {
        let mut builder = ChartBuilder::on(area);
        builder.margin(10);
        if text {
            builder
                .caption(caption, ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(45);
        }
        builder.build_cartesian_2d(0.0..max_iteration, y)
    };
    let mut loss_chart = chart(&left, "training loss", 0.0..max_loss)?;
    let mut miou_chart = chart(&right, "validation mIoU (%)", miou_range)?;
    // Iterations and mIoU read in whole numbers; the loss, a few units, with one decimal.
    let whole: &dyn Fn(&f64) -> String = &|v| format!("{v:.0}");
    let tenths: &dyn Fn(&f64) -> String = &|v| format!("{v:.1}");
    for (mut mesh, y_format) in [
        (loss_chart.configure_mesh(), tenths),
        (miou_chart.configure_mesh(), whole),
    ] {
        match text {
            true => mesh
                .x_desc("iteration")
                .x_label_formatter(whole)
                .y_label_formatter(y_format),
            false => mesh.x_labels(0).y_labels(0),
        };
        mesh.draw()?;
    }
    // Pale and opaque: thousands of overlapping translucent batches would add up to solid.
    loss_chart.draw_series(LineSeries::new(losses, RGBColor(180, 200, 240)))?;
    loss_chart.draw_series(LineSeries::new(trend, RGBColor(0, 0, 140).stroke_width(2)))?;
    // The weights, and their moving average where the run keeps one.
    let has_ema = !ema_mious.is_empty();
    for (points, color, name) in [
        (mious, RED, "weights"),
        (ema_mious, GREEN, "moving average"),
    ] {
        miou_chart
            .draw_series(LineSeries::new(points.clone(), color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        miou_chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    if text && has_ema {
        miou_chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The mIoU axis: the measured values with 5 points of margin, in whole tens within 0–100, so
/// that differences of a point or two stay visible.
fn miou_axis(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
        (low.min(v), high.max(v))
    });
    if low > high {
        return 0.0..100.0;
    }
    let low = ((low - 5.0) / 10.0).floor().max(0.0) * 10.0;
    let high = ((high + 5.0) / 10.0).ceil().min(10.0) * 10.0;
    low..high
}

/// An exponential moving average of `points`' values over about `window` points.
fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let keep = 1.0 - 1.0 / window as f64;
    let mut average = None;
    points
        .iter()
        .map(|&(x, y)| {
            let value = average.map_or(y, |a: f64| keep * a + (1.0 - keep) * y);
            average = Some(value);
            (x, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_miou_axis_frames_the_values_in_tens() {
        assert_eq!(miou_axis([34.4, 40.2].into_iter()), 20.0..50.0);
        assert_eq!(miou_axis([2.0, 97.0].into_iter()), 0.0..100.0);
        assert_eq!(miou_axis(std::iter::empty()), 0.0..100.0);
    }

    #[test]
    fn smoothing_keeps_a_level_and_follows_a_step_gradually() {
        let level: Vec<_> = (0..10).map(|i| (i as f64, 3.0)).collect();
        assert!(smooth(&level, 4).iter().all(|p| p.1 == 3.0));
        let step: Vec<_> = (0..10)
            .map(|i| (i as f64, if i < 5 { 0.0 } else { 1.0 }))
            .collect();
        let smoothed = smooth(&step, 4);
        assert_eq!(smoothed[4].1, 0.0);
        assert!(smoothed[5].1 > 0.2 && smoothed[5].1 < 0.3);
        assert!(smoothed[9].1 > smoothed[5].1 && smoothed[9].1 < 1.0);
        assert_eq!(smooth(&step, 1), step);
    }
}
