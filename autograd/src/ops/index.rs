//! Indexing ops for sequence models: `narrow` (a slice along one axis), `select` (one
//! index, the axis removed), `concat`, `stack`, `index_select`, `gather`, and constant-zero
//! `pad`/`pad_axis`.
//!
//! Outputs are row-major copies; inputs may have any layout (permuted, transposed).
//! `narrow`/`select`/`pad`/`concat`/`stack` have backward rules built from each other, so
//! they are differentiable twice; `index_select`/`gather` scatter-add their gradient with
//! the kernels in [`crate::kernels::cpu::gather_scatter`]. Out-of-range indices panic with
//! the index and the size.

use crate::Storage;
use crate::tensor::Tensor;

impl Tensor {
    /// Elements `start..start + len` along `axis` (negative axes count from the end).
    ///
    /// Panics naming the shape when the range does not fit.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Tensor {
        let ax = self.axis(axis);
        let n = self.shape()[ax];
        assert!(
            start + len <= n,
            "narrow: range {start}..{} out of bounds for axis {ax} of shape {:?}",
            start + len,
            self.shape()
        );
        if start == 0 && len == n {
            return self.clone();
        }
        let out = self.storage().narrow(ax, start, len);
        Tensor::from_op(
            out,
            &[self],
            "narrow",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| {
                vec![Some(g.pad_axis(ax as isize, start, n - start - len))]
            },
        )
    }

    /// The slice at `index` along `axis`, with that axis removed (`x.select(0, t)` is step
    /// `t` of a `(T, B, D)` sequence).
    pub fn select(&self, axis: isize, index: usize) -> Tensor {
        let ax = self.axis(axis);
        let n = self.shape()[ax];
        assert!(
            index < n,
            "select: index {index} out of bounds for axis {ax} of shape {:?}",
            self.shape()
        );
        let out = self.storage().select(ax, index);
        Tensor::from_op(
            out,
            &[self],
            "select",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let mut keep = inp[0].shape().to_vec();
                keep[ax] = 1;
                vec![Some(g.reshape(&keep).pad_axis(
                    ax as isize,
                    index,
                    n - index - 1,
                ))]
            },
        )
    }

    /// Joins tensors along an existing `axis`; all other dimensions must agree (panics
    /// naming both shapes otherwise).
    pub fn concat(tensors: &[&Tensor], axis: isize) -> Tensor {
        assert!(!tensors.is_empty(), "concat: no tensors");
        let ax = tensors[0].axis(axis);
        let first = tensors[0].shape();
        for t in tensors {
            let ok = t.ndim() == first.len()
                && t.shape()
                    .iter()
                    .zip(first)
                    .enumerate()
                    .all(|(i, (a, b))| i == ax || a == b);
            assert!(
                ok,
                "concat: shapes {:?} and {:?} differ outside axis {ax}",
                first,
                t.shape()
            );
        }
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[ax]).collect();
        let parts: Vec<&Storage> = tensors.iter().map(|t| t.storage()).collect();
        let out = Storage::concat(&parts, ax);
        Tensor::from_op(
            out,
            tensors,
            "concat",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let mut start = 0;
                sizes
                    .iter()
                    .zip(inp)
                    .map(|(&s, t)| {
                        let r = t.is_tracked().then(|| g.narrow(ax as isize, start, s));
                        start += s;
                        r
                    })
                    .collect()
            },
        )
    }

    /// Stacks same-shape tensors along a new `axis` (`0..=ndim`; negative counts from the
    /// end of the output's axes).
    pub fn stack(tensors: &[&Tensor], axis: isize) -> Tensor {
        assert!(!tensors.is_empty(), "stack: no tensors");
        let first = tensors[0].shape().to_vec();
        for t in tensors {
            assert_eq!(
                t.shape(),
                &first[..],
                "stack: shapes {:?} and {:?} differ",
                first,
                t.shape()
            );
        }
        let nd = first.len() as isize + 1;
        let ax = if axis < 0 { axis + nd } else { axis };
        assert!(
            (0..nd).contains(&ax),
            "stack: axis {axis} out of range for {} stacked tensors of shape {first:?}",
            tensors.len()
        );
        let ax = ax as usize;
        let parts: Vec<Storage> = tensors
            .iter()
            .map(|t| t.storage().insert_axis(ax))
            .collect();
        let refs: Vec<&Storage> = parts.iter().collect();
        let out = Storage::concat(&refs, ax);
        Tensor::from_op(
            out,
            tensors,
            "stack",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                inp.iter()
                    .enumerate()
                    .map(|(i, t)| t.is_tracked().then(|| g.select(ax as isize, i)))
                    .collect()
            },
        )
    }

    /// Picks whole slices along `axis` by index (repeats allowed): the output has
    /// `indices.len()` entries along `axis`. The backward scatter-adds.
    pub fn index_select(&self, axis: isize, indices: &[usize]) -> Tensor {
        let ax = self.axis(axis);
        let n = self.shape()[ax];
        check_indices("index_select", indices, n, self.shape(), ax);
        let idx = indices.to_vec();
        Tensor::from_op(
            self.storage().index_select(ax, indices),
            &[self],
            "index_select",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let d = g.storage().index_select_backward(inp[0].shape(), ax, &idx);
                vec![Some(Tensor::from_storage(d))]
            },
        )
    }

    /// `torch.gather`: `out[.., j, ..] = self[.., index[.., j, ..], ..]` along `axis`, with
    /// `index` given row-major in `index_shape`, which must equal this tensor's shape on
    /// every other axis. The backward scatter-adds.
    pub fn gather(&self, axis: isize, index: &[usize], index_shape: &[usize]) -> Tensor {
        let ax = self.axis(axis);
        let ok = index_shape.len() == self.ndim()
            && index_shape
                .iter()
                .zip(self.shape())
                .enumerate()
                .all(|(i, (a, b))| i == ax || a == b);
        assert!(
            ok,
            "gather: index shape {index_shape:?} does not fit input shape {:?} outside axis {ax}",
            self.shape()
        );
        assert_eq!(
            index.len(),
            index_shape.iter().product::<usize>(),
            "gather: {} indices do not fill index shape {index_shape:?}",
            index.len()
        );
        let n = self.shape()[ax];
        check_indices("gather", index, n, self.shape(), ax);
        let idx = index.to_vec();
        Tensor::from_op(
            self.storage().gather(ax, index, index_shape),
            &[self],
            "gather",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let d = g.storage().gather_backward(inp[0].shape(), ax, &idx);
                vec![Some(Tensor::from_storage(d))]
            },
        )
    }

    /// Pads with zeros: `pads[d] = (before, after)` for every axis `d` (one pair per axis).
    pub fn pad(&self, pads: &[(usize, usize)]) -> Tensor {
        assert_eq!(
            pads.len(),
            self.ndim(),
            "pad: {} (before, after) pairs for shape {:?}; give one per axis",
            pads.len(),
            self.shape()
        );
        if pads.iter().all(|&(b, a)| b == 0 && a == 0) {
            return self.clone();
        }
        let out = self.storage().pad(pads);
        let p = pads.to_vec();
        Tensor::from_op(
            out,
            &[self],
            "pad",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let mut r = g.clone();
                for (d, (&(b, _), &n)) in p.iter().zip(inp[0].shape()).enumerate() {
                    r = r.narrow(d as isize, b, n);
                }
                vec![Some(r)]
            },
        )
    }

    /// Pads one axis with `before` zeros in front and `after` zeros behind.
    pub fn pad_axis(&self, axis: isize, before: usize, after: usize) -> Tensor {
        let ax = self.axis(axis);
        let mut pads = vec![(0, 0); self.ndim()];
        pads[ax] = (before, after);
        self.pad(&pads)
    }
}

