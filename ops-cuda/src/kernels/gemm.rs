//! SGEMM (`kernels/gemm.cu`): `C = alpha * op(A) * op(B) + beta * C`, row-major, with
//! transposes and strided batches.
//!
//! Two tilings: 128x128 block tiles with an 8x8 register tile per thread (256 threads, BK = 8)
//! for large problems, and 64x64 with 4x4 for small ones, where the bigger tile would leave
//! SMs idle. `GemmTile::Auto` takes 128x128 when that still gives at least 128 blocks.

use super::check_buf;
use super::elementwise::axpby_at;
use super::reduce::{ReduceOp, reduce};
use crate::device::LaunchCfg;
use crate::ptx::PtxModule;
use crate::shape::to_i32;
use crate::{CudaBuffer, CudaDevice, CudaError};

/// Tile choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GemmTile {
    /// 128x128 when that gives >= 128 blocks, else 64x64.
    #[default]
    Auto,
    /// 128x128 block tile, 8x8 per thread.
    T128,
    /// 64x64 block tile, 4x4 per thread.
    T64,
}

/// A (batched) GEMM problem. Element offsets, leading dimensions and batch strides are in
/// elements. `op(A)` is `m x k`: `A` is stored `m x k` (`lda >= k`), or `k x m` when
/// `trans_a` (`lda >= m`); likewise `op(B)` is `k x n`; `C` is `m x n` (`ldc >= n`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemmDesc {
    /// Read `A` transposed.
    pub trans_a: bool,
    /// Read `B` transposed.
    pub trans_b: bool,
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the old `C` (0: `C` is not read).
    pub beta: f32,
    /// Leading dimension (row stride) of `A` as stored.
    pub lda: usize,
    /// Leading dimension of `B` as stored.
    pub ldb: usize,
    /// Leading dimension of `C`.
    pub ldc: usize,
    /// Number of matrices.
    pub batch: usize,
    /// Batch stride of `A` (0: one `A` for all).
    pub stride_a: usize,
    /// Batch stride of `B`.
    pub stride_b: usize,
    /// Batch stride of `C`.
    pub stride_c: usize,
    /// First element of `A` in its buffer.
    pub offset_a: usize,
    /// First element of `B`.
    pub offset_b: usize,
    /// First element of `C`.
    pub offset_c: usize,
    /// Tiling.
    pub tile: GemmTile,
}

impl GemmDesc {
    /// One contiguous `m x k` times `k x n` product (after the transposes), `alpha = 1`,
    /// `beta = 0`.
    pub fn new(trans_a: bool, trans_b: bool, m: usize, n: usize, k: usize) -> Self {
        GemmDesc {
            trans_a,
            trans_b,
            m,
            n,
            k,
            alpha: 1.0,
            beta: 0.0,
            lda: if trans_a { m } else { k },
            ldb: if trans_b { k } else { n },
            ldc: n,
            batch: 1,
            stride_a: 0,
            stride_b: 0,
            stride_c: 0,
            offset_a: 0,
            offset_b: 0,
            offset_c: 0,
            tile: GemmTile::Auto,
        }
    }

    /// `batch` contiguous products laid one after another (strides `m*k`, `k*n`, `m*n`).
    pub fn batched(self, batch: usize) -> Self {
        GemmDesc {
            batch,
            stride_a: self.m * self.k,
            stride_b: self.k * self.n,
            stride_c: self.m * self.n,
            ..self
        }
    }

    fn last_index(
        rows: usize,
        cols: usize,
        ld: usize,
        batch: usize,
        stride: usize,
        off: usize,
    ) -> usize {
        off + (batch - 1) * stride + (rows - 1) * ld + cols
    }
}

