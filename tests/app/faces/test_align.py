"""app.faces.align: the per-colour defaults, and training and live preprocessing agreeing on the same real crop."""
import numpy as np
import pytest
import torch

from app.faces.detect import DetectorConfig, FaceMeshDetector
from app.faces.align import DEFAULT_MEAN_STD, Preprocess, align_face, convert_color, to_network_input
from models.train import normalise, to_input


def test_colour_modes_get_their_own_default_mean_and_std():
    assert Preprocess(color="gray").mean == (0.5,) and Preprocess(color="gray").std == (0.5,)
    rgb = Preprocess(input_size=96, color="rgb")
    assert rgb.mean == DEFAULT_MEAN_STD["rgb"][0] and len(rgb.std) == 3 and rgb.channels == 3
    assert Preprocess.from_dict(rgb.to_dict()) == rgb  # the card round trip keeps the resolved numbers
    with pytest.raises(ValueError, match="3 values"):
        Preprocess(color="rgb", mean=(0.5,), std=(0.5,))


@pytest.fixture(scope="module")
def astronaut_landmarks(astronaut_bgr):
    with FaceMeshDetector(DetectorConfig(max_faces=1, video=False)) as det:
        faces = det.detect(astronaut_bgr)
    assert faces, "MediaPipe found no face on the astronaut photo"
    return faces[0].landmarks5


@pytest.mark.parametrize("size,color", [(64, "gray"), (96, "rgb"), (112, "rgb")])
def test_training_path_equals_the_live_path_on_a_real_crop(astronaut_bgr, astronaut_landmarks, size, color):
    pre = Preprocess(input_size=size, color=color)
    warped = align_face(astronaut_bgr, astronaut_landmarks, pre)  # what the live pipeline embeds (BGR)
    live = to_network_input([warped], pre)  # (1, C, S, S)
    cached = convert_color(warped, pre)  # what the training cache stores for this image
    train = normalise(to_input(torch.from_numpy(cached[None]), pre), pre).numpy()
    assert live.shape == train.shape == (1, pre.channels, size, size)
    assert np.abs(live - train).max() < 1e-6
    if color == "rgb":  # channel order: RGB in both (the astronaut's suit is white, the flag behind red)
        assert np.abs(live[0, 0] - live[0, 2]).mean() > 0.01
