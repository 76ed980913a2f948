//! More windowed ops over `[N, C, spatial...]` tensors: ConvTranspose, LpPool,
//! MaxUnpool and Col2Im. Computed in f64 with plain loops.

use smelt_ir::Attrs;

use super::conv::Window;
use super::resize::from_f64;
use super::{checked_len, input, opt_input};
use crate::error::{bail, OpResult};
use crate::value::Value;

/// An ints attribute with `n` entries (or `default` repeated), each at least `min`.
fn ints(attrs: &Attrs, name: &str, n: usize, default: i64, min: i64) -> OpResult<Vec<i64>> {
    let v = attrs
        .ints(name)
        .map(<[i64]>::to_vec)
        .unwrap_or_else(|| vec![default; n]);
    if v.len() != n || v.iter().any(|&x| x < min || x > i64::from(i32::MAX)) {
        bail!("attribute {name} {v:?} must have {n} values, each at least {min}");
    }
    Ok(v)
}

/// Row-major strides of `shape`.
fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The multi-index of flat index `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize], out: &mut [usize]) {
    for d in (0..shape.len()).rev() {
        out[d] = i % shape[d];
        i /= shape[d];
    }
}

/// ONNX ConvTranspose: every input element scatters `x · W` onto the output window it
/// generates.
pub(crate) fn conv_transpose(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let w = input(inputs, 1, "W")?;
    let b = opt_input(inputs, 2);
    let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
    if xs.len() < 3 || ws.len() != xs.len() {
        bail!("X {xs:?} and W {ws:?} must both be [N, C, spatial...]");
    }
    if !x.dtype().is_float() {
        bail!("X must be a float tensor, got {}", x.dtype());
    }
    let nsp = xs.len() - 2;
    let (n, c) = (xs[0], xs[1]);
    let group = attrs.int_or("group", 1);
    if group <= 0 || c % group as usize != 0 || ws[0] != c {
        bail!(
            "W has {} input channels, X has {c}; group {group} must divide them",
            ws[0]
        );
    }
    let group = group as usize;
    let (cg, mg) = (c / group, ws[1]);
    let m = mg * group;
    let kernel: Vec<usize> = ws[2..].to_vec();
    if let Some(k) = attrs.ints("kernel_shape") {
        if k.iter().map(|&v| v as usize).ne(kernel.iter().copied()) || k.len() != nsp {
            bail!("kernel_shape {k:?} disagrees with W's spatial dims {kernel:?}");
        }
    }
    let strides = ints(attrs, "strides", nsp, 1, 1)?;
    let dil = ints(attrs, "dilations", nsp, 1, 1)?;
    let out_pad = ints(attrs, "output_padding", nsp, 0, 0)?;
    let auto_pad = attrs.str("auto_pad").unwrap_or("NOTSET");
    let full: Vec<i64> = (0..nsp)
        .map(|i| {
            strides[i] * (xs[i + 2] as i64 - 1) + out_pad[i] + (kernel[i] as i64 - 1) * dil[i] + 1
        })
        .collect();
    let (pads, out_sp): (Vec<i64>, Vec<i64>) = match (attrs.ints("pads"), auto_pad) {
        (Some(p), "NOTSET") => {
            if p.len() != 2 * nsp || p.iter().any(|&v| !(0..=i64::from(i32::MAX)).contains(&v)) {
                bail!(
                    "pads {p:?} must be {} non-negative values below 2^31",
                    2 * nsp
                );
            }
            let out = match attrs.ints("output_shape") {
                Some(o)
                    if o.len() == nsp
                        && o.iter().all(|&v| (0..=i64::from(i32::MAX)).contains(&v)) =>
                {
                    o.to_vec()
                }
                Some(o) => bail!("output_shape {o:?} must have {nsp} values in [0, 2^31)"),
                None => (0..nsp).map(|i| full[i] - p[i] - p[nsp + i]).collect(),
            };
            (p.to_vec(), out)
        }
        (_, "NOTSET" | "SAME_UPPER" | "SAME_LOWER" | "VALID") => {
            let out: Vec<i64> = match attrs.ints("output_shape") {
                Some(o)
                    if o.len() == nsp
                        && o.iter().all(|&v| (0..=i64::from(i32::MAX)).contains(&v)) =>
                {
                    o.to_vec()
                }
                Some(o) => bail!("output_shape {o:?} must have {nsp} values in [0, 2^31)"),
                None if auto_pad.starts_with("SAME") => {
                    (0..nsp).map(|i| xs[i + 2] as i64 * strides[i]).collect()
                }
                None => full.clone(),
            };
            let mut p = vec![0i64; 2 * nsp];
            for i in 0..nsp {
                let total = full[i] - out[i];
                let (small, big) = (total.div_euclid(2), total - total.div_euclid(2));
                if auto_pad == "SAME_UPPER" {
                    p[i] = small;
                    p[nsp + i] = big;
                } else {
                    p[i] = big;
                    p[nsp + i] = small;
                }
            }
            (p, out)
        }
        (_, other) => bail!("unknown auto_pad {other:?}"),
    };
    if out_sp.iter().any(|&v| v < 0) {
        bail!("output spatial shape {out_sp:?} is negative");
    }
    let out_sp: Vec<usize> = out_sp.iter().map(|&v| v as usize).collect();
    let mut out_shape = vec![n, m];
    out_shape.extend_from_slice(&out_sp);
    checked_len(&out_shape)?;
    let bias = match b {
        Some(b) => {
            if b.shape() != [m] {
                bail!("B has shape {:?}, expected [{m}]", b.shape());
            }
            b.to_f64_vec("B")?
        }
        None => vec![0.0; m],
    };
    let xv = x.to_f64_vec("X")?;
    let wv = w.to_f64_vec("W")?;
    let in_sp = &xs[2..];
    let in_len: usize = in_sp.iter().product();
    let k_len: usize = kernel.iter().product();
    let out_len: usize = out_sp.iter().product();
    let out_strides = strides_of(&out_sp);
    let mut out = vec![0.0; n * m * out_len];
    let (mut ii, mut kk) = (vec![0usize; nsp], vec![0usize; nsp]);
    for bn in 0..n {
        for ch in 0..c {
            let g = ch / cg;
            for p in 0..in_len {
                let xval = xv[(bn * c + ch) * in_len + p];
                if xval == 0.0 {
                    continue;
                }
                unravel(p, in_sp, &mut ii);
                'tap: for k in 0..k_len {
                    unravel(k, &kernel, &mut kk);
                    let mut off = 0usize;
                    for d in 0..nsp {
                        let o = ii[d] as i64 * strides[d] + kk[d] as i64 * dil[d] - pads[d];
                        if o < 0 || o >= out_sp[d] as i64 {
                            continue 'tap;
                        }
                        off += o as usize * out_strides[d];
                    }
                    for ml in 0..mg {
                        let oc = g * mg + ml;
                        let wval = wv[(ch * mg + ml) * k_len + k];
                        out[(bn * m + oc) * out_len + off] += xval * wval;
                    }
                }
            }
        }
        for oc in 0..m {
            out[(bn * m + oc) * out_len..][..out_len]
                .iter_mut()
                .for_each(|v| *v += bias[oc]);
        }
    }
    from_f64(x.dtype(), &out_shape, out)
}

/// ONNX LpPool: `(Σ |x|^p)^(1/p)` over each window; padding counts as zero.
pub(crate) fn lp_pool(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let xs = x.shape().to_vec();
    if xs.len() < 3 {
        bail!("X must be [N, C, spatial...], got shape {xs:?}");
    }
    if !x.dtype().is_float() {
        bail!("X must be a float tensor, got {}", x.dtype());
    }
    let Some(k) = attrs.ints("kernel_shape") else {
        bail!("missing attribute kernel_shape")
    };
    if k.iter().any(|&v| v <= 0) {
        bail!("kernel_shape {k:?} must be positive");
    }
    let kernel: Vec<usize> = k.iter().map(|&v| v as usize).collect();
    let p = attrs.int_or("p", 2);
    if p <= 0 {
        bail!("p must be positive, got {p}");
    }
    let p = p as f64;
    let win = Window::new(&xs[2..], &kernel, attrs, attrs.int_or("ceil_mode", 0) != 0)?;
    let planes = xs[0] * xs[1];
    let (in_len, out_len) = (win.input_len(), win.output_len());
    let xv = x.to_f64_vec("X")?;
    let [id, ih, iw] = win.input;
    let [kd, kh, kw] = win.kernel;
    let [od, oh, ow] = win.output;
    let mut out = Vec::with_capacity(planes * out_len);
    for pl in 0..planes {
        let plane = &xv[pl * in_len..][..in_len];
        for z in 0..od {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut sum = 0.0;
                    for a in 0..kd {
                        let zi = win.coord(0, z, a);
                        for bb in 0..kh {
                            let yi = win.coord(1, y, bb);
                            for e in 0..kw {
                                let xi = win.coord(2, xo, e);
                                let inside = zi >= 0
                                    && yi >= 0
                                    && xi >= 0
                                    && zi < id as isize
                                    && yi < ih as isize
                                    && xi < iw as isize;
                                if inside {
                                    let v =
                                        plane[(zi as usize * ih + yi as usize) * iw + xi as usize];
                                    sum += v.abs().powf(p);
                                }
                            }
                        }
                    }
                    out.push(sum.powf(1.0 / p));
                }
            }
        }
    }
    let mut shape = xs[..2].to_vec();
    shape.extend(win.output_dims());
    from_f64(x.dtype(), &shape, out)
}

/// ONNX Col2Im: sums the columns `[N, C·∏block, L]` back into images
/// `[N, C, image_shape...]` (the inverse layout of im2col; overlaps add up).
pub(crate) fn col2im(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let image = input(inputs, 1, "image_shape")?.to_i64_vec("image_shape")?;
    let block = input(inputs, 2, "block_shape")?.to_i64_vec("block_shape")?;
    let nsp = image.len();
    if nsp == 0 || block.len() != nsp {
        bail!("image_shape {image:?} and block_shape {block:?} must have the same non-zero length");
    }
    if image.iter().any(|&v| v < 0) || block.iter().any(|&v| v <= 0) {
        bail!("image_shape {image:?} must be non-negative and block_shape {block:?} positive");
    }
    let xs = x.shape().to_vec();
    if xs.len() != 3 {
        bail!("input must be [N, C·∏block_shape, L], got shape {xs:?}");
    }
    let strides = ints(attrs, "strides", nsp, 1, 1)?;
    let dil = ints(attrs, "dilations", nsp, 1, 1)?;
    let pads = ints(attrs, "pads", 2 * nsp, 0, 0)?;
    let img: Vec<usize> = image.iter().map(|&v| v as usize).collect();
    let kernel: Vec<usize> = block.iter().map(|&v| v as usize).collect();
    checked_len(&img)?;
    let k_len = checked_len(&kernel)?;
    if xs[1] % k_len != 0 {
        bail!(
            "input has {} rows, not a multiple of the block size {k_len}",
            xs[1]
        );
    }
    let c = xs[1] / k_len;
    // Number of block positions along each spatial dim.
    let mut grid = Vec::with_capacity(nsp);
    for i in 0..nsp {
        // i128: image and block sizes are only bounded by checked_len.
        let w = |v: &[i64], j: usize| i128::from(v[j]);
        let span = (w(&block, i) - 1) * w(&dil, i) + 1;
        let padded = w(&image, i) + w(&pads, i) + w(&pads, nsp + i);
        if padded < span {
            bail!("block {block:?} does not fit image {image:?} with pads {pads:?}");
        }
        grid.push(((padded - span) / w(&strides, i) + 1) as usize);
    }
    let l = checked_len(&grid)?;
    if xs[2] != l {
        bail!("input has {} columns, expected {l} block positions", xs[2]);
    }
    let mut out_shape = vec![xs[0], c];
    out_shape.extend_from_slice(&img);
    checked_len(&out_shape)?;
    let img_len: usize = img.iter().product();
    let img_strides = strides_of(&img);
    let xv = x.to_f64_vec("input")?;
    let mut out = vec![0.0; xs[0] * c * img_len];
    let (mut kk, mut ll) = (vec![0usize; nsp], vec![0usize; nsp]);
    for n in 0..xs[0] {
        for ch in 0..c {
            for k in 0..k_len {
                unravel(k, &kernel, &mut kk);
                let row = &xv[((n * c + ch) * k_len + k) * l..][..l];
                'pos: for (p, &v) in row.iter().enumerate() {
                    unravel(p, &grid, &mut ll);
                    let mut off = 0;
                    for d in 0..nsp {
                        let o = ll[d] as i64 * strides[d] + kk[d] as i64 * dil[d] - pads[d];
                        if o < 0 || o >= img[d] as i64 {
                            continue 'pos;
                        }
                        off += o as usize * img_strides[d];
                    }
                    out[(n * c + ch) * img_len + off] += v;
                }
            }
        }
    }
    from_f64(x.dtype(), &out_shape, out)
}

/// ONNX MaxUnpool: scatters X to the flat positions in `I` of a zero tensor of the
/// inferred pooling input shape, placed at the start of `output_shape` when given.
pub(crate) fn max_unpool(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let idx = input(inputs, 1, "I")?;
    let xs = x.shape().to_vec();
    if xs.len() < 3 {
        bail!("X must be [N, C, spatial...], got shape {xs:?}");
    }
    if idx.shape() != xs.as_slice() {
        bail!("I has shape {:?}, X has {xs:?}", idx.shape());
    }
    let nsp = xs.len() - 2;
    let Some(k) = attrs.ints("kernel_shape") else {
        bail!("missing attribute kernel_shape")
    };
    if k.len() != nsp || k.iter().any(|&v| v <= 0) {
        bail!("kernel_shape {k:?} must have {nsp} positive values");
    }
    let strides = ints(attrs, "strides", nsp, 1, 1)?;
    let pads = ints(attrs, "pads", 2 * nsp, 0, 0)?;
    let mut inferred = xs[..2].to_vec();
    for i in 0..nsp {
        let w = |v: &[i64], j: usize| i128::from(v[j]);
        let v =
            (xs[i + 2] as i128 - 1) * w(&strides, i) - w(&pads, i) - w(&pads, nsp + i) + w(k, i);
        if v < 0 || v > super::MAX_ELEMENTS as i128 {
            bail!("the unpooled size of spatial axis {i} is out of range ({v})");
        }
        inferred.push(v as usize);
    }
    let shape = match opt_input(inputs, 2) {
        Some(o) => {
            let o = o.to_i64_vec("output_shape")?;
            if o.len() != xs.len() || o.iter().zip(&inferred).any(|(&a, &b)| a < b as i64) {
                bail!(
                    "output_shape {o:?} must have rank {} and hold {inferred:?}",
                    xs.len()
                );
            }
            o.iter().map(|&v| v as usize).collect()
        }
        None => inferred.clone(),
    };
    let total = checked_len(&shape)?;
    let inf_len = checked_len(&inferred)?;
    let mut flat = vec![0.0; inf_len];
    let xv = x.to_f64_vec("X")?;
    for (&v, &i) in xv.iter().zip(&idx.to_i64_vec("I")?) {
        match usize::try_from(i).ok().filter(|&i| i < inf_len) {
            Some(i) => flat[i] = v,
            None => bail!("index {i} is out of range for the unpooled shape {inferred:?}"),
        }
    }
    // Copy the inferred block into the (possibly larger) output.
    let mut out = vec![0.0; total];
    let out_strides = strides_of(&shape);
    let mut at = vec![0usize; shape.len()];
    for (p, &v) in flat.iter().enumerate() {
        unravel(p, &inferred, &mut at);
        let off: usize = at.iter().zip(&out_strides).map(|(a, s)| a * s).sum();
        out[off] = v;
    }
    from_f64(x.dtype(), &shape, out)
}

/// Bilinear sample of a `[h, w]` plane at (y, x); pixels outside read as zero.
fn bilinear_zero(plane: &[f64], h: usize, w: usize, y: f64, x: f64) -> f64 {
    let (y0, x0) = (y.floor(), x.floor());
    let (ly, lx) = (y - y0, x - x0);
    let mut sum = 0.0;
    for (dy, wy) in [(0.0, 1.0 - ly), (1.0, ly)] {
        for (dx, wx) in [(0.0, 1.0 - lx), (1.0, lx)] {
            let (yy, xx) = (y0 + dy, x0 + dx);
            if yy >= 0.0 && xx >= 0.0 && yy < h as f64 && xx < w as f64 {
                sum += wy * wx * plane[yy as usize * w + xx as usize];
            }
        }
    }
    sum
}

/// ONNX DeformConv (2-D): each kernel tap samples X bilinearly at its position moved by
/// the learned offset, weighted by the optional mask.
pub(crate) fn deform_conv(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let w = input(inputs, 1, "W")?;
    let off = input(inputs, 2, "offset")?;
    let (xs, ws, os) = (x.shape().to_vec(), w.shape().to_vec(), off.shape().to_vec());
    if xs.len() != 4 || ws.len() != 4 || os.len() != 4 {
        bail!("only 2-D DeformConv is supported: X {xs:?}, W {ws:?} and offset {os:?} must be 4-D");
    }
    let (n, ic, ih, iw) = (xs[0], xs[1], xs[2], xs[3]);
    let (oc, kh, kw) = (ws[0], ws[2], ws[3]);
    if let Some(k) = attrs.ints("kernel_shape") {
        if k != [kh as i64, kw as i64] {
            bail!("kernel_shape {k:?} disagrees with W {ws:?}");
        }
    }
    let group = attrs.int_or("group", 1);
    let og = attrs.int_or("offset_group", 1);
    if group <= 0 || og <= 0 {
        bail!("group {group} and offset_group {og} must be positive");
    }
    let (group, og) = (group as usize, og as usize);
    if ic != ws[1] * group || oc % group != 0 || ic % og != 0 {
        bail!("X {xs:?}, W {ws:?}, group {group} and offset_group {og} do not fit");
    }
    let strides = ints(attrs, "strides", 2, 1, 1)?;
    let dil = ints(attrs, "dilations", 2, 1, 1)?;
    let pads = ints(attrs, "pads", 4, 0, 0)?;
    let (oh, ow) = (os[2], os[3]);
    let span = |k: usize, d: i64| (k as i64 - 1) * d + 1;
    let exp_h = (ih as i64 + pads[0] + pads[2] - span(kh, dil[0])) / strides[0] + 1;
    let exp_w = (iw as i64 + pads[1] + pads[3] - span(kw, dil[1])) / strides[1] + 1;
    if os[0] != n || os[1] != og * kh * kw * 2 || oh as i64 != exp_h || ow as i64 != exp_w {
        bail!(
            "offset has shape {os:?}, expected [{n}, {}, {exp_h}, {exp_w}]",
            og * kh * kw * 2
        );
    }
    let mask = match opt_input(inputs, 4) {
        Some(m) => {
            let want = [n, og * kh * kw, oh, ow];
            if m.shape() != want {
                bail!("mask has shape {:?}, expected {want:?}", m.shape());
            }
            Some(m.to_f64_vec("mask")?)
        }
        None => None,
    };
    let bias = match opt_input(inputs, 3) {
        Some(b) => {
            if b.shape() != [oc] {
                bail!("B has shape {:?}, expected [{oc}]", b.shape());
            }
            b.to_f64_vec("B")?
        }
        None => vec![0.0; oc],
    };
    let xv = x.to_f64_vec("X")?;
    let wv = w.to_f64_vec("W")?;
    let ov = off.to_f64_vec("offset")?;
    let (icg, ocg, ico) = (ws[1], oc / group, ic / og);
    let kk = kh * kw;
    let mut out = vec![0.0; n * oc * oh * ow];
    for b in 0..n {
        for o in 0..oc {
            let g = o / ocg;
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bias[o];
                    for cl in 0..icg {
                        let c = g * icg + cl;
                        let gi = c / ico;
                        let plane = &xv[(b * ic + c) * ih * iw..][..ih * iw];
                        for a in 0..kh {
                            for e in 0..kw {
                                let t = a * kw + e;
                                let oat = |comp: usize| {
                                    ov[(((b * og + gi) * kk + t) * 2 + comp) * oh * ow + i * ow + j]
                                };
                                let y = (i as i64 * strides[0] - pads[0] + a as i64 * dil[0])
                                    as f64
                                    + oat(0);
                                let xx = (j as i64 * strides[1] - pads[1] + e as i64 * dil[1])
                                    as f64
                                    + oat(1);
                                let m = mask.as_ref().map_or(1.0, |m| {
                                    m[((b * og + gi) * kk + t) * oh * ow + i * ow + j]
                                });
                                let wt = wv[((o * icg + cl) * kh + a) * kw + e];
                                acc += wt * m * bilinear_zero(plane, ih, iw, y, xx);
                            }
                        }
                    }
                    out[((b * oc + o) * oh + i) * ow + j] = acc;
                }
            }
        }
    }
    from_f64(x.dtype(), &[n, oc, oh, ow], out)
}

/// ONNX RoiAlign: average (or max) of bilinear samples over each bin of every region
/// of interest.
pub(crate) fn roi_align(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let rois = input(inputs, 1, "rois")?;
    let bidx = input(inputs, 2, "batch_indices")?.to_i64_vec("batch_indices")?;
    let xs = x.shape().to_vec();
    if xs.len() != 4 {
        bail!("X must be [N, C, H, W], got shape {xs:?}");
    }
    let rs = rois.shape().to_vec();
    if rs.len() != 2 || rs[1] != 4 || bidx.len() != rs[0] {
        bail!(
            "rois must be [num_rois, 4] with one batch index each, got {rs:?} and {} indices",
            bidx.len()
        );
    }
    let (c, h, w) = (xs[1], xs[2], xs[3]);
    if h == 0 || w == 0 {
        bail!("X has an empty image {xs:?}");
    }
    let ph = attrs.int_or("output_height", 1);
    let pw = attrs.int_or("output_width", 1);
    if ph <= 0 || pw <= 0 {
        bail!("output_height {ph} and output_width {pw} must be positive");
    }
    let (ph, pw) = (ph as usize, pw as usize);
    let ratio = attrs.int_or("sampling_ratio", 0);
    if ratio < 0 {
        bail!("sampling_ratio must not be negative, got {ratio}");
    }
    let scale = f64::from(attrs.float_or("spatial_scale", 1.0));
    let max_mode = match attrs.str("mode").unwrap_or("avg") {
        "avg" => false,
        "max" => true,
        other => bail!("unknown mode {other:?} (avg or max)"),
    };
    let half_pixel = match attrs
        .str("coordinate_transformation_mode")
        .unwrap_or("half_pixel")
    {
        "half_pixel" => true,
        "output_half_pixel" => false,
        other => bail!("unknown coordinate_transformation_mode {other:?}"),
    };
    let xv = x.to_f64_vec("X")?;
    let rv = rois.to_f64_vec("rois")?;
    let nr = rs[0];
    let mut out = vec![0.0; nr * c * ph * pw];
    let shift = if half_pixel { 0.5 } else { 0.0 };
    for r in 0..nr {
        let bi = match usize::try_from(bidx[r]).ok().filter(|&b| b < xs[0]) {
            Some(b) => b,
            None => bail!(
                "batch index {} is out of range for {} images",
                bidx[r],
                xs[0]
            ),
        };
        let roi = &rv[r * 4..][..4];
        let (sw, sh) = (roi[0] * scale - shift, roi[1] * scale - shift);
        let (ew, eh) = (roi[2] * scale - shift, roi[3] * scale - shift);
        let (mut rw, mut rh) = (ew - sw, eh - sh);
        if !half_pixel {
            rw = rw.max(1.0);
            rh = rh.max(1.0);
        }
        let (bh, bw) = (rh / ph as f64, rw / pw as f64);
        let gh = if ratio > 0 {
            ratio as usize
        } else {
            bh.ceil().max(0.0) as usize
        };
        let gw = if ratio > 0 {
            ratio as usize
        } else {
            bw.ceil().max(0.0) as usize
        };
        if gh.saturating_mul(gw).saturating_mul(ph * pw) > super::MAX_ELEMENTS {
            bail!("roi {r} needs {gh} x {gw} samples per bin, too many");
        }
        let count = (gh * gw).max(1) as f64;
        for ch in 0..c {
            let plane = &xv[(bi * c + ch) * h * w..][..h * w];
            for py in 0..ph {
                for px in 0..pw {
                    let mut acc: Option<f64> = None;
                    let mut sum = 0.0;
                    for iy in 0..gh {
                        let y = sh + py as f64 * bh + (iy as f64 + 0.5) * bh / gh as f64;
                        for ix in 0..gw {
                            let xx = sw + px as f64 * bw + (ix as f64 + 0.5) * bw / gw as f64;
                            // The four weighted corner values of this sample.
                            let corners = if y < -1.0 || y > h as f64 || xx < -1.0 || xx > w as f64
                            {
                                [0.0; 4]
                            } else {
                                let (mut y, mut xq) = (y.max(0.0), xx.max(0.0));
                                let (mut y0, mut x0) = (y as usize, xq as usize);
                                let y1 = if y0 >= h - 1 {
                                    y0 = h - 1;
                                    y = y0 as f64;
                                    y0
                                } else {
                                    y0 + 1
                                };
                                let x1 = if x0 >= w - 1 {
                                    x0 = w - 1;
                                    xq = x0 as f64;
                                    x0
                                } else {
                                    x0 + 1
                                };
                                let (ly, lx) = (y - y0 as f64, xq - x0 as f64);
                                let (hy, hx) = (1.0 - ly, 1.0 - lx);
                                [
                                    hy * hx * plane[y0 * w + x0],
                                    hy * lx * plane[y0 * w + x1],
                                    ly * hx * plane[y1 * w + x0],
                                    ly * lx * plane[y1 * w + x1],
                                ]
                            };
                            if max_mode {
                                let m = corners.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                                acc = Some(acc.map_or(m, |a: f64| a.max(m)));
                            } else {
                                sum += corners.iter().sum::<f64>();
                            }
                        }
                    }
                    out[((r * c + ch) * ph + py) * pw + px] = if max_mode {
                        acc.unwrap_or(0.0)
                    } else {
                        sum / count
                    };
                }
            }
        }
    }
    from_f64(x.dtype(), &[nr, c, ph, pw], out)
}

/// ONNX MaxRoiPool (Caffe semantics): each region `[batch, x1, y1, x2, y2]` is scaled,
/// rounded to whole pixels and split into `pooled_shape` bins whose maxima are taken;
/// an empty bin gives 0.
pub(crate) fn max_roi_pool(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let rois = input(inputs, 1, "rois")?;
    let xs = x.shape().to_vec();
    if xs.len() != 4 {
        bail!("X must be [N, C, H, W], got shape {xs:?}");
    }
    let rs = rois.shape().to_vec();
    if rs.len() != 2 || rs[1] != 5 {
        bail!("rois must be [num_rois, 5], got shape {rs:?}");
    }
    let pooled = match attrs.ints("pooled_shape") {
        Some(&[h, w]) if h > 0 && w > 0 && h <= i64::from(i32::MAX) && w <= i64::from(i32::MAX) => {
            [h as usize, w as usize]
        }
        other => bail!("pooled_shape must be two positive values, got {other:?}"),
    };
    let scale = f64::from(attrs.float_or("spatial_scale", 1.0));
    let (c, h, w) = (xs[1], xs[2], xs[3]);
    let [ph, pw] = pooled;
    let out_shape = [rs[0], c, ph, pw];
    checked_len(&out_shape)?;
    let xv = x.to_f64_vec("X")?;
    let rv = rois.to_f64_vec("rois")?;
    let mut out = vec![0.0; rs[0] * c * ph * pw];
    for r in 0..rs[0] {
        let roi = &rv[r * 5..][..5];
        let b = roi[0];
        if !(b >= 0.0 && b < xs[0] as f64) || b.fract() != 0.0 {
            bail!("roi {r} names batch {b}, outside the {} images", xs[0]);
        }
        let b = b as usize;
        let px = |v: f64| (v * scale).round();
        let (sw, sh, ew, eh) = (px(roi[1]), px(roi[2]), px(roi[3]), px(roi[4]));
        let rh = (eh - sh + 1.0).max(1.0);
        let rw = (ew - sw + 1.0).max(1.0);
        let (bh, bw) = (rh / ph as f64, rw / pw as f64);
        let clampf = |v: f64, hi: usize| v.clamp(0.0, hi as f64) as usize;
        for ch in 0..c {
            let plane = &xv[(b * c + ch) * h * w..][..h * w];
            for i in 0..ph {
                let hs = clampf((i as f64 * bh).floor() + sh, h);
                let he = clampf(((i + 1) as f64 * bh).ceil() + sh, h);
                for j in 0..pw {
                    let ws = clampf((j as f64 * bw).floor() + sw, w);
                    let we = clampf(((j + 1) as f64 * bw).ceil() + sw, w);
                    let mut best: Option<f64> = None;
                    for yy in hs..he {
                        for xx in ws..we {
                            let v = plane[yy * w + xx];
                            best = Some(best.map_or(v, |m: f64| m.max(v)));
                        }
                    }
                    out[((r * c + ch) * ph + i) * pw + j] = best.unwrap_or(0.0);
                }
            }
        }
    }
    from_f64(x.dtype(), &out_shape, out)
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, fails, run, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    #[test]
    fn conv_transpose_by_hand() {
        // 1-D: x = [1, 2], w = [1, 1, 1], stride 1 -> [1, 3, 3, 2].
        let x = v(&[1, 1, 2], &[1.0f32, 2.0]);
        let w = v(&[1, 1, 3], &[1.0f32, 1.0, 1.0]);
        let y = run(OpKind::ConvTranspose, &Attrs::new(), &[&x, &w]);
        assert_eq!(data::<f32>(&y), (vec![1, 1, 4], vec![1.0, 3.0, 3.0, 2.0]));
        // Stride 2 with a bias and pads [1, 0]: full [1, 1, 3, 2, 2] minus the first.
        let a = attrs(&[
            ("strides", Attr::Ints(vec![2])),
            ("pads", Attr::Ints(vec![1, 0])),
        ]);
        let b = v(&[1], &[0.5f32]);
        let y = run(OpKind::ConvTranspose, &a, &[&x, &w, &b]);
        assert_eq!(data::<f32>(&y).1, vec![1.5, 3.5, 2.5, 2.5]);
        let bad = v(&[2, 1, 3], &[0.0f32; 6]);
        assert!(fails(OpKind::ConvTranspose, &Attrs::new(), &[&x, &bad]).contains("channels"));
    }

    #[test]
    fn col2im_and_max_unpool() {
        // One 1x2 block over a 1x3 image at stride 1: positions 0 and 1 overlap at 1.
        let cols = v(&[1, 2, 2], &[1.0f32, 2.0, 10.0, 20.0]);
        let img = v(&[2], &[1i64, 3]);
        let blk = v(&[2], &[1i64, 2]);
        let y = run(OpKind::Col2Im, &Attrs::new(), &[&cols, &img, &blk]);
        assert_eq!(data::<f32>(&y), (vec![1, 1, 1, 3], vec![1.0, 12.0, 20.0]));
        let bad = v(&[1, 2, 3], &[0.0f32; 6]);
        assert!(fails(OpKind::Col2Im, &Attrs::new(), &[&bad, &img, &blk]).contains("columns"));
        let x = v(&[1, 1, 1, 1], &[5.0f32]);
        let i = v(&[1, 1, 1, 1], &[3i64]);
        let a = attrs(&[
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("strides", Attr::Ints(vec![2, 2])),
        ]);
        let y = run(OpKind::MaxUnpool, &a, &[&x, &i]);
        assert_eq!(
            data::<f32>(&y),
            (vec![1, 1, 2, 2], vec![0.0, 0.0, 0.0, 5.0])
        );
        let far = v(&[1, 1, 1, 1], &[4i64]);
        assert!(fails(OpKind::MaxUnpool, &a, &[&x, &far]).contains("out of range"));
    }

    #[test]
    fn deform_conv_and_roi_align() {
        // Zero offsets: a plain 1x1 convolution.
        let x = v(&[1, 1, 2, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        let w = v(&[1, 1, 1, 1], &[2.0f32]);
        let off = v(&[1, 2, 2, 2], &[0.0f32; 8]);
        let y = run(OpKind::DeformConv, &Attrs::new(), &[&x, &w, &off]);
        assert_eq!(data::<f32>(&y).1, vec![2.0, 4.0, 6.0, 8.0]);
        // Offsetting every tap by half a pixel to the right averages neighbours.
        let off = v(&[1, 2, 2, 2], &[0.0f32, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5]);
        let y = run(OpKind::DeformConv, &Attrs::new(), &[&x, &w, &off]);
        assert_eq!(data::<f32>(&y).1, vec![3.0, 2.0, 7.0, 4.0]);
        // One bin over the whole 2x2 image with 2x2 samples at pixel centres.
        let rois = v(&[1, 4], &[0.0f32, 0.0, 2.0, 2.0]);
        let bi = v(&[1], &[0i64]);
        let a = attrs(&[("sampling_ratio", Attr::Int(2))]);
        let y = run(OpKind::RoiAlign, &a, &[&x, &rois, &bi]);
        assert_eq!(data::<f32>(&y), (vec![1, 1, 1, 1], vec![2.5]));
        let bad = v(&[1], &[3i64]);
        assert!(fails(OpKind::RoiAlign, &a, &[&x, &rois, &bad]).contains("batch index"));
        // MaxRoiPool: the whole image in one bin, then the left and right columns.
        let rois = v(&[1, 5], &[0.0f32, 0.0, 0.0, 1.0, 1.0]);
        let a = attrs(&[("pooled_shape", Attr::Ints(vec![1, 1]))]);
        let y = run(OpKind::MaxRoiPool, &a, &[&x, &rois]);
        assert_eq!(data::<f32>(&y), (vec![1, 1, 1, 1], vec![4.0]));
        let a = attrs(&[("pooled_shape", Attr::Ints(vec![1, 2]))]);
        let y = run(OpKind::MaxRoiPool, &a, &[&x, &rois]);
        assert_eq!(data::<f32>(&y).1, vec![3.0, 4.0]);
        let far = v(&[1, 5], &[2.0f32, 0.0, 0.0, 1.0, 1.0]);
        assert!(fails(OpKind::MaxRoiPool, &a, &[&x, &far]).contains("batch"));
    }

    #[test]
    fn lp_pool_by_hand() {
        let x = v(&[1, 1, 2], &[3.0f32, 4.0]);
        let a = attrs(&[("kernel_shape", Attr::Ints(vec![2]))]);
        let y = run(OpKind::LpPool, &a, &[&x]);
        assert_eq!(data::<f32>(&y), (vec![1, 1, 1], vec![5.0]));
        let bad = attrs(&[("kernel_shape", Attr::Ints(vec![2])), ("p", Attr::Int(0))]);
        assert!(fails(OpKind::LpPool, &bad, &[&x]).contains("p must be positive"));
    }
}
