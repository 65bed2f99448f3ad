"""Make the shipped model: export a trained checkpoint to weights/, measure it through the app's own path, and write
the measured numbers into its model card.

    python -m models.release.ship --checkpoint runs/clips/model.pt --cv runs/cv_ckplus/cv_ckplus.json --name fan_r18_multi

The FER+ Valid numbers in the card come from the exported ONNX graphs run on every FER+ Valid image through
MediaPipe + the card's alignment (models.evaluate), not from the training loop; images with no face found use the
mean-transform fallback and count as they are. FER+ Valid also reports the subset without the images that are
byte-identical to FER+ Train images.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import numpy as np

from app.emotions import EMOTIONS
from app.paths import WEIGHTS_DIR
from models.data.datasets import RAFDB_SPLIT_SEED, RAFDB_VAL_FRACTION
from models.engine.cli import add_data_args
from models.engine.metrics import classification_report
from models.networks.fan import WINDOW_LENGTH


TRAINING_DATA = ("FER+ Train: FER2013 Training partition (28,558 48x48 grayscale faces) with FER+ crowd votes "
                 "(Barsoum et al. 2016; labels MIT), 24,925 majority-labelled images of the 7 classes, fed to RGB "
                 "models as 3-channel gray; RAF-DB basic train (Li et al. 2017; 12,271 aligned 100x100 in-the-wild "
                 "colour faces), minus the project's stratified val split (RAF-DB val: 10% of every class, "
                 "models.data.datasets.rafdb_split, seed 0, 1,226 images); SFEW 2.0 train (Dhall et al.; 860 film-still "
                 "faces) minus its held-out 20% (SFEW val, models.data.datasets.sfew_split, 172 images); the posed "
                 "Taiwanese facial-expression database (Chinese Journal of Psychology 2013; 1,223 posed colour faces "
                 "of 29 performers) minus 6 held-out performers (posed val, models.data.datasets.taiwanese_split, 248 "
                 "images). The held-out parts serve model selection only. CK+48 (Lucey et al. 2010) is evaluation "
                 "only unless the stage-2 run lists ckplus among its sources. Research-use data, not shipped.")
LICENCE = ("research use only: trained on RAF-DB (non-commercial research use, no redistribution of the images), "
           "FER2013/FER+ (research use), SFEW 2.0 (academic research use under its authors' licence) and the posed "
           "Taiwanese facial-expression database (research use, supplied on request). The weights are the "
           "project's own; do not use them commercially.")


def training_lineage(checkpoint: Path) -> list[str]:
    """The commands that made a stage-2 checkpoint, oldest first, read from the runs' config.json files: the
    clips run, its embedder, and every warm start (`init`) behind that embedder."""
    from models.engine.checkpoints import load_checkpoint

    def command(run_dir: Path) -> tuple[str | None, dict]:
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            return None, {}
        cfg = json.loads(cfg_path.read_text())
        argv = cfg.get("command", "").split()
        module = cfg.get("module", "models.train")  # models.release.warmstart writes its own name
        return (f"python -m {module} " + " ".join(argv[1:]) if argv else None), cfg

    commands: list[str] = []
    clips_cmd, clips_cfg = command(checkpoint.parent)
    if clips_cmd:
        commands.append(clips_cmd)
    embedder = clips_cfg.get("embedder") or load_checkpoint(checkpoint).get("embedder_checkpoint")
    seen = set()
    while embedder and embedder not in seen:
        seen.add(embedder)
        cmd, cfg = command(Path(embedder).parent)
        if cmd:
            commands.append(cmd)
        commands += cfg.get("previous_commands", [])[::-1]  # a warm start from a release: that release's commands
        embedder = cfg.get("init")
    return commands[::-1]


def ferplus_valid_metrics(card_path: Path, data: Path) -> dict:
    from app.recognition.card import load_card
    from models.data.datasets import duplicate_mask, read_ferplus
    from models.evaluate import predict_images

    card = load_card(card_path)
    splits = read_ferplus(data / "ferplus", ["FER2013Train", "FER2013Valid"])
    valid = [s for s in splits["FER2013Valid"] if s.label is not None]
    labels = np.array([s.label for s in valid])
    out = {}
    dup = duplicate_mask(valid, splits["FER2013Train"])
    for att in card.head_types:
        probs, detected = predict_images([s.path for s in valid], card, "cpu", att)
        pred = probs.argmax(1)
        rep = classification_report(labels, pred, EMOTIONS)
        clean = classification_report(labels[~dup], pred[~dup], EMOTIONS)
        out[att] = {k: rep[k] for k in ("n", "accuracy", "macro_f1", "uar", "per_class_recall", "confusion_matrix")}
        out[att]["detection_rate"] = float(detected.mean())
        out[att]["without_train_duplicates"] = {k: clean[k] for k in ("n", "accuracy", "macro_f1", "uar")}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.release.ship", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="stage-2 model.pt (embedder + heads)")
    p.add_argument("--cv", type=Path, default=None, help="cv_ckplus.json from python -m models.cv ckplus")
    p.add_argument("--name", required=True)
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--window-length", type=int, default=WINDOW_LENGTH)
    p.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=True,
                   help="mirror-averaged embedding inside the exported graph (see python -m models.release.cost)")
    add_data_args(p, cache_help="crop caches for the evaluation suite")
    args = p.parse_args(argv)

    from models.release.export import EXPORT_ERRORS, ExportOptions, export_checkpoint, update_cards

    try:
        exported = export_checkpoint(ExportOptions(name=args.name, checkpoint=args.checkpoint, out=args.out,
                                                   window_length=args.window_length, flip_average=args.flip_average))
    except EXPORT_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(exported.report())
    card_path = exported.card
    ferplus = ferplus_valid_metrics(card_path, args.data)
    metrics: dict = {"ferplus_valid": {**ferplus["relation"], "by_attention": ferplus,
                                       "note": "7-class FER+ majority labels, every FER+ Valid image through the "
                                               "app's MediaPipe alignment and the exported ONNX graphs; each "
                                               "image scored as a FAN window of one frame"}}
    if args.cv:
        cv = json.loads(args.cv.read_text())
        from models.cv import CVConfig, cv_command

        known = {k: v for k, v in cv.get("config", {}).items() if k in CVConfig.__dataclass_fields__}
        metrics["ckplus_10fold"] = {"protocol": cv["protocol"], "labels": cv["labels"],
                                    "command": cv_command(CVConfig(**known)),
                                    **{m: {k: r[k] for k in ("mean_fold_accuracy", "accuracy", "paper")}
                                       for m, r in cv["results"].items()}}
    from app.recognition.card import load_card
    from models.evaluate import format_suite, run_suite

    suite = run_suite(load_card(card_path), args.data, args.cache_dir, "cpu", None, progress=True)
    metrics["suite"] = {name: {k: r[k] for k in ("n", "accuracy", "macro_f1", "uar", "per_class_recall",
                                                 "detection_rate", "confusion_matrix")}
                        for name, r in suite.items()}
    metrics["suite"]["note"] = ("python -m models.evaluate suite: relation head, each image a window of one frame, "
                                "through MediaPipe + the card's alignment + the ONNX graphs")
    metrics["rafdb_split"] = {"fraction": RAFDB_VAL_FRACTION, "seed": RAFDB_SPLIT_SEED, "stratified": True,
                              "function": "models.data.datasets.rafdb_split"}
    ck = json.loads(json.dumps(metrics))  # plain JSON types only
    training = {"data": TRAINING_DATA, "commands": training_lineage(args.checkpoint),
                "stages": "stage 1: ResNet18 on FER+ Train and the train parts of RAF-DB, SFEW and the posed set "
                          "(models.data.datasets.DOMAINS; FER+ soft vote targets, the others one-hot; per-domain draws "
                          "per epoch set by --repeat; sqrt class weights; webcam and in-the-wild augmentation: pose jitter, "
                          "blur, noise, low light, occlusion, down/up-scaling, colour jitter, random gray, JPEG), "
                          "model selection on the mean macro-F1 over the domains' held-out parts; a run that "
                          "warm-starts from an earlier checkpoint names it in frames_config.init (the first one "
                          "from scratch on FER+ alone; models.release.warmstart rebuilds a checkpoint from a released "
                          "ONNX graph); --swa-epochs N ends a run "
                          "with N epochs at a constant LR whose weights are averaged (SWA, BN statistics "
                          "recomputed) into swa.pt. The embedder's feature is the "
                          "mean over the aligned crop and its mirror image (inside the ONNX graph). Stage 2: FAN "
                          "heads on the frozen embedder, trained on synthetic clips of FER+ Train images under "
                          "blur/darkness/noise/occlusion/pose jitter (the stage-1 training images), plus CK+48 "
                          "sequences when the run's sources list ckplus; the head's classifier is either kept at the frame "
                          "classifier or re-trained, whichever scores better on FER+ Valid and RAF-DB val "
                          "(results.<attention>.candidates)"}
    update_cards(card_path, {"metrics": ck, "training": training, "licence": LICENCE,
                             "released": _dt.date.today().isoformat(),
                             "release_command": "python -m models.release.ship " + " ".join(argv or sys.argv[1:])})
    r = metrics["ferplus_valid"]
    print(f"FER+ Valid (relation head): accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}  "
          f"UAR {r['uar']:.4f}  detection {r['detection_rate']:.3f}  n={r['n']}")
    print(format_suite(suite))
    return 0


def add_heads_main(argv: list[str]) -> int:
    """`python -m models.release.ship add-heads`: add stage-2 heads (models.networks.heads names) from a heads checkpoint beside a
    released model (models.release.export.add_heads): its embedder and existing heads stay byte-identical, every card lists
    the new heads with their SHA-256, parameter counts, the checkpoint's metrics and the command."""
    p = argparse.ArgumentParser(prog="python -m models.release.ship add-heads", description=add_heads_main.__doc__)
    p.add_argument("--heads-checkpoint", type=Path, required=True,
                   help="a .pt with 'heads': {name: state_dict} (python -m models.experiments.compare --save-heads FILE)")
    p.add_argument("--heads", nargs="+", required=True, help="which of its heads to add")
    p.add_argument("--weights", type=Path, default=None, help="the model's card (default: the shipped model)")
    args = p.parse_args(argv)
    import torch

    from app.recognition.card import ModelError
    from app.emotions import EMOTIONS
    from app.recognition.recognizer import find_default_model
    from models.release.export import add_heads
    from models.networks.heads import build_head

    try:
        card_path = args.weights or find_default_model()
        if not args.heads_checkpoint.is_file():
            raise ValueError(f"no heads checkpoint at {args.heads_checkpoint}")
        ck = torch.load(args.heads_checkpoint, map_location="cpu", weights_only=True)
        missing = [h for h in args.heads if h not in ck.get("heads", {})]
        if missing:
            raise ValueError(f"{args.heads_checkpoint} has no {', '.join(missing)} head(s)")
        heads = {}
        for name in args.heads:
            head = build_head(name, 512, len(EMOTIONS))
            head.load_state_dict(ck["heads"][name])
            heads[name] = head.eval()
        results = json.loads(ck.get("results", "{}"))
        fields = {"metrics": {"added_heads": {
                      "note": "torch on cached features of the same embedder (python -m models.experiments.compare): FER+ Valid "
                              "and RAF-DB val single frames, and synthetic degraded clips; not through the app's "
                              "MediaPipe path", **{n: results[n] for n in args.heads if n in results}}},
                  "training": {"added_heads": {"checkpoint": str(args.heads_checkpoint),
                                               "command": "python -m models.release.ship add-heads " + " ".join(argv),
                                               "trained_by": json.loads(ck.get("config", "{}")),
                                               "embedder_checkpoint": ck.get("embedder_checkpoint", "")}}}
        out = add_heads(Path(card_path), heads, fields)
    except (ValueError, ModelError, RuntimeError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"added {', '.join(heads)} to {out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["add-heads"]:
        sys.exit(add_heads_main(sys.argv[2:]))
    sys.exit(main())
