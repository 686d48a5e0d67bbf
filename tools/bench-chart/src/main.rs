//! bench-chart: draws the ringmerge benchmark results as grouped-bar SVG charts.
//!
//!   cargo run --release --manifest-path tools/bench-chart/Cargo.toml -- [DIR]   (default target/bench)
//!
//! Reads DIR/results.json (scripts/bench_compaction.py) -> DIR/compaction.svg and
//! DIR/workloads.json (scripts/bench_workloads.py) -> DIR/workloads.svg; whichever exist, at least
//! one. Every panel shows, per I/O mode, one bar per variant (stock first) at the median, a
//! min-max whisker when there was more than one run, the value, and the ratio of medians to stock
//! (green = better, red = worse, grey = within 2%).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;
use std::error::Error;
use std::path::{Path, PathBuf};

type Res<T> = Result<T, Box<dyn Error>>;

const PALETTE: [RGBColor; 5] = [
    RGBColor(110, 120, 135), // stock: slate grey
    RGBColor(230, 120, 20),  // native: orange
    RGBColor(40, 150, 80),   // bpf: green
    RGBColor(60, 110, 200),
    RGBColor(170, 60, 160),
];
const GOOD: RGBColor = RGBColor(20, 130, 50);
const BAD: RGBColor = RGBColor(190, 30, 30);
const NEUTRAL: RGBColor = RGBColor(90, 90, 90);
const CELL_W: u32 = 340;
const CELL_H: u32 = 250;
const HEADER_H: u32 = 78;

struct Bar {
    median: f64,
    min: f64,
    max: f64,
    n: u64,
    ratio: Option<f64>,
}

struct Panel {
    title: String,
    unit: String,
    lower_is_better: bool,
    groups: Vec<String>,            // I/O modes
    bars: Vec<Vec<Option<Bar>>>,    // [group][variant]
}

struct Chart {
    title: String,
    subtitle: String,
    variants: Vec<String>,
    cols: usize,
    panels: Vec<Panel>,
}

fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{v:.2}")
    }
}

fn str_list(v: &Value, what: &str) -> Res<Vec<String>> {
    v.as_array()
        .ok_or_else(|| format!("{what} is not a list"))?
        .iter()
        .map(|x| x.as_str().map(String::from).ok_or_else(|| format!("{what}: not a string").into()))
        .collect()
}

fn get_str<'a>(v: &'a Value, key: &str) -> Res<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| format!("summary entry without string '{key}'").into())
}

/// Bar for `key` of a summary entry: {key: {median,min,max,n}, ratio_to_stock: {key: r}}.
fn bar(entry: &Value, key: &str) -> Res<Option<Bar>> {
    let Some(st) = entry.get(key) else { return Ok(None) };
    if st.is_null() {
        return Ok(None);
    }
    let f = |k: &str| -> Res<f64> {
        st.get(k).and_then(Value::as_f64).ok_or_else(|| format!("'{key}.{k}' missing or not a number").into())
    };
    let is_stock = entry.get("variant").and_then(Value::as_str) == Some("stock");
    let ratio = if is_stock {
        None
    } else {
        entry.get("ratio_to_stock").and_then(|r| r.get(key)).and_then(Value::as_f64)
    };
    Ok(Some(Bar { median: f(&"median")?, min: f("min")?, max: f("max")?, n: f("n")? as u64, ratio }))
}

/// One panel per `key`, groups = modes, bars = variants, from entries matching `filter`.
fn panel(
    summary: &[Value],
    filter: &dyn Fn(&Value) -> bool,
    modes: &[String],
    variants: &[String],
    key: &str,
    title: String,
    unit: &str,
    lower_is_better: bool,
) -> Res<Panel> {
    let mut bars = Vec::new();
    for m in modes {
        let mut row = Vec::new();
        for v in variants {
            let e = summary
                .iter()
                .find(|e| filter(e) && e.get("mode").and_then(Value::as_str) == Some(m.as_str())
                    && e.get("variant").and_then(Value::as_str) == Some(v.as_str()));
            row.push(match e {
                Some(e) => bar(e, key)?,
                None => None,
            });
        }
        bars.push(row);
    }
    Ok(Panel { title, unit: unit.into(), lower_is_better, groups: modes.to_vec(), bars })
}

