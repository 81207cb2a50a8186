"""Where the time goes, layer by layer, beside ONNX Runtime: ONNX Runtime's own profiler
(`SessionOptions.enable_profiling`) and `inception bench --profile --json` on the same
torchvision model (random weights), joined by node name. A diagnosis aid, not a test.

    python bench/layers.py --inception target/release/inception --model inception_v3 --batch 16

Uses the virtual environment of bench/compare.sh (onnxruntime, torch, torchvision). Rows are
sorted by how much longer we take; ONNX Runtime's Concat nodes have no counterpart (our
branches write into the concatenation), nor does our `input` step (NCHW to channels-last; ONNX
Runtime reorders inside its first convolution).
"""

import argparse
import collections
import json
import os
import re
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
import torchvision


def export(name, tmp):
    if name == "googlenet":
        m = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
        size = 224
    else:
        m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
        size = 299
    m.eval()
    pth, onnx_path = os.path.join(tmp, f"{name}.pth"), os.path.join(tmp, f"{name}.onnx")
    torch.save(m.state_dict(), pth)
    x = torch.randn(2, 3, size, size)
    torch.onnx.export(m, x, onnx_path, dynamo=False, input_names=["input"],
                      output_names=["logits"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return pth, onnx_path, size


def ort_layers(onnx_path, size, batch, threads, runs, tmp):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.enable_profiling = True
    o.profile_file_prefix = os.path.join(tmp, "ort")
    s = ort.InferenceSession(onnx_path, o, providers=["CPUExecutionProvider"])
    x = np.random.randn(batch, 3, size, size).astype(np.float32)
    warm = 2
    for _ in range(warm):
        s.run(None, {"input": x})
    t = time.perf_counter()
    for _ in range(runs):
        s.run(None, {"input": x})
    per_batch = (time.perf_counter() - t) / runs
    with open(s.end_profiling()) as f:
        events = json.load(f)
    times = collections.defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times[normalise(e["name"][: -len("_kernel_time")])] += e["dur"] / 1000 / (warm + runs)
    return per_batch * 1000, times


def normalise(name):
    """ONNX node names (`/Mixed_5b/branch1x1/conv/Conv`, `..._nchwc`) as our node names."""
    n = re.sub(r"(/Relu)?_output_0(_nchwc)?$", "", name.strip("/")).replace("/", ".")
    n = re.sub(r"(branch\d)\.\1\.", r"\1.", n)
    n = re.sub(r"\.(conv|Conv|MaxPool|Relu|Gemm)$", "", n)
    return re.sub(r"\.AveragePool$", ".avg_pool", n)


def our_layers(binary, pth, batch, threads):
    out = subprocess.run([binary, "bench", "--weights", pth, "--batch", str(batch), "--profile",
                          "--no-peak", "--json", "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    times, total = collections.defaultdict(float), None
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("record") == "profile":
            times[re.sub(r"\.relu$", "", r["node"])] += r["ms"]
        elif r.get("mode") == "infer":
            total = r["ms_per_batch"]
    return total, times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inception", required=True)
    p.add_argument("--model", default="inception_v3", choices=["googlenet", "inception_v3"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="inception-layers-")
    pth, onnx_path, size = export(args.model, tmp)
    ort_ms, theirs = ort_layers(onnx_path, size, args.batch, args.threads, args.runs, tmp)
    our_ms, ours = our_layers(args.inception, pth, args.batch, args.threads)
    print(f"{args.model}, batch {args.batch}, {args.threads} threads: ONNX Runtime "
          f"{ort_ms:.1f} ms per batch, inception {our_ms:.1f} ms")
    by_kind = collections.Counter()
    rows = []
    for name, ms in ours.items():
        o = theirs.get(name)
        rows.append((ms - (o or 0.0), name, ms, o))
    rows.sort(reverse=True)
    print(f"{'layer':42} {'inception ms':>12} {'ORT ms':>8} {'difference':>10}")
    for diff, name, ms, o in rows[: args.top]:
        o_s = f"{o:8.2f}" if o is not None else "       —"
        print(f"{name:42} {ms:12.2f} {o_s} {diff:+10.2f}")
    for name, ms in theirs.items():
        if name not in ours:
            by_kind[name.rsplit(".", 1)[-1]] += ms
    print("ONNX Runtime only (ms):", {k: round(v, 2) for k, v in by_kind.most_common(8)})


if __name__ == "__main__":
    main()
