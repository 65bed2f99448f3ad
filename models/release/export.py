"""Torch -> the app's two ONNX graphs and their model cards.

    python -m models.release.export --checkpoint runs/clips/model.pt --out weights --name fan_r18_ferplus [--window-length 16]
        [--heads relation self ...] [--head relation]

writes, into --out:
    <name>_embedder.onnx        crops (B, C, S, S) float32, normalised   -> features (B, 512)
    <name>_head_<head>.onnx     features (B, T, 512)                     -> probs (B, 7), alpha (B, T), weight (B, T)
                                one per head of the checkpoint: relation, self, fusion, gru, gru-causal, transformer
                                (models.networks.heads; the card's files.heads lists them, the app picks one with --head)
and a JSON card of the same stem beside each (app.recognition.card's format; identical except "role"; --head sets
the card's default head), then checks torch vs ONNX Runtime parity on seeded random inputs. export_checkpoint is the
same export for other code (models.release.ship, models.recipe): ExportOptions holds the command's options.

Exporter: torch.onnx.export(dynamo=True) (the torch.export-based exporter) for the embedder and the FAN heads. The
TorchScript exporter (dynamo=False) is deprecated and gives the same fused graph (Conv with BatchNorm folded in, no
BN nodes); it serves only the heads that torch.export cannot export for every window length (_export_graph). The
dynamo exporter writes weights to a separate `<file>.data` by default; we pass external_data=False and check that
every initializer is inside the one file (ResNet18 fp32 is ~45 MB, far below protobuf's 2 GB limit).

`export_random_model` / `--random-init` exist for tests only: their cards carry "random_init": true, and the app's
default-model lookup (app.recognition.recognizer.find_default_model) never picks such a model.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import inspect
import json
import logging
import os
import platform
import shlex
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from app.recognition.card import (ATTENTION_TYPES, HEAD_TYPES, ModelError, card_files, content_files, file_sha256,
    load_card, write_card, write_model_cards)
from app.durable import replacing
from app.emotions import EMOTIONS
from app.faces.align import Preprocess
from models.engine.cli import add_head_args, command_line, config_from_args, parse_head_args
from models.networks.heads import (HeadExportWrapper, build_head, head_spec, init_from_frame_classifier,
    parameter_count)
from models.networks.fan import EmbedderExportWrapper, FanHead, ResNet18Embedder
from models.networks.fan import WINDOW_LENGTH

OPSET = 20  # what the dynamo exporter emits natively; onnxruntime >= 1.17 runs it
_CORE_KEYS = frozenset({"format", "name", "role", "labels", "preprocess", "files", "head", "attention", "window",
                        "embed_dim", "sha256", "opset", "exporter"})


def model_files(name: str, attentions) -> tuple[str, dict[str, str]]:
    """File names of a model's graphs: (<name>_embedder.onnx, {attention: <name>_head_<attention>.onnx})."""
    return f"{name}_embedder.onnx", {a: f"{name}_head_{a}.onnx" for a in attentions}


def _export_graph(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str,
                  output_names: list[str], dynamic: dict[int, str], torchscript: bool = False) -> None:
    """One module -> one self-contained ONNX file, written atomically (tmp + os.replace).

    torchscript=True uses the TorchScript exporter, for the heads whose models.networks.heads
    HeadSpec.torchscript_export says so (fusion, GRU, transformer): torch.export specialises a unidirectional nn.GRU
    to the example's window length (the graph then refuses any other length) and is far slower on these small heads;
    parity is checked the same way (tests/models/networks/test_heads.py)."""
    tmp = path.with_name(path.name + ".tmp")
    arg_name = next(iter(inspect.signature(module.forward).parameters))
    shapes = {arg_name: {axis: torch.export.Dim(dim_name) for axis, dim_name in dynamic.items()}}
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    leftovers = [tmp, tmp.with_name(tmp.name + ".data")]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if torchscript:
            torch.onnx.export(module, (example,), str(tmp), dynamo=False, input_names=[input_name],
                              output_names=output_names, opset_version=OPSET,
                              dynamic_axes={input_name: dynamic, **{o: {0: "batch"} for o in output_names}})
            program = None
        else:
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=[input_name],
                                        output_names=output_names, opset_version=OPSET, dynamic_shapes=shapes,
                                        external_data=False, optimize=True, verbose=False)
    try:
        if program is not None:
            program.save(tmp, external_data=False)
        proto = onnx.load(str(tmp), load_external_data=False)
        external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        if external:  # not expected with external_data=False; fold them in rather than ship a second file
            leftovers += [tmp.parent / e.value for t in external for e in t.external_data if e.key == "location"]
            onnx.save(onnx.load(str(tmp)), str(tmp), save_as_external_data=False)
        onnx.checker.check_model(str(tmp))
        os.replace(tmp, path)
    finally:
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)


