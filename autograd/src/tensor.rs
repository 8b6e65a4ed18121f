//! [`Tensor`]: a cheap-to-clone handle (`Arc`) to an immutable node of the computation graph.
//!
//! A node holds its id, its numbers ([`Storage`]), its device and, when it was computed from
//! tensors that need gradients, the inputs and the rule that turns the output's gradient into
//! the inputs' gradients ([`Backward`]).

use crate::device::Device;
use crate::dtype::{DType, Float};
use crate::grad_mode;
use crate::kernels::cuda::CudaStorage;
use crate::storage::Storage;
use ndarray::{ArrayD, IxDyn};
use rand::RngExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The gradient rule of one op.
///
/// `backward(inputs, output, grad)` receives the op's inputs, its output and the gradient of
/// the loss with respect to the output, and returns one entry per input: `Some(gradient)`
/// (same shape as that input) or `None` when the input gets no gradient (integer-like inputs
/// such as masks). It runs under [`crate::no_grad`], so it may use ordinary tensor ops.
///
/// Closures with the same signature implement it.
pub trait Backward: Send + Sync {
    /// Returns the gradient of each input.
    fn backward(&self, inputs: &[Tensor], output: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>>;
}

impl<F> Backward for F
where
    F: Fn(&[Tensor], &Tensor, &Tensor) -> Vec<Option<Tensor>> + Send + Sync,
{
    fn backward(&self, inputs: &[Tensor], output: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        self(inputs, output, grad)
    }
}

/// A unique, monotonically increasing tensor id: a node's id is always larger than its
/// inputs' ids, so sorting by id gives a topological order of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TensorId(pub u64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl TensorId {
    fn next() -> TensorId {
        TensorId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }
}

/// The recorded history of a computed tensor.
pub(crate) struct OpRecord {
    pub(crate) name: &'static str,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: Box<dyn Backward>,
}

pub(crate) struct Node {
    pub(crate) id: TensorId,
    pub(crate) storage: Storage,
    pub(crate) device: Device,
    /// True when a gradient flows to this tensor (a variable, or computed from one).
    pub(crate) requires_grad: bool,
    /// True when the gradient of this tensor is kept in [`crate::Gradients`] after backward
    /// (variables always; intermediates after [`Tensor::retain_grad`]).
    pub(crate) retain: AtomicBool,
    pub(crate) op: Option<OpRecord>,
}

/// An n-dimensional array that records how it was computed.
///
/// ```
/// use autograd::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).requires_grad();
/// let y = (&x * &x).sum();
/// let grads = y.backward();
/// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>(), vec![2.0, 4.0, 6.0]);
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Node>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(id={}, shape={:?}, dtype={}, device={}, op={})",
            self.id().0,
            self.shape(),
            self.dtype(),
            self.device(),
            self.0.op.as_ref().map(|o| o.name).unwrap_or("leaf")
        )
    }
}

impl Tensor {
    // ----- construction -------------------------------------------------------------------

    /// A constant (no gradient) tensor from storage (on the storage's device).
    pub fn from_storage(storage: Storage) -> Tensor {
        Tensor(Arc::new(Node {
            id: TensorId::next(),
            device: storage.device(),
            storage,
            requires_grad: false,
            retain: AtomicBool::new(false),
            op: None,
        }))
    }

    /// A constant tensor from an ndarray array (f32 or f64).
    pub fn from_array<T: Float>(a: ArrayD<T>) -> Tensor {
        Tensor::from_storage(Storage::from_array(a))
    }

    /// A constant tensor from a flat vector in row-major order.
    ///
    /// Panics when `data.len()` does not match the shape.
    pub fn from_vec<T: Float>(data: Vec<T>, shape: &[usize]) -> Tensor {
        let n = data.len();
        let a = ArrayD::from_shape_vec(IxDyn(shape), data)
            .unwrap_or_else(|_| panic!("from_vec: {n} values do not fill shape {shape:?}"));
        Tensor::from_array(a)
    }

    /// A 0-d tensor holding `v`.
    pub fn scalar(v: f64, dtype: DType) -> Tensor {
        Tensor::full(&[], v, dtype)
    }

    /// A tensor filled with `v`.
    pub fn full(shape: &[usize], v: f64, dtype: DType) -> Tensor {
        Tensor::from_storage(match dtype {
            DType::F32 => Storage::F32(ArrayD::from_elem(IxDyn(shape), v as f32)),
            DType::F64 => Storage::F64(ArrayD::from_elem(IxDyn(shape), v)),
        })
    }

