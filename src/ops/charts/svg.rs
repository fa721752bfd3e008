//! Three chart shapes drawn as plain SVG text: stacked bars, a rate line, and
//! horizontal rate bars. No script and no library: the dashboard inserts the markup,
//! and each mark carries its value in `data-` attributes (and a `<title>` tooltip).

use std::fmt::Write;

const W: f64 = 560.0;
const H: f64 = 230.0;
const LEFT: f64 = 42.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 28.0;
/// At most this many x-axis labels are written; the others are skipped evenly.
const MAX_LABELS: usize = 12;

/// One stacked layer: a name, a colour and a value per bin.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<f64>,
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The opening tag, the title and (if any) the legend.
fn head(id: &str, title: &str, legend: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"chart-{}\" viewBox=\"0 0 {W} {H}\" \
         width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        esc(id),
        esc(title)
    );
    let mut x = LEFT;
    for (name, color) in legend {
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"24\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"33\">{}</text>",
            x + 14.0,
            esc(name)
        );
        x += 22.0 + 6.5 * name.chars().count() as f64;
    }
    s
}

/// An upper bound for a count axis whose four grid steps are whole, round numbers
/// (1, 2 or 5 times a power of ten).
fn count_max(max: f64) -> f64 {
    let raw = (max / 4.0).max(1.0);
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    4.0 * step
}

/// Horizontal grid lines with their values, and the x labels under `n` slots.
fn axes(s: &mut String, max: f64, labels: &[String], format: impl Fn(f64) -> String) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = H - BOTTOM - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            format(v)
        );
    }
    let slot = (W - LEFT - RIGHT) / labels.len().max(1) as f64;
    let every = labels.len().div_ceil(MAX_LABELS).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            LEFT + slot * (i as f64 + 0.5),
            H - BOTTOM + 14.0,
            esc(label)
        );
    }
}

fn empty(s: &mut String, note: &str) {
    let _ = write!(
        s,
        "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">{}</text>",
        W / 2.0,
        H / 2.0,
        esc(note)
    );
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

/// Bars per label, the series stacked bottom up in order.
pub fn stacked_bars(id: &str, title: &str, labels: &[String], series: &[Series]) -> String {
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.name.as_str(), s.color)).collect();
    let mut s = head(id, title, &legend);
    let totals: Vec<f64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = count_max(totals.iter().copied().fold(0.0, f64::max));
    axes(&mut s, max, labels, count);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / labels.len().max(1) as f64;
    for (i, label) in labels.iter().enumerate() {
        let mut y = H - BOTTOM;
        for se in series {
            let v = se.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / max;
            y -= h;
            let _ = write!(
                s,
                "<rect data-series=\"{}\" data-bin=\"{}\" data-value=\"{v}\" x=\"{:.1}\" y=\"{y:.1}\" \
                 width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {} {v}</title></rect>",
                esc(&se.name),
                esc(label),
                LEFT + slot * i as f64 + slot * 0.1,
                slot * 0.8,
                se.color,
                esc(label),
                esc(&se.name)
            );
        }
    }
    if totals.iter().all(|t| *t <= 0.0) {
        empty(&mut s, "Ingen data i perioden");
    }
    s.push_str("</svg>");
    s
}

fn pct(v: f64) -> String {
    format!("{:.0} %", v * 100.0)
}

