"""Face-identity teacher networks, rebuilt in torch from the offline TF.js copies in ../shared/models/face-id.

    from models.networks.teachers import load_teacher
    teacher = load_teacher("dlib")            # or "hse"; models_dir: $FANLIVE_MODELS, else ../shared/models
    pre = teacher.preprocess                  # align with this (models.data.facecache) so crops are RGB at its size
    emb = teacher.embed(aligned.crops)        # uint8 (N, S, S, 3) RGB -> float32 (N, D), rows L2-normalised

Contract:
- Inputs to `embed` are aligned uint8 crops in RGB order, as `AlignedSet.crops` holds them for a
  Preprocess(color="rgb") (app.faces.align.convert_color returns RGB). Gray crops (N, S, S) or (N, S, S, 1) are
  replicated to three channels; pass color="bgr" for OpenCV-ordered crops. Crops of another size are resized to
  the teacher's input size (INTER_AREA down, INTER_LINEAR up). Each teacher applies its own normalisation; the
  Preprocess mean/std of the crop set are not used.
- "dlib": dlib's face-recognition ResNet-29 (face-api.js faceRecognitionNet), uint8-quantised weights
  (value = min + scale * q), 150 px input, RGB minus the per-channel means (122.782, 117.001, 104.298), / 256;
  128-d output of the final fc.
- "hse": HSE's MobileNet-v1 trained on VGGFace2 (a TF.js graph model), 224 px input, 1024-d output of
  `global_pooling/Mean`. The torch module is built from the graph's own nodes (TF "SAME" padding, asymmetric at
  stride 2); see HSE_INPUT for its input normalisation.
- Every file is checked against SHA256SUMS at load; a missing or different file raises TeacherError (one line).
  Nothing is ever downloaded.
- Checked against the TF.js originals (tfjs 4.22, CPU backend; tests/models/networks/teacher_parity.json): the dlib
  network matches @vladmandic/face-api 1.7.15's faceRecognitionNet to 4e-6 when fed that build's input (it divides by
  255 where dlib and face-api.js divide by 256; we keep dlib's 256), the HSE graph matches tfjs-converter to 7e-6.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from app.recognition.card import file_sha256
from app.paths import models_root
from app.faces.align import Preprocess


class TeacherError(ValueError):
    """A teacher's files are missing, altered or not what this module can read (one line for the user)."""


@dataclass(frozen=True)
class TeacherSpec:
    folder: str              # under the models root, as SHA256SUMS names it
    files: tuple[str, ...]   # the topology/manifest JSON first, then the weight file(s)
    input_size: int
    embed_dim: int


TEACHERS: dict[str, TeacherSpec] = {
    "dlib": TeacherSpec("face-id/dlib-resnet29", ("face_recognition_model-weights_manifest.json",
                                                  "face_recognition_model.bin"), 150, 128),
    "hse": TeacherSpec("face-id/hse-mobilenet-vggface2", ("faceres-deep.json", "faceres-deep.bin"), 224, 1024),
}

# dlib's input layer (input_rgb_image_sized<150>): RGB minus these means, divided by 256 (face-api.js normalize()).
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
# HSE's graph has no normalisation of its own. Two conventions exist for it: HSE_FaceRec_tf (the network's authors)
# feed BGR minus the Caffe/VGG means (103.939, 116.779, 123.68); @vladmandic/human, where this TF.js copy comes from,
# feeds raw RGB 0..255. Measured on CK+48 (75 subjects x 3 apex frames of different sequences, the app's alignment):
# nearest-neighbour identity 0.80 with "caffe_bgr" vs 0.70 with "raw_rgb" (same/different cosine 0.75/0.48 vs
# 0.71/0.45), so the authors' convention is the default.
HSE_INPUT = "caffe_bgr"
HSE_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


# ----------------------------------------------------------------------------------------------- files

def read_sha256sums(models_dir: Path) -> dict[str, str]:
    path = models_dir / "SHA256SUMS"
    if not path.is_file():
        raise TeacherError(f"{path}: checksum list not found (set FANLIVE_MODELS to the shared models folder)")
    sums = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def verified_files(spec: TeacherSpec, models_dir: Path) -> dict[Path, str]:
    """{path: sha256} of the spec's files, each present and matching SHA256SUMS, else TeacherError naming the
    first bad one."""
    sums = read_sha256sums(models_dir)
    out = {}
    for name in spec.files:
        rel = f"{spec.folder}/{name}"
        path = models_dir / rel
        if not path.is_file():
            raise TeacherError(f"{path}: teacher file missing (no downloads: copy it from the shared models folder)")
        if rel not in sums:
            raise TeacherError(f"{models_dir / 'SHA256SUMS'}: no checksum for {rel}")
        if file_sha256(path) != sums[rel]:
            raise TeacherError(f"{path}: sha256 differs from SHA256SUMS (damaged or another version)")
        out[path] = sums[rel]
    return out


