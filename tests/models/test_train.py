"""Stage 1/2 training, resume and DDP on tiny real subsets of FER+ from the shared data (fixtures in conftest.py)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from app.paths import ROOT
from app.faces.align import Preprocess
from models.networks.fan import ResNet18Embedder
from models.engine.checkpoints import CheckpointError, load_checkpoint, load_embedder
from models.data.loading import DOMAINS, load_ferplus_split, normalise, to_input
from models.engine.runtime import lr_at
from models.engine.training import convert_first_conv, soft_cross_entropy
from models.train import AverageConfig, ClipsConfig, FramesConfig, average_checkpoints, train_clips, train_frames

pytestmark = pytest.mark.data


def test_a_real_training_step_lowers_the_loss(shared_data, cache_dir):
    pre = Preprocess()
    train = load_ferplus_split(shared_data, "FER2013Train", pre, cache_dir, limit=64, progress=False)
    x = normalise(to_input(torch.from_numpy(train.crops), pre), pre)
    y = torch.from_numpy(train.votes)
    torch.manual_seed(0)
    model = ResNet18Embedder(in_chans=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(12):
        loss = soft_cross_entropy(model(x), y, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_frames_run_writes_checkpoints_config_and_metrics(tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["stage"] == "frames" and cfg["preprocess"]["input_size"] == 64
    lines = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert all(0.0 <= m["accuracy"] <= 1.0 and np.isfinite(m["train_loss"]) for m in lines)
    best = load_checkpoint(tiny_run / "best.pt")  # weights_only=True: tensors, numbers, strings only
    assert set(best["embedder"]) == set(ResNet18Embedder(in_chans=1).state_dict())
    assert json.loads(best["preprocess"]) == Preprocess().to_dict()


def test_resume_continues_from_last_checkpoint(tiny_run, shared_data, cache_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # the session's tiny run stays as other tests expect it
    cfg = FramesConfig(data=str(shared_data), cache_dir=str(cache_dir), out=str(run), epochs=3, batch_size=32,
                       limit_train=192, limit_valid=64, lr=0.05, seed=0, resume=True)
    train_frames(cfg)
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]  # epochs 1-2 were not redone
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_lr_schedule_warms_up_decays_to_the_floor_and_holds_it():
    lrs = [lr_at(s, total=100, warmup=10, base=0.1, floor=0.01) for s in range(130)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[9:100], lrs[10:101]))  # monotone cosine decay
    assert lrs[100:] == [pytest.approx(0.01)] * 30  # the SWA phase holds the floor
    assert lr_at(99, 100, 10, 0.1) < 1e-4  # no floor: decays to zero


def test_swa_averages_the_last_epochs_into_a_scored_checkpoint(shared_data, cache_dir, tmp_path):
    out = tmp_path / "swa"
    cfg = FramesConfig(data=str(shared_data), cache_dir=str(cache_dir), out=str(out), epochs=3, swa_epochs=2,
                       batch_size=32, limit_train=192, limit_valid=64, lr=0.05, seed=0)
    train_frames(cfg)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["swa_epochs"] == 2 and 0 <= lines[-1]["accuracy"] <= 1
    swa, last = load_checkpoint(out / "swa.pt"), load_checkpoint(out / "last.pt")
    assert swa["swa_epochs"] == 2 and last["swa_count"] == 2
    w = "layer4.1.conv2.weight"
    assert not torch.equal(swa["embedder"][w], last["embedder"][w])  # an average, not the last epoch
    assert torch.allclose(swa["embedder"][w], last["swa"][w])
    # BN statistics were recomputed for the averaged weights, not averaged
    assert not torch.allclose(swa["embedder"]["bn1.running_var"], last["swa"]["bn1.running_var"])
    model = ResNet18Embedder(in_chans=1)
    model.load_state_dict(swa["embedder"])


def test_average_of_two_checkpoints_is_their_weight_mean(tiny_run, shared_data, cache_dir, tmp_path):
    a, b = tiny_run / "best.pt", tiny_run / "last.pt"
    out = average_checkpoints(AverageConfig(checkpoints=[str(a), str(b)], out=str(tmp_path / "avg.pt"),
                                            data=str(shared_data), cache_dir=str(cache_dir), limit_valid=64))
    avg, ca, cb = load_checkpoint(out), load_checkpoint(a), load_checkpoint(b)
    w = "layer3.0.conv1.weight"
    assert torch.allclose(avg["embedder"][w], (ca["embedder"][w] + cb["embedder"][w]) / 2)
    assert json.loads(avg["averaged_from"]) == [str(a), str(b)]
    assert 0 <= json.loads(avg["metrics"])["accuracy"] <= 1
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints(AverageConfig(checkpoints=[str(a)], data=str(shared_data), cache_dir=str(cache_dir)))


def test_checkpoints_refuse_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception):
        load_checkpoint(tmp_path / "evil.pt")


def test_ddp_with_two_cpu_processes(shared_data, cache_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "models.train", "frames", "--data", str(shared_data), "--cache-dir", str(cache_dir),
           "--out", str(out), "--epochs", "1", "--batch-size", "16", "--limit-train", "64", "--limit-valid", "32",
           "--threads", "1", "--datasets", "ferplus", "rafdb"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "2"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2
    assert (out / "best.pt").is_file()
    # both ranks stepped together: (64 FER+ + 64 RAF-DB images) / 2 ranks / batch 16 = 4 steps per epoch
    assert load_checkpoint(out / "last.pt")["step"] == 4


def test_clips_stage_trains_the_heads_named(tiny_run, shared_data, cache_dir, tmp_path):
    heads = ["relation", "self", "fusion", "transformer"]
    cfg = ClipsConfig(embedder=str(tiny_run / "best.pt"), data=str(shared_data), cache_dir=str(cache_dir),
                      out=str(tmp_path / "clips"), epochs=2, batch_size=32, variants=3, clip_length=3,
                      limit_train=192, limit_valid=64, sources=["ferplus-synth"], heads=heads)
    out = train_clips(cfg)
    results = json.loads((out / "results.json").read_text())
    for att in heads:
        r = results[att]
        assert 0 <= r["valid_single_frame"]["accuracy"] <= 1 and r["parameters"] > 0
        assert 0 < r["attention"]["alpha_clean"] < 1 and 0 < r["attention"]["alpha_degraded"] < 1
    assert results["fusion"]["final_loss"] is None  # nothing to learn: the frame classifier itself
    model = load_checkpoint(out / "model.pt")
    assert set(model["heads"]) == set(heads)
    with pytest.raises(ValueError, match="--heads"):
        train_clips(ClipsConfig(**{**cfg.__dict__, "heads": ["lstm"]}))


def test_corrupt_or_foreign_checkpoint_is_one_line_error(tmp_path, capsys):
    from models.cv import main as cv_main
    from models.train import main

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02 not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a FAN Live checkpoint"):
        load_checkpoint(foreign)
    assert main(["clips", "--embedder", str(bad), "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read checkpoint") and "\n" not in err
    assert cv_main(["ckplus", "--embedder", str(foreign), "--out", str(tmp_path / "cv")]) == 1
    assert capsys.readouterr().err.strip().startswith("error: ")


def test_rgb_training_end_to_end_on_every_domain(tiny_run, shared_data, cache_dir, tmp_path):
    """80 px RGB on FER+ (as 3-channel gray), RAF-DB, SFEW and the posed set (colour), warm-started from the gray tiny run: trains,
    scores every validation set, and leaves a 3-channel embedder whose card-ready preprocess says so."""
    out = tmp_path / "rgb"
    cfg = FramesConfig(data=str(shared_data), cache_dir=str(cache_dir), out=str(out), epochs=1, batch_size=32,
                       limit_train=96, limit_valid=48, lr=0.02, color="rgb", input_size=80,
                       init=str(tiny_run / "best.pt"))
    train_frames(cfg)
    line = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    valid = [d.valid_name for d in DOMAINS.values()]
    assert set(line) >= {*valid, "ckplus_frames", "selection_score"}
    # every domain's held-out part selects; CK+48 frames are reported only
    assert line["selection_score"] == pytest.approx(np.mean([line[v]["macro_f1"] for v in valid]))
    model, pre, _ = load_embedder(out / "best.pt")
    assert (pre.color, pre.input_size, pre.mean) == ("rgb", 80, (0.5, 0.5, 0.5))
    assert model.conv1.in_channels == 3


def test_a_gray_network_converts_exactly_to_rgb():
    torch.manual_seed(0)
    gray_net = ResNet18Embedder(in_chans=1).eval()
    rgb_net = ResNet18Embedder(in_chans=3).eval()
    rgb_net.load_state_dict(convert_first_conv(gray_net.state_dict(), 3))
    rgb = torch.rand(4, 3, 64, 64)
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    pre_g, pre_c = Preprocess(color="gray"), Preprocess(color="rgb")
    with torch.no_grad():
        a = gray_net(normalise(luma, pre_g))
        b = rgb_net(normalise(rgb, pre_c))
    assert torch.allclose(a, b, atol=1e-4)


def test_repeat_sets_each_domains_share_of_an_epoch():
    from models.data.loading import FrameData
    from models.engine.training import epoch_order, parse_repeats

    source = np.repeat([0, 1, 2], [100, 20, 10])
    data = FrameData(torch.zeros(0), torch.zeros(0), np.zeros(130, np.int64), source, ["ferplus", "sfew", "taiwanese"],
                     {}, {}, {})
    cfg = FramesConfig(repeat=["sfew=2.5", "taiwanese=0"])
    order = epoch_order(data, cfg, torch.Generator().manual_seed(0)).numpy()
    assert np.bincount(source[order], minlength=3).tolist() == [100, 50, 0]
    assert parse_repeats([], ["ferplus"]) == {"ferplus": 1.0}
    for bad in (["sfew"], ["rafdb=2"], ["sfew=-1"], ["sfew=x"]):
        with pytest.raises(ValueError, match="--repeat"):
            parse_repeats(bad, ["ferplus", "sfew"])


def test_mixup_blends_images_and_targets_by_one_lambda():
    from models.engine.training import mix_batch

    torch.manual_seed(0)
    x = torch.rand(8, 3, 4, 4)
    y = torch.eye(7)[torch.arange(8) % 7]
    mx, my = mix_batch(x, y, 0.4, torch.Generator().manual_seed(0))
    assert my.sum(1).allclose(torch.ones(8)) and not torch.equal(mx, x)
    lam = my.max(1).values.min()  # each row: lambda on its own class (or the other's, when larger)
    assert 0.5 <= lam <= 1