fn check_indices(op: &str, indices: &[usize], n: usize, shape: &[usize], ax: usize) {
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        panic!("{op}: index {bad} out of range for size {n} of axis {ax} of shape {shape:?}");
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn index_ops_forward_by_hand() {
        let a = Tensor::from_vec((0..6).map(|v| v as f64).collect(), &[2, 3]);
        assert_eq!(a.narrow(1, 1, 2).to_vec::<f64>(), vec![1.0, 2.0, 4.0, 5.0]);
        assert_eq!(a.select(1, 2).to_vec::<f64>(), vec![2.0, 5.0]);
        assert_eq!(a.select(0, 1).shape(), &[3]);
        let c = Tensor::concat(&[&a, &a.narrow(1, 0, 1)], 1);
        assert_eq!(c.shape(), &[2, 4]);
        assert_eq!(
            c.to_vec::<f64>(),
            vec![0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 5.0, 3.0]
        );
        let s = Tensor::stack(&[&a, &a], -1);
        assert_eq!(s.shape(), &[2, 3, 2]);
        assert_eq!(s.to_vec::<f64>()[..4], [0.0, 0.0, 1.0, 1.0]);
        assert_eq!(
            a.index_select(1, &[2, 2, 0]).to_vec::<f64>(),
            vec![2.0, 2.0, 0.0, 5.0, 5.0, 3.0]
        );
        assert_eq!(
            a.gather(1, &[2, 0, 1, 1], &[2, 2]).to_vec::<f64>(),
            vec![2.0, 0.0, 4.0, 4.0]
        );
        let p = a.pad(&[(1, 0), (0, 2)]);
        assert_eq!(p.shape(), &[3, 5]);
        assert_eq!(
            p.to_vec::<f64>(),
            vec![
                0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 5.0, 0.0, 0.0
            ]
        );
    }

    #[test]
    fn gradcheck_narrow_select_pad_odd_sizes_non_contiguous() {
        let a = rand_f64(&[3, 5, 7], 1);
        gradcheck(|x| x[0].narrow(1, 1, 3), std::slice::from_ref(&a)).unwrap();
        gradcheck(|x| x[0].narrow(-1, 2, 5), std::slice::from_ref(&a)).unwrap();
        gradcheck(
            |x| x[0].permute(&[2, 0, 1]).narrow(0, 3, 3),
            std::slice::from_ref(&a),
        )
        .unwrap();
        gradcheck(
            |x| x[0].transpose(0, 2).select(1, 2),
            std::slice::from_ref(&a),
        )
        .unwrap();
        gradcheck(|x| x[0].select(-1, 6), std::slice::from_ref(&a)).unwrap();
        gradcheck(
            |x| x[0].pad(&[(1, 2), (0, 0), (3, 1)]),
            std::slice::from_ref(&a),
        )
        .unwrap();
        gradcheck(|x| x[0].transpose(1, 2).pad_axis(1, 2, 1), &[a]).unwrap();
    }

    #[test]
    fn gradcheck_concat_stack_non_contiguous() {
        let a = rand_f64(&[3, 5], 2);
        let b = rand_f64(&[5, 3], 3);
        let c = rand_f64(&[3, 1], 4);
        gradcheck(
            |x| Tensor::concat(&[&x[0], &x[1].transpose(0, 1), &x[2]], 1),
            &[a.clone(), b.clone(), c],
        )
        .unwrap();
        gradcheck(
            |x| Tensor::concat(&[&x[0].transpose(0, 1), &x[1]], 0),
            &[a.clone(), b.clone()],
        )
        .unwrap();
        // The same tensor twice: gradients accumulate.
        gradcheck(
            |x| Tensor::concat(&[&x[0], &x[0]], -1),
            std::slice::from_ref(&a),
        )
        .unwrap();
        gradcheck(
            |x| Tensor::stack(&[&x[0], &x[1].transpose(0, 1), &x[0]], 1),
            &[a.clone(), b.clone()],
        )
        .unwrap();
        gradcheck(
            |x| Tensor::stack(&[&x[0].transpose(0, 1), &x[1]], 0),
            &[a, b],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_index_select_and_gather_with_repeats() {
        let a = rand_f64(&[3, 5, 2], 5);
        gradcheck(
            |x| x[0].index_select(1, &[4, 0, 4, 2]),
            std::slice::from_ref(&a),
        )
        .unwrap();
        gradcheck(
            |x| x[0].index_select(0, &[2, 2, 1]),
            std::slice::from_ref(&a),
        )
        .unwrap();
        gradcheck(
            |x| x[0].transpose(0, 2).index_select(2, &[1, 1]),
            std::slice::from_ref(&a),
        )
        .unwrap();
        let idx: Vec<usize> = (0..3 * 7 * 2).map(|i| (i * 7 + 3) % 5).collect();
        gradcheck(
            |x| x[0].gather(1, &idx, &[3, 7, 2]),
            std::slice::from_ref(&a),
        )
        .unwrap();
        let idx0: Vec<usize> = (0..5 * 5 * 3).map(|i| (i * 5 + 1) % 2).collect();
        gradcheck(
            |x| x[0].permute(&[2, 1, 0]).gather(0, &idx0, &[5, 5, 3]),
            &[a],
        )
        .unwrap();
    }

    #[test]
    #[should_panic(expected = "index 5 out of range for size 5")]
    fn index_select_out_of_range_names_index_and_size() {
        let _ = rand_f64(&[2, 5], 1).index_select(1, &[0, 5]);
    }

    #[test]
    #[should_panic(expected = "shapes [2, 3] and [3, 3] differ outside axis 1")]
    fn concat_mismatch_names_both_shapes() {
        let _ = Tensor::concat(&[&rand_f64(&[2, 3], 1), &rand_f64(&[3, 3], 2)], 1);
    }
}