/// Enqueues `C = alpha * op(A) * op(B) + beta * C` as described by `d`.
pub fn sgemm(
    dev: &CudaDevice,
    d: &GemmDesc,
    a: &CudaBuffer,
    b: &CudaBuffer,
    c: &mut CudaBuffer,
) -> Result<(), CudaError> {
    const OP: &str = "sgemm";
    check_buf(OP, "A", dev, a, a.len())?;
    check_buf(OP, "B", dev, b, b.len())?;
    check_buf(OP, "C", dev, c, c.len())?;
    if d.m == 0 || d.n == 0 || d.batch == 0 {
        return Ok(());
    }
    let (ar, ac) = if d.trans_a { (d.k, d.m) } else { (d.m, d.k) };
    let (br, bc) = if d.trans_b { (d.n, d.k) } else { (d.k, d.n) };
    if d.k > 0 {
        if d.lda < ac || d.ldb < bc {
            return Err(CudaError::shape(
                OP,
                format!("lda {} < {ac} or ldb {} < {bc}", d.lda, d.ldb),
            ));
        }
        let la = GemmDesc::last_index(ar, ac, d.lda, d.batch, d.stride_a, d.offset_a);
        let lb = GemmDesc::last_index(br, bc, d.ldb, d.batch, d.stride_b, d.offset_b);
        if la > a.len() || lb > b.len() {
            return Err(CudaError::shape(
                OP,
                format!(
                    "A needs {la} elements (has {}), B needs {lb} (has {})",
                    a.len(),
                    b.len()
                ),
            ));
        }
    }
    if d.ldc < d.n {
        return Err(CudaError::shape(OP, format!("ldc {} < n {}", d.ldc, d.n)));
    }
    let lc = GemmDesc::last_index(d.m, d.n, d.ldc, d.batch, d.stride_c, d.offset_c);
    if lc > c.len() {
        return Err(CudaError::shape(
            OP,
            format!("C needs {lc} elements (has {})", c.len()),
        ));
    }
    let big = d.m.div_ceil(128) * d.n.div_ceil(128) * d.batch >= 128;
    let (func, t) = match d.tile {
        GemmTile::T128 => ("sgemm_128x128", 128),
        GemmTile::T64 => ("sgemm_64x64", 64),
        GemmTile::Auto if big => ("sgemm_128x128", 128),
        GemmTile::Auto => ("sgemm_64x64", 64),
    };
    let (ta, tb) = (i32::from(d.trans_a), i32::from(d.trans_b));
    let (m, n, k) = (
        to_i32(OP, "m", d.m)?,
        to_i32(OP, "n", d.n)?,
        to_i32(OP, "k", d.k)?,
    );
    let (lda, ldb, ldc) = (
        to_i32(OP, "lda", d.lda)?,
        to_i32(OP, "ldb", d.ldb)?,
        to_i32(OP, "ldc", d.ldc)?,
    );
    let (sa, sb, sc) = (d.stride_a as i64, d.stride_b as i64, d.stride_c as i64);
    let gx = to_i32(OP, "grid", d.n.div_ceil(t))? as u32;
    let gy = d.m.div_ceil(t);
    if gy > 65_535 {
        return Err(CudaError::shape(
            OP,
            format!("m = {} too large (grid.y > 65535)", d.m),
        ));
    }
    // grid.z is limited to 65535: split large batches.
    let mut b0 = 0;
    while b0 < d.batch {
        let nb = (d.batch - b0).min(65_535);
        let cfg = LaunchCfg {
            grid: (gx, gy as u32, nb as u32),
            block: 256,
            shared: 0,
        };
        let pa = a.arg_at(d.offset_a + b0 * d.stride_a);
        let pb = b.arg_at(d.offset_b + b0 * d.stride_b);
        let pc = c.arg_at(d.offset_c + b0 * d.stride_c);
        unsafe {
            dev.launch(
                PtxModule::Gemm,
                func,
                cfg,
                &[
                    &ta, &tb, &m, &n, &k, &d.alpha, &pa, &lda, &sa, &pb, &ldb, &sb, &d.beta, &pc,
                    &ldc, &sc,
                ],
            )?;
        }
        b0 += nb;
    }
    Ok(())
}

/// `op(A) * op(B)` for contiguous matrices: `A` is `m x k` (`k x m` if `trans_a`), `B` is
/// `k x n` (`n x k` if `trans_b`); returns the contiguous `m x n` product.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    dev: &CudaDevice,
    a: &CudaBuffer,
    b: &CudaBuffer,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
) -> Result<CudaBuffer, CudaError> {
    check_buf("matmul", "A", dev, a, m * k)?;
    check_buf("matmul", "B", dev, b, k * n)?;
    let mut c = if k == 0 {
        CudaBuffer::zeros(dev, m * n)?
    } else {
        CudaBuffer::uninit(dev, m * n)?
    };
    if k > 0 {
        sgemm(dev, &GemmDesc::new(trans_a, trans_b, m, n, k), a, b, &mut c)?;
    }
    Ok(c)
}

/// Like [`sgemm`] for one product (`batch == 1`) with a contiguous `C` (`ldc == n`), but
/// splits a long `k` into slices computed as a batch into a scratch buffer and then summed,
/// so that a small `m x n` with a huge `k` (convolution weight gradients) still fills the
/// GPU. Falls back to [`sgemm`] when splitting does not pay.
pub fn sgemm_split_k(
    dev: &CudaDevice,
    d: &GemmDesc,
    a: &CudaBuffer,
    b: &CudaBuffer,
    c: &mut CudaBuffer,
) -> Result<(), CudaError> {
    let tiles = d.m.div_ceil(64) * d.n.div_ceil(64);
    let splits = 264usize.div_ceil(tiles).min(d.k / 512);
    if d.batch != 1 || d.ldc != d.n || splits < 2 {
        return sgemm(dev, d, a, b, c);
    }
    let kslice = d.k.div_ceil(splits);
    let full = d.k / kslice;
    let rem = d.k - full * kslice;
    let parts = full + usize::from(rem > 0);
    let mn = d.m * d.n;
    let mut partial = CudaBuffer::uninit(dev, parts * mn)?;
    let step_a = if d.trans_a { kslice * d.lda } else { kslice };
    let step_b = if d.trans_b { kslice } else { kslice * d.ldb };
    let mut p = GemmDesc {
        k: kslice,
        beta: 0.0,
        ldc: d.n,
        batch: full,
        stride_a: step_a,
        stride_b: step_b,
        stride_c: mn,
        offset_c: 0,
        ..*d
    };
    sgemm(dev, &p, a, b, &mut partial)?;
    if rem > 0 {
        p.k = rem;
        p.batch = 1;
        p.offset_a = d.offset_a + full * step_a;
        p.offset_b = d.offset_b + full * step_b;
        p.offset_c = full * mn;
        sgemm(dev, &p, a, b, &mut partial)?;
    }
    let sum = reduce(dev, ReduceOp::Sum, &partial, &[parts, mn], &[0])?;
    axpby_at(dev, c, d.offset_c, &sum, 0, mn, 1.0, d.beta)
}
