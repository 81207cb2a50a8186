"""ONNX Runtime, PyTorch and inception side by side, in one run (called by bench/compare.sh).

Same models (torchvision's GoogLeNet and Inception v3, random weights), same inputs, same thread
count, same timing rule (a pause, a warm-up, then repeated runs lasting at least --min-time; the
median and the fastest run are kept, in rounds that take the three in turn). Before timing, the
three are checked to give the same outputs on the same input.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
import torchvision


def settle():
    """A pause before each timing: the previous framework's idle threads (OpenMP's spin-wait
    after a parallel region, ONNX Runtime's spinning pool) stop competing for the cores."""
    time.sleep(1.0)


def median_time(fn, warmup, repeats, min_time):
    settle()
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_time and len(times) < 50):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def rate(batch, timings):
    """(median, fastest) images/s from rounds of (median, fastest) seconds per batch."""
    return (batch / statistics.median(t for t, _ in timings),
            batch / min(best for _, best in timings))


def rates(measured):
    """(median, fastest) images/s from rounds of (median, fastest) images/s."""
    return statistics.median(m for m, _ in measured), max(best for _, best in measured)


def median_and_fastest(record):
    """`inception bench --json`'s (median, fastest) images/s."""
    return record["images_per_sec"], record["batch"] * 1000.0 / record["ms_min"]


def build(name, aux):
    if name == "googlenet":
        m = torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=True)
        size = 224
    elif name == "inception_v3":
        m = torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=True)
        size = 299
    else:
        sys.exit(f"unknown model {name}: googlenet or inception_v3")
    # Non-trivial BatchNorm statistics, so that the parity check means something.
    g = torch.Generator().manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m, size


def machine():
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    simd = "AVX-512" if "avx512f" in flags else "AVX2+FMA" if "avx2" in flags else platform.machine()
    text = f"{cpu}, {simd}, {os.cpu_count()} cores"
    if os.environ.get("INCEPTION_ISA") == "avx2" and simd == "AVX-512":
        patched = os.environ.get("INCEPTION_ORT_AVX2")
        kept = patched and os.path.abspath(ort.__file__).startswith(os.path.abspath(patched))
        text += (f"; kept to AVX2+FMA: inception, PyTorch ({torch.backends.cpu.get_cpu_capability()}),"
                 " oneDNN/MKL" + (f" and ONNX Runtime (MLAS's AVX-512 check patched in a copy: {ort.__file__})"
                                  if kept else " — ONNX Runtime still uses AVX-512"))
    return text


