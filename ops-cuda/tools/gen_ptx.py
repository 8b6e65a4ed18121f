#!/usr/bin/env python3
"""Regenerate ops-cuda/kernels/ptx/*.ptx from ops-cuda/kernels/*.cu without nvcc.

How: NVRTC (PyPI wheel nvidia-cuda-nvrtc-cu12) compiles each .cu to PTX through ctypes; ptxas
(PyPI wheel nvidia-cuda-nvcc-cu12, which ships ptxas but no nvcc driver) assembles the PTX for
sm_90 as a validation step. Each output starts with the line

    // sha256(kernels/NAME.cu) = <hex>

which the Rust unit test `ptx_is_current` recomputes, so a stale PTX file fails CI.

Pinned toolchain: CUDA 12.4 (NVRTC 12.4.127 emits `.version 8.4`, `.target sm_80`). A PTX file
loads on any driver whose CUDA version is >= the PTX ISA's toolkit (R550+ for 12.4), and the
driver JIT-compiles it for the GPU at hand (sm_80 and newer: A100, H100, H200...). A newer
NVRTC (12.9 -> PTX 8.8) would need driver R575+.

Usage: python3 ops-cuda/tools/gen_ptx.py [--check]   (no GPU needed; needs pip access once)
  --check   compile and compare with the committed files; exit 1 when any differs.
The wheels go to target/gen-ptx-wheels (override with GEN_PTX_WHEELS=<dir>).
"""

import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

NVRTC_WHEEL = "nvidia-cuda-nvrtc-cu12==12.4.127"
PTXAS_WHEEL = "nvidia-cuda-nvcc-cu12==12.4.131"
EXPECTED_PTX_VERSION = ".version 8.4"
OPTIONS = [
    "--gpu-architecture=compute_80",
    "-default-device",
    "--std=c++17",
    # IEEE semantics on purpose (parity with the CPU kernels): no --use_fast_math.
    "--fmad=true",
]

CRATE = Path(__file__).resolve().parent.parent
ROOT = CRATE.parent
KERNELS = CRATE / "kernels"
PTX_DIR = KERNELS / "ptx"


def wheels_dir() -> Path:
    d = Path(os.environ.get("GEN_PTX_WHEELS", ROOT / "target" / "gen-ptx-wheels"))
    marker = d / ".installed"
    want = f"{NVRTC_WHEEL} {PTXAS_WHEEL}\n"
    if not marker.exists() or marker.read_text() != want:
        d.mkdir(parents=True, exist_ok=True)
        print(f"installing {NVRTC_WHEEL} {PTXAS_WHEEL} into {d}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
             "--target", str(d), NVRTC_WHEEL, PTXAS_WHEEL],
            check=True,
        )
        marker.write_text(want)
    return d


def load_nvrtc(d: Path):
    lib = d / "nvidia" / "cuda_nvrtc" / "lib"
    # NVRTC dlopens its builtins library by soname; load it first, globally.
    for b in sorted(lib.glob("libnvrtc-builtins.so*")):
        ctypes.CDLL(str(b), mode=ctypes.RTLD_GLOBAL)
        break
    nvrtc = ctypes.CDLL(str(lib / "libnvrtc.so.12"), mode=ctypes.RTLD_GLOBAL)
    nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
    return nvrtc


def compile_ptx(nvrtc, name: str, src: bytes) -> str:
    prog = ctypes.c_void_p()

    def check(res, what):
        if res != 0:
            raise RuntimeError(f"{what} failed for {name}: {nvrtc.nvrtcGetErrorString(res).decode()}")

    check(nvrtc.nvrtcCreateProgram(ctypes.byref(prog), src, name.encode(), 0, None, None),
          "nvrtcCreateProgram")
    opts = (ctypes.c_char_p * len(OPTIONS))(*[o.encode() for o in OPTIONS])
    res = nvrtc.nvrtcCompileProgram(prog, len(OPTIONS), opts)
    log_size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(log_size))
    log = ctypes.create_string_buffer(log_size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace").strip()
    if res != 0:
        raise RuntimeError(f"NVRTC could not compile {name}:\n{text}")
    if text:
        print(f"{name}: NVRTC log:\n{text}", file=sys.stderr)
    size = ctypes.c_size_t()
    check(nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(size)), "nvrtcGetPTXSize")
    buf = ctypes.create_string_buffer(size.value)
    check(nvrtc.nvrtcGetPTX(prog, buf), "nvrtcGetPTX")
    nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))
    return buf.value.decode()


def ptxas_validate(d: Path, name: str, ptx: str) -> None:
    ptxas = d / "nvidia" / "cuda_nvcc" / "bin" / "ptxas"
    ptxas.chmod(0o755)
    with tempfile.TemporaryDirectory() as t:
        p = Path(t) / f"{name}.ptx"
        p.write_text(ptx)
        r = subprocess.run([str(ptxas), "-arch=sm_90", "-O3", str(p), "-o", str(Path(t) / "out.cubin")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ptxas -arch=sm_90 rejected {name}.ptx:\n{r.stderr}")


def main() -> int:
    check_only = "--check" in sys.argv[1:]
    d = wheels_dir()
    nvrtc = load_nvrtc(d)
    PTX_DIR.mkdir(exist_ok=True)
    stale = []
    sources = sorted(KERNELS.glob("*.cu"))
    for cu in sources:
        src = cu.read_bytes()
        digest = hashlib.sha256(src).hexdigest()
        ptx = compile_ptx(nvrtc, cu.name, src)
        if EXPECTED_PTX_VERSION not in ptx:
            raise RuntimeError(f"{cu.name}: expected {EXPECTED_PTX_VERSION} in the PTX header")
        ptxas_validate(d, cu.stem, ptx)
        text = f"// sha256(kernels/{cu.name}) = {digest}\n{ptx}"
        if not text.endswith("\n"):
            text += "\n"
        out = PTX_DIR / f"{cu.stem}.ptx"
        if check_only:
            if not out.exists() or out.read_text() != text:
                stale.append(out.name)
        else:
            out.write_text(text)
            print(f"wrote {out.relative_to(ROOT)} ({len(text)} bytes, ptxas sm_90 ok)")
    for old in PTX_DIR.glob("*.ptx"):
        if not (KERNELS / f"{old.stem}.cu").exists():
            if check_only:
                stale.append(old.name)
            else:
                old.unlink()
                print(f"removed {old.relative_to(ROOT)} (no source)")
    if stale:
        print("stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