fn load(path: &Path) -> Res<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn summary_of(doc: &Value, path: &Path) -> Res<Vec<Value>> {
    let s = doc.get("summary").and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no 'summary' list", path.display()))?;
    if s.is_empty() {
        return Err(format!("{}: empty summary", path.display()).into());
    }
    Ok(s.clone())
}

fn compaction_chart(path: &Path) -> Res<Chart> {
    let doc = load(path)?;
    let summary = summary_of(&doc, path)?;
    let cfg = &doc["config"];
    let modes = str_list(&cfg["modes"], "config.modes")?;
    let variants = str_list(&cfg["variants"], "config.variants")?;
    let all = |_: &Value| true;
    let mut panels = Vec::new();
    for (key, title, unit) in [
        ("wall_s", "compaction wall time", "seconds"),
        ("cpu_s", "compaction CPU time", "seconds"),
        ("syscalls_total", "syscalls, every thread", "syscalls"),
        ("peak_rss_mb", "peak RSS", "MB"),
    ] {
        if summary.iter().any(|e| e.get(key).is_some()) {
            panels.push(panel(&summary, &all, &modes, &variants, key,
                              title.to_string(), unit, true)?);
        }
    }
    let input = format!(
        "{} keys, {} L0 files, {:.0} MB",
        cfg["num"].as_u64().unwrap_or(0),
        cfg["input_sst_files"].as_u64().unwrap_or(0),
        cfg["input_sst_bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    Ok(Chart {
        title: "Manual compaction (CompactRange of all L0 into L1): stock RocksDB vs ringmerge".into(),
        subtitle: format!(
            "{}  |  input {input}  |  reps {}  |  bars: median, whisker: min-max; ratio = variant / stock, same mode",
            doc["created"].as_str().unwrap_or("?").get(..19).unwrap_or("?"),
            cfg["reps"].as_u64().unwrap_or(0),
        ),
        variants,
        cols: panels.len().min(4),
        panels,
    })
}

fn workloads_chart(path: &Path) -> Res<Chart> {
    let doc = load(path)?;
    let summary = summary_of(&doc, path)?;
    let cfg = &doc["config"];
    let modes = str_list(&cfg["modes"], "config.modes")?;
    let variants = str_list(&cfg["variants"], "config.variants")?;
    let mut cases: Vec<(String, String)> = Vec::new();
    for e in &summary {
        let c = get_str(e, "case")?.to_string();
        if !cases.iter().any(|(n, _)| *n == c) {
            cases.push((c, e.get("title").and_then(Value::as_str).unwrap_or("").to_string()));
        }
    }
    let metrics = [
        ("ops_per_s", "ops/s", "ops/s", false),
        ("p99_write_us", "p99 write latency", "microseconds", true),
        ("p99_read_us", "p99 read latency", "microseconds", true),
        ("compaction_us_per_mb", "compaction time / MB read", "us per MB", true),
        ("stall_s", "write stall time", "seconds", true),
    ];
    // Only metric columns that some case has.
    let cols: Vec<_> = metrics.iter()
        .filter(|(k, ..)| summary.iter().any(|e| e.get(*k).map_or(false, |v| !v.is_null())))
        .collect();
    let mut panels = Vec::new();
    for (case, _) in &cases {
        let f = |e: &Value| e.get("case").and_then(Value::as_str) == Some(case.as_str());
        for (key, title, unit, lower) in &cols {
            panels.push(panel(&summary, &f, &modes, &variants, key,
                              format!("{case}: {title}"), unit, *lower)?);
        }
    }
    let wbs = cfg["write_buffer_size_override"].as_u64()
        .map(|w| format!(", write_buffer_size {w}")).unwrap_or_default();
    let has = |kind: &str| summary.iter().any(|e| e.get("kind").and_then(Value::as_str) == Some(kind));
    let mut scale = Vec::new();
    if has("fill") {
        scale.push(format!("fill num {}", cfg["num"].as_u64().unwrap_or(0)));
    }
    if has("rw") {
        scale.push(format!("rw num {}, rw duration {} s", cfg["rw_num"].as_u64().unwrap_or(0),
                           cfg["duration_s"].as_u64().unwrap_or(0)));
    }
    Ok(Chart {
        title: "db_bench workloads under live compaction: stock RocksDB vs ringmerge".into(),
        subtitle: format!(
            "{}  |  {}{wbs}  |  reps {}  |  bars: median, whisker: min-max; ratio = variant / stock, same case and mode",
            doc["created"].as_str().unwrap_or("?").get(..19).unwrap_or("?"),
            scale.join(", "),
            cfg["reps"].as_u64().unwrap_or(0),
        ),
        variants,
        cols: cols.len().max(1),
        panels,
    })
}