def ours(binary, args, extra):
    settle()
    out = subprocess.run(
        [binary, "bench", *extra, "--json", "--no-peak", "--threads", str(args.threads),
         "--repeats", str(args.repeats), "--min-time", str(args.min_time)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inception", required=True)
    p.add_argument("--models", default=os.environ.get("MODELS", "googlenet,inception_v3"))
    p.add_argument("--batches", default=os.environ.get("BATCHES", "1,16"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", os.cpu_count())))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=float(os.environ.get("MIN_TIME", "2")))
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")))
    p.add_argument("--train", action="store_true", default=os.environ.get("TRAIN") == "1")
    args = p.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    print(f"machine: {machine()}; threads: {args.threads}")
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}; inception: {args.inception}")
    rows = []
    tmp = tempfile.mkdtemp(prefix="inception-compare-")
    for name in args.models.split(","):
        model, size = build(name, aux=False)
        model.eval()
        pth = os.path.join(tmp, f"{name}.pth")
        onnx_path = os.path.join(tmp, f"{name}.onnx")
        torch.save(model.state_dict(), pth)
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
        export = dict(input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
        try:
            torch.onnx.export(model, x, onnx_path, dynamo=False, **export)
        except TypeError:
            torch.onnx.export(model, x, onnx_path, **export)
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])

        # Parity on one input: PyTorch, ONNX Runtime, inception (the same .pth).
        with torch.no_grad():
            want = model(x).numpy()
        got_ort = sess.run(None, {"input": x.numpy()})[0]
        xin = os.path.join(tmp, "x.npy")
        yout = os.path.join(tmp, "y.npy")
        np.save(xin, x.numpy())
        subprocess.run([args.inception, "run", "--weights", pth, "--model", name.replace("_", "-"),
                        "--input", xin, "-o", yout], check=True, capture_output=True)
        got_ours = np.load(yout)
        scale = max(1.0, float(np.abs(want).max()))
        print(f"{name}: max |difference| / scale vs PyTorch: onnxruntime "
              f"{np.abs(got_ort - want).max() / scale:.1e}, inception "
              f"{np.abs(got_ours - want).max() / scale:.1e}")

        for b in batches:
            xb = torch.randn(b, 3, size, size)
            xn = xb.numpy()

            def run_torch():
                with torch.no_grad():
                    model(xb)

            # Rounds of A, B, C in turn, medians over rounds: a shared machine's noise then
            # falls on all three alike.
            t_ort, t_torch, ips = [], [], []
            for _ in range(args.rounds):
                t_ort.append(median_time(lambda: sess.run(None, {"input": xn}), 2, args.repeats, args.min_time))
                t_torch.append(median_time(run_torch, 2, args.repeats, args.min_time))
                mine = ours(args.inception, args, ["--weights", pth, "--batch", str(b)])
                ips.append(next(median_and_fastest(m) for m in mine if m["mode"] == "infer"))
            rows.append((name, "infer", b, rate(b, t_ort), rate(b, t_torch), rates(ips)))

        if args.train:
            b = 16 if name == "googlenet" else 8
            xb = torch.randn(b, 3, size, size)
            yb = torch.randint(0, 1000, (b,))
            ce = torch.nn.functional.cross_entropy
            # SGD with momentum, and RMSprop as the Inception v3 paper (decay 0.9, ε 1.0,
            # momentum 0.9): `inception bench --optimizer` takes the same two.
            for optimizer in ["sgd", "rmsprop"]:
                tmodel, _ = build(name, aux=True)
                tmodel.train()
                if optimizer == "sgd":
                    opt = torch.optim.SGD(tmodel.parameters(), lr=0.001, momentum=0.9)
                else:
                    opt = torch.optim.RMSprop(tmodel.parameters(), lr=0.001, alpha=0.9, eps=1.0,
                                              momentum=0.9)

                def step():
                    opt.zero_grad()
                    out = tmodel(xb)
                    if name == "googlenet":
                        loss = ce(out.logits, yb) + 0.3 * (ce(out.aux_logits1, yb)
                                                           + ce(out.aux_logits2, yb))
                    else:
                        loss = ce(out.logits, yb) + 0.4 * ce(out.aux_logits, yb)
                    loss.backward()
                    opt.step()

                # Rounds of PyTorch and inception in turn, medians over rounds.
                t_torch, ips = [], []
                for _ in range(args.rounds):
                    t_torch.append(median_time(step, 1, 3, args.min_time))
                    mine = ours(args.inception, args, [name.replace("_", "-"), "--train",
                                                       "--optimizer", optimizer, "--batch", str(b)])
                    ips.append(next(median_and_fastest(m) for m in mine if m["mode"] == "train"))
                rows.append((name, f"train ({optimizer})", b, None, rate(b, t_torch), rates(ips)))

    # Images/s are medians (of each round's median run, over the rounds); the last two columns
    # compare each framework's fastest run instead: on a shared machine noise only ever adds
    # time, so the fastest runs are the steadier comparison when the medians move by the run.
    print()
    print("| model | work | batch | ONNX Runtime img/s | PyTorch img/s | inception img/s "
          "| inception / ORT | inception / PyTorch | fastest runs: / ORT | / PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, work, b, o, t, i in rows:
        ort_s = f"{o[0]:.1f}" if o else "—"
        ratio_o = f"{i[0] / o[0]:.2f}x" if o else "—"
        best_o = f"{i[1] / o[1]:.2f}x" if o else "—"
        print(f"| {name} | {work} | {b} | {ort_s} | {t[0]:.1f} | {i[0]:.1f} | {ratio_o} "
              f"| {i[0] / t[0]:.2f}x | {best_o} | {i[1] / t[1]:.2f}x |")


if __name__ == "__main__":
    main()
