"""A published NEURON model (hoc template + its own ``.mod`` files) as a cell of the pipeline, in one call.

>>> import neurodepth_lib as nd
>>> model = nd.cells.from_neuron_model(
...     "my_l5pc", hoc=["models/L5PCbiophys3.hoc", "models/L5PCtemplate.hoc"], template="L5PCtemplate",
...     template_args=["../morphologies/cell1.asc"], mod_dir="mod",
...     trees={"basal": "dend[*]", "apical": "apic[*]"}, v_init_mV=-80, dt_ms=0.025)   # doctest: +SKIP
>>> nd.studies.how_deep(model, "runs/my_l5pc")                                         # doctest: +SKIP

or the same fields in a TOML file (paths relative to it), ``neurodepth how-deep --cell my_l5pc.toml``::

    name = "my_l5pc"
    hoc = ["models/L5PCbiophys3.hoc", "models/L5PCtemplate.hoc"]
    template = "L5PCtemplate"
    template_args = ["../morphologies/cell1.asc"]   # relative to workdir (the first hoc file's folder)
    mod_dir = "mod"
    v_init_mV = -80.0
    dt_ms = 0.025
    [trees]
    basal = "dend[*]"
    apical = "apic[*]"

What happens (:class:`PublishedCell`), once per process (spawned and Dask workers rebuild the cell from the
spec, which is plain data):

1. the cell's ``mechanisms`` are loaded: our synapses, then the model's ``.mod`` files
   (:func:`~neurodepth_lib.cells.mechanisms.ensure_model_mechanisms`: compiled once into the content-hashed
   cache; a stray ``x86_64/`` in the working directory is never loaded). Our Hay channels are *not* loaded,
   so a model whose files reuse their names (the Hay model's own ``Ih``, ``NaTa_t``, ... from ModelDB) works.
   A name this process already holds with other contents is a clear error saying what to do: the Hay
   channels are there when an L5PC or a teaching cell was built in the same process, so such a model needs
   a fresh process (generation's spawn and Dask workers are fresh processes);
2. NEURON's ``stdrun.hoc`` and ``import3d.hoc`` are loaded (a model's own ``init.hoc`` or ``mosinit.hoc``
   usually does that), then the hoc files in order, from the directory of the first (``workdir``: hoc code
   often loads files relative to it), and the template is instantiated with ``template_args`` (a path in
   them is relative to ``workdir``);
3. the cell's sections are those of that template object. Sections are named as in the template, without
   the object's prefix (``soma``, ``dend[3]``); ``trees`` maps a tree name to patterns on those names (``*``
   any characters, ``?`` one; brackets are literal), in input order: each tree's segments in section order,
   ``x`` increasing;
4. the paper's excitatory and inhibitory synapses go on every segment of the trees, in channel order
   (:mod:`neurodepth_lib.cells.contract`);
5. the nexus is ``nexus`` (e.g. ``"apic[36](0.9)"``) or picked (:func:`pick_nexus`).

To look at what the pipeline simulates, :func:`build_cell` gives this process's cell of a model (its
``segments``, ``nexus``, ``input_trees()``, ``rate_ranges()``), :func:`model_spec` the spec behind a model.

Conditions are the cell's own names, each mapped onto a kind of excitatory synapse: ``"NMDA"`` (AMPA+NMDA)
or ``"AMPA"`` (AMPA only); default ``{"NMDA": "NMDA", "AMPA": "AMPA"}``.

Inputs: the paper's rate scheme with the Hay cell's rates per um of dendrite (spikes per 100 ms per um of
adjusted length, segment length + 10 um), carried to each tree by its adjusted length (a tree named
``basal`` or ``apical`` takes that Hay tree's density, another name the density of both together), times
``rate_factor``. Without a ``rate_factor`` the model is *uncalibrated* and :func:`neurodepth_lib.studies.how_deep`
first finds one (:func:`neurodepth_lib.cells.calibration.calibrate_inputs`).
"""
from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .. import inputs
from .._io import file_sha256
from .contract import SYNAPSE_KINDS
from .mechanisms import SYNAPSES, import_neuron
from .neuron_adapter import cell_model_from_source, note_built
from .registry import CELLS, CellModel, register_cell
from .synapses import SynapseParams
from .synaptic_cell import SynapticCell
from .l5pc import SegmentTable

