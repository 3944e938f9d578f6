"""envassay's in-target GPU probe: driver facts and framework work, as one JSON document.

Like ``script.py`` this runs INSIDE the interpreter under test: standard library
only, Python 3.8 syntax, piped to ``python - '<request JSON>'``, one JSON
document on stdout (schema: ``envassay.probe.gpu``), diagnostics on stderr. It
is a separate script so that environments without a GPU stack never pay for it.

Everything that touches the driver or a framework runs in a child interpreter
with a timeout: a hung driver (cuInit that never returns) or a framework that
crashes costs that child only, and is reported as such.

- ``driver``: ``libcuda`` loaded with ctypes (``$ENVASSAY_LIBCUDA`` first when
  set, then the usual Linux and WSL paths), then cuInit, cuDriverGetVersion,
  cuDeviceGetCount and per device its name, memory and compute capability —
  the way conda detects the ``__cuda`` virtual package.
- ``nvidia_smi``: ``nvidia-smi --query-gpu=name,driver_version,memory.total``
  (``$ENVASSAY_NVIDIA_SMI`` names another program; set but empty, none runs).
- ``environment``: CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES and friends.
- ``frameworks``: for each requested one (torch, tensorflow, jax, cupy) that is
  installed: its version, the CUDA it was built for, the devices it sees, and
  real work on each device compared with the same work on the CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time

STARTED = time.perf_counter()
GPU_PROBE_VERSION = 1
FRAMEWORKS = ("torch", "tensorflow", "jax", "cupy")
ENVIRONMENT = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "CONDA_OVERRIDE_CUDA",
    "ENVASSAY_LIBCUDA",
    "ENVASSAY_NVIDIA_SMI",
)
SMI_FIELDS = ("name", "driver_version", "memory.total")

# Runs in a child: loads libcuda and prints one JSON line. A driver that hangs or
# crashes takes only this child with it.
DRIVER_CODE = r"""
import ctypes, json, os, platform, sys

ATTRIBUTE_CC_MAJOR, ATTRIBUTE_CC_MINOR = 75, 76
# What cuGetErrorName says, for drivers too broken to say it themselves.
ERROR_NAMES = {
    1: "CUDA_ERROR_INVALID_VALUE", 2: "CUDA_ERROR_OUT_OF_MEMORY",
    3: "CUDA_ERROR_NOT_INITIALIZED", 34: "CUDA_ERROR_STUB_LIBRARY",
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER", 46: "CUDA_ERROR_DEVICES_UNAVAILABLE",
    100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE",
    304: "CUDA_ERROR_OPERATING_SYSTEM", 804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
    999: "CUDA_ERROR_UNKNOWN",
}

def candidates():
    forced = os.environ.get("ENVASSAY_LIBCUDA")
    if forced:
        return [forced]
    system = platform.system()
    if system == "Windows":
        return ["nvcuda.dll"]
    if system == "Darwin":
        return ["libcuda.1.dylib", "libcuda.dylib", "/usr/local/cuda/lib/libcuda.1.dylib"]
    names = []
    # The loader's own search (ld.so.cache, LD_LIBRARY_PATH) first, then where
    # distributions and WSL put the driver when the cache does not list it.
    for base in ("libcuda.so", "/usr/lib64/nvidia/libcuda.so", "/usr/lib64/libcuda.so",
                 "/usr/lib/x86_64-linux-gnu/libcuda.so", "/usr/lib/aarch64-linux-gnu/libcuda.so",
                 "/usr/lib/wsl/lib/libcuda.so"):
        names += [base + ".1", base]
    return names

def load():
    tried = []
    for name in candidates():
        try:
            if os.name == "nt":
                return ctypes.WinDLL(name), name, tried
            return ctypes.CDLL(name), name, tried
        except OSError as exc:
            tried.append(str(exc))
    return None, None, tried

