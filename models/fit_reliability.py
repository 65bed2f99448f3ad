"""Fit and validate the reliability score (app.signals.reliability) on held-out labelled faces and on degraded clips.

    python -m models.fit_reliability --weights weights/fan_r18_multi_embedder.json --out weights/reliability.json

1. Features per face, through the app's own path (MediaPipe refined mesh in still mode, the card's alignment, the
   embedder and the FAN head over a window of one frame; head pose, sharpness and face size as app.signals measures
   them) on the two held-out labelled sets the shipped model never trained on: FER+ Valid and the project's RAF-DB
   val split (models.data.datasets.rafdb_split). Cached in cache/reliability_<model>.npz.
   The same images again, each degraded once (degrade_image: blur, shrink, dark + noise or JPEG, seeded), so that
   face size and sharpness vary within the data (the clean sets are all tight, sharp crops).
2. Each set is cut in two halves of its images by a fixed seed (an image's clean and degraded copies on the same
   side): the *fit* halves fit the score (and the temperature), the *test* halves only report. The target is "the
   top label is right".
3. Variants (each an L2-regularised logistic regression, monotone by sign constraints): the quality features only
   (alpha, size, pose, sharpness) and those plus the confidence. The shipped variant is chosen by 5-fold
   cross-validated AUROC on the fit halves, never on the test halves.
4. Synthetic degraded clips: the shared videos blurred, shrunk, darkened with noise and JPEG-crushed, run through the
   whole Pipeline; a row is "right" when its label equals the clean video's label for that frame. AUROC there too.
5. Calibration: ECE (15 bins) of the confidence before and after temperature scaling (T fitted on the fit halves by
   NLL), on the test halves.
Everything is written into the JSON beside the coefficients and printed as a table (docs/results.md keeps it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from app.durable import write_json
from app.recognition.card import temperature_scale
from app.signals.reliability import FEATURES, SIGNS, feature_vector, sharpness

FIT_SEED = 15
DEGRADATIONS = {  # name -> frame transform (BGR uint8 -> BGR uint8)
    "blur3": lambda im: cv2.GaussianBlur(im, (0, 0), 3),
    "blur6": lambda im: cv2.GaussianBlur(im, (0, 0), 6),
    "small25": lambda im: cv2.resize(im, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA),
    "dark_noise": lambda im: np.clip(im.astype(np.float32) * 0.3 + np.random.default_rng(0).normal(0, 12, im.shape),
                                     0, 255).astype(np.uint8),
    "jpeg8": lambda im: cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 8])[1], cv2.IMREAD_COLOR),
}


# ------------------------------------------------------------------------------------------------ metrics

def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random positive > that of a random negative), ties half."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(positive, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the bin-weighted |accuracy - mean confidence| over equal-width bins."""
    c = np.asarray(confidence, np.float64)
    y = np.asarray(correct, np.float64)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (c > lo) & (c <= hi)
        if m.any():
            total += m.mean() * abs(y[m].mean() - c[m].mean())
    return float(total)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """T minimising the NLL of softmax(log p / T) (a fine grid: one parameter, no optimiser needed)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 401))
    nll = [-np.log(temperature_scale(probs, t)[np.arange(len(labels)), labels] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def fit_logistic(x: np.ndarray, y: np.ndarray, use: list[bool], l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """Standardised features x (N, F), targets y (N,) in {0, 1}; only the `use` features; weights whose sign
    disagrees with app.signals.reliability.SIGNS are fixed at 0 and the rest refitted (monotone). -> (weights (F,), bias)."""
    use = list(use)
    signs = np.array([SIGNS[f] for f in FEATURES], np.float64)
    while True:
        idx = [i for i, u in enumerate(use) if u]
        a = np.concatenate([x[:, idx], np.ones((len(x), 1))], 1)
        w = np.zeros(a.shape[1])
        for _ in range(50):  # Newton-Raphson (IRLS) with a small ridge on the weights (not the bias)
            p = 1.0 / (1.0 + np.exp(-(a @ w)))
            g = a.T @ (p - y) / len(y)
            g[:-1] += l2 * w[:-1]
            h = (a * (p * (1 - p))[:, None]).T @ a / len(y)
            h[np.arange(len(idx)), np.arange(len(idx))] += l2
            step = np.linalg.solve(h + 1e-9 * np.eye(len(w)), g)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        weights = np.zeros(len(FEATURES))
        weights[idx] = w[:-1]
        wrong = [i for i in idx if weights[i] * signs[i] < 0]
        if not wrong:
            return weights, float(w[-1])
        for i in wrong:
            use[i] = False


# ------------------------------------------------------------------------------------------------ data

def degrade_image(image: np.ndarray, seed: int) -> np.ndarray:
    """One seeded random degradation of a still (what a webcam does to a face): blur, shrink, dark + noise or
    JPEG, at a random strength. The labelled sets are clean crops; these copies give the fit faces whose size and
    sharpness vary within an image, so those features can earn a weight."""
    rng = np.random.default_rng(seed)
    kind = int(rng.integers(4))
    if kind == 0:
        return cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.8, 3.0)))
    if kind == 1:
        f = float(rng.uniform(0.35, 0.8))
        return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    if kind == 2:
        dark = image.astype(np.float32) * float(rng.uniform(0.2, 0.6)) + rng.normal(0, float(rng.uniform(4, 15)),
                                                                                    image.shape)
        return np.clip(dark, 0, 255).astype(np.uint8)
    q = int(rng.integers(5, 20))
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)


def _image_features(images, labels, card, progress: bool = True, degrade: bool = False, refine: bool = True) -> dict:
    """Each image through the app's path -> features (N, F), probs (N, 7), labels (N,), found (N,) bool.
    degrade: each image degraded first (degrade_image, seeded by its position)."""
    from tqdm import tqdm

    from app.faces.detect import DetectorConfig, FaceMeshDetector
    from app.recognition.recognizer import Embedder, FanHeadRunner
    from app.signals.pose import PoseEstimator
    from app.faces.align import align_face
    from models.data.facecache import _detection_view

    embedder = Embedder(card, "cpu", threads=1)
    head = FanHeadRunner(card, card.default_head, "cpu")
    pose = PoseEstimator()
    feats, probs, found = [], [], []
    with FaceMeshDetector(DetectorConfig(video=False, max_faces=1, refine_landmarks=refine)) as det:
        for n, path in enumerate(tqdm(images, disable=not progress, desc="faces", mininterval=5)):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)   # gray files come as 3 equal channels, as a camera's
            if degrade:
                image = degrade_image(image, FIT_SEED * 100_000 + n)
            view, scale, pad = _detection_view(image)
            faces = det.detect(view)
            if not faces:
                found.append(False)
                feats.append(np.full(len(FEATURES), np.nan))
                probs.append(np.full(7, np.nan))
                continue
            face = max(faces, key=lambda f: f.size)
            mesh = face.mesh / scale - pad
            lm5 = face.landmarks5 / scale - pad
            crop = align_face(image, lm5, card.preprocess)
            feat = embedder.embed([crop])
            p, alpha, _ = head.run(feat)
            hp = pose.estimate(mesh, image.shape[:2])
            feats.append(feature_vector(float(alpha[-1]), face.size / scale, hp.yaw, hp.pitch, sharpness(crop),
                                        float(p.max())))
            probs.append(p)
            found.append(True)
    return {"features": np.array(feats), "probs": np.array(probs), "labels": np.asarray(labels, np.int64),
            "found": np.array(found)}


def _precision_tag(card) -> str:
    """The features come from the embedder the CPU runs (app.recognition.recognizer.Embedder, precision auto): the int8 graph when
    the card has one, so its caches are kept apart from the float graph's."""
    return "_int8" if card.embedder_int8_file is not None else ""