/// A share (0 to 1) per label as a line with points; labels without a value leave a gap.
pub fn rate_line(id: &str, title: &str, labels: &[String], rates: &[Option<f64>]) -> String {
    let mut s = head(id, title, &[]);
    axes(&mut s, 1.0, labels, pct);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / labels.len().max(1) as f64;
    let point = |i: usize, r: f64| (LEFT + slot * (i as f64 + 0.5), H - BOTTOM - plot_h * r);
    let mut path = String::new();
    let mut pen_down = false;
    for (i, rate) in rates.iter().enumerate() {
        match rate {
            Some(r) => {
                let (x, y) = point(i, *r);
                let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(
            s,
            "<path d=\"{}\" fill=\"none\" stroke=\"#2a7\" stroke-width=\"2\"/>",
            path.trim()
        );
    }
    for (i, (label, rate)) in labels.iter().zip(rates).enumerate() {
        if let Some(r) = rate {
            let (x, y) = point(i, *r);
            let _ = write!(
                s,
                "<circle data-bin=\"{}\" data-value=\"{r:.3}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#2a7\">\
                 <title>{}: {}</title></circle>",
                esc(label),
                esc(label),
                pct(*r)
            );
        }
    }
    if rates.iter().all(Option::is_none) {
        empty(&mut s, "Ingen afsluttede opkald i perioden");
    }
    s.push_str("</svg>");
    s
}

/// One bar per row: a share (0 to 1) with a note after it ("3 opkald").
pub fn rate_bars(id: &str, title: &str, rows: &[(String, f64, String)]) -> String {
    let mut s = head(id, title, &[]);
    let label_w = 130.0;
    let bar_w = W - LEFT - label_w - 90.0;
    let row_h = ((H - TOP - 6.0) / rows.len().max(1) as f64).min(22.0);
    for (i, (label, rate, note)) in rows.iter().enumerate() {
        let y = TOP + row_h * i as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"#eee\"/>\
             <rect data-bin=\"{}\" data-value=\"{rate:.3}\" x=\"{}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2a7\">\
             <title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{} · {}</text>",
            LEFT + label_w - 6.0,
            y + row_h * 0.7,
            esc(label),
            LEFT + label_w,
            y + 2.0,
            row_h - 4.0,
            esc(label),
            LEFT + label_w,
            y + 2.0,
            bar_w * rate,
            row_h - 4.0,
            esc(label),
            pct(*rate),
            LEFT + label_w + bar_w + 6.0,
            y + row_h * 0.7,
            pct(*rate),
            esc(note)
        );
    }
    if rows.is_empty() {
        empty(&mut s, "Ingen afsluttede opkald i perioden");
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_carry_their_values_and_text_is_escaped() {
        let labels: Vec<String> = vec!["08".into(), "09".into()];
        let svg = stacked_bars(
            "calls",
            "Opkald <pr. time>",
            &labels,
            &[
                Series {
                    name: "resolved".into(),
                    color: "#2a7",
                    values: vec![2.0, 0.0],
                },
                Series {
                    name: "transferred".into(),
                    color: "#36c",
                    values: vec![1.0, 3.0],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("&lt;pr. time&gt;"), "{svg}");
        assert!(svg.contains("data-series=\"resolved\" data-bin=\"08\" data-value=\"2\""));
        assert!(svg.contains("data-series=\"transferred\" data-bin=\"09\" data-value=\"3\""));
        assert!(
            !svg.contains("data-bin=\"09\" data-value=\"0\""),
            "empty layers are not drawn"
        );
        assert!(!svg.contains("Ingen data"));
        let none = stacked_bars("calls", "t", &labels, &[]);
        assert!(none.contains("Ingen data"));
        assert_eq!(count_max(0.0), 4.0);
        assert_eq!(count_max(3.0), 4.0);
        assert_eq!(count_max(7.0), 8.0);
        assert_eq!(count_max(30.0), 40.0);
        assert_eq!(count_max(170.0), 200.0);
    }

    #[test]
    fn a_rate_line_leaves_gaps_where_there_is_no_value() {
        let labels: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        let svg = rate_line("rate", "t", &labels, &[Some(0.5), None, Some(1.0)]);
        assert_eq!(svg.matches("<circle").count(), 2);
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        let bars = rate_bars("topics", "t", &[("affald".into(), 0.75, "4 opkald".into())]);
        assert!(bars.contains("75 % · 4 opkald"), "{bars}");
    }
}