def main():
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    doc = {"status": "ok", "library": None, "tried": [], "version": None, "init_error": None,
           "devices": [], "error": None}
    lib, doc["library"], doc["tried"] = load()
    if lib is None:
        doc["status"] = "no-library"
        out.write(json.dumps(doc) + "\n")
        return

    def error_name(code):
        text = ctypes.c_char_p()
        try:
            if lib.cuGetErrorName(code, ctypes.byref(text)) == 0 and text.value:
                return "%s (%d)" % (text.value.decode("ascii", "replace"), code)
        except Exception:
            pass
        return "%s (%d)" % (ERROR_NAMES.get(code, "CUresult"), code)

    def call(name, *args):
        code = getattr(lib, name)(*args)
        if code != 0:
            raise RuntimeError("%s failed: %s" % (name, error_name(code)))

    if not hasattr(lib, "cuInit"):
        doc["status"], doc["error"] = "error", "%s exports no cuInit" % doc["library"]
        out.write(json.dumps(doc) + "\n")
        return
    version = ctypes.c_int(0)
    try:
        call("cuDriverGetVersion", ctypes.byref(version))
        doc["version"] = version.value
    except Exception as exc:
        doc["error"] = "%s: %s" % (type(exc).__name__, exc)
    code = lib.cuInit(ctypes.c_uint(0))
    if code != 0:
        doc["status"], doc["init_error"] = "init-failed", error_name(code)
        out.write(json.dumps(doc) + "\n")
        return
    try:
        count = ctypes.c_int(0)
        call("cuDeviceGetCount", ctypes.byref(count))
        for index in range(count.value):
            device = ctypes.c_int(0)
            call("cuDeviceGet", ctypes.byref(device), index)
            name = ctypes.create_string_buffer(256)
            call("cuDeviceGetName", name, len(name), device)
            memory = ctypes.c_size_t(0)
            total_mem = getattr(lib, "cuDeviceTotalMem_v2", None) or lib.cuDeviceTotalMem
            code = total_mem(ctypes.byref(memory), device)
            if code != 0:
                raise RuntimeError("cuDeviceTotalMem failed: " + error_name(code))
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            call("cuDeviceGetAttribute", ctypes.byref(major), ATTRIBUTE_CC_MAJOR, device)
            call("cuDeviceGetAttribute", ctypes.byref(minor), ATTRIBUTE_CC_MINOR, device)
            doc["devices"].append({
                "index": index,
                "name": name.value.decode("utf-8", "replace"),
                "memory": memory.value,
                "capability": "%d.%d" % (major.value, minor.value),
            })
    except Exception as exc:
        doc["status"], doc["error"] = "error", "%s: %s" % (type(exc).__name__, exc)
    out.write(json.dumps(doc) + "\n")

main()
"""

# Runs in a child per framework: ``-c FRAMEWORK_CODE NAME``; prints one JSON line.
# Each framework's function takes the imported module; the ``*_work`` functions
# take a device, so that the same code can be exercised on the CPU in tests.
FRAMEWORK_CODE = r"""
import json, os, sys, time, traceback, warnings

SIZE = 256
# Largest error allowed, relative to the largest value of the CPU result. TF32
# (on by default for cuDNN convolutions) and half precision round much earlier
# than float32 does; a broken device is wrong by far more than any of these.
TOLERANCE = {"float32": 5e-3, "float16": 1e-2, "bfloat16": 5e-2, "conv": 1e-2}

def check(name, ok, detail):
    return {"name": name, "ok": bool(ok), "detail": detail}

def failed_check(name):
    text = traceback.format_exc(limit=3).strip().splitlines()
    return check(name, False, " | ".join(text[-3:])[:1500])

def compare(name, error, tolerance):
    detail = "max error %.2e of the largest value (tolerance %.0e)" % (error, tolerance)
    return check(name, error <= tolerance, detail)

def cuda_string(value):
    # 12040 -> "12.4", as the driver API and cupy report runtime versions.
    return "%d.%d" % (value // 1000, (value % 1000) // 10)

# --- torch --------------------------------------------------------------------

def torch_matmul(torch, device, dtype_name):
    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(SIZE, SIZE, generator=generator)
    b = torch.randn(SIZE, SIZE, generator=generator)
    expected = (a.double() @ b.double()).float()
    got = (a.to(device, dtype) @ b.to(device, dtype)).float().cpu()
    error = ((got - expected).abs().max() / expected.abs().max()).item()
    return compare("matmul %s on %s" % (dtype_name, device), error, TOLERANCE[dtype_name])

def torch_conv(torch, device):
    functional = torch.nn.functional
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 32, 32, generator=generator)
    w = torch.randn(8, 3, 3, 3, generator=generator)
    expected = functional.conv2d(x.double(), w.double()).float()
    got = functional.conv2d(x.to(device), w.to(device)).float().cpu()
    error = ((got - expected).abs().max() / expected.abs().max()).item()
    return compare("conv2d on %s" % device, error, TOLERANCE["conv"])

