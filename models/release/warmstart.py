"""A trainer checkpoint rebuilt from a released embedder ONNX graph, so a new run can warm-start from a model that
exists only as an export (a release keeps its ONNX files, not the torch checkpoints behind them).

    python -m models.release.warmstart --weights weights/fan_r18_ferplus_embedder.onnx --out runs/warm/embedder.pt
    python -m models.train frames --init runs/warm/embedder.pt ...

The exporter folds every BatchNorm into its convolution (W x + b). Loading that into the trainable ResNet18 needs
BatchNorm layers back: each BN gets running mean m and variance v measured on real training crops (the fused
network's own pre-BN activations, one pass), gamma = sqrt(v + eps) and beta = m + b. In eval mode that reproduces
W x + b exactly for any m, v; in train mode, batch statistics close to m, v give nearly the same output, so
fine-tuning starts where the release stood instead of from a broken scale. The frame classifier starts from the
released self-attention head's classifier (for one frame the self head is exactly a linear classifier on f).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from app.emotions import EMOTIONS
from models.engine.cli import add_data_args
from app.faces.align import Preprocess
from models.networks.fan import ResNet18Embedder


class WarmStartError(ValueError):
    """The ONNX graph does not hold the weights of a ResNet18Embedder (one line for the user)."""


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - truncated or foreign file: one line
        raise WarmStartError(f"cannot read ONNX graph {path} ({type(e).__name__})") from None
    # writable copies: to_array gives read-only views of the protobuf's bytes, which torch.from_numpy warns about
    return {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}


def embedder_from_onnx(embedder_onnx: Path, head_onnx: Path | None, pre: Preprocess,
                       calib: torch.Tensor) -> ResNet18Embedder:
    """ResNet18Embedder whose eval output equals the ONNX graph's (fused conv weights + re-created BN).

    calib: float (N, C, S, S) normalised training crops, used to measure each BN's statistics."""
    init = _initializers(embedder_onnx)
    model = ResNet18Embedder(in_chans=pre.channels, num_classes=len(EMOTIONS))
    convs = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    bns = {}
    for name, conv in convs.items():
        bn_name = name.replace("conv", "bn") if "downsample" not in name else name[:-1] + "1"
        bn = model.get_submodule(bn_name)
        w = init.get(f"embedder.{name}.weight")
        b = init.get(f"embedder.{name}.weight_bias")
        if w is None or b is None or tuple(w.shape) != tuple(conv.weight.shape):
            raise WarmStartError(f"{embedder_onnx}: no fused weights for {name} of shape {tuple(conv.weight.shape)}")
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(1) * 1 + b: exactly the fused conv
        bns[name] = (conv, bn)
    # one pass of the (exact) fused network, recording each conv's pre-BN output statistics
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [conv.register_forward_hook(lambda m, i, o, n=name: stats.__setitem__(
        n, (o.mean((0, 2, 3)), o.var((0, 2, 3), unbiased=False)))) for name, (conv, _) in bns.items()]
    model.eval()
    with torch.no_grad():
        model._features(calib)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for name, (_, bn) in bns.items():
            m, v = stats[name]
            b = bn.bias.clone()
            bn.running_mean.copy_(m)
            bn.running_var.copy_(v)
            bn.weight.copy_(torch.sqrt(v + bn.eps))
            bn.bias.copy_(m + b)
    if head_onnx is not None:
        head = _initializers(head_onnx)
        w, b = head.get("head.classifier.weight"), head.get("head.classifier.bias")
        if w is None or tuple(w.shape) != tuple(model.fc.weight.shape):
            raise WarmStartError(f"{head_onnx}: not a self-attention head with a (7, 512) classifier")
        with torch.no_grad():
            model.fc.weight.copy_(torch.from_numpy(w))
            model.fc.bias.copy_(torch.from_numpy(b))
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.release.warmstart", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, required=True, help="a released model's embedder .onnx (its card beside)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (loads with models.train --init)")
    add_data_args(p)
    p.add_argument("--calib-images", type=int, default=2048, help="FER+ Train crops for the BN statistics")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from app.recognition.card import ModelError, load_card
    from models.engine.checkpoints import save_checkpoint
    from models.data.loading import load_ferplus_split, normalise, to_input

    try:
        card = load_card(args.weights)
        pre = card.preprocess
        self_head = card.head_files.get("self")
        train = load_ferplus_split(args.data, "FER2013Train", pre, args.cache_dir, args.calib_images)
        calib = normalise(to_input(torch.from_numpy(train.crops), pre), pre)
        model = embedder_from_onnx(card.embedder_file, self_head, pre, calib)
    except (OSError, ValueError, KeyError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from models.engine.checkpoints import write_json  # config.json beside it, so a release lists this step in its lineage
    previous = (card.extra.get("training") or {}).get("commands", [])  # how the released model itself was made
    write_json(args.out.parent / "config.json", {"stage": "warmstart", "module": "models.release.warmstart",
                                                 "weights": str(args.weights), "command": " ".join(sys.argv),
                                                 "previous_commands": previous})
    save_checkpoint(args.out, {"embedder": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                               "epoch": -1, "preprocess": json.dumps(pre.to_dict()),
                               "config": json.dumps({"warm_start_from": str(args.weights)}),
                               "hardware": "", "source_onnx": str(args.weights)})
    print(f"done: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
