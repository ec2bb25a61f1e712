//! Training curves as a PNG: loss per iteration and validation mIoU (red; green for the
//! weights' moving average, where a run keeps one).

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

    let root = BitMapBackend::new(out, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let text = font_available();
    let chart = |area, caption: &str, y_max: f64| {
        let mut builder = ChartBuilder::on(area);
        builder.margin(10);
        if text {
            builder
                .caption(caption, ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(45);
        }
        builder.build_cartesian_2d(0.0..max_iteration, 0.0..y_max)
    };
    let mut loss_chart = chart(&left, "training loss", max_loss)?;
    let mut miou_chart = chart(&right, "validation mIoU (%)", 100.0)?;
    for mesh in [loss_chart.configure_mesh(), miou_chart.configure_mesh()] {
        let mut mesh = mesh;
        match text {
            true => mesh.x_desc("iteration"),
            false => mesh.x_labels(0).y_labels(0),
        };
        mesh.draw()?;
    }
    loss_chart.draw_series(LineSeries::new(losses, &BLUE))?;
    miou_chart.draw_series(LineSeries::new(mious.clone(), &RED))?;
    miou_chart.draw_series(mious.into_iter().map(|p| Circle::new(p, 3, RED.filled())))?;
    // The weights' moving average, where the run keeps one.
    miou_chart.draw_series(LineSeries::new(ema_mious.clone(), &GREEN))?;
    miou_chart.draw_series(
        ema_mious
            .into_iter()
            .map(|p| Circle::new(p, 3, GREEN.filled())),
    )?;
    root.present()?;
    Ok(())
}