def _head_mismatch(name: str, head: torch.nn.Module, dim: int) -> str | None:
    """Why `head` cannot be exported as the registry's head `name` over dim-d features (None when it can)."""
    ref = build_head(name, dim, len(EMOTIONS))
    got = (type(head).__name__, getattr(head, "attention", None), getattr(head, "dim", None),
           head.classifier.out_features)
    want = (type(ref).__name__, getattr(ref, "attention", None), dim, len(EMOTIONS))
    if got == want and all(a.shape == b.shape for a, b in zip(head.state_dict().values(), ref.state_dict().values())):
        return None
    return (f"head {name!r} is a {got[0]} ({getattr(got[1], 'value', got[1])}) over {got[2]}-d features with "
            f"{got[3]} classes; expected {want[0]} ({getattr(want[1], 'value', want[1])}), {dim}-d, {want[3]}")


def _dynamic_head_outputs(path: Path) -> None:
    """The exporter can leave the example's window length in the declared output shapes of recurrent graphs
    (onnxruntime then warns on every other length): declare probs (batch, K) and alpha/weight (batch, time)."""
    proto = onnx.load(str(path))
    for out in proto.graph.output:
        dims = out.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        if out.name in ("alpha", "weight") and len(dims) == 2:
            dims[1].dim_param = "time"
    onnx.checker.check_model(proto)
    with replacing(path) as tmp:
        onnx.save(proto, str(tmp))


def export_head(name: str, head: torch.nn.Module, path: Path) -> None:
    """One head of the registry -> its ONNX graph: features (B, T, D) -> probs (B, K), alpha (B, T), weight (B, T),
    batch and window length dynamic."""
    head.eval()
    _export_graph(HeadExportWrapper(head).eval(), torch.rand(2, 5, head.dim), path, "features",
                  ["probs", "alpha", "weight"], {0: "batch", 1: "time"}, torchscript=head_spec(name).torchscript_export)
    _dynamic_head_outputs(path)