fn draw_panel(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, p: &Panel) -> Res<()> {
    if p.bars.iter().flatten().all(Option::is_none) {
        let (w, h) = area.dim_in_pixel();
        area.draw(&Text::new(p.title.as_str(), (w as i32 / 2, 10),
                             ("sans-serif", 13).into_font().style(FontStyle::Bold).color(&NEUTRAL)
                                 .pos(Pos::new(HPos::Center, VPos::Top))))?;
        let note = if p.title.contains("compaction") {
            "no data: no compaction completed in these runs"
        } else {
            "not measured in this workload"
        };
        area.draw(&Text::new(note, (w as i32 / 2, h as i32 / 2),
                             ("sans-serif", 12).into_font().color(&NEUTRAL)
                                 .pos(Pos::new(HPos::Center, VPos::Center))))?;
        return Ok(());
    }
    let ng = p.groups.len();
    let nv = p.bars.first().map_or(1, Vec::len).max(1);
    let top = p.bars.iter().flatten().flatten()
        .map(|b| b.max.max(b.median))
        .fold(0.0f64, f64::max);
    let ymax = if top > 0.0 { top * 1.32 } else { 1.0 };
    let groups = p.groups.clone();
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 13).into_font().style(FontStyle::Bold))
        .margin(6)
        .margin_right(12)
        .x_label_area_size(22)
        .y_label_area_size(48)
        // A segmented i32 range a..b has b-a+1 segments (both ends included).
        .build_cartesian_2d((0..ng as i32 - 1).into_segmented(), 0f64..ymax)?;
    chart.configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .y_labels(5)
        .y_desc(format!("{} ({} is better)", p.unit, if p.lower_is_better { "lower" } else { "higher" }))
        .y_label_formatter(&|v| short(*v))
        .x_labels(ng)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => groups.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 11))
        .draw()?;

    // Re-map the plotting area to plain f64 x so bars can sit side by side inside a mode's segment.
    let pa = chart.plotting_area().strip_coord_spec();
    let (xr, yr) = pa.get_pixel_range();
    let fine = pa.apply_coord_spec(Cartesian2d::<RangedCoordf64, RangedCoordf64>::new(
        0f64..ng as f64,
        0f64..ymax,
        (xr.start..xr.end - 1, yr.end - 1..yr.start),
    ));
    let slot = 0.76 / nv as f64;
    let label = ("sans-serif", 11).into_font();
    for (g, row) in p.bars.iter().enumerate() {
        for (i, b) in row.iter().enumerate() {
            let x0 = g as f64 + 0.12 + i as f64 * slot;
            let (l, r) = (x0 + slot * 0.08, x0 + slot * 0.92);
            let cx = (l + r) / 2.0;
            let color = PALETTE[i % PALETTE.len()];
            let Some(b) = b else {
                fine.draw(&(EmptyElement::at((cx, 0.0))
                    + Text::new("n/a", (0, -4), label.color(&NEUTRAL).pos(Pos::new(HPos::Center, VPos::Bottom)))))?;
                continue;
            };
            fine.draw(&Rectangle::new([(l, 0.0), (r, b.median)], color.filled()))?;
            let mut label_top = b.median;
            if b.n > 1 && b.max > b.min {
                let w = (r - l) * 0.18;
                let st = BLACK.stroke_width(1);
                fine.draw(&PathElement::new(vec![(cx, b.min), (cx, b.max)], st))?;
                fine.draw(&PathElement::new(vec![(cx - w, b.min), (cx + w, b.min)], st))?;
                fine.draw(&PathElement::new(vec![(cx - w, b.max), (cx + w, b.max)], st))?;
                label_top = b.max.max(b.median);
            }
            let base = EmptyElement::at((cx, label_top));
            let anchor = Pos::new(HPos::Center, VPos::Bottom);
            match b.ratio {
                Some(r) => {
                    let better = if p.lower_is_better { r < 1.0 } else { r > 1.0 };
                    let c = if (r - 1.0).abs() <= 0.02 { NEUTRAL } else if better { GOOD } else { BAD };
                    fine.draw(&(base
                        + Text::new(short(b.median), (0, -17), label.color(&BLACK).pos(anchor))
                        + Text::new(format!("{r:.2}x"), (0, -3),
                                    ("sans-serif", 12).into_font().style(FontStyle::Bold).color(&c).pos(anchor))))?;
                }
                None => {
                    fine.draw(&(base + Text::new(short(b.median), (0, -3), label.color(&BLACK).pos(anchor))))?;
                }
            }
        }
    }
    Ok(())
}