h = import_neuron()  # NEURON, imported away from a stray x86_64/ in the working directory

__all__ = ["NeuronModelSpec", "NeuronModelParams", "PublishedCell", "from_neuron_model", "load_spec", "pick_nexus",
           "model_spec", "build_cell"]

_DEFAULT_CONDITIONS = (("NMDA", "NMDA"), ("AMPA", "AMPA"))
# NEURON's own hoc libraries loaded before a model's hoc files: the standard run system and Import3d (templates
# that read a morphology file, such as the Hay cell's, use Import3d_Neurolucida3 / Import3d_GUI)
_HOC_LIBRARIES = ("stdrun.hoc", "import3d.hoc")
_PATTERN_CHARS = re.compile(r"[*?]")


@dataclass(frozen=True)
class NeuronModelParams(SynapseParams):
    """The synapses' numbers (:class:`~neurodepth_lib.cells.synapses.SynapseParams`, the paper's) and the
    input ``rate_factor`` (times the Hay cell's rate densities)."""

    rate_factor: float = 1.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v!r}")
        if not self.rate_factor > 0:
            raise ValueError(f"rate_factor must be positive, got {self.rate_factor!r}")


@dataclass(frozen=True)
class NeuronModelSpec:
    """Everything that defines a published model as a cell of the pipeline (plain data; paths absolute).

    name : the cell's name (datasets and records carry it; ``--cell``).
    hoc : hoc files loaded in order (e.g. the biophysics, then the template).
    template : the hoc template to instantiate; ``template_args`` its arguments (strings or numbers).
    mod_dir : directory of the model's ``.mod`` files (None: NEURON's built-ins and ours only).
    trees : ``((tree name, (pattern, ...)), ...)`` in input order (basal first, then apical, as the paper).
    soma : pattern of the soma section (the first match; ``"soma"`` also finds ``soma[0]``).
    nexus : ``"section(x)"``, or None to pick one (:func:`pick_nexus`).
    v_init_mV, dt_ms, secondorder : how trials are integrated (``secondorder`` 0 backward Euler, 2
        Crank-Nicolson). celsius_degC : set ``h.celsius`` when the cell is built (None leaves it).
    conditions : ``((the cell's condition name, "NMDA" or "AMPA"), ...)``.
    rate_factor : times the paper's rate densities; None: to be calibrated.
    synapses : overrides of :class:`NeuronModelParams` fields, ``((field, value), ...)``.
    workdir : where the hoc files are loaded from (default the first hoc file's directory).
    """

    name: str
    hoc: tuple
    template: str
    trees: tuple
    template_args: tuple = ()
    mod_dir: str | None = None
    soma: str = "soma"
    nexus: str | None = None
    v_init_mV: float = -70.0
    dt_ms: float = 0.025
    secondorder: int = 0
    celsius_degC: float | None = None
    conditions: tuple = _DEFAULT_CONDITIONS
    rate_factor: float | None = None
    synapses: tuple = ()
    workdir: str | None = None

    # ---- what the pipeline needs -------------------------------------------------------------------------
    @property
    def condition_names(self) -> tuple:
        return tuple(name for name, _ in self.conditions)

    def kind_of(self, condition) -> str:
        return dict(self.conditions)[condition]

    def params(self, cell_params: dict | None = None) -> NeuronModelParams:
        """The cell's parameters: the spec's synapse overrides and rate factor, then ``cell_params``."""
        cell_params = dict(cell_params or {})
        known = {f.name for f in fields(NeuronModelParams)}
        unknown = set(cell_params) - known
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)} of the cell {self.name!r}; known: "
                             f"{sorted(known)}")
        base = dict(self.synapses)
        if self.rate_factor is not None:
            base["rate_factor"] = self.rate_factor
        return NeuronModelParams(**{**base, **cell_params})

    def describe(self, condition, cell_params) -> dict:
        """Every number, JSON-able; files by name and sha256 (paths differ between machines, content not)."""
        def files(paths):
            return [{"name": Path(p).name, "sha256": file_sha256(p)} for p in paths]

        mods = sorted(Path(self.mod_dir).glob("*.mod")) if self.mod_dir else []
        spec = {"hoc": files(self.hoc), "template": self.template, "template_args": list(self.template_args),
                "mod_files": files(mods), "trees": {t: list(p) for t, p in self.trees}, "soma": self.soma,
                "nexus": self.nexus, "celsius_degC": self.celsius_degC,
                "conditions": {c: k for c, k in self.conditions}}
        return {"published_model": spec, **asdict(self.params(cell_params))}

    def cell(self, condition, cell_params) -> "PublishedCell":
        """This process's cell for this spec and parameters: the live one when it matches, else built."""
        params = self.params(cell_params)
        cell = PublishedCell.live()
        if cell is None or cell.spec != self or cell.params != params:
            cell = PublishedCell(self, condition, params)
            note_built(cell)
        return cell

    def cell_model(self) -> CellModel:
        """The :class:`~neurodepth_lib.cells.registry.CellModel` generation uses (picklable)."""
        return cell_model_from_source(
            self.name, self, conditions=self.condition_names,
            simulation_defaults={"dt_ms": self.dt_ms, "v_init_mV": self.v_init_mV, "secondorder": self.secondorder},
            default_trials_per_shard=16, rate_param="rate_factor", calibrated=self.rate_factor is not None)