def torch_work(torch, device, capability):
    # fp16 arithmetic from compute capability 5.3, bf16 from 8.0.
    checks = []
    dtypes = ["float32"]
    if capability >= (5, 3):
        dtypes.append("float16")
    if capability >= (8, 0):
        dtypes.append("bfloat16")
    for dtype in dtypes:
        try:
            checks.append(torch_matmul(torch, device, dtype))
        except Exception:
            checks.append(failed_check("matmul %s on %s" % (dtype, device)))
    try:
        checks.append(torch_conv(torch, device))
    except Exception:
        checks.append(failed_check("conv2d on %s" % device))
    return checks

def torch_facts(torch, doc):
    version = torch.version
    doc["version"] = torch.__version__
    doc["cuda"] = getattr(version, "cuda", None)
    hip = getattr(version, "hip", None)
    doc["build"] = "cuda" if doc["cuda"] else "rocm" if hip else "cpu"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc["available"] = bool(torch.cuda.is_available())
        count = torch.cuda.device_count() if doc["available"] else 0
    doc["notes"] += [str(w.message)[:500] for w in caught]
    cudnn = torch.backends.cudnn
    if doc["build"] == "cuda" and cudnn.is_available():
        doc["cudnn"] = str(cudnn.version())
    for index in range(count):
        major, minor = torch.cuda.get_device_capability(index)
        props = torch.cuda.get_device_properties(index)
        doc["devices"].append({
            "index": index,
            "name": torch.cuda.get_device_name(index),
            "memory": int(props.total_memory),
            "capability": "%d.%d" % (major, minor),
        })
        doc["checks"] += torch_work(torch, "cuda:%d" % index, (major, minor))
    if count:
        torch.cuda.synchronize()

# --- tensorflow -----------------------------------------------------------------

def tensorflow_work(tf, device):
    with tf.device("/CPU:0"):
        a = tf.random.stateless_normal((SIZE, SIZE), seed=(0, 1), dtype=tf.float64)
        b = tf.random.stateless_normal((SIZE, SIZE), seed=(2, 3), dtype=tf.float64)
        expected = tf.matmul(a, b)
    with tf.device(device):
        got = tf.matmul(tf.cast(a, tf.float32), tf.cast(b, tf.float32))
    got = tf.cast(got, tf.float64)
    error = float(tf.reduce_max(tf.abs(got - expected)) / tf.reduce_max(tf.abs(expected)))
    return compare("matmul float32 on %s" % device, error, TOLERANCE["float32"])

def tensorflow_facts(tf, doc):
    doc["version"] = tf.__version__
    info = dict(tf.sysconfig.get_build_info())
    doc["cuda"] = info.get("cuda_version") or None
    doc["cudnn"] = info.get("cudnn_version") or None
    if info.get("is_cuda_build"):
        doc["build"] = "cuda"
    elif info.get("is_rocm_build"):
        doc["build"] = "rocm"
    else:
        doc["build"] = "cpu"
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except Exception:
            pass
    doc["available"] = bool(gpus)
    for index, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu) or {}
        capability = details.get("compute_capability")
        doc["devices"].append({
            "index": index,
            "name": details.get("device_name") or gpu.name,
            "memory": None,
            "capability": "%d.%d" % tuple(capability) if capability else None,
        })
        try:
            doc["checks"].append(tensorflow_work(tf, "/GPU:%d" % index))
        except Exception:
            doc["checks"].append(failed_check("matmul float32 on /GPU:%d" % index))

# --- jax --------------------------------------------------------------------------

def jax_work(jax, device):
    import numpy
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((SIZE, SIZE))
    b = rng.standard_normal((SIZE, SIZE))
    expected = a @ b
    step = jax.jit(lambda x, y: x @ y)
    x = jax.device_put(a.astype(numpy.float32), device)
    y = jax.device_put(b.astype(numpy.float32), device)
    got = numpy.asarray(step(x, y)).astype(numpy.float64)
    error = float(numpy.abs(got - expected).max() / numpy.abs(expected).max())
    return compare("jit matmul float32 on %s" % device, error, TOLERANCE["float32"])

def jax_cuda_version(jax):
    try:
        from jax._src.lib import cuda_versions
    except Exception:
        return None
    if cuda_versions is None:
        return None
    try:
        return cuda_string(cuda_versions.cuda_runtime_get_version())
    except Exception:
        return None

