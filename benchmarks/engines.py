"""Backbone inference engines on this CPU: speed and agreement with eager fp32.

    python benchmarks/engines.py [--json] [--batch 64]

Each engine runs RegNetY-1.6GF (random weights) at 112x112 on the same batch; ``rel_err`` is
max |out - eager| / max |eager|. Issue 5 asks for the fastest engine within 1e-3 of eager
fp32 to become the default of evaluate / predict on CPU; this script is the evidence.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import time

import torch
from torchvision.models import regnet_y_1_6gf

from run import best_rate  # benchmarks/run.py, beside this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = regnet_y_1_6gf().eval()
    net.fc = torch.nn.Identity()
    x = torch.randn(args.batch, 3, 112, 112)
    results = {}
    with torch.no_grad():
        reference = net(x)
        scale = reference.abs().max().item()

        def record(name: str, fn, out) -> None:
            results[name] = {
                "fps": best_rate(fn, args.batch),
                "rel_err": (out.float() - reference).abs().max().item() / scale,
            }

        record("eager_fp32", lambda: net(x), reference)
        net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        record("channels_last", lambda: net_cl(x_cl), net_cl(x_cl))

        def bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x)

        record("autocast_bf16", bf16, bf16())
    try:
        compiled = torch.compile(net)
        with torch.no_grad():
            start = time.perf_counter()
            out = compiled(x)
            compile_s = time.perf_counter() - start
            record("torch_compile", lambda: compiled(x), out)
            results["torch_compile"]["compile_s"] = compile_s
    except Exception as err:  # a missing compiler is a result too
        results["torch_compile"] = {"error": str(err).splitlines()[0][:200]}
    try:
        import onnxruntime as ort

        buffer = io.BytesIO()
        torch.onnx.export(
            net,
            (x,),
            buffer,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "n"}},
            opset_version=18,
            dynamo=False,
        )
        session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        out = torch.from_numpy(session.run(None, feed)[0])
        with torch.no_grad():
            record("onnxruntime", lambda: session.run(None, feed), out)
    except ImportError:
        results["onnxruntime"] = {"error": "onnxruntime not installed (pip install -e .[onnx])"}
    try:
        import openvino as ov

        core = ov.Core()
        for hint in ("f32", "bf16"):
            model = ov.convert_model(net, example_input=x)
            compiled_ov = core.compile_model(
                model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "THROUGHPUT"}
            )
            request = compiled_ov.create_infer_request()
            out = torch.from_numpy(request.infer([x.numpy()])[0].copy())
            record(f"openvino_{hint}", lambda r=request: r.infer([x.numpy()]), out)
    except ImportError:
        results["openvino_f32"] = {"error": "openvino not installed (pip install openvino)"}
    if args.json:
        print(json.dumps(results))
    else:
        for name, r in results.items():
            print(
                f"{name:>15}: "
                + ", ".join(
                    f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
                )
            )


if __name__ == "__main__":
    main()