def export_model(embedder: ResNet18Embedder, heads: dict[str, torch.nn.Module], out_dir: Path, name: str,
                 preprocess: Preprocess, window_length: int, window_stride: int = 1,
                 default_head: str = "relation", extra: dict | None = None) -> Path:
    """Write the embedder graph, one head graph per head (models.networks.heads names) and a card beside each. Returns the
    embedder card.

    `extra` (training data, metrics, command, created, hardware, random_init, ...) is merged into the card's top level;
    it may not override the keys the app reads.
    """
    out_dir = Path(out_dir)
    extra = dict(extra or {})
    if not heads:
        raise ValueError("export needs at least one head")
    if set(heads) - set(HEAD_TYPES):
        raise ValueError(f"unknown head types {sorted(set(heads) - set(HEAD_TYPES))} (known: {', '.join(HEAD_TYPES)})")
    if default_head not in heads:
        raise ValueError(f"default head {default_head!r} is not among the heads {sorted(heads)}")
    if embedder.conv1.in_channels != preprocess.channels:
        raise ValueError(f"embedder takes {embedder.conv1.in_channels} channel(s) but preprocess is "
                         f"{preprocess.color!r} ({preprocess.channels})")
    dim = embedder.embed_dim
    for att, head in heads.items():
        if why := _head_mismatch(att, head, dim):
            raise ValueError(why)
    if window_length < 1 or window_stride < 1:
        raise ValueError("window length and stride must be >= 1")
    if clash := _CORE_KEYS & set(extra):
        raise ValueError(f"extra card fields may not override {sorted(clash)}")
    extra.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    extra = json.loads(json.dumps(extra, default=str))  # cards are plain JSON

    out_dir.mkdir(parents=True, exist_ok=True)
    embedder_file, head_files = model_files(name, heads)
    embedder.eval()
    s, c = preprocess.input_size, preprocess.channels
    _export_graph(EmbedderExportWrapper(embedder).eval(), torch.randn(2, c, s, s), out_dir / embedder_file,
                  "crops", ["features"], {0: "batch"})
    for att, head in heads.items():
        head.eval()
        export_head(att, head, out_dir / head_files[att])

    files = [embedder_file, *head_files.values()]
    content = {
        "name": name, "labels": list(EMOTIONS), "preprocess": preprocess.to_dict(),
        "files": {"embedder": embedder_file, "heads": head_files}, "head": default_head,
        "window": {"length": int(window_length), "stride": int(window_stride)}, "embed_dim": dim,
        "sha256": {f: file_sha256(out_dir / f) for f in files}, "opset": OPSET,
        "exporter": f"torch {torch.__version__} torch.onnx.export(dynamo=True; fusion/GRU/transformer heads "
                    f"dynamo=False); "
                    f"onnx {onnx.__version__}",
        # inside the embedder graph, so the app does nothing for it; recorded so a reader knows the cost and gain
        "embedder_flip_average": bool(getattr(embedder, "flip_average", False)),
        "head_parameters": {att: parameter_count(head) for att, head in heads.items()},
        **extra,
    }
    return write_model_cards(out_dir, content)


def verify_parity(embedder: ResNet18Embedder, heads: dict[str, torch.nn.Module], card_path: Path,
                  atol: float = 1e-4) -> dict[str, float]:
    """Torch vs ONNX Runtime (CPU) on the same seeded random inputs: embedder at B=1 and B=3, each head at
    T=1, 5 and 16 (B=2). Returns the max abs difference per check; raises ModelError when one exceeds atol."""
    import onnxruntime as ort

    card = load_card(card_path)
    rng = np.random.default_rng(0)
    s, c, dim = card.preprocess.input_size, card.preprocess.channels, card.embed_dim

    def session(path: Path):
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    diffs: dict[str, float] = {}
    emb = session(card.embedder_file)
    embedder.eval()
    for b in (1, 3):
        x = rng.standard_normal((b, c, s, s), dtype=np.float32)
        with torch.no_grad():
            want = embedder.forward_features(torch.from_numpy(x)).numpy()
        got = emb.run(["features"], {"crops": x})[0]
        diffs[f"embedder_B{b}"] = float(np.abs(got - want).max())
    for att, head in heads.items():
        sess = session(card.head_file(att))
        wrapper = HeadExportWrapper(head.eval()).eval()
        for t in (1, 5, 16):
            x = rng.uniform(0, 2, (2, t, dim)).astype(np.float32)  # post-ReLU features are >= 0
            with torch.no_grad():
                want = [w.numpy() for w in wrapper(torch.from_numpy(x))]
            got = sess.run(["probs", "alpha", "weight"], {"features": x})
            diffs[f"head_{att}_T{t}"] = float(max(np.abs(g - w).max() for g, w in zip(got, want)))
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    if bad:
        raise ModelError(f"ONNX Runtime differs from torch by more than {atol:g}: "
                         + ", ".join(f"{k} {v:.2e}" for k, v in bad.items()))
    return diffs