def jax_build():
    # CUDA comes from a plugin (jax-cuda12-plugin: jax_cuda12_plugin, jax_plugins.xla_cuda12),
    # an in-tree jaxlib.cuda, or an old "+cuda" jaxlib; ROCm likewise; else a CPU-only jax.
    import importlib.util
    import pkgutil
    import re
    try:
        import jaxlib
        version = getattr(jaxlib, "__version__", "")
    except Exception:
        version = ""
    names = [m.name for m in pkgutil.iter_modules()]
    try:
        import jax_plugins
        names += ["jax_plugins." + m.name for m in pkgutil.iter_modules(jax_plugins.__path__)]
    except Exception:
        pass
    for kind in ("cuda", "rocm"):
        if "+" + kind in version:
            return kind
        pattern = re.compile(r"^(jax_%s\d+_plugin|jax_plugins\.xla_%s\d*)$" % (kind, kind))
        if any(pattern.match(name) for name in names):
            return kind
        try:
            if importlib.util.find_spec("jaxlib." + kind) is not None:
                return kind
        except Exception:
            pass
    return "cpu"

def jax_facts(jax, doc):
    doc["version"] = jax.__version__
    doc["cuda"] = jax_cuda_version(jax)
    devices = [d for d in jax.devices() if d.platform in ("gpu", "cuda")]
    doc["build"] = "cuda" if devices or doc["cuda"] else jax_build()
    doc["available"] = bool(devices)
    if not devices:
        doc["notes"].append("jax.devices() has no GPU: %s" % jax.devices())
    for index, device in enumerate(devices):
        capability = getattr(device, "compute_capability", None)
        doc["devices"].append({
            "index": index,
            "name": getattr(device, "device_kind", str(device)),
            "memory": None,
            "capability": str(capability) if capability else None,
        })
        try:
            doc["checks"].append(jax_work(jax, device))
        except Exception:
            doc["checks"].append(failed_check("jit matmul float32 on %s" % device))

# --- cupy --------------------------------------------------------------------------

def cupy_work(cupy, index):
    with cupy.cuda.Device(index):
        values = cupy.arange(1000, dtype=cupy.float64)
        total = float((values * values).sum())
        cupy.cuda.Device(index).synchronize()
    expected = float(sum(i * i for i in range(1000)))
    return check("sum of squares on device %d" % index, total == expected,
                 "%r (expected %r)" % (total, expected))

def cupy_facts(cupy, doc):
    runtime = cupy.cuda.runtime
    doc["version"] = cupy.__version__
    doc["build"] = "rocm" if getattr(runtime, "is_hip", False) else "cuda"
    doc["cuda"] = cuda_string(runtime.runtimeGetVersion())
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        doc["notes"].append("%s: %s" % (type(exc).__name__, exc))
        count = 0
    doc["available"] = count > 0
    for index in range(count):
        props = runtime.getDeviceProperties(index)
        name = props.get("name", b"")
        doc["devices"].append({
            "index": index,
            "name": name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name),
            "memory": props.get("totalGlobalMem"),
            "capability": "%s.%s" % (props.get("major"), props.get("minor")),
        })
        try:
            doc["checks"].append(cupy_work(cupy, index))
        except Exception:
            doc["checks"].append(failed_check("sum of squares on device %d" % index))

# --- the child ------------------------------------------------------------------------

MODULES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "cupy": "cupy"}
FACTS = {"torch": torch_facts, "tensorflow": tensorflow_facts, "jax": jax_facts, "cupy": cupy_facts}

def main(name):
    import importlib
    import importlib.util
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the framework prints cannot corrupt the document
    sys.path[:] = [p for p in sys.path if p]
    started = time.perf_counter()
    doc = {"name": name, "status": "ok", "version": None, "build": "unknown", "cuda": None,
           "cudnn": None, "available": False, "devices": [], "checks": [], "notes": [],
           "error": None}
    try:
        if importlib.util.find_spec(MODULES[name]) is None:
            doc["status"] = "missing"
        else:
            FACTS[name](importlib.import_module(MODULES[name]), doc)
    except BaseException:
        doc["status"], doc["error"] = "error", traceback.format_exc()[-3000:]
    doc["seconds"] = round(time.perf_counter() - started, 6)
    out.write(json.dumps(doc) + "\n")
    out.flush()

if __name__ == "__main__":
    main(sys.argv[1])