# ----------------------------------------------------------------------------------------------------
# Building the spec: checks first, nothing of NEURON
# ----------------------------------------------------------------------------------------------------

def _file(path, base: Path, what: str) -> str:
    p = Path(path).expanduser()
    p = (base / p if not p.is_absolute() else p).resolve()
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} does not exist")
    return str(p)


def _patterns(value, what: str) -> tuple:
    items = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ValueError(f"{what} must be a section-name pattern or a list of them (e.g. 'dend[*]'), got {value!r}")
    return tuple(v.strip() for v in items)


def _conditions(conditions) -> tuple:
    if conditions is None:
        return _DEFAULT_CONDITIONS
    if isinstance(conditions, str):
        conditions = [conditions]
    pairs = list(conditions.items()) if isinstance(conditions, dict) else [(c, c) for c in conditions]
    if not pairs:
        raise ValueError("conditions must name at least one condition")
    for name, kind in pairs:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a condition name must be a non-empty string, got {name!r}")
        if kind not in SYNAPSE_KINDS:
            raise ValueError(f"condition {name!r} must map to a kind of excitatory synapse, 'NMDA' (AMPA+NMDA) or "
                             f"'AMPA' (AMPA only), got {kind!r}"
                             + ("; give conditions as {name: kind}" if name == kind else ""))
    return tuple((str(n), str(k)) for n, k in pairs)


def _number(value, what: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and not value > 0):
        raise ValueError(f"{what} must be a finite{' positive' if positive else ''} number, got {value!r}")
    return float(value)