def read_weights(manifest: list[dict], folder: Path) -> dict[str, np.ndarray]:
    """TF.js weights manifest (groups of {paths, weights}) -> {name: float32/int32 array in TF layout}.

    Quantised entries (uint8/uint16 with `scale` and `min`) are dequantised as min + scale * q; float32 and int32
    are read as stored (little-endian). The byte count must match the weight files exactly."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"], dtype=np.int64))
            q = w.get("quantization")
            if q:
                qdtype = {"uint8": np.uint8, "uint16": np.uint16}.get(q["dtype"])
                if qdtype is None or "scale" not in q or "min" not in q:
                    raise TeacherError(f"{w['name']}: unsupported quantisation {q}")
                raw = np.frombuffer(data, qdtype, n, offset)
                offset += raw.nbytes
                # in float64, then stored as float32, as TF.js decodes them (JS numbers are doubles)
                value = (float(q["min"]) + float(q["scale"]) * raw.astype(np.float64)).astype(np.float32)
            else:
                dtype = {"float32": "<f4", "int32": "<i4"}.get(w["dtype"])
                if dtype is None:
                    raise TeacherError(f"{w['name']}: unsupported dtype {w['dtype']}")
                value = np.frombuffer(data, dtype, n, offset).copy()
                offset += value.nbytes
            out[w["name"]] = value.reshape(w["shape"])
        if offset != len(data):
            raise TeacherError(f"{group['paths']}: {len(data)} bytes, the manifest describes {offset}")
    return out


def _conv_weight(w: np.ndarray) -> torch.Tensor:
    """TF conv filter [kh, kw, in, out] -> torch [out, in, kh, kw]."""
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def _depthwise_weight(w: np.ndarray) -> torch.Tensor:
    """TF depthwise filter [kh, kw, in, multiplier] -> torch [in * multiplier, 1, kh, kw] (groups = in)."""
    kh, kw, cin, mult = w.shape
    return torch.from_numpy(np.ascontiguousarray(w.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None]))


# ------------------------------------------------------------------------------------------ dlib ResNet-29

class ConvScale(nn.Module):
    """dlib's con + affine: conv (with bias) then a per-channel scale and shift; stride 1 "same" or stride 2
    "valid" padding, as face-api.js's convLayer."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, relu: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=(k // 2 if stride == 1 else 0), bias=True)
        self.scale_weight = nn.Parameter(torch.ones(cout))
        self.scale_bias = nn.Parameter(torch.zeros(cout))
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x) * self.scale_weight.view(1, -1, 1, 1) + self.scale_bias.view(1, -1, 1, 1)
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    """relu(x + conv2(conv1(x))), both 3x3 stride 1."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = ConvScale(ch, ch, 3, 1, relu=True)
        self.conv2 = ConvScale(ch, ch, 3, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(self.conv1(x)))


class ResidualDown(nn.Module):
    """Down-sampling residual: conv1 3x3 stride 2 "valid"; the shortcut is a 2x2 average pool ("valid") with the
    channels zero-padded to the output's; where the pooled map is larger (odd sizes), the conv branch gets zero rows
    and columns at its bottom and right, as face-api.js does."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = ConvScale(cin, cout, 3, 2, relu=True)
        self.conv2 = ConvScale(cout, cout, 3, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        pooled = F.avg_pool2d(x, 2, 2)
        if pooled.shape[1] != out.shape[1]:
            pooled = torch.cat([pooled, torch.zeros_like(pooled)], 1)
        dh, dw = pooled.shape[2] - out.shape[2], pooled.shape[3] - out.shape[3]
        if dh or dw:
            out = F.pad(out, (0, dw, 0, dh))
        return F.relu(out + pooled)


class DlibResNet29(nn.Module):
    """(B, 3, 150, 150) normalised RGB -> (B, 128). Sizes: 150 -> 72 (7x7/2) -> 35 (max 3/2) -> 17 -> 8 -> 4 -> 2."""

    LAYOUT = (("conv32", 32, 3), ("conv64", 64, 4), ("conv128", 128, 3), ("conv256", 256, 3))

    def __init__(self):
        super().__init__()
        self.conv32_down = ConvScale(3, 32, 7, 2, relu=True)
        cin = 32
        for prefix, ch, n in self.LAYOUT:
            if prefix != "conv32":
                setattr(self, f"{prefix}_down", ResidualDown(cin, ch))
                n -= 1
            for i in range(1, n + 1):
                setattr(self, f"{prefix}_{i}", Residual(ch))
            cin = ch
        self.conv256_down_out = ResidualDown(256, 256)
        self.fc = nn.Linear(256, 128, bias=False)

    def block_names(self) -> list[str]:
        """The residual blocks in forward order (face-api.js's names)."""
        names = []
        for prefix, _, n in self.LAYOUT:
            if prefix != "conv32":
                names.append(f"{prefix}_down")
                n -= 1
            names += [f"{prefix}_{i}" for i in range(1, n + 1)]
        return names + ["conv256_down_out"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.conv32_down(x), 3, 2)
        for name in self.block_names():
            x = getattr(self, name)(x)
        return self.fc(x.mean((2, 3)))

    def load_tfjs(self, weights: dict[str, np.ndarray]) -> None:
        """face-api.js tensor names -> this module's parameters; every tensor used, every parameter filled."""
        def conv(module: ConvScale, prefix: str):
            return {module.conv.weight: _conv_weight(weights[f"{prefix}/conv/filters"]),
                    module.conv.bias: torch.from_numpy(weights[f"{prefix}/conv/bias"]),
                    module.scale_weight: torch.from_numpy(weights[f"{prefix}/scale/weights"]),
                    module.scale_bias: torch.from_numpy(weights[f"{prefix}/scale/biases"])}

        try:
            pairs = conv(self.conv32_down, "conv32_down")
            for name in self.block_names():
                block = getattr(self, name)
                pairs |= conv(block.conv1, f"{name}/conv1") | conv(block.conv2, f"{name}/conv2")
            pairs[self.fc.weight] = torch.from_numpy(np.ascontiguousarray(weights["fc"].T))
        except KeyError as e:
            raise TeacherError(f"dlib weights lack tensor {e.args[0]}") from None
        used = 4 * (1 + 2 * len(self.block_names())) + 1
        if used != len(weights) or len(pairs) != len(list(self.parameters())):
            raise TeacherError(f"dlib weights hold {len(weights)} tensors, the network uses {used}")
        with torch.no_grad():
            for param, value in pairs.items():
                if tuple(param.shape) != tuple(value.shape):
                    raise TeacherError(f"dlib tensor shape {tuple(value.shape)} does not fit {tuple(param.shape)}")
                param.copy_(value)


# ----------------------------------------------------------------------------------- TF graph -> torch

def same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF "SAME": output ceil(size / stride); the total padding is split with the odd pixel at the end (bottom or
    right), so a 3x3 stride-2 conv on 224 pads (0, 1), not PyTorch's symmetric (1, 1)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class TFConv(nn.Module):
    """Conv2D / DepthwiseConv2dNative with TF padding ("SAME" computed per input size, or "VALID") and a bias that
    absorbs the graph's folded batch norm (Mul, Add by per-channel constants)."""

    def __init__(self, weight: torch.Tensor, stride: int, padding: str, groups: int):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(weight.shape[0]))
        self.stride, self.padding, self.groups = stride, padding, groups

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, stride={self.stride}, padding={self.padding}, groups={self.groups}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "SAME":
            kh, kw = self.weight.shape[2:]
            top, bottom = same_padding(x.shape[2], kh, self.stride)
            left, right = same_padding(x.shape[3], kw, self.stride)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


