//! A whole LSTM layer as one kernel (`kernels::cpu::lstm_seq`: the recurrence and the
//! backward-through-time), dispatched by dtype. It has no GPU twin, so on a GPU the
//! methods return `None` and the ops loop over [`Storage::lstm_gates`] steps instead.
//!
//! Two entry points: [`Storage::lstm_seq`] from inputs `x (T, B, I)` and the weights, and
//! [`Storage::lstm_seq_pre`] from precomputed input projections, either a `(T, B, 4H)`
//! tensor or rows of a `(V, 4H)` table picked by ids.

use super::Storage;
use crate::dtype::Float;
use crate::kernels::cpu::gather_scatter::index_add;
use crate::kernels::cpu::lstm_seq::{
    LstmSeqSaved, StepInputs, lstm_seq_backward, lstm_seq_backward_pre, lstm_seq_forward,
    lstm_seq_forward_inputs,
};
use ndarray::{Array3, ArrayD, ArrayView3, Axis, Ix1, Ix2, Ix3, IxDyn, concatenate, s};

/// What the backward of [`Storage::lstm_seq`] and [`Storage::lstm_seq_pre`] needs: the
/// kernel's saved gates and states, of the inputs' dtype.
pub enum LstmSeqState {
    /// f32 inputs.
    F32(LstmSeqSaved<f32>),
    /// f64 inputs.
    F64(LstmSeqSaved<f64>),
}

impl std::fmt::Debug for LstmSeqState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (dtype, dims) = match self {
            LstmSeqState::F32(s) => ("f32", s.gates.dim()),
            LstmSeqState::F64(s) => ("f64", s.gates.dim()),
        };
        write!(f, "LstmSeqState({dtype}, gates {dims:?})")
    }
}

/// The element types the sequence kernel runs in, and their [`LstmSeqState`] variant.
trait SeqFloat: Float {
    fn wrap(saved: LstmSeqSaved<Self>) -> LstmSeqState;
    fn saved(state: &LstmSeqState) -> Option<&LstmSeqSaved<Self>>;
}

impl SeqFloat for f32 {
    fn wrap(saved: LstmSeqSaved<f32>) -> LstmSeqState {
        LstmSeqState::F32(saved)
    }
    fn saved(state: &LstmSeqState) -> Option<&LstmSeqSaved<f32>> {
        match state {
            LstmSeqState::F32(s) => Some(s),
            LstmSeqState::F64(_) => None,
        }
    }
}

impl SeqFloat for f64 {
    fn wrap(saved: LstmSeqSaved<f64>) -> LstmSeqState {
        LstmSeqState::F64(saved)
    }
    fn saved(state: &LstmSeqState) -> Option<&LstmSeqSaved<f64>> {
        match state {
            LstmSeqState::F64(s) => Some(s),
            LstmSeqState::F32(_) => None,
        }
    }
}

/// Where [`Storage::lstm_seq_pre`] reads each step's input projections from.
#[derive(Clone, Copy, Debug)]
pub enum LstmPre<'a> {
    /// A `(T, B, 4H)` tensor.
    Steps(&'a Storage),
    /// Rows of a `(V, 4H)` table, picked by time-major `(T, B)` ids.
    Table(&'a Storage, &'a [usize]),
}

impl<'a> LstmPre<'a> {
    fn storage(self) -> &'a Storage {
        match self {
            LstmPre::Steps(p) | LstmPre::Table(p, _) => p,
        }
    }
}

/// The arrays of `storages`, all of dtype `T`; panics naming `op` and every dtype otherwise.
fn arrays<'s, T: Float, const N: usize>(
    op: &str,
    storages: [&'s Storage; N],
) -> [&'s ArrayD<T>; N] {
    storages.map(|s| {
        s.array::<T>().unwrap_or_else(|| {
            let dtypes: Vec<String> = storages.iter().map(|s| s.dtype().to_string()).collect();
            panic!("{op}: dtype mismatch among inputs ({})", dtypes.join(", "))
        })
    })
}

/// Runs `$f::<T>` for the dtype of `$s`: the one place the sequence ops pick a type.
macro_rules! by_dtype {
    ($s:expr, $f:ident ( $($arg:expr),* )) => {
        match $s.dtype() {
            crate::dtype::DType::F32 => $f::<f32>($($arg),*),
            crate::dtype::DType::F64 => $f::<f64>($($arg),*),
        }
    };
}

