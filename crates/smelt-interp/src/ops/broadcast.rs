//! Numpy-style broadcasting and the elementwise loops built on it.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use crate::error::{bail, OpResult};
use crate::value::array_from;

/// Element count above which elementwise loops are split across threads.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

/// The broadcast of several shapes (multidirectional, numpy rules).
pub(crate) fn broadcast_shapes(shapes: &[&[usize]]) -> OpResult<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                let list: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
                bail!("shapes {} do not broadcast", list.join(" and "));
            }
        }
    }
    Ok(out)
}

/// How a broadcast elementwise loop walks its operands: the output is split into rows
/// of `inner` elements over which every operand is either contiguous (step 1) or one
/// repeated element (step 0), so the innermost loop is a plain slice loop the compiler
/// can vectorise; rows are enumerated over the remaining `outer` dims.
struct Plan {
    /// Output dims outside the inner run.
    outer: Vec<usize>,
    /// Per operand, its element stride for each outer dim (0 where broadcast).
    outer_strides: Vec<Vec<usize>>,
    /// Elements per row.
    inner: usize,
    /// Per operand, 1 if it is contiguous along the row, 0 if repeated.
    steps: Vec<usize>,
}

impl Plan {
    fn new(out: &[usize], operands: &[&[usize]]) -> Plan {
        let rank = out.len();
        // Standard-layout strides of each operand seen at the output's rank, with 0 for
        // broadcast (size-1) dims.
        let strides: Vec<Vec<usize>> = operands
            .iter()
            .map(|s| {
                let pad = rank - s.len();
                let mut st = vec![0; rank];
                let mut acc = 1;
                for d in (pad..rank).rev() {
                    let size = s[d - pad];
                    st[d] = if size == 1 { 0 } else { acc };
                    acc *= size;
                }
                st
            })
            .collect();
        let mut steps: Vec<Option<usize>> = vec![None; operands.len()];
        let (mut inner, mut k) = (1usize, rank);
        while k > 0 {
            let d = k - 1;
            if out[d] != 1 {
                let mut next = steps.clone();
                let fits = strides.iter().zip(next.iter_mut()).all(|(st, step)| {
                    let here = if st[d] == 0 {
                        0
                    } else if st[d] == inner {
                        1
                    } else {
                        return false;
                    };
                    match *step {
                        None => {
                            *step = Some(here);
                            true
                        }
                        Some(s) => s == here,
                    }
                });
                if !fits {
                    break;
                }
                steps = next;
                inner *= out[d];
            }
            k -= 1;
        }
        Plan {
            outer: out[..k].to_vec(),
            outer_strides: strides.iter().map(|st| st[..k].to_vec()).collect(),
            inner,
            steps: steps.into_iter().map(|s| s.unwrap_or(1)).collect(),
        }
    }

    fn rows(&self) -> usize {
        self.outer.iter().product()
    }

    /// Run `row(offsets, out_row)` for every row of `out`, in parallel for large outputs.
    fn for_each_row<O: Send>(&self, out: &mut [O], row: impl Fn(&[usize], &mut [O]) + Sync) {
        let rows = self.rows();
        if rows == 0 || self.inner == 0 {
            return;
        }
        let per_task = if out.len() >= PAR_THRESHOLD {
            rows.div_ceil(rayon::current_num_threads() * 4).max(1)
        } else {
            rows
        };
        let task = |(t, chunk): (usize, &mut [O])| {
            let mut idx = vec![0usize; self.outer.len()];
            let mut r = t * per_task;
            for d in (0..self.outer.len()).rev() {
                idx[d] = r % self.outer[d];
                r /= self.outer[d];
            }
            let mut offs: Vec<usize> = self
                .outer_strides
                .iter()
                .map(|st| st.iter().zip(&idx).map(|(s, i)| s * i).sum())
                .collect();
            for o in chunk.chunks_mut(self.inner) {
                row(&offs, o);
                // Advance the outer index like an odometer, updating offsets in step.
                for d in (0..self.outer.len()).rev() {
                    idx[d] += 1;
                    for (off, st) in offs.iter_mut().zip(&self.outer_strides) {
                        *off += st[d];
                    }
                    if idx[d] < self.outer[d] {
                        break;
                    }
                    for (off, st) in offs.iter_mut().zip(&self.outer_strides) {
                        *off -= st[d] * self.outer[d];
                    }
                    idx[d] = 0;
                }
            }
        };
        let chunk = per_task * self.inner;
        if per_task < rows {
            out.par_chunks_mut(chunk).enumerate().for_each(task);
        } else {
            task((0, out));
        }
    }
}

