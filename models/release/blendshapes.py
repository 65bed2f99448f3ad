"""Convert MediaPipe's blendshape network (face_blendshapes.tflite inside face_landmarker.task) into ONNX, once.

The app runs this network on the face-mesh landmarks it already has (app.signals.blendshapes), with ONNX Runtime: there is
no TFLite interpreter among the app's dependencies, and MediaPipe's own FaceLandmarker task (which runs this network
internally) costs ~5x the legacy face mesh on a small CPU.

The network is small (182 TFLite ops: an MLP-mixer over 146 landmarks): 1x1 convolutions, layer norms spelled out
as MEAN/SQUARED_DIFFERENCE/RSQRT, transposes, one concatenated token and a sigmoid, with float16 weights behind
DEQUANTIZE ops. Each op maps to one or two ONNX ops; every weight is dequantised to float32 here (exactly: float16 ->
float32 is lossless). An op this converter does not know fails loudly rather than guessing.

    python -m models.release.blendshapes --task ../shared/models/mediapipe/face_landmarker.task \
        --out weights/face_blendshapes.onnx

writes the ONNX graph (input `points` (1, 146, 2) float32 in pixels, output `scores` (52,) float32 in [0, 1]) and
`weights/face_blendshapes.json` (source file, sha256s, licence, landmark subset, names), and
`weights/face_geometry.json`: the canonical face model's 33 rigid landmarks in 3D, which app.signals.pose fits. Parity with MediaPipe's own
task output is checked by tests/app/signals/test_blendshapes.py.

Needs the pinned `tflite` package (a flatbuffer schema reader, pure Python) only for this offline conversion.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

TFLITE_NAME = "face_blendshapes.tflite"
GEOMETRY_NAME = "geometry_pipeline_metadata_landmarks.binarypb"
LICENCE = "Apache-2.0 (MediaPipe, Google LLC); extracted and converted by models/release/blendshapes.py"

# Tensor types of the TFLite schema used by this network.
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
_ACT = {0: None, 1: "Relu", 3: "Relu6"}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_tflite(task: Path) -> bytes:
    with zipfile.ZipFile(task) as z:
        return z.read(TFLITE_NAME)


def _layer_norm(window, consts, consumers, shape):
    """(x, gamma, eps, y) when `window` is TFLite's spelled-out layer norm without a bias over the last axis:
    m = mean(x); n = -m; v = mean((x - m)^2); s = rsqrt(v + eps) * gamma; y = x*s + n*s. None otherwise."""
    kinds = ("MEAN", "NEG", "SQUARED_DIFFERENCE", "MEAN", "ADD", "RSQRT", "MUL", "MUL", "MUL", "ADD")
    if len(window) < 10 or tuple(w[1] for w in window) != kinds:
        return None
    (_, _, (x, ax1), m, _), (_, _, (m2,), n, _), (_, _, (x2, m3), sd, _), (_, _, (sd2, ax2), v, _), \
        (_, _, (v2, e), ve, _), (_, _, (ve2,), r, _), (_, _, (r2, gm), sc, _), (_, _, (x3, sc2), a, _), \
        (_, _, (n2, sc3), b, _), (_, _, (a2, b2), y, _) = window
    last = len(shape(x)) - 1
    axes_ok = all(int(np.atleast_1d(consts.get(ax, np.array([99])))[0]) in (-1, last) for ax in (ax1, ax2))
    links = (m2 == m and x2 == x and m3 == m and sd2 == sd and v2 == v and ve2 == ve and r2 == r and x3 == x
             and sc2 == sc and n2 == n and sc3 == sc and {a2, b2} == {a, b})
    if not (axes_ok and links and e in consts and gm in consts):
        return None
    inner = {m: 2, n: 1, sd: 1, v: 1, ve: 1, r: 1, sc: 2, a: 1, b: 1}
    if any(consumers.get(t, 0) != c for t, c in inner.items()):
        return None   # an intermediate is read elsewhere: keep the ops as they are
    gamma = np.asarray(consts[gm], np.float32).reshape(-1)
    if gamma.shape != (shape(x)[-1],):
        return None
    return x, gamma, float(np.asarray(consts[e]).reshape(-1)[0]), y


def convert(tflite_bytes: bytes):
    """The TFLite flatbuffer -> an onnx.ModelProto (opset 17)."""
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper

    model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError("expected one subgraph")
    g = model.Subgraphs(0)
    opnames = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def shape(i: int) -> list[int]:
        s = g.Tensors(i).ShapeAsNumpy()
        return [] if isinstance(s, int) else [int(v) for v in s]

    def const(i: int) -> np.ndarray | None:
        t = g.Tensors(i)
        b = model.Buffers(t.Buffer())
        if b.DataLength() == 0:
            return None
        return np.frombuffer(b.DataAsNumpy().tobytes(), _DTYPES[t.Type()]).reshape(shape(i))

    consts: dict[int, np.ndarray] = {}     # tensor index -> value known at conversion time (weights, folded)
    nodes, inits = [], []
    names: dict[int, str] = {}

    def name(i: int) -> str:
        if i not in names:
            names[i] = f"t{i}"
            if i in consts:
                v = consts[i]
                v = v.astype(np.float32) if v.dtype == np.float16 else v
                inits.append(numpy_helper.from_array(v, names[i]))
        return names[i]

    def new_const(tag: str, value: np.ndarray) -> str:
        n = f"c_{tag}_{len(inits)}"
        inits.append(numpy_helper.from_array(value, n))
        return n

    def options(op, cls):
        o = cls()
        table = op.BuiltinOptions()
        if table is None:
            return None
        o.Init(table.Bytes, table.Pos)
        return o

    for i in range(g.TensorsLength()):
        v = const(i)
        if v is not None:
            consts[i] = v

    graph_in = int(g.Inputs(0))
    graph_out = int(g.Outputs(0))
    names[graph_in] = "points"
    names[graph_out] = "scores"

    ops = []   # (index, kind, inputs, output, op) of every op left once the weights' DEQUANTIZE ops are folded
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = opnames[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(v) for v in op.InputsAsNumpy() if v >= 0]
        out = int(op.OutputsAsNumpy()[0])
        if kind == "DEQUANTIZE":
            if ins[0] not in consts:
                raise ValueError(f"op {k}: DEQUANTIZE of a non-constant tensor")
            consts[out] = consts[ins[0]].astype(np.float32)
        else:
            ops.append((k, kind, ins, out, op))
    consumers: dict[int, int] = {}
    for _, _, ins, _, _ in ops:
        for i in ins:
            consumers[i] = consumers.get(i, 0) + 1

    skip = 0
    for n, (k, kind, ins, out, op) in enumerate(ops):
        if skip:
            skip -= 1
            continue
        norm = _layer_norm(ops[n:n + 10], consts, consumers, shape)
        if norm is not None:  # ten ops spelling out a layer norm over the last axis -> one LayerNormalization
            x, gamma, eps, y = norm
            nodes.append(helper.make_node("LayerNormalization", [name(x), new_const("gamma", gamma),
                                                                 new_const("beta", np.zeros_like(gamma))],
                                          [name(y)], axis=-1, epsilon=eps))
            skip = 9
            continue
        act = 0
        if kind in ("ADD", "SUB", "MUL", "DIV"):
            cls = {"ADD": tflite.AddOptions, "SUB": tflite.SubOptions, "MUL": tflite.MulOptions,
                   "DIV": tflite.DivOptions}[kind]
            o = options(op, cls)
            act = o.FusedActivationFunction() if o is not None else 0
            onnx_op = {"ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div"}[kind]
            nodes.append(helper.make_node(onnx_op, [name(ins[0]), name(ins[1])], [f"pre{out}" if act else name(out)]))
        elif kind in ("MEAN", "SUM"):
            o = options(op, tflite.ReducerOptions)
            axes = [int(a) for a in np.atleast_1d(consts[ins[1]])]
            keep = int(o.KeepDims()) if o is not None else 0
            if kind == "MEAN":
                nodes.append(helper.make_node("ReduceMean", [name(ins[0])], [name(out)], axes=axes, keepdims=keep))
            else:
                ax = new_const("axes", np.array(axes, np.int64))
                nodes.append(helper.make_node("ReduceSum", [name(ins[0]), ax], [name(out)], keepdims=keep))
        elif kind in ("SQRT", "NEG", "LOGISTIC"):
            nodes.append(helper.make_node({"SQRT": "Sqrt", "NEG": "Neg", "LOGISTIC": "Sigmoid"}[kind],
                                          [name(ins[0])], [name(out)]))
        elif kind == "RSQRT":
            nodes.append(helper.make_node("Sqrt", [name(ins[0])], [f"sqrt{out}"]))
            nodes.append(helper.make_node("Reciprocal", [f"sqrt{out}"], [name(out)]))
        elif kind == "SQUARED_DIFFERENCE":
            nodes.append(helper.make_node("Sub", [name(ins[0]), name(ins[1])], [f"diff{out}"]))
            nodes.append(helper.make_node("Mul", [f"diff{out}", f"diff{out}"], [name(out)]))
        elif kind == "RESHAPE":
            target = np.array(shape(out), np.int64)
            nodes.append(helper.make_node("Reshape", [name(ins[0]), new_const("shape", target)], [name(out)]))
        elif kind == "TRANSPOSE":
            perm = [int(a) for a in consts[ins[1]]]
            nodes.append(helper.make_node("Transpose", [name(ins[0])], [name(out)], perm=perm))
        elif kind == "CONCATENATION":
            o = options(op, tflite.ConcatenationOptions)
            act = o.FusedActivationFunction()
            nodes.append(helper.make_node("Concat", [name(i) for i in ins], [f"pre{out}" if act else name(out)],
                                          axis=int(o.Axis())))
        elif kind == "STRIDED_SLICE":
            o = options(op, tflite.StridedSliceOptions)
            if o.EllipsisMask() or o.NewAxisMask():
                raise ValueError(f"op {k}: strided slice with ellipsis/new-axis masks not supported")
            dims = shape(ins[0])
            begin, end, step = (consts[i].astype(np.int64) for i in ins[1:4])
            starts, ends = [], []
            for ax, d in enumerate(dims):
                b = 0 if o.BeginMask() >> ax & 1 else int(begin[ax])
                e = d if o.EndMask() >> ax & 1 else int(end[ax])
                if o.ShrinkAxisMask() >> ax & 1:
                    e = b + 1
                starts.append(b)
                ends.append(e)
            sliced = f"slice{out}" if o.ShrinkAxisMask() else name(out)
            nodes.append(helper.make_node("Slice", [name(ins[0]), new_const("starts", np.array(starts, np.int64)),
                                                    new_const("ends", np.array(ends, np.int64)),
                                                    new_const("axes", np.arange(len(dims), dtype=np.int64)),
                                                    new_const("steps", step)], [sliced]))
            if o.ShrinkAxisMask():
                squeeze = [ax for ax in range(len(dims)) if o.ShrinkAxisMask() >> ax & 1]
                nodes.append(helper.make_node("Squeeze", [sliced, new_const("axes", np.array(squeeze, np.int64))],
                                              [name(out)]))
        elif kind == "CONV_2D":
            o = options(op, tflite.Conv2DOptions)
            w = consts[ins[1]]                       # (Cout, kh, kw, Cin), NHWC
            if w.shape[1:3] != (1, 1) or o.StrideH() != 1 or o.StrideW() != 1:
                raise ValueError(f"op {k}: only 1x1 stride-1 convolutions are supported, got {w.shape}")
            act = o.FusedActivationFunction()
            # a 1x1 conv over NHWC is a matmul over the channel (last) axis
            wt = new_const("w", np.ascontiguousarray(w[:, 0, 0, :].T.astype(np.float32)))  # (Cin, Cout)
            nodes.append(helper.make_node("MatMul", [name(ins[0]), wt], [f"mm{out}"]))
            bias = name(ins[2]) if len(ins) > 2 else new_const("b", np.zeros(w.shape[0], np.float32))
            nodes.append(helper.make_node("Add", [f"mm{out}", bias], [f"pre{out}" if act else name(out)]))
        else:
            raise ValueError(f"op {k}: {kind} is not supported by this converter")
        if act:
            if _ACT.get(act) is None:
                raise ValueError(f"op {k}: fused activation {act} not supported")
            nodes.append(helper.make_node(_ACT[act], [f"pre{out}"], [name(out)]))

    graph = helper.make_graph(
        nodes, "face_blendshapes",
        [helper.make_tensor_value_info("points", TensorProto.FLOAT, shape(graph_in))],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, shape(graph_out))], initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fanlive-blendshapes")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def write_geometry(task: Path, out: Path) -> None:
    """The canonical face model's rigid landmarks (MediaPipe's Procrustes basis: 33 points that move little with
    expression) with their 3D coordinates in cm, for app.signals.pose. Read from the task's geometry pipeline metadata."""
    from mediapipe.modules.face_geometry.protos import geometry_pipeline_metadata_pb2

    with zipfile.ZipFile(task) as z:
        raw = z.read(GEOMETRY_NAME)
    meta = geometry_pipeline_metadata_pb2.GeometryPipelineMetadata()
    meta.ParseFromString(raw)
    vertices = np.array(meta.canonical_mesh.vertex_buffer, np.float64).reshape(-1, 5)[:, :3]  # x, y, z, u, v
    ids = [int(b.landmark_id) for b in meta.procrustes_landmark_basis]
    doc = {"format": "fanlive-face-geometry", "version": 1,
           "source": {"file": f"{task.name}:{GEOMETRY_NAME}", "sha256": _sha256(raw)}, "licence": LICENCE,
           "units": "cm; x to the image's right, y up, z towards the camera, for a face looking into the camera",
           "landmark_ids": ids, "points": [[round(float(v), 6) for v in vertices[i]] for i in ids]}
    out.write_text(json.dumps(doc, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.release.blendshapes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", type=Path, required=True, help="MediaPipe's face_landmarker.task (a zip)")
    p.add_argument("--out", type=Path, default=Path("weights/face_blendshapes.onnx"))
    args = p.parse_args(argv)
    try:
        task_bytes = args.task.read_bytes()
        tfl = read_tflite(args.task)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        print(f"error: cannot read {TFLITE_NAME} from {args.task}: {e}", file=sys.stderr)
        return 1
    import onnx

    from app.durable import write_bytes
    from app.signals.blendshapes import BLENDSHAPE_NAMES, LANDMARK_SUBSET

    model = convert(tfl)
    data = model.SerializeToString()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(args.out, data)
    onnx.checker.check_model(str(args.out))
    card = {
        "format": "fanlive-blendshapes", "version": 1, "file": args.out.name, "sha256": _sha256(data),
        "source": {"file": f"{args.task.name}:{TFLITE_NAME}", "task_sha256": _sha256(task_bytes),
                   "tflite_sha256": _sha256(tfl)},
        "licence": LICENCE, "licence_file": "LICENSE-mediapipe",
        "input": "points (1, 146, 2) float32: the subset's landmarks in pixels (x, y) of the frame",
        "landmark_subset": list(LANDMARK_SUBSET), "names": list(BLENDSHAPE_NAMES),
        "command": "python -m models.release.blendshapes --task ../shared/models/mediapipe/face_landmarker.task "
                   f"--out {args.out}",
    }
    args.out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    geometry = args.out.parent / "face_geometry.json"
    write_geometry(args.task, geometry)
    print(f"wrote {geometry}")
    print(f"wrote {args.out} ({len(data) / 1e6:.2f} MB, sha256 {card['sha256'][:12]}) and "
          f"{args.out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
