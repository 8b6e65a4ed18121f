//! Luong "general" attention as NAO's decoder uses it (no biases):
//!
//! ```text
//! x_t   = W_in h_t                       (H)
//! s_tj  = x_t · m_j                      for each memory row j = 1..S
//! a_t   = softmax_j(s_t)                 (S)
//! ctx_t = sum_j a_tj m_j                 (H)
//! out_t = tanh(W_out [ctx_t ; h_t])      (H), W_out: (H, 2H)
//! ```
//!
//! [`luong_attention_seq`] attends for all `T` decoder steps at once with batched matrix
//! products (the teacher-forced decoder makes one call); [`luong_attention`] is the
//! one-step form used when decoding token by token. Both are compositions of
//! differentiable ops (`linear`, `matmul`, `softmax`, `concat`, `tanh`).

use crate::tensor::Tensor;

fn check(query: &[usize], memory: &Tensor, w_in: &Tensor, w_out: &Tensor) {
    let h = query[query.len() - 1];
    let ok = memory.ndim() == 3
        && memory.shape()[0] == query[0]
        && memory.shape()[2] == h
        && w_in.shape() == [h, h]
        && w_out.shape() == [h, 2 * h];
    assert!(
        ok,
        "luong_attention: shapes do not fit: query {query:?}, memory {:?}, w_in {:?}, w_out {:?} \
         (need query (B, [T,] H), memory (B, S, H), w_in (H, H), w_out (H, 2H))",
        memory.shape(),
        w_in.shape(),
        w_out.shape()
    );
}

/// Attention for all decoder steps at once: `query (B, T, H)` (the decoder's outputs),
/// `memory (B, S, H)` (the encoder's outputs) -> `(output (B, T, H), weights (B, T, S))`.
pub fn luong_attention_seq(
    query: &Tensor,
    memory: &Tensor,
    w_in: &Tensor,
    w_out: &Tensor,
) -> (Tensor, Tensor) {
    assert_eq!(
        query.ndim(),
        3,
        "luong_attention_seq: query must be (B, T, H), got {:?}",
        query.shape()
    );
    check(query.shape(), memory, w_in, w_out);
    let x = query.linear(w_in, None);
    let weights = x.matmul(&memory.transpose(1, 2)).softmax(-1);
    let context = weights.matmul(memory);
    let output = Tensor::concat(&[&context, query], 2)
        .linear(w_out, None)
        .tanh();
    (output, weights)
}

/// One decoder step: `query h_t (B, H)`, `memory (B, S, H)` ->
/// `(output (B, H), weights (B, S))`.
pub fn luong_attention(
    query: &Tensor,
    memory: &Tensor,
    w_in: &Tensor,
    w_out: &Tensor,
) -> (Tensor, Tensor) {
    assert_eq!(
        query.ndim(),
        2,
        "luong_attention: query must be (B, H), got {:?}",
        query.shape()
    );
    check(query.shape(), memory, w_in, w_out);
    let (b, h) = (query.shape()[0], query.shape()[1]);
    let s = memory.shape()[1];
    let (out, w) = luong_attention_seq(&query.reshape(&[b, 1, h]), memory, w_in, w_out);
    (out.reshape(&[b, h]), w.reshape(&[b, s]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    fn inputs(b: usize, t: usize, s: usize, h: usize) -> Vec<Tensor> {
        let q = if t == 0 {
            rand_f64(&[b, h], 1)
        } else {
            rand_f64(&[b, t, h], 1)
        };
        vec![
            q,
            rand_f64(&[b, s, h], 2),
            rand_f64(&[h, h], 3),
            rand_f64(&[h, 2 * h], 4),
        ]
    }

    #[test]
    fn one_step_matches_by_hand() {
        let x = inputs(2, 0, 3, 4);
        let (out, w) = luong_attention(&x[0], &x[1], &x[2], &x[3]);
        let q = x[0].to_vec::<f64>();
        let m = x[1].to_vec::<f64>();
        let wi = x[2].to_vec::<f64>();
        let wo = x[3].to_vec::<f64>();
        for b in 0..2 {
            let xq: Vec<f64> = (0..4)
                .map(|r| (0..4).map(|k| wi[r * 4 + k] * q[b * 4 + k]).sum())
                .collect();
            let sc: Vec<f64> = (0..3)
                .map(|j| (0..4).map(|k| xq[k] * m[(b * 3 + j) * 4 + k]).sum())
                .collect();
            let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = sc.iter().map(|v| (v - mx).exp()).sum();
            let a: Vec<f64> = sc.iter().map(|v| (v - mx).exp() / z).collect();
            let mut cat: Vec<f64> = (0..4)
                .map(|k| (0..3).map(|j| a[j] * m[(b * 3 + j) * 4 + k]).sum())
                .collect();
            cat.extend_from_slice(&q[b * 4..b * 4 + 4]);
            for r in 0..4 {
                let o = (0..8).map(|k| wo[r * 8 + k] * cat[k]).sum::<f64>().tanh();
                assert!((out.to_vec::<f64>()[b * 4 + r] - o).abs() < 1e-12);
            }
            for (j, aj) in a.iter().enumerate() {
                assert!((w.to_vec::<f64>()[b * 3 + j] - aj).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn all_steps_at_once_matches_step_by_step() {
        let x = inputs(3, 5, 4, 6);
        let (out, w) = luong_attention_seq(&x[0], &x[1], &x[2], &x[3]);
        for t in 0..5 {
            let (o1, w1) = luong_attention(&x[0].select(1, t), &x[1], &x[2], &x[3]);
            assert_close(&out.select(1, t), &o1, 1e-14, 1e-12);
            assert_close(&w.select(1, t), &w1, 1e-14, 1e-12);
        }
    }

    #[test]
    fn gradcheck_attention_one_step_and_all_steps() {
        gradcheck(
            |x| {
                let (o, w) = luong_attention(&x[0], &x[1], &x[2], &x[3]);
                Tensor::concat(&[&o, &w], 1)
            },
            &inputs(3, 0, 5, 3),
        )
        .unwrap();
        gradcheck(
            |x| {
                let (o, w) = luong_attention_seq(&x[0], &x[1], &x[2], &x[3]);
                Tensor::concat(&[&o, &w], 2)
            },
            &inputs(2, 3, 5, 3),
        )
        .unwrap();
        // a non-contiguous memory
        let mut x = inputs(2, 3, 5, 3);
        x[1] = x[1].transpose(0, 1).contiguous();
        gradcheck(
            |x| luong_attention_seq(&x[0], &x[1].transpose(0, 1), &x[2], &x[3]).0,
            &x,
        )
        .unwrap();
    }
}