/// `(T, B, H)` -> `(B, T, H)` (or back, with the first two sizes swapped), row copies.
fn swap01<T: Float>(x: ArrayView3<T>) -> Array3<T> {
    let (a, b, h) = x.dim();
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let mut out = Vec::with_capacity(a * b * h);
    for j in 0..b {
        for i in 0..a {
            out.extend_from_slice(&xs[(i * b + j) * h..(i * b + j + 1) * h]);
        }
    }
    Array3::from_shape_vec((b, a, h), out).expect("sizes match")
}

/// The outputs `h_1..h_T` followed by the final cell `c_T`: `(T + 1, B, H)`.
fn packed<T: Float>(saved: &LstmSeqSaved<T>) -> ArrayD<T> {
    let t = saved.gates.dim().0;
    concatenate(
        Axis(0),
        &[
            saved.h.slice(s![1.., .., ..]),
            saved.c.slice(s![t..t + 1, .., ..]),
        ],
    )
    .unwrap()
    .into_dyn()
}

fn seq_forward<T: SeqFloat>(x: &Storage, rest: [&Storage; 5]) -> (Storage, LstmSeqState) {
    let [x, h0, c0, wi, wh, b] =
        arrays::<T, 6>("lstm", [x, rest[0], rest[1], rest[2], rest[3], rest[4]]);
    let saved = lstm_seq_forward(
        x.view().into_dimensionality::<Ix3>().unwrap(),
        h0.view().into_dimensionality::<Ix2>().unwrap(),
        c0.view().into_dimensionality::<Ix2>().unwrap(),
        wi.view().into_dimensionality::<Ix2>().unwrap(),
        wh.view().into_dimensionality::<Ix2>().unwrap(),
        b.view().into_dimensionality::<Ix1>().unwrap(),
    );
    (Storage::from_array(packed(&saved)), T::wrap(saved))
}

fn seq_backward<T: SeqFloat>(
    g: &Storage,
    state: &LstmSeqState,
    x: &Storage,
    w_ih: &Storage,
    w_hh: &Storage,
) -> [Storage; 6] {
    const OP: &str = "lstm backward";
    let saved = T::saved(state).unwrap_or_else(|| {
        panic!(
            "{OP}: dtype mismatch between the saved state and the gradient ({})",
            g.dtype()
        )
    });
    let [g, x, wi, wh] = arrays::<T, 4>(OP, [g, x, w_ih, w_hh]);
    let t = saved.gates.dim().0;
    let g3 = g.view().into_dimensionality::<Ix3>().unwrap();
    let gr = lstm_seq_backward(
        saved,
        x.view().into_dimensionality::<Ix3>().unwrap(),
        wi.view().into_dimensionality::<Ix2>().unwrap(),
        wh.view().into_dimensionality::<Ix2>().unwrap(),
        g3.slice(s![..t, .., ..]),
        g3.index_axis(Axis(0), t),
    );
    [
        Storage::from_array(gr.dx.into_dyn()),
        Storage::from_array(gr.dh0.into_dyn()),
        Storage::from_array(gr.dc0.into_dyn()),
        Storage::from_array(gr.dw_ih.into_dyn()),
        Storage::from_array(gr.dw_hh.into_dyn()),
        Storage::from_array(gr.db.into_dyn()),
    ]
}

fn pre_forward<T: SeqFloat>(
    pre: LstmPre,
    h0: &Storage,
    c0: &Storage,
    w_hh: &Storage,
    batch_first: bool,
) -> (Storage, LstmSeqState) {
    let [p, h0, c0, wh] = arrays::<T, 4>("lstm_projected", [pre.storage(), h0, c0, w_hh]);
    let p = p.as_standard_layout();
    let inputs = match pre {
        LstmPre::Steps(_) => StepInputs::Pre(p.view().into_dimensionality::<Ix3>().unwrap()),
        LstmPre::Table(_, ids) => StepInputs::Table {
            table: p.view().into_dimensionality::<Ix2>().unwrap(),
            ids,
        },
    };
    let saved = lstm_seq_forward_inputs(
        inputs,
        h0.view().into_dimensionality::<Ix2>().unwrap(),
        c0.view().into_dimensionality::<Ix2>().unwrap(),
        wh.view().into_dimensionality::<Ix2>().unwrap(),
    );
    let out = if batch_first {
        swap01(saved.h.slice(s![1.., .., ..])).into_dyn()
    } else {
        packed(&saved)
    };
    (Storage::from_array(out), T::wrap(saved))
}