    /// Zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 0.0, dtype)
    }

    /// Ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 1.0, dtype)
    }

    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Tensor {
        self.full_like(0.0)
    }

    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(&self) -> Tensor {
        self.full_like(1.0)
    }

    /// `v` everywhere, with this tensor's shape, dtype and device.
    pub fn full_like(&self, v: f64) -> Tensor {
        Tensor::full_on(self.shape(), v, self.dtype(), self.device())
    }

    /// A tensor filled with `v` on `device` (GPU tensors are f32 whatever `dtype` says).
    pub fn full_on(shape: &[usize], v: f64, dtype: DType, device: &Device) -> Tensor {
        match device {
            Device::Cpu => Tensor::full(shape, v, dtype),
            Device::Cuda(d) => {
                Tensor::from_storage(Storage::Cuda(CudaStorage::full(d, shape, v as f32)))
            }
        }
    }

    /// Uniform samples in `[lo, hi)` from the given generator.
    pub fn uniform(
        shape: &[usize],
        lo: f64,
        hi: f64,
        dtype: DType,
        rng: &mut impl rand::Rng,
    ) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
        Tensor::from_vec(v, shape).to_dtype(dtype)
    }

    /// Standard normal samples (Box-Muller) scaled by `std`, from the given generator.
    pub fn randn(shape: &[usize], std: f64, dtype: DType, rng: &mut impl rand::Rng) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| std * standard_normal(rng)).collect();
        Tensor::from_vec(v, shape).to_dtype(dtype)
    }

    /// Records a computed tensor. When gradients are enabled and an input needs one, the
    /// output keeps `inputs` and `backward`; otherwise it is a constant.
    ///
    /// This is the one place where ops meet the graph: every op computes its output's
    /// storage, then calls `Tensor::from_op(storage, &[inputs], name, backward)`.
    pub fn from_op(
        storage: Storage,
        inputs: &[&Tensor],
        name: &'static str,
        backward: impl Backward + 'static,
    ) -> Tensor {
        // Ops check their inputs' devices before computing (`Storage`'s methods, or
        // `ops::device_of`); this catches an op that forgot to.
        if let Some(first) = inputs.first() {
            for t in &inputs[1..] {
                if t.device() != first.device() {
                    crate::kernels::cuda::mixed_devices(name, first.device(), t.device());
                }
            }
        }
        let device = storage.device();
        let track = grad_mode::is_grad_enabled() && inputs.iter().any(|t| t.0.requires_grad);
        Tensor(Arc::new(Node {
            id: TensorId::next(),
            storage,
            device,
            requires_grad: track,
            retain: AtomicBool::new(false),
            op: track.then(|| OpRecord {
                name,
                inputs: inputs.iter().map(|t| (*t).clone()).collect(),
                backward: Box::new(backward),
            }),
        }))
    }

    /// Returns a leaf *variable*: same numbers, no history, gradient required and kept.
    /// Use it for parameters and for inputs you want gradients of.
    pub fn requires_grad(&self) -> Tensor {
        Tensor(Arc::new(Node {
            id: TensorId::next(),
            storage: self.0.storage.clone(),
            device: self.0.device.clone(),
            requires_grad: true,
            retain: AtomicBool::new(true),
            op: None,
        }))
    }

    /// Marks this (possibly intermediate) tensor as a gradient target: after `backward`, its
    /// gradient is available in [`crate::Gradients`]. Returns `self` for chaining.
    pub fn retain_grad(&self) -> &Tensor {
        self.0.retain.store(true, Ordering::Relaxed);
        self
    }

    /// The same numbers with no history: gradients stop here.
    pub fn detach(&self) -> Tensor {
        Tensor::from_storage(self.0.storage.clone())
    }

    // ----- inspection ---------------------------------------------------------------------

    /// The unique id.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.0.storage.shape()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// Size of dimension `d` (negative counts from the end).
    pub fn dim(&self, d: isize) -> usize {
        self.shape()[self.axis(d)]
    }

    /// Resolves a possibly negative axis; panics with the shape when out of range.
    pub fn axis(&self, d: isize) -> usize {
        let n = self.ndim() as isize;
        let a = if d < 0 { d + n } else { d };
        assert!(
            0 <= a && a < n.max(1),
            "axis {d} out of range for shape {:?}",
            self.shape()
        );
        a as usize
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.0.device
    }

    /// The raw storage.
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }

    /// Whether a gradient flows to this tensor.
    pub fn is_tracked(&self) -> bool {
        self.0.requires_grad
    }

    /// The name of the op that computed this tensor ("leaf" for inputs and variables).
    pub fn op_name(&self) -> &'static str {
        self.0.op.as_ref().map(|o| o.name).unwrap_or("leaf")
    }

    /// Borrows the array; panics naming both dtypes if `T` is not this tensor's dtype, and
    /// for a GPU tensor (copy it with [`Tensor::to_array`] or `.to(&Device::Cpu)`).
    pub fn array<T: Float>(&self) -> &ArrayD<T> {
        if self.0.storage.is_cuda() {
            panic!(
                "array::<{}>() on a tensor on {}: copy it to the host with .to(&Device::Cpu)",
                T::DTYPE,
                self.device()
            );
        }
        self.0.storage.array::<T>().unwrap_or_else(|| {
            panic!(
                "array::<{}>() on a tensor of dtype {}",
                T::DTYPE,
                self.dtype()
            )
        })
    }

    /// The GPU storage; panics (naming `op`) for a tensor on the CPU.
    #[track_caller]
    pub fn cuda(&self, op: &str) -> &CudaStorage {
        self.0
            .storage
            .as_cuda()
            .unwrap_or_else(|| panic!("{op}: expected a GPU tensor, got one on the CPU"))
    }

    /// Copies the numbers out in row-major order as `T` (converting when needed); a GPU
    /// tensor is copied back to the host.
    pub fn to_vec<U: Float>(&self) -> Vec<U> {
        if let Storage::Cuda(c) = &self.0.storage {
            let v = crate::kernels::cuda::check("to_vec", c.buf.to_vec());
            return v.into_iter().map(|x| U::of(x as f64)).collect();
        }
        crate::with_array!(&self.0.storage, |a| a
            .iter()
            .map(|v| U::of(v.to_f64().unwrap()))
            .collect())
    }

    /// The single value of a one-element tensor, as f64.
    pub fn item(&self) -> f64 {
        assert_eq!(
            self.numel(),
            1,
            "item() on a tensor of shape {:?}",
            self.shape()
        );
        self.to_vec::<f64>()[0]
    }

    /// True when every element is finite.
    pub fn all_finite(&self) -> bool {
        if self.0.storage.is_cuda() {
            return self.to_vec::<f32>().iter().all(|v| v.is_finite());
        }
        crate::with_array!(&self.0.storage, |a| a.iter().all(|v| v.is_finite()))
    }

    // ----- conversion ---------------------------------------------------------------------

    /// Converts to another dtype (differentiable: the gradient is converted back).
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        if self.0.storage.is_cuda() {
            panic!(
                "to_dtype({dtype}) on a tensor on {}: GPU tensors are f32 only",
                self.device()
            );
        }
        let s = match (&self.0.storage, dtype) {
            (Storage::F32(a), DType::F64) => Storage::F64(a.mapv(|v| v as f64)),
            (Storage::F64(a), DType::F32) => Storage::F32(a.mapv(|v| v as f32)),
            _ => unreachable!(),
        };
        let from = self.dtype();
        Tensor::from_op(
            s,
            &[self],
            "to_dtype",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.to_dtype(from))],
        )
    }

    /// Copies the tensor to `device` (differentiable: the gradient flows back to this
    /// tensor's device). Moving to the device it is on returns it unchanged. GPU tensors are
    /// f32 only: moving an f64 tensor to a GPU is an error, as is a failing copy.
    pub fn to_device(&self, device: &Device) -> Result<Tensor, crate::error::Error> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let storage = match (device, &self.0.storage) {
            (Device::Cpu, s) => s.to_cpu(),
            (Device::Cuda(d), s) => s.to_cuda(d)?,
        };
        let from = self.device().clone();
        Ok(Tensor::from_op(
            storage,
            &[self],
            "to_device",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.to(&from))],
        ))
    }

    /// Like [`Tensor::to_device`], panicking on failure (the copy of a tensor that is
    /// already on a working device fails only for f64 to a GPU, or a broken device).
    pub fn to(&self, device: &Device) -> Tensor {
        self.to_device(device)
            .unwrap_or_else(|e| panic!("to({device}) of a tensor on {}: {e}", self.device()))
    }

    /// Copies the numbers to a host array of `T` (from any device).
    pub fn to_array<T: Float>(&self) -> ArrayD<T> {
        let v = self.to_vec::<T>();
        ArrayD::from_shape_vec(IxDyn(self.shape()), v).expect("to_array: numel matches shape")
    }
}

/// One standard-normal sample (Box-Muller) from `rng` (the workspace's one definition,
/// [`normal_draw::standard_normal_ranged`]; the draws of `randn` and `nn::init`).
pub fn standard_normal(rng: &mut impl rand::Rng) -> f64 {
    normal_draw::standard_normal_ranged(rng)
}
