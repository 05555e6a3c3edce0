"""The scale contract: one word, ``quick``, ``lab`` or ``paper``, sizes every notebook and command.

- ``quick``: CI and nbval; seconds per notebook, every code path on tiny sizes.
- ``lab``: the default; minutes per notebook on 2 cores, real results.
- ``paper``: the study's own sizes; hours, a cluster or a GPU.

Precedence (DESIGN.md section 4): a papermill ``-p SCALE ...`` beats the environment variable
``NEURODEPTH_SCALE``, which beats the literal in the notebook's parameters cell. Papermill injects its
value as a plain assignment after the parameters cell, so the only way a notebook can tell an override
from the literal is that it differs from the notebook's default: :func:`resolve_scale` treats a value
that differs from ``default`` as explicit. (Passing ``-p SCALE lab`` while ``NEURODEPTH_SCALE`` is set
therefore yields the environment's value.)
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from ._checks import non_negative_int, positive_float, positive_int

SCALES = ("quick", "lab", "paper")
DEFAULT_SCALE = "lab"
ENV_VAR = "NEURODEPTH_SCALE"

T = TypeVar("T")


def check_scale(scale: str) -> str:
    """Return ``scale`` normalised to lower case, or raise ``ValueError`` naming the valid choices."""
    if not isinstance(scale, str) or scale.strip().lower() not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    return scale.strip().lower()


def resolve_scale(value: str | None = None, default: str = DEFAULT_SCALE) -> str:
    """Resolve the scale a notebook or command should run at.

    ``value`` is what the notebook's parameters cell (possibly overridden by papermill) holds, or what a
    command-line flag says (``None`` when not given). A value different from ``default`` is explicit and
    wins; otherwise ``$NEURODEPTH_SCALE`` wins when set; otherwise the default.
    """
    default = check_scale(default)
    if value is not None:
        value = check_scale(value)
        if value != default:
            return value
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        try:
            return check_scale(env)
        except ValueError as err:
            raise ValueError(f"environment variable {ENV_VAR}={env!r}: {err}") from None
    return value if value is not None else default


def by_scale(scale: str, *, quick: T, lab: T, paper: T) -> T:
    """Pick the value for ``scale``: ``by_scale(s, quick=2, lab=200, paper=12000)``."""
    return {"quick": quick, "lab": lab, "paper": paper}[check_scale(scale)]


# ----------------------------------------------------------------------------------------------------
# Size knobs: the per-notebook table of sizes a user may override (DESIGN.md section 8)
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Knob:
    """One size knob of a notebook: its value at each scale, and the smallest value a user may give.

    ``None`` as a scale's value means "the library's own default" (for instance the paper's full schedule);
    it is never what a user passes to mean that, because ``None`` in a parameters cell means "this table".
    """

    quick: Any
    lab: Any
    paper: Any
    minimum: int = 1

    def at(self, scale: str):
        """The value at ``scale`` (a copy: a notebook changing its list never changes the table)."""
        return copy.deepcopy(by_scale(scale, quick=self.quick, lab=self.lab, paper=self.paper))

    @property
    def kind(self) -> str:
        """``"int"``, ``"number"``, ``"str"``, ``"bool"`` or ``"ints"`` (a list or tuple of whole numbers): what a
        given value must be, read off the defaults."""
        values = [v for v in (self.quick, self.lab, self.paper) if v is not None]
        if values and all(isinstance(v, bool) for v in values):
            return "bool"
        if values and all(isinstance(v, (list, tuple)) for v in values):
            return "ints"
        if values and all(isinstance(v, str) for v in values):
            return "str"
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int"
        return "number"


# Chapters 04 and 05 train the same kind of network on the same kind of data: 05 reuses 04's knobs (the same
# objects), so each size exists once.
_FIT_L5PC = {
    "N_TRAIN_TRIALS": Knob(4, 10, 128),          # trials simulated for training when no shipped data are used
    "N_TEST_TRIALS": Knob(2, 4, 32),             # held-out trials simulated likewise
    "TRIAL_MS": Knob(1500, 6000, 6000),          # ms per simulated trial
    "WORKERS": Knob(2, 2, 2),                    # simulation processes
    "INPUT_WORKERS": Knob(0, 2, 2, minimum=0),   # processes regenerating inputs from recipes (0: this one)
    "ARCH": Knob("tiny", "lab", "large"),        # network preset (nd.nets.make_architecture)
    "N_STEPS": Knob(120, 1000, None),            # training steps (paper: None, the paper's 720,000)
    "LR_SCALE": Knob(30.0, 10.0, 1.0),           # learning rates x this (short runs take larger steps)
    "USE_SHIPPED": Knob(False, True, True),      # the lab assets (downloaded where no clone holds them)
}
_TEACHING_SWEEP_WIDTH = Knob(4, 16, 64)          # channels per layer of chapter 06's sweep (and 07's network)

#: Every notebook's size knobs: ``NOTEBOOK_SIZES[notebook][knob]``. The notebook's parameters cell names each
#: knob (``None`` there means this table's value at the scale); :func:`resolve_sizes` resolves them.
NOTEBOOK_SIZES: dict[str, dict[str, Knob]] = {
    "00_welcome": {
        "DURATION_MS": Knob(1000, 3000, 6000),
    },
    "01_integrate_and_fire": {
        "N_TRAIN": Knob(40, 300, 12000),
        "N_TEST": Knob(10, 60, 1000),
        "DURATION_MS": Knob(3000, 6000, 6000),
        "N_STEPS": Knob(300, 1500, 75000),
    },
    "02_a_detailed_l5_pyramidal_cell": {
        "TRIAL_MS": Knob(150, 2000, 6000),
        "REFERENCE_MS": Knob(150, 3000, 3000),
        "WIDGET_MS": Knob(100, 400, 400),
        "CLUSTER_COUNTS": Knob([10, 20], list(range(4, 41, 4)), list(range(2, 41, 2))),
        "N_EPSP_SITES": Knob(4, 12, 24),
    },
    "03_generating_a_dataset": {
        "L5_TRIALS": Knob(2, 12, 128),
        "L5_DURATION_MS": Knob(700, 2000, 6000),
        "L5_TRIALS_PER_SHARD": Knob(1, 2, 8),
        "IAF_TRIALS": Knob(24, 200, 12000),
        "IAF_DURATION_MS": Knob(2000, 6000, 6000),
        "FIGURE_MS": Knob(2000, 6000, 6000),
        "EXPLORE_TRIALS": Knob(2, 40, 100),
        # None: one process per core; quick simulates in the notebook's process (0), as starting workers that
        # load NEURON costs more than two tiny trials
        "WORKERS": Knob(0, None, None, minimum=0),
    },
    "04_fitting_a_tcn": {
        **_FIT_L5PC,
        "SHIPPED_TRAIN_TRIALS": Knob(0, 96, None, minimum=0),   # shipped trials to train on (None: all)
        "SHIPPED_TEST_TRIALS": Knob(0, 32, None, minimum=0),    # shipped test trials to score (None: all)
        "N_STEPS_EXERCISE": Knob(30, 150, 20000),
    },
    "05_evaluating_the_fit": {
        **_FIT_L5PC,
        "SHIPPED_TEST_TRIALS": Knob(0, None, None, minimum=0),  # None: every trial, as the model card scores
    },
    "06_how_deep_is_a_neuron": {
        "N_TRAIN": Knob(3, 96, 512),
        "N_TEST": Knob(3, 48, 128),
        "DURATION_MS": Knob(1200, 6000, 6000),
        "DEPTHS": Knob((1, 2), (1, 2, 3, 4), (1, 2, 3, 4, 5, 6, 7)),
        "SEEDS": Knob((0, 1), (0, 1, 2), (0, 1, 2, 3, 4), minimum=0),
        "WIDTH": _TEACHING_SWEEP_WIDTH,
        "T_MS": Knob(21, 41, 81),
        "STEPS": Knob(5, 400, 20000),
    },
    "07_what_the_network_learned": {
        "N_IAF": Knob(40, 150, 1000),
        "IAF_MS": Knob(2000, 6000, 6000),
        "IAF_STEPS": Knob(300, 800, 5000),
        "N_CELL": Knob(2, 32, 256),
        "CELL_MS": Knob(1000, 6000, 6000),
        "CELL_STEPS": Knob(5, 400, 5000),
        "CELL_WIDTH": _TEACHING_SWEEP_WIDTH,
    },
    "08_the_surrogate_is_fast": {
        "NEURON_MS": Knob(200, 1000, 2000),
        "LENGTHS_MS": Knob([50, 100, 200], [100, 250, 500, 1000], [250, 500, 1000, 2000]),
        "SYNAPSE_MS": Knob(60, 300, 500),
        "N_TRIALS": Knob(2, 4, 8),
        "TRIAL_MS": Knob(1000, 6000, 6000),
        "N_INPUTS_SWEEP": Knob([640, 2556], [320, 640, 1278, 2556], [320, 640, 1278, 2556, 5112]),
        "SWEEP_MS": Knob(300, 2000, 6000),
        "TRAIN_STEPS": Knob(3, 6, 10),
    },
    "09_how_deep_is_your_neuron": {
        "TRACE_MS": Knob(3000, 3000, 6000),     # the one trial per condition drawn in section 2
        "CAL_TRIALS": Knob(2, 4, 8),            # trials per rate factor tried by the input calibration
        "CAL_MS": Knob(1000, 2000, 6000),       # ms per calibration trial
        "N_TRAIN": Knob(4, 64, 512),            # training trials per condition
        "N_TEST": Knob(4, 64, 128),             # test trials per condition
        "DURATION_MS": Knob(2000, 6000, 6000),  # ms per trial
        "DEPTHS": Knob((1, 2), (1, 2, 3), (1, 2, 3, 4, 5, 6, 7)),
        "SEEDS": Knob((0,), (0, 1, 2), (0, 1, 2, 3, 4), minimum=0),
        "WIDTH": Knob(4, 16, 64),
        "T_MS": Knob(21, 41, 81),
        "STEPS": Knob(5, 600, 20000),
        # quick simulates and trains in the notebook's process (0): starting workers costs more than tiny jobs
        "WORKERS": Knob(0, None, None, minimum=0),
    },
    "10_beyond_depth": {
        # the live Branch-ELM: trained on the first N_TRAIN_TRIALS shipped Hay NMDA training trials, validated on
        # the first N_VALID_TRIALS of the shipped validation set, with the one training loop
        "N_TRAIN_TRIALS": Knob(2, 64, 400),
        "N_VALID_TRIALS": Knob(1, 8, 50),
        "N_STEPS": Knob(5, 1000, 20000),
        # times the paper's rates (first stage 1e-4): the TCNs' lab schedule uses 10; the shipped Branch-ELMs chose
        # 50 on validation (of 10, 50, 100; data/lab/README.md), and so does every scale here
        "LR_SCALE": Knob(50.0, 50.0, 50.0),
        # trials scored live per set: the first EVAL_TRIALS of the in-distribution test set and of each
        # out-of-distribution set (each holds 28, paired trial by trial with the test set)
        "EVAL_TRIALS": Knob(3, 28, 28),
        # processes regenerating inputs from their recipes (0: this process, as quick's few trials need)
        "INPUT_WORKERS": Knob(0, 2, 2, minimum=0),
    },
    "11_learning_with_segregated_dendrites": {
        "N_TRAIN": Knob(160, 1347, 1347),       # training digits (the split holds 1,347)
        "EPOCHS": Knob(1, 40, 60),              # passes over them (the paper: 60 over MNIST; tuned for 40)
        "COUPLING_EPOCHS": Knob(1, 20, 60),     # passes for the apical-coupling runs and the exercises
        "SEEDS": Knob((0,), (0, 1, 2), (0, 1, 2, 3, 4), minimum=0),
        "DT_MS": Knob(2.0, 2.0, 1.0),           # integration step (the paper: 1 ms)
        "TEST_MS": Knob(100.0, 100.0, 500.0),   # test phase (the paper: 500 ms; a rate network settles sooner)
        # quick trains in the notebook's process (0): starting workers costs more than its tiny runs
        "WORKERS": Knob(0, None, None, minimum=0),
    },
}

#: The small Hay-cell NMDA sets chapters 04 and 05 simulate when they do not use the shipped lab data: a seed
#: and a shard size per split and scale. Quick's seeds were picked because their short trials contain spikes
#: (the cell is silent in many short trials).
L5PC_NMDA_SIMULATED = {
    "train": Knob(dict(seed=11, trials_per_shard=2), dict(seed=4, trials_per_shard=2),
                  dict(seed=4, trials_per_shard=8)),
    "test": Knob(dict(seed=15, trials_per_shard=1), dict(seed=5, trials_per_shard=2),
                 dict(seed=5, trials_per_shard=8)),
}


def l5pc_nmda_simulated(scale: str, n_train_trials: int, n_test_trials: int, trial_ms: int) -> tuple[dict, dict]:
    """The generation arguments (``n_trials``, ``duration_ms``, ``seed``, ``trials_per_shard``) of the training
    and the test set that chapters 04 and 05 simulate at ``scale``."""
    train = dict(n_trials=n_train_trials, duration_ms=trial_ms, **L5PC_NMDA_SIMULATED["train"].at(scale))
    test = dict(n_trials=n_test_trials, duration_ms=trial_ms, **L5PC_NMDA_SIMULATED["test"].at(scale))
    return train, test


def check_knob(name: str, knob: Knob, value):
    """``value`` given for knob ``name``, checked against what the knob's defaults are; raises ``ValueError``
    naming the knob."""
    where = f"size knob {name}"
    if knob.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {value!r}")
        return value
    if knob.kind == "int":
        n = positive_int(value, where) if knob.minimum >= 1 else non_negative_int(value, where)
        if n < knob.minimum:
            raise ValueError(f"{where} must be at least {knob.minimum}, got {value!r}")
        return n
    if knob.kind == "number":
        return positive_float(value, where)
    if knob.kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where} must be a non-empty string, got {value!r}")
        return value.strip()
    # a list or tuple of whole numbers, returned as the defaults' container type
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{where} must be a non-empty list of whole numbers, got {value!r}")
    check = positive_int if knob.minimum >= 1 else non_negative_int
    items = [check(v, f"{where} (item {i})") for i, v in enumerate(value)]
    container = type(next(v for v in (knob.quick, knob.lab, knob.paper) if v is not None))
    return container(items)


def notebook_knobs(notebook: str) -> dict[str, Knob]:
    """The size knobs of ``notebook`` (its file name without extension)."""
    try:
        return NOTEBOOK_SIZES[notebook]
    except KeyError:
        raise ValueError(f"no size table for notebook {notebook!r}: known notebooks are "
                         f"{', '.join(NOTEBOOK_SIZES)}") from None


def resolve_sizes(notebook: str, scale: str, **given) -> dict[str, tuple]:
    """Resolve a notebook's size knobs: ``{knob: (value, "default" | "given")}``, in the order given.

    Every knob of the notebook's table must be named (``None``: the table's value at ``scale``; anything else
    is checked and wins), and no other: the parameters cell and the table cannot drift apart.
    """
    scale = check_scale(scale)
    knobs = notebook_knobs(notebook)
    unknown = [k for k in given if k not in knobs]
    if unknown:
        raise ValueError(f"{notebook}: no size knob {', '.join(unknown)} (its knobs: {', '.join(knobs)})")
    missing = [k for k in knobs if k not in given]
    if missing:
        raise ValueError(f"{notebook}: size knob(s) {', '.join(missing)} not passed (pass None for the "
                         f"scale's default)")
    return {name: (knobs[name].at(scale), "default") if value is None
            else (check_knob(name, knobs[name], value), "given")
            for name, value in given.items()}