class Clamp(nn.Module):
    """Relu, Minimum and Maximum by scalar constants folded into one clamp (Relu + Minimum(6) = ReLU6)."""

    def __init__(self, lo: float = 0.0, hi: float = math.inf):
        super().__init__()
        self.lo, self.hi = lo, hi

    def extra_repr(self) -> str:
        return f"lo={self.lo:g}, hi={self.hi:g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.lo, None if math.isinf(self.hi) else self.hi)


class SpatialMean(nn.Module):
    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims)


_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def _attr_str(node: dict, key: str) -> str:
    return base64.b64decode(node["attr"][key]["s"]).decode()


def graph_to_sequential(graph: dict, weights: dict[str, np.ndarray], output: str) -> nn.Sequential:
    """The chain of ops from the graph's input to `output` as an nn.Sequential on NCHW tensors.

    Handles what a converted Keras MobileNet holds: Conv2D and DepthwiseConv2dNative (NHWC, dilation 1), Mul/Add by
    per-channel constants right after a convolution (folded into its weight and bias), Relu and Minimum/Maximum by
    scalar constants (folded into one clamp), and Mean over spatial axes. Any other op, or a branch, raises
    TeacherError rather than being guessed at."""
    nodes = {n["name"]: n for n in graph["modelTopology"]["node"]}
    if output not in nodes:
        raise TeacherError(f"graph has no node {output!r}")

    def const(name: str) -> np.ndarray | None:
        name = name.split(":")[0]
        return weights.get(name) if nodes.get(name, {}).get("op") == "Const" else None

    chain, name = [], output
    while nodes[name]["op"] != "Placeholder":
        node = nodes[name]
        data = [i for i in node.get("input", []) if const(i) is None and not i.startswith("^")]
        if len(data) != 1:
            raise TeacherError(f"graph node {name} ({node['op']}) is not a single chain link: inputs {data}")
        chain.append(node)
        name = data[0].split(":")[0]
    chain.reverse()

    layers: list[nn.Module] = []
    for node in chain:
        op, consts = node["op"], [const(i) for i in node["input"] if const(i) is not None]
        last = layers[-1] if layers else None
        if op in ("Conv2D", "DepthwiseConv2dNative"):
            if _attr_str(node, "data_format") != "NHWC":
                raise TeacherError(f"{node['name']}: only NHWC graphs are supported")
            strides = [int(s) for s in node["attr"]["strides"]["list"]["i"]]
            dil = [int(s) for s in node["attr"].get("dilations", {}).get("list", {}).get("i", ["1"] * 4)]
            if strides[1] != strides[2] or any(d != 1 for d in dil):
                raise TeacherError(f"{node['name']}: unsupported strides {strides} / dilations {dil}")
            padding = _attr_str(node, "padding")
            if padding not in ("SAME", "VALID"):
                raise TeacherError(f"{node['name']}: unsupported padding {padding}")
            w = consts[0]
            if op == "Conv2D":
                layers.append(TFConv(_conv_weight(w), strides[1], padding, groups=1))
            else:
                layers.append(TFConv(_depthwise_weight(w), strides[1], padding, groups=w.shape[2]))
        elif op in ("Mul", "Add", "BiasAdd") and isinstance(last, TFConv) and consts and consts[0].ndim == 1:
            v = torch.from_numpy(consts[0].astype(np.float32))
            with torch.no_grad():
                if op == "Mul":
                    last.weight.mul_(v.view(-1, 1, 1, 1))
                    last.bias.mul_(v)
                else:
                    last.bias.add_(v)
        elif op in ("Relu", "Relu6"):
            layers.append(Clamp(0.0, 6.0 if op == "Relu6" else math.inf))
        elif op in ("Minimum", "Maximum") and isinstance(last, Clamp) and consts and consts[0].size == 1:
            c = float(consts[0].reshape(()))
            if op == "Minimum":
                last.lo, last.hi = min(last.lo, c), min(last.hi, c)
            else:
                last.lo, last.hi = max(last.lo, c), max(last.hi, c)
        elif op == "Mean" and consts:
            if node["attr"].get("keep_dims", {}).get("b", False):
                raise TeacherError(f"{node['name']}: Mean with keep_dims is not supported")
            axes = tuple(sorted(_NHWC_TO_NCHW[int(a) % 4] for a in np.atleast_1d(consts[0])))
            if axes != (2, 3):
                raise TeacherError(f"{node['name']}: Mean over axes {axes} is not a spatial pooling")
            layers.append(SpatialMean(axes))
        else:
            raise TeacherError(f"graph node {node['name']}: op {op} is not supported here")
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------- teacher