fn draw(chart: &Chart, out: &Path) -> Res<()> {
    let cols = chart.cols.max(1);
    let rows = chart.panels.len().div_ceil(cols).max(1);
    let w = (CELL_W * cols as u32).max(900);
    let h = HEADER_H + CELL_H * rows as u32;
    let root = SVGBackend::new(out, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER_H);
    header.draw(&Text::new(chart.title.as_str(), (12, 8), ("sans-serif", 18).into_font().style(FontStyle::Bold)))?;
    header.draw(&Text::new(chart.subtitle.as_str(), (12, 34), ("sans-serif", 12).into_font().color(&NEUTRAL)))?;
    let mut x = 12;
    for (i, v) in chart.variants.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        header.draw(&Rectangle::new([(x, 54), (x + 14, 68)], c.filled()))?;
        let name = match v.as_str() {
            "stock" => "stock (RINGMERGE_MODE=off)".to_string(),
            other => format!("{other} (RINGMERGE_MODE={other})"),
        };
        header.draw(&Text::new(name.clone(), (x + 20, 55), ("sans-serif", 13)))?;
        x += 30 + 8 * name.len() as i32;
    }
    let cells = body.split_evenly((rows, cols));
    for (p, area) in chart.panels.iter().zip(cells.iter()) {
        draw_panel(area, p)?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/bench".into()));
    let jobs: [(&str, &str, fn(&Path) -> Res<Chart>); 2] = [
        ("results.json", "compaction.svg", compaction_chart),
        ("workloads.json", "workloads.svg", workloads_chart),
    ];
    let mut wrote = 0;
    for (input, output, build) in jobs {
        let inp = dir.join(input);
        if !inp.exists() {
            continue;
        }
        let out = dir.join(output);
        match build(&inp).and_then(|c| draw(&c, &out).map(|_| c.panels.len())) {
            Ok(n) => {
                println!("bench-chart: wrote {} ({n} panels) from {}", out.display(), inp.display());
                wrote += 1;
            }
            Err(e) => {
                eprintln!("bench-chart: ERROR: {}: {e}", inp.display());
                std::process::exit(1);
            }
        }
    }
    if wrote == 0 {
        eprintln!("bench-chart: ERROR: neither results.json nor workloads.json in {}", dir.display());
        std::process::exit(1);
    }
}