def labelled_sets(data: Path, card, cache: Path, limit: int = 0, progress: bool = True) -> dict[str, dict]:
    from models.data.datasets import read_ferplus, read_rafdb, rafdb_split

    out = {}
    cache.mkdir(parents=True, exist_ok=True)
    fer = [s for s in read_ferplus(data / "ferplus", ["FER2013Valid"])["FER2013Valid"] if s.label is not None]
    raf_all = read_rafdb(data / "rafdb")
    raf = [raf_all[i] for i in rafdb_split(raf_all)[1]]
    for name, samples, degrade in (("ferplus_valid", fer, False), ("rafdb_val", raf, False),
                                   ("ferplus_valid_degraded", fer, True), ("rafdb_val_degraded", raf, True)):
        if limit:
            samples = samples[::max(1, len(samples) // limit)][:limit]
        path = cache / f"reliability_{card.name}{_precision_tag(card)}_{name}{f'_first{limit}' if limit else ''}.npz"
        if path.is_file():
            out[name] = dict(np.load(path))
            continue
        t = time.time()
        d = _image_features([s.path for s in samples], [s.label for s in samples], card, progress, degrade)
        np.savez_compressed(path, **d)
        print(f"{name}: {len(samples)} images, {d['found'].mean():.1%} faces found, {time.time() - t:.0f} s",
              file=sys.stderr)
        out[name] = d
    return {name: calibrated(d, card.temperatures.get(card.default_head, 1.0)) for name, d in out.items()}


def calibrated(d: dict, t: float) -> dict:
    """Features and probs of raw head outputs (as cached) as the app sees them: probabilities with the card's
    temperature, the confidence feature their maximum."""
    if t == 1.0:
        return d
    probs = temperature_scale(d["probs"], t)
    feats = d["features"].copy()
    feats[:, FEATURES.index("confidence")] = probs.max(1)
    return {**d, "probs": probs, "features": feats}


def degraded_clips(videos: list[Path], weights: Path, step: int = 2) -> dict:
    """Every `step`-th frame of each video, clean and under each degradation, through the whole Pipeline: features
    and whether each degraded row's label equals the clean row's (same frame, same face by position)."""
    from app.capture.frame import Frame
    from app.capture.video import VideoFileSource
    from app.pipeline import Pipeline, PipelineConfig
    from app.signals.reliability import ReliabilityModel
    from app.signals.extract import SignalExtractor

    # This pass only collects features (the score is what is being fitted): a zero-weight model fills the slot.
    n = len(FEATURES)
    unused = ReliabilityModel((0.0,) * n, (1.0,) * n, (0.0,) * n, 0.0)

    feats, right, kinds = [], [], []
    for video in videos:
        frames = []
        with VideoFileSource(video) as src:
            while (f := src.read()) is not None:
                if f.index % step == 0:
                    frames.append(f)
        runs = {}
        for kind in ("clean", *DEGRADATIONS):
            rows = {}
            with Pipeline(PipelineConfig(weights=weights, device="cpu", threads=1),
                          signals=SignalExtractor(reliability=unused)) as pipe:
                for f in frames:
                    image = f.image if kind == "clean" else DEGRADATIONS[kind](f.image)
                    r = pipe.process(Frame(index=f.index, time_s=f.time_s, image=np.ascontiguousarray(image)))
                    for face in r.faces:
                        p, s = r.predictions.get(face.track_id), r.signals.get(face.track_id)
                        if p is None or s is None:
                            continue
                        # one face per video here: the frame index identifies the row
                        rows[f.index] = (p.label, feature_vector(float(p.alpha[-1]), s.face_px, s.yaw, s.pitch,
                                                                 s.sharpness, float(p.confidence)))
            runs[kind] = rows
        for kind in DEGRADATIONS:
            for i, (label, x) in runs[kind].items():
                if i in runs["clean"]:
                    feats.append(x)
                    right.append(label == runs["clean"][i][0])
                    kinds.append(kind)
    return {"features": np.array(feats), "right": np.array(right), "kinds": np.array(kinds)}


def refine_check(data: Path, card, cache: Path) -> list[str]:
    """The same held-out images through the app's path with MediaPipe's iris refinement off, against the refined
    features of labelled_sets (cached): faces found, accuracy on faces both runs found, label agreement."""
    from models.data.datasets import read_ferplus, read_rafdb, rafdb_split

    fer = [s for s in read_ferplus(data / "ferplus", ["FER2013Valid"])["FER2013Valid"] if s.label is not None]
    raf_all = read_rafdb(data / "rafdb")
    raf = [raf_all[i] for i in rafdb_split(raf_all)[1]]
    refined = labelled_sets(data, card, cache)
    lines = []
    for name, samples in (("ferplus_valid", fer), ("rafdb_val", raf)):
        path = cache / f"reliability_{card.name}{_precision_tag(card)}_{name}_norefine.npz"
        if path.is_file():
            d = dict(np.load(path))
        else:
            d = _image_features([s.path for s in samples], [s.label for s in samples], card, refine=False)
            np.savez_compressed(path, **d)
        r = refined[name]
        both = d["found"] & r["found"]

        def acc(x):
            return float((x["probs"][both].argmax(1) == x["labels"][both]).mean())
        same = float((r["probs"][both].argmax(1) == d["probs"][both].argmax(1)).mean())
        lines.append(f"{name}: found refine {r['found'].mean():.4f} no-refine {d['found'].mean():.4f}; accuracy on "
                     f"faces both found ({both.sum()}): refine {acc(r):.4f} no-refine {acc(d):.4f}; same label {same:.4f}")
    return lines


# ------------------------------------------------------------------------------------------------ fit

def _halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def main(argv: list[str] | None = None) -> int:
    from app import paths
    from app.recognition.card import load_card
    from app.recognition.recognizer import find_default_model

    p = argparse.ArgumentParser(prog="python -m models.fit_reliability", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=None, help="the model's card (default: the shipped model)")
    p.add_argument("--data", type=Path, default=None, help="datasets root (default ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("weights/reliability.json"))
    p.add_argument("--limit", type=int, default=0, help="every k-th image, at most N per set (quick checks)")
    p.add_argument("--no-clips", action="store_true", help="skip the degraded-clip validation")
    p.add_argument("--refine-check", action="store_true",
                   help="only compare faces found and accuracy with MediaPipe's iris refinement on and off")
    args = p.parse_args(argv)
    data = args.data or paths.data_root()
    weights = args.weights or find_default_model()
    card = load_card(weights, verify_hashes=False)
    from models.data.facecache import default_cache_dir

    if args.refine_check:
        print("\n".join(refine_check(data, card, default_cache_dir())))
        return 0
    sets = labelled_sets(data, card, default_cache_dir(), args.limit)
    fit_x, fit_p, fit_l = [], [], []
    test = {}
    for name, d in sets.items():
        # halves by image, the same for an image's clean and degraded copies: no image is on both sides
        a = np.zeros(len(d["labels"]), bool)
        a[_halves(len(a), FIT_SEED)[0]] = True
        for keep, into in ((a & d["found"], "fit"), (~a & d["found"], "test")):
            x, probs, labels = d["features"][keep], d["probs"][keep], d["labels"][keep]
            if into == "fit":
                fit_x.append(x)
                fit_p.append(probs)
                fit_l.append(labels)
            else:
                test[name] = (x, probs, labels)
    fx, fp, fl = np.concatenate(fit_x), np.concatenate(fit_p), np.concatenate(fit_l)
    fy = (fp.argmax(1) == fl).astype(np.float64)
    mean, std = fx.mean(0), fx.std(0) + 1e-9
    variants = {"quality (alpha, size, pose, sharpness)": [f != "confidence" for f in FEATURES],
                "quality + confidence": [True] * len(FEATURES),
                "confidence only": [f == "confidence" for f in FEATURES],
                "alpha only": [f == "alpha" for f in FEATURES]}
    folds = np.random.default_rng(FIT_SEED).permutation(len(fx)) % 5
    results = {}
    for vname, use in variants.items():
        cv = []
        for k in range(5):
            tr, va = folds != k, folds == k
            w, b = fit_logistic((fx[tr] - mean) / std, fy[tr], use)
            cv.append(auroc(((fx[va] - mean) / std) @ w + b, fy[va]))
        cv = [v for v in cv if np.isfinite(v)]  # a fold with only right (or only wrong) rows has no AUROC
        w, b = fit_logistic((fx - mean) / std, fy, use)
        results[vname] = {"use": use, "cv_auroc": float(np.mean(cv)) if cv else float("nan"), "weights": w, "bias": b}
    # the shipped variant: one of the two full combinations, by cross-validated AUROC on the fit halves only
    chosen = max(list(variants)[:2], key=lambda v: np.nan_to_num(results[v]["cv_auroc"], nan=-1.0))
    t = fit_temperature(fp, fl)

    clips = None
    if not args.no_clips:
        videos = [data / "videos" / "WolfgangLanger_Pexels.mp4", data / "videos" / "single_face.mp4"]
        clips = degraded_clips(videos, weights)

    rows = []
    for vname, r in results.items():
        row = {"variant": vname, "cv_auroc_fit": r["cv_auroc"]}
        for name, (x, probs, labels) in test.items():
            row[name] = auroc(((x - mean) / std) @ r["weights"] + r["bias"], probs.argmax(1) == labels)
        if clips is not None and len(clips["right"]):
            row["degraded_clips"] = auroc(((clips["features"] - mean) / std) @ r["weights"] + r["bias"],
                                          clips["right"])
        rows.append(row)
    calib = {}
    for name, (x, probs, labels) in test.items():
        right = probs.argmax(1) == labels
        calib[name] = {"n": int(len(labels)), "accuracy": float(right.mean()),
                       "ece_before": ece(probs.max(1), right),
                       "ece_after": ece(temperature_scale(probs, t).max(1), right)}
    best = results[chosen]
    doc = {
        "format": "fanlive-reliability", "version": 1, "model": card.name,
        "embedder_precision": "int8" if _precision_tag(card) else "fp32", "features": list(FEATURES),
        "mean": [float(v) for v in mean], "std": [float(v) for v in std],
        "weights": [float(v) for v in best["weights"]], "bias": float(best["bias"]), "variant": chosen,
        "target": "the model's top label is right (FER+ majority label / RAF-DB label)",
        "fit": {"sets": {n: int(d['found'].sum()) for n, d in sets.items()}, "halves_seed": FIT_SEED,
                "n_fit": int(len(fx)), "selection": "5-fold cross-validated AUROC on the fit halves"},
        "validation": rows, "calibration": {"temperature": t, "per_set": calib,
                                            "applied": False,
                                            "note": "reported only; the exported probabilities stay the model's"},
        "degraded_clips": None if clips is None else {
            "n": int(len(clips["right"])), "label_kept": float(clips["right"].mean()) if len(clips["right"]) else None,
            "degradations": list(DEGRADATIONS)},
        "command": "python -m models.fit_reliability " + " ".join(argv if argv is not None else sys.argv[1:]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, doc)
    print(format_report(doc))
    print(f"wrote {args.out} (variant: {chosen})")
    return 0


def format_report(doc: dict) -> str:
    cols = [c for c in doc["validation"][0] if c != "variant"]
    lines = ["| variant | " + " | ".join(f"AUROC {c}" for c in cols) + " |",
             "| --- | " + " | ".join("---" for _ in cols) + " |"]
    for r in doc["validation"]:
        mark = " (shipped)" if r["variant"] == doc["variant"] else ""
        lines.append(f"| {r['variant']}{mark} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    c = doc["calibration"]
    lines.append("")
    lines.append(f"temperature T = {c['temperature']:.3f} (fitted on the fit halves)")
    lines.append("| test half | n | accuracy | ECE before | ECE after T |")
    lines.append("| --- | --- | --- | --- | --- |")
    for name, v in c["per_set"].items():
        lines.append(f"| {name} | {v['n']} | {v['accuracy']:.3f} | {v['ece_before']:.4f} | {v['ece_after']:.4f} |")
    w = ", ".join(f"{f} {x:+.3f}" for f, x in zip(doc["features"], doc["weights"]))
    lines.append(f"\nweights (standardised features): {w}; bias {doc['bias']:+.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