class Teacher(nn.Module):
    """A frozen identity network with its own input convention. forward: (B, 3, S, S) float RGB 0..255 -> (B, D)
    raw features; embed: uint8 crops -> L2-normalised numpy features."""

    def __init__(self, name: str, net: nn.Module, input_size: int, embed_dim: int, input_norm: str,
                 weights_sha256: str):
        super().__init__()
        self.name, self.net = name, net
        self.input_size, self.embed_dim = input_size, embed_dim
        self.input_norm = input_norm          # "dlib", "caffe_bgr" or "raw_rgb"
        self.weights_sha256 = weights_sha256  # of the weight file: part of every feature cache key
        self.requires_grad_(False)
        self.eval()

    @property
    def preprocess(self) -> Preprocess:
        """How to align crops for this teacher (app alignment, RGB at its input size; mean/std are not used)."""
        return Preprocess(input_size=self.input_size, color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB 0..255 -> the network's input."""
        if self.input_norm == "dlib":
            return (x - x.new_tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1)) / 256.0
        if self.input_norm == "caffe_bgr":
            return x.flip(1) - x.new_tensor(HSE_CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        if self.input_norm == "raw_rgb":
            return x
        raise ValueError(f"unknown input normalisation {self.input_norm!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(x))

    def to_rgb_batch(self, crops: np.ndarray, color: str = "rgb") -> np.ndarray:
        """uint8 crops (N, S, S, 3|1) or (N, S, S) -> uint8 (N, input_size, input_size, 3) RGB."""
        crops = np.asarray(crops)
        if crops.dtype != np.uint8:
            raise ValueError(f"crops must be uint8, not {crops.dtype}")
        if crops.ndim == 3:
            crops = crops[..., None]
        if crops.ndim != 4 or crops.shape[-1] not in (1, 3) or crops.shape[1] != crops.shape[2]:
            raise ValueError(f"crops must be (N, S, S, 3), (N, S, S, 1) or (N, S, S), got {crops.shape}")
        if color not in ("rgb", "bgr"):
            raise ValueError(f"color must be 'rgb' or 'bgr', not {color!r}")
        if crops.shape[-1] == 1:
            crops = np.repeat(crops, 3, axis=-1)
        elif color == "bgr":
            crops = crops[..., ::-1]
        s = self.input_size
        if crops.shape[1] != s:
            interp = cv2.INTER_AREA if crops.shape[1] > s else cv2.INTER_LINEAR
            crops = np.stack([cv2.resize(np.ascontiguousarray(c), (s, s), interpolation=interp) for c in crops])
        return np.ascontiguousarray(crops)

    @torch.no_grad()
    def embed(self, crops: np.ndarray, color: str = "rgb", batch_size: int = 32) -> np.ndarray:
        """Aligned uint8 crops (RGB unless color="bgr"; gray is replicated) -> float32 (N, D), unit rows."""
        rgb = self.to_rgb_batch(crops, color)
        device = next(self.parameters()).device
        out = np.zeros((len(rgb), self.embed_dim), np.float32)
        for i in range(0, len(rgb), batch_size):
            x = torch.from_numpy(rgb[i:i + batch_size]).to(device).permute(0, 3, 1, 2).float()
            out[i:i + batch_size] = F.normalize(self(x).float(), dim=1).cpu().numpy()
        return out


def _build_dlib(paths: list[Path]) -> nn.Module:
    manifest = json.loads(paths[0].read_text())
    net = DlibResNet29()
    net.load_tfjs(read_weights(manifest, paths[0].parent))
    return net


def _build_hse(paths: list[Path]) -> nn.Module:
    graph = json.loads(paths[0].read_text())
    weights = read_weights(graph["weightsManifest"], paths[0].parent)
    return graph_to_sequential(graph, weights, "global_pooling/Mean")


def load_teacher(name: str, models_dir: str | Path | None = None, hse_input: str = HSE_INPUT) -> Teacher:
    """A verified teacher, eval mode, gradients off, on the CPU. hse_input: "caffe_bgr" or "raw_rgb" (HSE only)."""
    if name not in TEACHERS:
        raise TeacherError(f"unknown teacher {name!r}; choose from {', '.join(TEACHERS)}")
    norm = "dlib" if name == "dlib" else hse_input
    if norm not in ("dlib", "caffe_bgr", "raw_rgb"):
        raise TeacherError(f"unknown HSE input normalisation {hse_input!r}; use caffe_bgr or raw_rgb")
    spec = TEACHERS[name]
    models_dir = Path(models_dir).expanduser() if models_dir is not None else models_root()
    files = verified_files(spec, models_dir)
    paths = list(files)
    try:
        net = _build_dlib(paths) if name == "dlib" else _build_hse(paths)
    except TeacherError:
        raise
    except (KeyError, ValueError) as e:  # a JSON or manifest that is not what the spec says
        raise TeacherError(f"{paths[0]}: cannot build the {name} teacher ({type(e).__name__}: {e})") from None
    return Teacher(name, net, spec.input_size, spec.embed_dim, norm, files[paths[-1]])