/// `a` as a standard-layout slice (copied only if it is not one already).
fn std_slice<T: Clone>(a: &ArrayD<T>) -> ndarray::CowArray<'_, T, IxDyn> {
    a.as_standard_layout()
}

/// `f` applied to every element.
pub(crate) fn map<T: Sync, O: Send>(
    a: &ArrayD<T>,
    f: impl Fn(&T) -> O + Sync + Send,
) -> OpResult<ArrayD<O>> {
    let data: Vec<O> = match a.as_slice() {
        Some(s) if s.len() >= PAR_THRESHOLD => s.par_iter().map(&f).collect(),
        Some(s) => s.iter().map(&f).collect(),
        None => a.iter().map(&f).collect(),
    };
    array_from(a.shape(), data)
}

/// `f` applied to broadcast pairs of elements of `a` and `b`.
pub(crate) fn zip2<A, B, O>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(&A, &B) -> O + Sync + Send,
) -> OpResult<ArrayD<O>>
where
    A: Sync + Clone,
    B: Sync + Clone,
    O: Send + Clone + Default,
{
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let (a, b) = (std_slice(a), std_slice(b));
    let (xs, ys) = match (a.as_slice(), b.as_slice()) {
        (Some(x), Some(y)) => (x, y),
        _ => bail!("internal: operands not contiguous"),
    };
    let plan = Plan::new(&shape, &[a.shape(), b.shape()]);
    let mut out = vec![O::default(); out_len(&shape)];
    let n = plan.inner;
    plan.for_each_row(&mut out, |offs, o| match (plan.steps[0], plan.steps[1]) {
        (1, 1) => o
            .iter_mut()
            .zip(&xs[offs[0]..offs[0] + n])
            .zip(&ys[offs[1]..offs[1] + n])
            .for_each(|((o, x), y)| *o = f(x, y)),
        (1, _) => {
            let y = &ys[offs[1]];
            o.iter_mut()
                .zip(&xs[offs[0]..offs[0] + n])
                .for_each(|(o, x)| *o = f(x, y));
        }
        (_, 1) => {
            let x = &xs[offs[0]];
            o.iter_mut()
                .zip(&ys[offs[1]..offs[1] + n])
                .for_each(|(o, y)| *o = f(x, y));
        }
        _ => {
            let v = f(&xs[offs[0]], &ys[offs[1]]);
            o.iter_mut().for_each(|o| *o = v.clone());
        }
    });
    array_from(&shape, out)
}

/// `f` applied to broadcast triples of elements (for `Where`).
pub(crate) fn zip3<A, B, C, O>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    c: &ArrayD<C>,
    f: impl Fn(&A, &B, &C) -> O + Sync + Send,
) -> OpResult<ArrayD<O>>
where
    A: Sync + Clone,
    B: Sync + Clone,
    C: Sync + Clone,
    O: Send + Clone + Default,
{
    let shape = broadcast_shapes(&[a.shape(), b.shape(), c.shape()])?;
    let (a, b, c) = (std_slice(a), std_slice(b), std_slice(c));
    let (xs, ys, zs) = match (a.as_slice(), b.as_slice(), c.as_slice()) {
        (Some(x), Some(y), Some(z)) => (x, y, z),
        _ => bail!("internal: operands not contiguous"),
    };
    let plan = Plan::new(&shape, &[a.shape(), b.shape(), c.shape()]);
    let mut out = vec![O::default(); out_len(&shape)];
    let st = &plan.steps;
    plan.for_each_row(&mut out, |offs, o| {
        for (i, o) in o.iter_mut().enumerate() {
            *o = f(
                &xs[offs[0] + i * st[0]],
                &ys[offs[1] + i * st[1]],
                &zs[offs[2] + i * st[2]],
            );
        }
    });
    array_from(&shape, out)
}