# ----------------------------------------------------------------------------------------------- tests only
def random_model(input_size: int = 64, color: str = "gray", seed: int = 0, heads: tuple[str, ...] = ATTENTION_TYPES
                 ) -> tuple[ResNet18Embedder, dict[str, torch.nn.Module], Preprocess]:
    """A seeded random-init embedder and its heads (FAN's two by default; any of HEAD_TYPES). FOR TESTS ONLY: random
    weights are never a model.

    BatchNorm statistics and affine weights are randomised too (the default init makes every residual block an
    identity and every BN a no-op, which would leave most of the graph untested by a parity check), and the heads'
    attention weights are scaled so alpha and beta stay well inside (0, 1) on these features."""
    pre = Preprocess(input_size=input_size, color=color)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    embedder = ResNet18Embedder(in_chans=pre.channels)
    with torch.no_grad():
        for m in embedder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.25)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    names, heads = heads, {}
    for att in names:
        if att in ATTENTION_TYPES:
            head = FanHead(att, dim=embedder.embed_dim)
            with torch.no_grad():
                for lin in (head.alpha, head.beta):
                    if lin is not None:
                        lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.1)
                        lin.bias.zero_()
        else:  # fusion is the frame classifier; the temporal heads keep torch's seeded init
            head = build_head(att, embedder.embed_dim, len(EMOTIONS))
            if att == "fusion":
                init_from_frame_classifier(head, embedder.fc)
        heads[att] = head.eval()
    return embedder.eval(), heads, pre


def export_random_model(tmp_dir: Path, input_size: int = 64, color: str = "gray", window_length: int = WINDOW_LENGTH,
                        name: str = "random_test", seed: int = 0, heads: tuple[str, ...] = ATTENTION_TYPES) -> Path:
    """Export a seeded random-init model into tmp_dir and return its embedder card. FOR TESTS ONLY: the card says
    "random_init": true, so the app's default-model lookup skips it and it is never presented as a model."""
    embedder, heads, pre = random_model(input_size, color, seed, heads)
    return export_model(embedder, heads, Path(tmp_dir), name, pre, window_length,
                        extra={"random_init": True, "training": "none: random weights, for tests only"})


