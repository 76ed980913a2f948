//! `smelt report --html FILE`: the report as one self-contained HTML page (no scripts,
//! no external files): the compression summary, every encoded tensor's bytes, and the
//! per-value error table with an inline SVG plot of relative L2 error and cosine
//! along the graph's order.

use std::fmt::Write as _;

/// One encoded constant: name, encoding, bytes as f32 (logical) and as stored.
pub struct TensorRow {
    pub name: String,
    pub encoding: String,
    pub logical: usize,
    pub stored: usize,
}

/// One value compared with the original graph: name, relative L2 error, cosine.
pub struct ValueRow {
    pub name: String,
    pub rel_l2: f64,
    pub cosine: f64,
}

/// What the page shows.
pub struct Page<'a> {
    pub model: &'a str,
    pub pipeline: &'a str,
    pub inputs: &'a str,
    pub bytes_before: usize,
    pub bytes_after: usize,
    pub tensors: &'a [TensorRow],
    /// In the graph's topological order.
    pub values: &'a [ValueRow],
}

/// `s` with HTML's special characters escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page as HTML.
pub fn render(p: &Page) -> String {
    let mut h = String::new();
    let ratio = p.bytes_before as f64 / p.bytes_after.max(1) as f64;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>smelt report: {model}</title>\n\
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;font-size:13px}}\
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
code{{background:#f4f4f4}}</style></head><body>\n\
<h1>smelt report</h1>\n<p>Model <code>{model}</code>, pipeline <code>{pipe}</code>, errors on {inputs}.</p>\n\
<h2>Compression</h2>\n<p>Constants: {before} → {after} bytes (<b>{ratio:.3}×</b>), counting every code, scale, zero point and table.</p>\n",
        model = esc(p.model),
        pipe = esc(p.pipeline),
        inputs = esc(p.inputs),
        before = p.bytes_before,
        after = p.bytes_after,
    );
    h.push_str("<h2>Per-value error along the graph</h2>\n");
    h.push_str(&plot(p.values));
    h.push_str("<table><tr><th>#</th><th>value</th><th>relative L2</th><th>cosine</th></tr>\n");
    for (i, v) in p.values.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td>{i}</td><td>{}</td><td>{:.3e}</td><td>{:.6}</td></tr>",
            esc(&v.name),
            v.rel_l2,
            v.cosine
        );
    }
    h.push_str("</table>\n<h2>Encoded tensors</h2>\n");
    h.push_str("<table><tr><th>tensor</th><th>encoding</th><th>f32 bytes</th><th>stored bytes</th><th>ratio</th></tr>\n");
    for t in p.tensors {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}×</td></tr>",
            esc(&t.name),
            esc(&t.encoding),
            t.logical,
            t.stored,
            t.logical as f64 / t.stored.max(1) as f64
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

/// An SVG plot: relative L2 error (log scale, left axis) and 1 − cosine (log scale,
/// same axis) per value, in graph order.
fn plot(values: &[ValueRow]) -> String {
    let (w, ht, pad) = (1000.0f64, 320.0f64, 50.0f64);
    if values.is_empty() {
        return "<p>No value differs from the original.</p>\n".into();
    }
    let floor = 1e-8f64;
    let ys: Vec<(f64, f64)> = values
        .iter()
        .map(|v| (v.rel_l2.max(floor), (1.0 - v.cosine).max(floor)))
        .collect();
    let hi = ys
        .iter()
        .map(|(a, b)| a.max(*b))
        .fold(floor * 10.0, f64::max)
        .log10()
        .ceil();
    let lo = ys
        .iter()
        .map(|(a, b)| a.min(*b))
        .fold(1.0, f64::min)
        .log10()
        .floor()
        .min(hi - 1.0);
    let x = |i: usize| pad + (w - 2.0 * pad) * (i as f64 + 0.5) / values.len() as f64;
    let y = |v: f64| pad + (ht - 2.0 * pad) * (hi - v.log10()) / (hi - lo);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\">"
    );
    let mut decade = lo;
    while decade <= hi {
        let yy = y(10f64.powf(decade));
        let _ = writeln!(
            s,
            "<line x1=\"{pad}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">1e{decade}</text>",
            w - pad,
            pad - 4.0,
            yy + 4.0
        );
        decade += 1.0;
    }
    for (series, color, label) in [(0usize, "#c33", "relative L2"), (1, "#36c", "1 − cosine")] {
        let pts: Vec<String> = ys
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = if series == 0 { p.0 } else { p.1 };
                format!("{:.1},{:.1}", x(i), y(v))
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            pts.join(" ")
        );
        let ly = 18.0 + 16.0 * series as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"3\" fill=\"{color}\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"12\">{label}</text>",
            w - pad - 130.0,
            ly - 4.0,
            w - pad - 112.0,
            ly
        );
    }
    for (i, v) in values.iter().enumerate() {
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#c33\"><title>{}: relative L2 {:.3e}, cosine {:.6}</title></circle>",
            x(i),
            y(ys[i].0),
            esc(&v.name),
            v.rel_l2,
            v.cosine
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">values in graph order ({} compared)</text>\n</svg>",
        w / 2.0,
        ht - 12.0,
        values.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_and_escapes_names() {
        let values = vec![
            ValueRow {
                name: "a<b>".into(),
                rel_l2: 1e-3,
                cosine: 0.9999,
            },
            ValueRow {
                name: "c".into(),
                rel_l2: 0.0,
                cosine: 1.0,
            },
        ];
        let tensors = vec![TensorRow {
            name: "w.q".into(),
            encoding: "blockwise<i8>".into(),
            logical: 1024,
            stored: 288,
        }];
        let html = render(&Page {
            model: "m.onnx",
            pipeline: "blockwise-quant{weights=8}",
            inputs: "1 calibration sample",
            bytes_before: 4096,
            bytes_after: 1024,
            tensors: &tensors,
            values: &values,
        });
        assert!(html.contains("<svg") && html.contains("</svg>"));
        assert!(html.contains("a&lt;b&gt;"));
        assert!(!html.contains("<script") && !html.contains("src=\"http"));
        assert!(html.contains("4.000×"));
        assert_eq!(html.matches("<polyline").count(), 2);
        assert!(html.contains("blockwise&lt;i8&gt;"));
    }
}