"""


def run_child(code, args, timeout, env=None):
    """(status, document or None, words) of ``python -c code *args`` with a timeout.

    status is ``ok`` (it printed a JSON document), ``timeout`` (killed after
    ``timeout`` seconds) or ``crashed`` (it ended without a document).
    """
    import subprocess

    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        # A process stuck in the kernel may not even die: never wait for it forever.
        with contextlib.suppress(Exception):
            child.communicate(timeout=5)
        return "timeout", None, f"did not finish within {timeout:g}s (killed)"
    err_text = err.decode("utf-8", "replace").strip()
    for line in reversed(out.decode("utf-8", "replace").strip().splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return "ok", doc, err_text[-2000:]
    return "crashed", None, f"{how_ended(child.returncode)}; stderr: {err_text[-2000:]}"


def how_ended(code):
    """Words for an exit status: ``killed by signal SIGSEGV``, ``exited with status 3``."""
    if code >= 0:
        return f"exited with status {code}"
    import signal

    try:
        return f"killed by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def driver_facts(timeout):
    """What libcuda says, from a child that may hang or crash without harm."""
    started = time.perf_counter()
    status, doc, words = run_child(DRIVER_CODE, [], timeout)
    if status != "ok":
        doc = {"status": status, "library": None, "tried": [], "version": None}
        doc.update(init_error=None, devices=[], error=words)
    doc["seconds"] = round(time.perf_counter() - started, 6)
    return doc


def nvidia_smi(timeout):
    """One entry per GPU nvidia-smi lists, or None where there is no nvidia-smi.

    ``$ENVASSAY_NVIDIA_SMI`` names the program instead of PATH; set but empty, none is run.
    """
    import shutil
    import subprocess

    smi = os.environ.get("ENVASSAY_NVIDIA_SMI")
    if smi is None:
        smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    query = "--query-gpu=" + ",".join(SMI_FIELDS)
    try:
        done = subprocess.run(
            [smi, query, "--format=csv,noheader"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"nvidia-smi did not finish within {timeout:g}s"}
    except OSError as exc:
        return {"error": f"nvidia-smi: {exc}"}
    text = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        problem = (text + done.stderr.decode("utf-8", "replace")).strip()[-1000:]
        return {"error": f"nvidia-smi {how_ended(done.returncode)}: {problem}"}
    gpus = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == len(SMI_FIELDS):
            gpus.append({"name": fields[0], "driver_version": fields[1], "memory": fields[2]})
    return {"gpus": gpus}


def framework_facts(name, timeout):
    """One framework's facts and work, from a child of its own."""
    env = dict(os.environ)
    # Share the device with whatever else runs there: no framework grabs all its memory.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    status, doc, words = run_child(FRAMEWORK_CODE, [name], timeout, env)
    if status != "ok":
        return {"name": name, "status": status, "error": words}
    if words:
        doc["stderr"] = words[-1000:]
    return doc


def parse_request(argv):
    raw = json.loads(argv[1]) if len(argv) > 1 else {}
    frameworks = [str(f) for f in raw.get("frameworks", FRAMEWORKS)]
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        raise ValueError(f"unknown frameworks {unknown}; known: {list(FRAMEWORKS)}")
    return {
        "frameworks": frameworks,
        "driver_timeout": float(raw.get("driver_timeout", 30.0)),
        "framework_timeout": float(raw.get("framework_timeout", 300.0)),
    }


def guarded(func, *args):
    """Run one section; a failure is recorded in its place instead of ending the probe."""
    try:
        return func(*args)
    except Exception:
        import traceback

        return {"error": traceback.format_exc()[-4000:]}


def build(argv):
    """The whole document. The driver and nvidia-smi run side by side; frameworks one by one

    (several processes initialising CUDA at once fail where a GPU is in
    exclusive-process mode).
    """
    doc = {"gpu_probe_version": GPU_PROBE_VERSION}
    request = parse_request(argv)
    found = {}
    smi = threading.Thread(
        target=lambda: found.update(smi=guarded(nvidia_smi, request["driver_timeout"]))
    )
    smi.start()
    doc["driver"] = guarded(driver_facts, request["driver_timeout"])
    smi.join()
    doc["nvidia_smi"] = found.get("smi")
    doc["environment"] = dict((k, os.environ[k]) for k in ENVIRONMENT if k in os.environ)
    doc["frameworks"] = dict(
        (name, guarded(framework_facts, name, request["framework_timeout"]))
        for name in request["frameworks"]
    )
    doc["elapsed"] = round(time.perf_counter() - STARTED, 6)
    return doc


def main(argv):
    """Print the document for the request in ``argv``; exits 0 once it is printed."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        doc = build(argv)
    except BaseException:
        import traceback

        doc = {"gpu_probe_version": GPU_PROBE_VERSION, "error": traceback.format_exc()[-4000:]}
    out.write(json.dumps(doc) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