# ----------------------------------------------------------------------------------------------- CLI
def _json_field(value, default=None):
    """Checkpoint metadata is stored as JSON strings (weights_only checkpoints hold tensors, numbers, strings)."""
    if value is None:
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_checkpoint(path: Path) -> tuple[ResNet18Embedder, dict[str, FanHead], Preprocess, dict]:
    """A trainer checkpoint {"embedder": state_dict, "heads": {att: state_dict}, "config": ..., "preprocess": ...}
    -> (embedder, heads, preprocess, metadata for the card)."""
    from models.engine.checkpoints import CheckpointError, load_checkpoint as read_checkpoint

    try:  # missing, truncated or foreign files: the trainers' one-line messages
        ck = read_checkpoint(path)
    except CheckpointError as e:
        raise ModelError(str(e)) from None
    if not ck.get("heads"):
        raise ModelError(f"{path} has no FAN heads: train them first (python -m models.train clips --embedder "
                         f"{path} ...) and export the resulting model.pt")
    config = _json_field(ck.get("config"), {}) or {}
    try:  # the preprocessing the embedder was trained with; never guessed
        pre = Preprocess.from_dict(_json_field(ck["preprocess"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{path} has no usable preprocess metadata ({type(e).__name__}: {e})") from None
    from models.networks.faer import build_embedder  # a plain ResNet18, or FAER's CC / SE variant (ck["embedder_arch"])

    embedder = build_embedder(pre.channels, len(EMOTIONS), **(_json_field(ck.get("embedder_arch"), {}) or {}))
    embedder.load_state_dict(ck["embedder"])
    heads = {}
    for att, state in ck["heads"].items():
        if att not in HEAD_TYPES:
            raise ModelError(f"{path} has a head {att!r} this version cannot export (known: {', '.join(HEAD_TYPES)})")
        head = build_head(att, embedder.embed_dim, len(EMOTIONS))
        head.load_state_dict(state)
        heads[att] = head.eval()
    meta = {"training": {"checkpoint": str(path), "config": config}}
    for key in ("frames_config", "embedder_checkpoint", "epoch"):
        if key in ck:
            meta["training"][key] = _json_field(ck[key])
    metrics = {k: _json_field(ck[k]) for k in ("results", "metrics", "frames_metrics") if k in ck}
    if metrics:
        meta["metrics"] = metrics
    if ck.get("hardware"):
        meta["hardware"] = _json_field(ck["hardware"])
    return embedder.eval(), heads, pre, meta


def add_heads(card_path: Path, heads: dict[str, torch.nn.Module], fields: dict | None = None) -> Path:
    """Add head graphs to an exported model without touching its other files: each head is exported beside the
    card as <name>_head_<head>.onnx, and every card of the model (old and new) lists all heads with their SHA-256,
    parameter counts and `fields` merged in. Heads the model already has are replaced. Returns the embedder card.
    This is how the ABAW2021 heads join a released model whose embedder must stay byte-identical."""
    card = load_card(card_path)
    for att, head in heads.items():
        if att not in HEAD_TYPES:
            raise ValueError(f"unknown head type {att!r} (known: {', '.join(HEAD_TYPES)})")
        if why := _head_mismatch(att, head, card.embed_dim):
            raise ValueError(why)
    content = json.loads(card.embedder_file.with_suffix(".json").read_text())
    content.pop("format", None)
    _, new_files = model_files(card.name, heads)
    for att, head in heads.items():
        export_head(att, head, card.path.parent / new_files[att])
    head_files = {**content["files"]["heads"], **new_files}
    content["files"]["heads"] = head_files
    files = content_files(content)
    content["sha256"] = {f: file_sha256(card.path.parent / f) for f in files}
    content["head_parameters"] = {**content.get("head_parameters", {}),
                                  **{att: parameter_count(h) for att, h in heads.items()}}
    content["exporter"] = (f"{content.get('exporter', '')}; heads {', '.join(heads)} added with torch "
                           f"{torch.__version__} (dynamo=False), onnx {onnx.__version__}").lstrip("; ")
    for key, value in (fields or {}).items():
        if key in _CORE_KEYS:
            raise ValueError(f"fields may not override {key!r}")
        content[key] = {**content[key], **value} if isinstance(value, dict) and isinstance(content.get(key), dict) \
            else value
    return write_model_cards(card.path.parent, content)


def update_cards(card_path: Path, fields: dict) -> list[Path]:
    """Merge top-level fields (e.g. measured metrics) into every card of a model, atomically. The ONNX files and
    their hashes are untouched, so this is how numbers measured on the exported graphs get into the card."""
    from app.recognition.card import load_card

    card = load_card(card_path)
    paths = card_files(card)
    written = []
    for onnx_path in paths:
        cpath = onnx_path.with_suffix(".json")
        content = json.loads(cpath.read_text())
        content.pop("format", None)
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(content.get(key), dict):
                content[key] = {**content[key], **value}
            else:
                content[key] = value
        write_card(cpath, content)
        written.append(cpath)
    return written


@dataclass
class ExportOptions:
    """What `python -m models.release.export` exports; each field is the option of the same name."""
    name: str = ""                        # file stem, e.g. fan_r18_ferplus
    checkpoint: Path | None = None        # trainer checkpoint with 'embedder' and 'heads'
    random_init: bool = False             # TESTS ONLY: seeded random weights, marked as such (instead of a checkpoint)
    out: Path = Path("weights")
    window_length: int = WINDOW_LENGTH    # frames in the live FAN window
    stride: int = 1                       # run the head every N frames live
    head: str | None = None               # the card's default head (None: relation when exported, else the first)
    heads: list[str] | None = None        # export only these heads (None: all; random_init: relation and self)
    input_size: int = 64                  # random_init only
    color: str = "gray"                   # random_init only
    verify: bool = True                   # check torch against ONNX Runtime on seeded inputs (verify_parity)
    flip_average: bool = True             # embed the mean of the face and its mirror image (~1.6x the embedding time)

    def command(self) -> str:
        """The command line that exports the same model."""
        return command_line("python -m models.release.export", self)


@dataclass
class ExportResult:
    card: Path                            # the embedder card (models.release.export.export_model)
    heads: tuple[str, ...]                # the heads exported, each with its graph and card
    parity: dict[str, float] | None       # verify_parity's max abs differences (None: not verified)

    def report(self) -> str:
        """What the command prints."""
        lines = [f"wrote {self.card} (+ {len(self.heads)} head(s))"]
        if self.parity is not None:
            lines.append("parity torch vs ONNX Runtime, max abs diff: "
                         + ", ".join(f"{k} {v:.1e}" for k, v in self.parity.items()))
        return "\n".join(lines)


EXPORT_ERRORS = (ModelError, ValueError, RuntimeError)  # what export_checkpoint raises for bad input: one line each


def export_checkpoint(opts: ExportOptions, command: str | None = None, fields: dict | None = None) -> ExportResult:
    """A trainer checkpoint (or, for tests, random weights) -> the model's graphs and cards in opts.out, verified
    unless opts.verify is off. The card records `command` (default: opts.command()) and `fields` (a dict merged into
    the checkpoint's dict of the same key, such as "training"). Raises EXPORT_ERRORS."""
    if not opts.name:
        raise ValueError("an export needs a name (the file stem)")
    if opts.random_init:
        embedder, heads, pre = random_model(opts.input_size, opts.color, heads=tuple(opts.heads or ATTENTION_TYPES))
        extra = {"random_init": True, "training": "none: random weights, for tests only"}
    else:
        if opts.checkpoint is None:
            raise ValueError("an export needs a checkpoint (or random_init, for tests)")
        embedder, heads, pre, extra = load_checkpoint(Path(opts.checkpoint))
        if opts.heads:
            missing = set(opts.heads) - set(heads)
            if missing:
                raise ModelError(f"{opts.checkpoint} has no {', '.join(sorted(missing))} head(s) "
                                 f"(it has: {', '.join(heads)})")
            heads = {h: heads[h] for h in opts.heads}
    embedder.flip_average = opts.flip_average
    for key, value in (fields or {}).items():
        extra[key] = {**extra[key], **value} if isinstance(value, dict) and isinstance(extra.get(key), dict) else value
    extra["command"] = command or opts.command()
    extra.setdefault("hardware", {})
    if isinstance(extra["hardware"], dict):
        extra["hardware"] = {**extra["hardware"], "export_host": platform.platform()}
    default_head = opts.head or ("relation" if "relation" in heads else next(iter(heads)))
    card = export_model(embedder, heads, opts.out, opts.name, pre, opts.window_length, opts.stride, default_head,
                        extra)
    parity = verify_parity(embedder, heads, card) if opts.verify else None
    return ExportResult(card, tuple(heads), parity)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.release.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="trainer checkpoint with 'embedder' and 'heads'")
    src.add_argument("--random-init", action="store_true", help="TESTS ONLY: seeded random weights, marked as such")
    p.add_argument("--out", type=Path, default=ExportOptions.out)
    p.add_argument("--name", required=True, help="file stem, e.g. fan_r18_ferplus")
    p.add_argument("--window-length", type=int, default=ExportOptions.window_length,
                   help=f"frames in the live FAN window (default {ExportOptions.window_length})")
    p.add_argument("--stride", type=int, default=ExportOptions.stride,
                   help=f"run the head every N frames live (default {ExportOptions.stride})")
    add_head_args(p, HEAD_TYPES, "default head of the card (default: relation when exported, else the first)")
    p.add_argument("--heads", nargs="+", choices=HEAD_TYPES, default=None,
                   help="export only these heads of the checkpoint (default: all; --random-init: relation self)")
    p.add_argument("--input-size", type=int, default=ExportOptions.input_size, help="--random-init only")
    p.add_argument("--color", choices=("gray", "rgb"), default=ExportOptions.color, help="--random-init only")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the torch vs ONNX Runtime parity check")
    p.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=ExportOptions.flip_average,
                   help="embed the mean of the face and its mirror image (about 1.6x the embedding time)")
    args = parse_head_args(p, argv)
    command = "python -m models.release.export " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        result = export_checkpoint(config_from_args(ExportOptions, args), command)
    except EXPORT_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(result.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