fn out_len(shape: &[usize]) -> usize {
    shape.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_broadcast_like_numpy() {
        assert_eq!(
            broadcast_shapes(&[&[2, 1, 4], &[3, 1]]).unwrap(),
            vec![2, 3, 4]
        );
        assert_eq!(broadcast_shapes(&[&[], &[5]]).unwrap(), vec![5]);
        assert_eq!(broadcast_shapes(&[&[0], &[1]]).unwrap(), vec![0]);
        assert!(broadcast_shapes(&[&[2], &[3]]).is_err());
    }

    #[test]
    fn plans_find_the_longest_simple_run() {
        let p = Plan::new(&[4, 128, 384], &[&[4, 128, 384], &[384]]);
        assert_eq!(
            (p.outer.clone(), p.inner, p.steps.clone()),
            (vec![4, 128], 384, vec![1, 1])
        );
        assert_eq!(p.outer_strides, vec![vec![128 * 384, 384], vec![0, 0]]);
        let p = Plan::new(&[2, 3, 4], &[&[2, 3, 4], &[2, 3, 4]]);
        assert_eq!((p.outer.len(), p.inner), (0, 24));
        let p = Plan::new(&[2, 3, 4], &[&[2, 3, 1], &[2, 3, 4]]);
        assert_eq!((p.inner, p.steps.clone()), (4, vec![0, 1]));
        let p = Plan::new(&[2, 3], &[&[], &[2, 3]]);
        assert_eq!((p.inner, p.steps.clone()), (6, vec![0, 1]));
        let p = Plan::new(&[4, 1, 5], &[&[4, 1, 5], &[1, 1, 5]]);
        assert_eq!((p.outer.clone(), p.inner), (vec![4], 5));
    }

    #[test]
    fn zip_handles_every_layout() {
        // Compare against a direct index computation on a 4-D broadcast.
        let a = ArrayD::from_shape_fn(IxDyn(&[2, 1, 3, 1]), |i| (i[0] * 10 + i[2]) as i64);
        let b = ArrayD::from_shape_fn(IxDyn(&[4, 1, 5]), |i| (i[0] * 100 + i[2] * 1000) as i64);
        let c = zip2(&a, &b, |x, y| x + y).unwrap();
        assert_eq!(c.shape(), &[2, 4, 3, 5]);
        for (idx, v) in c.indexed_iter() {
            assert_eq!(
                *v,
                (idx[0] * 10 + idx[2] + idx[1] * 100 + idx[3] * 1000) as i64
            );
        }
        let big = ArrayD::from_shape_fn(IxDyn(&[3, 70, 200]), |i| {
            (i[0] + i[1] * 3 + i[2] * 7) as i64
        });
        let row = ArrayD::from_shape_fn(IxDyn(&[70, 1]), |i| i[0] as i64);
        let d = zip2(&big, &row, |x, y| x - y).unwrap();
        for (idx, v) in d.indexed_iter() {
            assert_eq!(*v, (idx[0] + idx[1] * 2 + idx[2] * 7) as i64);
        }
        let t = a.t().to_owned();
        let e = zip2(&t, &t, |x, y| x * y).unwrap();
        assert_eq!(
            e.iter().copied().collect::<Vec<_>>(),
            t.iter().map(|v| v * v).collect::<Vec<_>>()
        );
        let w = zip3(
            &ArrayD::from_elem(IxDyn(&[2, 1, 1, 1]), true),
            &a,
            &b,
            |&c, x, y| if c { *x } else { *y },
        )
        .unwrap();
        assert_eq!(w, zip2(&a, &b, |x, _| *x).unwrap());
    }

    #[test]
    fn zip_broadcasts_rows_and_columns() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![1, 2]).unwrap();
        let b = ArrayD::from_shape_vec(IxDyn(&[3]), vec![10, 20, 30]).unwrap();
        let c = zip2(&a, &b, |x, y| x + y).unwrap();
        assert_eq!(c.shape(), &[2, 3]);
        assert_eq!(
            c.iter().copied().collect::<Vec<_>>(),
            vec![11, 21, 31, 12, 22, 32]
        );
    }
}