fn pre_backward<T: SeqFloat>(
    g: &Storage,
    state: &LstmSeqState,
    w_hh: &Storage,
    batch_first: bool,
    table: Option<(usize, &[usize])>,
) -> [Storage; 4] {
    const OP: &str = "lstm_projected backward";
    let saved = T::saved(state).unwrap_or_else(|| {
        panic!(
            "{OP}: dtype mismatch between the saved state and the gradient ({})",
            g.dtype()
        )
    });
    let [g, wh] = arrays::<T, 2>(OP, [g, w_hh]);
    let wh = wh.view().into_dimensionality::<Ix2>().unwrap();
    let g3 = g.view().into_dimensionality::<Ix3>().unwrap();
    let gr = if batch_first {
        let b = g3.dim().0;
        let dc_last = ndarray::Array2::zeros((b, g3.dim().2));
        lstm_seq_backward_pre(saved, wh, swap01(g3).view(), dc_last.view())
    } else {
        let t = saved.gates.dim().0;
        lstm_seq_backward_pre(
            saved,
            wh,
            g3.slice(s![..t, .., ..]),
            g3.index_axis(Axis(0), t),
        )
    };
    let d_pre = match table {
        None => gr.dgates.into_dyn(),
        Some((v, ids)) => {
            // the table's gradient: each step's rows scatter-added in order
            let h4 = gr.dgates.dim().2;
            let dg = gr.dgates.as_slice().expect("fresh arrays are contiguous");
            let mut dt = vec![T::zero(); v * h4];
            index_add(dg, v, h4, ids, &mut dt);
            ArrayD::from_shape_vec(IxDyn(&[v, h4]), dt).unwrap()
        }
    };
    [
        Storage::from_array(d_pre),
        Storage::from_array(gr.dh0.into_dyn()),
        Storage::from_array(gr.dc0.into_dyn()),
        Storage::from_array(gr.dw_hh.into_dyn()),
    ]
}

impl Storage {
    /// The LSTM layer over `self = x (T, B, I)` from `h0, c0 (B, H)` with `w_ih (4H, I)`,
    /// `w_hh (4H, H)`, `b (4H)` (shapes checked by the caller): the outputs `h_1..h_T` and
    /// the final cell packed as `(T + 1, B, H)`, and what the backward needs; `None` when
    /// any input is on a GPU (no fused kernel there).
    pub fn lstm_seq(
        &self,
        h0: &Storage,
        c0: &Storage,
        w_ih: &Storage,
        w_hh: &Storage,
        b: &Storage,
    ) -> Option<(Storage, LstmSeqState)> {
        let rest = [h0, c0, w_ih, w_hh, b];
        if self.is_cuda() || rest.iter().any(|s| s.is_cuda()) {
            return None;
        }
        Some(by_dtype!(self, seq_forward(self, rest)))
    }

    /// The gradients `[dx, dh0, dc0, dw_ih, dw_hh, db]` of [`Storage::lstm_seq`] from the
    /// gradient `self` of its packed output and the forward's `x`, `w_ih`, `w_hh`.
    pub fn lstm_seq_backward(
        &self,
        state: &LstmSeqState,
        x: &Storage,
        w_ih: &Storage,
        w_hh: &Storage,
    ) -> [Storage; 6] {
        by_dtype!(self, seq_backward(self, state, x, w_ih, w_hh))
    }

    /// The LSTM recurrence from precomputed input projections `pre` (`x_t W_ih^T + b`, gate
    /// order `i, f, g, o`), `h0, c0 (B, H)`, `w_hh (4H, H)` (shapes checked by the caller).
    /// Returns the outputs and final cell packed as `(T + 1, B, H)`, or with `batch_first`
    /// the outputs alone as `(B, T, H)`, and what the backward needs; `None` when any input
    /// is on a GPU.
    pub fn lstm_seq_pre(
        pre: LstmPre,
        h0: &Storage,
        c0: &Storage,
        w_hh: &Storage,
        batch_first: bool,
    ) -> Option<(Storage, LstmSeqState)> {
        let p = pre.storage();
        if [p, h0, c0, w_hh].iter().any(|s| s.is_cuda()) {
            return None;
        }
        Some(by_dtype!(p, pre_forward(pre, h0, c0, w_hh, batch_first)))
    }

    /// The gradients `[dpre, dh0, dc0, dw_hh]` of [`Storage::lstm_seq_pre`] from the
    /// gradient `self` of its output; with `table = Some((V, ids))` `dpre` is the `(V, 4H)`
    /// table's gradient (the steps' rows scatter-added in order).
    pub fn lstm_seq_pre_backward(
        &self,
        state: &LstmSeqState,
        w_hh: &Storage,
        batch_first: bool,
        table: Option<(usize, &[usize])>,
    ) -> [Storage; 4] {
        by_dtype!(self, pre_backward(self, state, w_hh, batch_first, table))
    }
}
