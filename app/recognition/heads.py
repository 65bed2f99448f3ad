"""Which head turns a track's window of features into a prediction, as the app names it, and what its attention strip
may show. Qt-free and torch-free.

    --head fan          FAN with relation-attention (the card key "relation"); the strip shows alpha and alpha*beta
    --head self         FAN self-attention only; the strip shows alpha (the final weight is alpha normalised)
    --head fusion       score fusion: the mean of per-frame softmax; no attention, the strip shows equal weights
    --head gru          ABAW2021 GRU, bidirectional, centre frame of the window (half a window late)
    --head gru-causal   ABAW2021 GRU, causal, newest frame; no attention, equal weights
    --head transformer  ABAW2021 transformer, newest frame; the strip shows that frame's attention (mean over heads)
    --head ensemble     the mean of the softmax of fusion, FAN, causal GRU and transformer; equal weights

A model card lists the heads it has (files.heads); `available_heads(card)` is what a user may choose from (ensemble
when the card has all its members). Every head graph has the same interface (features (1, T, D) -> probs, alpha,
weight), so one runner class serves all; the ensemble runs its members and averages their probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.recognition.card import ModelCard, ModelError

FAN_NAME = "fan"                      # the app's name for the card's "relation" head
ENSEMBLE = "ensemble"
ENSEMBLE_MEMBERS = ("fusion", "relation", "gru-causal", "transformer")
HEAD_CHOICES = ("fan", "self", "fusion", "gru", "gru-causal", "transformer", ENSEMBLE)  # the CLI's --head values


@dataclass(frozen=True)
class StripKind:
    """What the attention strip shows for a head: alpha bars only where the head has alpha; a caption saying what
    the (orange) weight bar is."""

    alpha: bool      # draw the blue alpha bar (FAN heads only)
    weight: str      # what the orange bar is
    equal: bool      # the weights are equal by construction (no attention), not computed from the frames


STRIP = {
    "relation": StripKind(True, "final weight \u03b1\u00b7\u03b2 (FAN relation-attention)", False),
    "self": StripKind(True, "final weight \u03b1 normalised (FAN self-attention)", False),
    "fusion": StripKind(False, "equal weights: score fusion has no attention", True),
    "gru": StripKind(False, "equal weights: the GRU has no attention (centre frame's output)", True),
    "gru-causal": StripKind(False, "equal weights: the GRU has no attention (newest frame's output)", True),
    "transformer": StripKind(False, "newest frame's attention over the window (mean over heads)", False),
    ENSEMBLE: StripKind(False, "equal weights: an ensemble has no single attention", True),
}


def card_key(name: str | None, card: ModelCard) -> str:
    """A --head value (or a card key, or None for the card's default) -> the card's key (fan -> relation)."""
    if not name:
        return card.default_head
    return "relation" if name == FAN_NAME else name


def display_name(key: str) -> str:
    return FAN_NAME if key == "relation" else key


def head_choices(keys) -> tuple[str, ...]:
    """A card's head keys -> the heads a user may choose, by app name, in HEAD_CHOICES order (the ensemble when all
    its members are there)."""
    keys = set(keys)
    if set(ENSEMBLE_MEMBERS) <= keys:
        keys.add(ENSEMBLE)
    return tuple(n for n in HEAD_CHOICES if ("relation" if n == FAN_NAME else n) in keys)


def available_heads(card: ModelCard) -> tuple[str, ...]:
    """The heads a user may choose for this card, by app name."""
    return head_choices(card.head_files)


class HeadRunner:
    """The chosen head of a card: a window's features (T, D) -> probs (K,), alpha (T,), weight (T,).

    `graph_runner(card, key)` opens one head graph (app.recognition.recognizer.FanHeadRunner); the ensemble opens each member."""

    def __init__(self, card: ModelCard, name: str | None, graph_runner):
        self.key = card_key(name, card)
        if self.key == ENSEMBLE:
            missing = [m for m in ENSEMBLE_MEMBERS if m not in card.head_files]
            if missing:
                raise ModelError(f"model {card.name!r} has no {', '.join(map(display_name, missing))} head(s), so no "
                                 f"ensemble (it has: {', '.join(available_heads(card))})")
            self.members = [graph_runner(card, m) for m in ENSEMBLE_MEMBERS]
        else:
            card.head_file(self.key)  # ModelError when the card has no such head (every card key is in STRIP)
            self.members = [graph_runner(card, self.key)]
        self.name = display_name(self.key)
        self.strip = STRIP[self.key]

    @property
    def session(self):
        return self.members[0].session

    @property
    def providers(self) -> list[str]:
        return self.members[0].providers

    def run(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self.members) == 1:
            return self.members[0].run(features)
        probs = np.mean([m.run(features)[0] for m in self.members], axis=0).astype(np.float32)
        t = len(features)
        equal = np.full(t, 1.0 / t, np.float32)
        return probs / probs.sum(), equal, equal