def from_neuron_model(name: str, *, hoc, template: str, trees: dict, template_args=(), mod_dir=None,
                      soma: str = "soma", nexus: str | None = None, v_init_mV: float = -70.0, dt_ms: float = 0.025,
                      secondorder: int = 0, celsius_degC: float | None = None, conditions=None,
                      rate_factor: float | None = None, synapses: dict | None = None, workdir=None,
                      base_dir=None, register: bool = True) -> CellModel:
    """A published NEURON model as a cell of the pipeline (see the module notes): returns its
    :class:`~neurodepth_lib.cells.registry.CellModel`, registered under ``name`` unless ``register=False``.

    Parameters
    ----------
    name : the cell's name.
    hoc : a hoc file or a list of them, loaded in order; template : the template to instantiate;
        template_args : its arguments.
    trees : ``{"basal": "dend[*]", "apical": "apic[*]"}``: tree name -> section-name pattern(s), in input order.
    mod_dir : the model's ``.mod`` files (compiled and loaded beside our synapses; not beside our Hay channels).
    soma : the soma's section name (pattern; first match; ``"soma"`` also finds ``soma[0]``). nexus : ``"apic[36](0.9)"`` or None (picked).
    v_init_mV, dt_ms, secondorder, celsius_degC : simulation settings (fixed step ``dt_ms``; backward Euler
        unless ``secondorder=2``).
    conditions : the cell's condition names, ``{"control": "NMDA", "APV": "AMPA"}`` (name -> synapse kind) or a
        list of kinds; default ``NMDA`` and ``AMPA``.
    rate_factor : times the paper's rate densities (None: calibrated by ``how_deep``).
    synapses : overrides of the paper's synapse numbers (:class:`NeuronModelParams` fields).
    workdir : the directory hoc files are loaded from (default: the first hoc file's).
    base_dir : relative paths are relative to it (default: the working directory).

    Every argument is checked here (files exist, names and numbers are valid); NEURON is touched only when a
    cell is first built (in this process or a worker).
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise ValueError(f"name must be letters, digits, '_', '.' or '-', got {name!r}")
    base = Path(base_dir).expanduser().resolve() if base_dir is not None else Path.cwd()
    hoc_files = (hoc,) if isinstance(hoc, (str, os.PathLike)) else tuple(hoc)
    if not hoc_files:
        raise ValueError("hoc must name at least one hoc file")
    hoc_files = tuple(_file(f, base, "the hoc file") for f in hoc_files)
    if not isinstance(template, str) or not re.fullmatch(r"[A-Za-z_]\w*", template):
        raise ValueError(f"template must be the name of a hoc template, got {template!r}")
    args = (template_args,) if isinstance(template_args, (str, int, float)) else tuple(template_args)
    for a in args:
        if isinstance(a, bool) or not isinstance(a, (str, int, float)):
            raise ValueError(f"template_args must be strings or numbers, got {a!r}")
    if mod_dir is not None:
        m = Path(mod_dir).expanduser()
        m = (base / m if not m.is_absolute() else m).resolve()
        if not m.is_dir():
            raise FileNotFoundError(f"mod_dir {m} is not a directory")
        if not any(m.glob("*.mod")):
            raise ValueError(f"mod_dir {m} holds no .mod file")
        mod_dir = str(m)
    if not isinstance(trees, dict) or not trees:
        raise ValueError("trees must map tree names to section-name patterns, e.g. {'basal': 'dend[*]', "
                         "'apical': 'apic[*]'}")
    tree_spec = tuple((str(t), _patterns(p, f"trees[{t!r}]")) for t, p in trees.items())
    soma = _patterns(soma, "soma")[0]
    if nexus is not None and not re.fullmatch(r"\s*[^()\s]+\s*(\(\s*[0-9.]+\s*\))?\s*", str(nexus)):
        raise ValueError(f"nexus must look like 'apic[36](0.9)' (a section and x), got {nexus!r}")
    v_init_mV = _number(v_init_mV, "v_init_mV")
    dt_ms = _number(dt_ms, "dt_ms", positive=True)
    if isinstance(secondorder, bool) or secondorder not in (0, 1, 2):
        raise ValueError(f"secondorder must be 0 (backward Euler), 1 or 2 (Crank-Nicolson), got {secondorder!r}")
    if celsius_degC is not None:
        celsius_degC = _number(celsius_degC, "celsius_degC")
    if rate_factor is not None:
        rate_factor = _number(rate_factor, "rate_factor", positive=True)
    synapses = dict(synapses or {})
    known = {f.name for f in fields(NeuronModelParams)} - {"rate_factor"}
    if set(synapses) - known:
        raise ValueError(f"unknown synapse parameter(s) {sorted(set(synapses) - known)}; known: {sorted(known)}")
    NeuronModelParams(**synapses)  # checks the values
    work = Path(workdir).expanduser() if workdir is not None else Path(hoc_files[0]).parent
    work = (base / work if not work.is_absolute() else work).resolve()
    if not work.is_dir():
        raise FileNotFoundError(f"workdir {work} is not a directory")
    spec = NeuronModelSpec(
        name=name, hoc=hoc_files, template=template, trees=tree_spec, template_args=args, mod_dir=mod_dir,
        soma=soma, nexus=None if nexus is None else str(nexus).replace(" ", ""), v_init_mV=v_init_mV, dt_ms=dt_ms,
        secondorder=int(secondorder), celsius_degC=celsius_degC, conditions=_conditions(conditions),
        rate_factor=rate_factor, synapses=tuple(sorted(synapses.items())), workdir=str(work))
    model = spec.cell_model()
    if register:
        old = CELLS.get(name)
        if old is not None and getattr(old.describe, "args", (None,))[0].__class__ is not NeuronModelSpec:
            raise ValueError(f"{name!r} is the name of a built-in cell; choose another name for this model")
        register_cell(model, replace=True)
    return model


_SPEC_KEYS = ("name", "hoc", "template", "template_args", "mod_dir", "trees", "soma", "nexus", "v_init_mV", "dt_ms",
              "secondorder", "celsius_degC", "conditions", "rate_factor", "synapses", "workdir")


def load_spec(path, *, register: bool = True) -> CellModel:
    """:func:`from_neuron_model` from a TOML file with the same fields (paths relative to the file)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"cell spec {path} does not exist")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ImportError("reading a TOML cell spec on Python 3.10 needs 'pip install tomli'") from None
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from None
    unknown = set(data) - set(_SPEC_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {sorted(unknown)}; the fields are {', '.join(_SPEC_KEYS)}")
    for key in ("name", "hoc", "template", "trees"):
        if key not in data:
            raise ValueError(f"{path}: the field {key!r} is missing (needed: name, hoc, template, trees)")
    name = data.pop("name")
    try:
        return from_neuron_model(name, base_dir=path.parent, register=register, **data)
    except (ValueError, FileNotFoundError) as err:
        raise type(err)(f"{path}: {err}") from None


def model_spec(model) -> NeuronModelSpec:
    """The :class:`NeuronModelSpec` behind a ``CellModel`` made by :func:`from_neuron_model` or :func:`load_spec`
    (a registered name, a ``CellModel``, a TOML path: anything :func:`~neurodepth_lib.cells.resolve_cell` takes)."""
    from .registry import resolve_cell

    resolved = resolve_cell(model)
    source = getattr(resolved.describe, "args", (None,))[0]
    if not isinstance(source, NeuronModelSpec):
        raise ValueError(f"cell {resolved.name!r} was not made by from_neuron_model or load_spec: it has no "
                         "published-model spec")
    return source


def build_cell(model, condition=None, cell_params: dict | None = None) -> "PublishedCell":
    """This process's :class:`PublishedCell` of a published model (built on first use, then reused), to look at
    what the pipeline simulates: its ``segments`` (one row per input channel pair), ``nexus``, ``soma``,
    ``input_trees()``, ``rate_ranges()``. ``condition``: one of the model's (default its first);
    ``cell_params``: e.g. ``{"rate_factor": 2.0}``. Only one such cell lives in a process: building another
    model's cell (or generation doing so) destroys this one."""
    spec = model_spec(model)
    condition = spec.condition_names[0] if condition is None else condition
    if condition not in spec.condition_names:
        raise ValueError(f"unknown condition {condition!r} for the cell {spec.name!r}; choose one of "
                         f"{', '.join(spec.condition_names)}")
    cell = spec.cell(condition, cell_params)
    cell.set_condition(condition)
    return cell


# ----------------------------------------------------------------------------------------------------
# The cell
# ----------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _in_dir(path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _matcher(patterns) -> re.Pattern:
    parts = [re.escape(p).replace(r"\*", ".*").replace(r"\?", ".") for p in patterns]
    return re.compile("(?:" + "|".join(parts) + r")\Z")


def _parent(sec):
    ref = h.SectionRef(sec=sec)
    return ref.parent if ref.has_parent() else None


def pick_nexus(tree_sections: list):
    """The nexus of a tree (a list of sections): walking from its root along the child with the most
    dendrite beyond it, the first section where the tree forks into two subtrees each holding at least a
    quarter of the dendrite beyond the fork (a pyramidal cell's main bifurcation); its last segment. A tree
    that never forks so: the segment halfway along the walked path."""
    members = {s.name(): s for s in tree_sections}
    children = {n: [] for n in members}
    roots = []
    for n, s in members.items():
        p = _parent(s)
        if p is not None and p.name() in members:
            children[p.name()].append(n)
        else:
            roots.append(n)
    size = {}

    def subtree(n):
        if n not in size:
            size[n] = members[n].L + sum(subtree(c) for c in children[n])
        return size[n]

    current = max(roots, key=subtree)
    path = [current]
    while children[current]:
        kids = sorted(children[current], key=subtree, reverse=True)
        beyond = sum(subtree(c) for c in kids)
        if len(kids) >= 2 and subtree(kids[1]) >= 0.25 * beyond:
            sec = members[current]
            return sec((sec.nseg - 0.5) / sec.nseg)
        current = kids[0]
        path.append(current)
    half = sum(members[n].L for n in path) / 2
    for n in path:
        sec = members[n]
        if sec.L >= half:
            return sec(min(max(half / sec.L, 0.5 / sec.nseg), 1 - 0.5 / sec.nseg))
        half -= sec.L
    sec = members[path[-1]]
    return sec(0.5)


class PublishedCell(SynapticCell):
    """A published model's cell with the paper's synapses (see the module notes); built from a
    :class:`NeuronModelSpec` (``spec.cell(condition, cell_params)`` reuses the live one)."""

    params_class = NeuronModelParams

    def __init__(self, spec: NeuronModelSpec, condition: str | None = None, params=None):
        if not isinstance(spec, NeuronModelSpec):
            raise TypeError(f"spec must be a NeuronModelSpec, got {type(spec).__name__}")
        self.spec = spec
        self.conditions = spec.condition_names
        super().__init__(spec.condition_names[0] if condition is None else condition,
                         spec.params() if params is None else params)

    @property
    def mechanisms(self) -> tuple:
        """What NEURON must hold for this cell: our synapses and the model's own ``.mod`` directory (never our
        Hay channels)."""
        return (SYNAPSES,) + ((self.spec.mod_dir,) if self.spec.mod_dir else ())

    def _check_condition(self, condition) -> None:  # the cell's own names
        if condition not in self.conditions:
            raise ValueError(f"unknown condition {condition!r} for the cell {self.spec.name!r}; choose one of "
                             f"{', '.join(self.conditions)}")

    def synapse_kind(self, condition) -> str:
        return self.spec.kind_of(condition) if condition is not None else None

    def _build(self) -> None:
        spec = self.spec  # its mechanisms are loaded (SynapticCell.__init__)
        for library in _HOC_LIBRARIES:  # what published templates take for granted (a model's init.hoc loads them)
            h.load_file(library)
        with _in_dir(spec.workdir):
            for f in spec.hoc:
                try:
                    ok = h.load_file(str(f))
                except RuntimeError as err:  # hoc raised: its own message is printed above
                    raise RuntimeError(f"NEURON could not load the hoc file {f}: {err} (NEURON's message, printed "
                                       "above, names the line)") from None
                if not ok:
                    raise RuntimeError(f"NEURON could not load the hoc file {f} (its messages are above)")
            template = getattr(h, spec.template, None)
            if template is None:
                raise ValueError(f"the hoc files {[Path(f).name for f in spec.hoc]} define no template "
                                 f"{spec.template!r}")
            self._hoc = template(*spec.template_args)
        if spec.celsius_degC is not None:
            h.celsius = spec.celsius_degC
        prefix = self._hoc.hname() + "."
        sections = [s for s in h.allsec() if s.name().startswith(prefix)]
        local = {s.name()[len(prefix):]: s for s in sections}
        if not sections:
            raise ValueError(f"the template {spec.template} made no sections")
        soma = [n for n in local if _matcher([spec.soma]).match(n)]
        if not soma and "[" not in spec.soma:  # "soma" names the section soma[0] of a template's array too
            soma = [n for n in local if n == f"{spec.soma}[0]"]
        if not soma:
            raise ValueError(f"no section of {spec.template} matches soma={spec.soma!r}; its sections: "
                             f"{_some(local)}")
        self.soma = local[soma[0]]
        owner, layout = {}, []
        for tree, patterns in spec.trees:
            rx = _matcher(patterns)
            names = [n for n in local if rx.match(n) and n != soma[0]]
            if not names:
                raise ValueError(f"tree {tree!r}: no section of {spec.template} matches {list(patterns)}; its "
                                 f"sections: {_some(local)}")
            for n in names:
                if n in owner:
                    raise ValueError(f"section {n} matches both trees {owner[n]!r} and {tree!r}")
                owner[n] = tree
                layout.append((n, tree))
        self._tree_sections = {tree: [local[n] for n, t in layout if t == tree] for tree, _ in spec.trees}
        origin = self.soma(0.5)
        rows, self._segment_objects = [], []
        for index, (n, tree) in enumerate(layout):
            sec = local[n]
            for seg in sec:
                rows.append((n, index, seg.x, sec.L / sec.nseg, h.distance(origin, seg), seg.diam, tree))
                self._segment_objects.append(seg)
        cols = list(zip(*rows))
        self.segments = SegmentTable(
            section_name=np.array(cols[0]), section_index=np.array(cols[1], dtype=np.int32), x=np.array(cols[2]),
            length_um=np.array(cols[3]), path_distance_um=np.array(cols[4]), diam_um=np.array(cols[5]),
            region=np.array(cols[6]))
        if spec.nexus is not None:
            sec_name, _, x = spec.nexus.partition("(")
            if sec_name not in local:
                raise ValueError(f"nexus {spec.nexus!r}: {spec.template} has no section {sec_name!r}; its sections: "
                                 f"{_some(local)}")
            x = float(x.rstrip(")")) if x else 0.5
            if not 0.0 <= x <= 1.0:
                raise ValueError(f"nexus {spec.nexus!r}: x must lie in [0, 1]")
            self.nexus = local[sec_name](x)
        else:
            tree = "apical" if "apical" in self._tree_sections else spec.trees[-1][0]
            self.nexus = pick_nexus(self._tree_sections[tree])
        self.nexus_name = f"{self.nexus.sec.name()[len(prefix):]}({self.nexus.x:.3g})"
        self.all, self.dend, self.apic, self.axon = [], [], [], []

    # ---- inputs ---------------------------------------------------------------------------------------
    def input_trees(self) -> dict:
        """``{tree: (segment indices, adjusted lengths um)}`` (adjusted length = segment length + 10 um)."""
        adjusted = self.segments.length_um + 10.0
        return {t: (np.flatnonzero(self.segments.region == t), adjusted[self.segments.region == t])
                for t, _ in self.spec.trees}

    def rate_ranges(self, condition: str | None = None) -> dict:
        """Per tree: the paper's coarse rate ranges for the condition's synapse kind, carried over by the tree's
        adjusted length (the Hay tree of the same name, or both Hay trees together), times ``rate_factor``."""
        condition = self.condition if condition is None else condition
        self._check_condition(condition)
        return {tree: inputs.hay_rates_for_tree(self.synapse_kind(condition), float(adjusted.sum()),
                                                like=tree if tree in inputs.HAY_ADJUSTED_LENGTH_UM else None,
                                                factor=self.params.rate_factor)
                for tree, (_, adjusted) in self.input_trees().items()}

    def _repr_extra(self) -> str:
        return f", model={self.spec.name!r}, nexus={self.nexus_name!r}"

    def destroy(self) -> None:
        """Delete the synapses and NetCons, and the template object (NEURON deletes its sections with it)."""
        if not getattr(self, "_alive", False):
            return
        self._alive = False
        self.netcons, self.synapses, self._segment_objects, self.nexus, self.soma = [], [], [], None, None
        self._tree_sections = {}
        self._hoc = None


def _some(names, n: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
