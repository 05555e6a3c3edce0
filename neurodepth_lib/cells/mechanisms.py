"""Make NEURON mechanisms available in this process: ours (``cells/mod/*.mod``) and a published model's.

Our ``.mod`` files form two **libraries**, compiled and loaded separately (:data:`LIBRARIES`):

* ``"synapses"``: the paper's synapses (``SynAmpa``, ``SynAmpaNmda``, ``SynGabaA``), needed by every NEURON
  cell of the collection;
* ``"hay_channels"``: the Hay et al. (2011) channels and calcium shell (``NaTa_t``, ``Ih``, ``CaDynamics_E2``,
  ...), needed only by :class:`~neurodepth_lib.cells.L5PC` and :class:`~neurodepth_lib.cells.TeachingCell`.

A cell declares what it needs (``mechanisms``, part of :class:`~neurodepth_lib.cells.contract.NeuronCell`) and
:func:`ensure_cell_mechanisms` loads exactly that: a cell made from a published model
(:func:`~neurodepth_lib.cells.from_neuron_model`) gets our synapses and its own ``.mod`` files, never our Hay
channels, so a model whose files reuse the Hay names with other contents (the Hay model's own files from
ModelDB) works. :func:`ensure_mechanisms` (both libraries, or the ones named) and
:func:`ensure_model_mechanisms` (a model's directory) are the two halves.

Order matters to the last bit: NEURON sums a compartment's currents in the order the mechanism types were
loaded. The L5PC and the teaching cell load the Hay channels, then the synapses: the order of the single library
of earlier versions, so their voltages are unchanged to the last bit. In a process that loaded our synapses
first (a published cell built before an L5PC), the L5PC's voltages can differ from a fresh process's in the last
bit of a float32 (generation's worker processes are fresh processes; with ``workers=0`` it runs in the calling
process).

Every load:

1. returns at once when those mechanisms are already loaded in this process (from the same sources);
2. hashes the ``.mod`` sources together with the NEURON version and the platform;
3. compiles them with ``nrnivmodl`` into the collection's cache named after that hash
   (``$NEURODEPTH_CACHE_DIR/mechanisms/<hash>`` or ``~/.cache/neurodepth/mechanisms/<hash>``), under a file
   lock so that many worker processes starting together compile once and never see a half-built library;
4. loads the compiled library explicitly by its full path (never through a ``./x86_64`` that happens to
   be in the working directory, which papermill, nbval and worker pools do not agree on);
5. raises :class:`RuntimeError` with the compiler's output when anything fails, and with the fix when
   ``nrnivmodl`` or a C++ compiler is missing.

NEURON holds one mechanism per name in a process and cannot unload a library. Before anything is compiled,
every name a library declares is checked against the names this process already has: a byte-identical source
is the same mechanism (not compiled again: the loaded one serves); anything else is a
:class:`MechanismClashError` naming the mechanisms, where each came from, and the way out (a fresh process:
generation's spawn and Dask workers are fresh processes that load only what their cell needs).

Importing this module sets ``NEURON_MODULE_OPTIONS=-nogui`` (unless already set) so that NEURON, when it is
first imported, does not look for a display. Every module of the package imports NEURON through
:func:`import_neuron`, which imports it from a directory without compiled mechanisms: NEURON loads an
``x86_64/`` (``arm64/``, ...) it finds in the working directory at import, and a stray one there (left by a
``nrnivmodl`` run by hand) would define mechanisms before ours and make ours fail to load.
"""
from __future__ import annotations

import hashlib
import os

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

import platform  # noqa: E402  (the environment must be set before anything imports neuron)
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from .. import _project  # noqa: E402

__all__ = ["MOD_DIR", "LIBRARIES", "SYNAPSES", "HAY_CHANNELS", "ensure_mechanisms", "ensure_model_mechanisms",
           "ensure_cell_mechanisms", "loaded_mechanisms", "mechanism_names", "mechanisms_hash", "cache_root",
           "import_neuron", "MechanismClashError", "ModelMechanismError"]

MOD_DIR = Path(__file__).resolve().parent / "mod"
SYNAPSES = "synapses"
HAY_CHANNELS = "hay_channels"
# Our libraries: name -> the .mod files of MOD_DIR it compiles (together they are every file there).
LIBRARIES = {
    SYNAPSES: ("SynAmpa.mod", "SynAmpaNmda.mod", "SynGabaA.mod"),
    HAY_CHANNELS: ("CaDynamics_E2.mod", "Ca_HVA.mod", "Ca_LVAst.mod", "Ih.mod", "Im.mod", "K_Pst.mod", "K_Tst.mod",
                   "NaTa_t.mod", "NaTs2_t.mod", "Nap_Et2.mod", "SK_E2.mod", "SKv3_1.mod"),
}
_LABELS = {SYNAPSES: "neurodepth's synapses", HAY_CHANNELS: "neurodepth's Hay channels"}
_WHO_NEEDS = {SYNAPSES: "every cell", HAY_CHANNELS: "the L5PC and the teaching cell"}
_LOCK_TIMEOUT_S = 900.0
_BEFORE = Path("<loaded before neurodepth asked>")


@dataclass(frozen=True)
class _Origin:
    """Where a mechanism loaded in this process came from."""

    source: bytes | None   # the .mod file's bytes (None: not loaded by neurodepth)
    file: Path | None      # that file
    owner: str             # e.g. "neurodepth's Hay channels", "the model's mechanisms in /x/mod"
    library: Path          # the compiled directory loaded


_origins: dict = {}          # mechanism name -> _Origin, for every mechanism neurodepth loaded (this process)
_libraries: dict = {}        # our library name -> the directory loaded (this process)
_model_libraries: dict = {}  # digest of a model's .mod files -> the directory loaded (this process)
# the directories NEURON looks in for compiled mechanisms when it is imported (neuron/__init__ and hoc's init)
_ARCH_DIRS = (platform.machine(), "i686", "x86_64", "powerpc", "umac", "arm64", "aarch64")


class ModelMechanismError(RuntimeError, ValueError):
    """Mechanisms cannot be loaded (a compile failure, a name clash): the user can fix it (a ``ValueError``
    too, so the command line reports it in one line)."""


class MechanismClashError(ModelMechanismError):
    """A mechanism has the name of one NEURON already has in this process, with other contents (NEURON cannot
    hold two of one name, nor unload a library)."""


def import_neuron():
    """``neuron.h``, importing NEURON (once) from a directory without compiled mechanisms in it.

    NEURON loads ``<arch>/libnrnmech.so`` from the working directory when it is imported; a stray one there
    would shadow ours (or a model's) under the same names. When the working directory holds such a folder,
    the import runs from the system's temporary directory and the working directory is restored after.
    """
    if "neuron" not in sys.modules:
        cwd = os.getcwd()
        stray = any((Path(cwd) / arch).is_dir() for arch in _ARCH_DIRS)
        if stray:
            os.chdir(tempfile.gettempdir())
        try:
            import neuron  # noqa: F401
        finally:
            if stray:
                os.chdir(cwd)
    from neuron import h

    return h


def _mod_files(mod_dir: Path = MOD_DIR) -> list[Path]:
    files = sorted(Path(mod_dir).glob("*.mod"))
    if not files:
        what = "the package data is incomplete" if Path(mod_dir) == MOD_DIR else "nothing to compile"
        raise RuntimeError(f"no .mod files found in {mod_dir}; {what}")
    return files


_DECLARATION = re.compile(r"^\s*(SUFFIX|POINT_PROCESS|ARTIFICIAL_CELL)\s+(\w+)", re.MULTILINE)
_COMMENT = re.compile(r"COMMENT.*?ENDCOMMENT|:[^\n]*", re.DOTALL)


def _declared_in(files) -> dict[str, Path]:
    """``{mechanism name: .mod file}`` for the SUFFIX / POINT_PROCESS / ARTIFICIAL_CELL names the files declare."""
    out = {}
    for path in files:
        for m in _DECLARATION.finditer(_COMMENT.sub("", Path(path).read_text(errors="replace"))):
            out[m.group(2)] = Path(path)
    return out


def _declared(mod_dir: Path) -> dict[str, Path]:
    """:func:`_declared_in` of every ``.mod`` file of ``mod_dir``."""
    return _declared_in(_mod_files(mod_dir))


def _library_files(library: str) -> list[Path]:
    """The ``.mod`` files of one of our libraries (:data:`LIBRARIES`)."""
    if library not in LIBRARIES:
        raise ValueError(f"unknown mechanism library {library!r}; ours are {', '.join(map(repr, LIBRARIES))}")
    files = [MOD_DIR / name for name in LIBRARIES[library]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing from {MOD_DIR}; the package data is incomplete")
    return files


def mechanism_names(mod_dir: Path = MOD_DIR, *, library: str | None = None) -> list[str]:
    """The SUFFIX / POINT_PROCESS names declared by the ``.mod`` files of ``mod_dir`` (default: all of ours), or
    by one of our libraries (``library="synapses"`` or ``"hay_channels"``)."""
    if library is not None:
        return list(_declared_in(_library_files(library)))
    return list(_declared(Path(mod_dir)))


def mechanisms_hash(mod_dir: Path = MOD_DIR) -> str:
    """A short hash of the ``.mod`` sources, the NEURON version and the platform (the cache key)."""
    return _hash_files(_mod_files(mod_dir))


def _hash_files(files) -> str:
    """:func:`mechanisms_hash` of a list of ``.mod`` files."""
    import_neuron()
    import neuron

    h = hashlib.sha256()
    for part in (neuron.__version__, sys.platform, platform.machine()):
        h.update(part.encode() + b"\0")
    for path in files:
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """``mechanisms/`` in the collection's cache folder (:func:`neurodepth_lib._project.cache_dir`:
    ``$NEURODEPTH_CACHE_DIR``, else ``~/.cache/neurodepth`` on Linux)."""
    return _project.cache_dir("mechanisms")


def _loaded_names(names=None) -> set[str]:
    """Which of ``names`` (default: all) NEURON already knows as density or point-process mechanisms."""
    h = import_neuron()

    known = set()
    for kind in (0, 1):  # 0: density mechanisms, 1: point processes / artificial cells
        mt = h.MechanismType(kind)
        name = h.ref("")
        for i in range(int(mt.count())):
            mt.select(i)
            mt.selected(name)
            known.add(name[0])
    return known if names is None else known & set(names)


def _find_library(build_dir: Path) -> Path | None:
    for pattern in ("*/libnrnmech.so", "*/libnrnmech.dylib", "*/.libs/libnrnmech.so", "nrnmech.dll",
                    "*/nrnmech.dll"):
        found = sorted(build_dir.glob(pattern))
        if found:
            return found[0]
    return None


def _find_nrnivmodl() -> str:
    # The venv's bin directory first: a venv used without activation is not on PATH.
    beside_python = Path(sys.executable).parent / ("nrnivmodl.bat" if os.name == "nt" else "nrnivmodl")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nrnivmodl")
    if found:
        return found
    raise RuntimeError(
        "cannot compile the NEURON mechanisms: the 'nrnivmodl' command was not found (looked next to "
        f"{sys.executable} and on PATH). Fix: install NEURON into this Python environment with "
        "'python -m pip install neuron' (it ships nrnivmodl), or activate the environment that has it.")


def _check_compiler() -> None:
    candidates = [os.environ["CXX"].split()[0]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    if not any(shutil.which(c) for c in candidates):
        raise RuntimeError(
            "cannot compile the NEURON mechanisms: no C++ compiler found (looked for "
            f"{', '.join(candidates)} on PATH). Fix: install one, e.g. 'sudo apt-get install build-essential' "
            "(Debian/Ubuntu), 'xcode-select --install' (macOS) or 'conda install -c conda-forge cxx-compiler', "
            "then call ensure_mechanisms() again.")
    if os.name != "nt" and not shutil.which("make"):
        raise RuntimeError(
            "cannot compile the NEURON mechanisms: 'make' was not found on PATH. Fix: install it, e.g. "
            "'sudo apt-get install build-essential' (Debian/Ubuntu) or 'xcode-select --install' (macOS).")


def _compile(mod_files: list[Path], target: Path, source: Path = MOD_DIR) -> None:
    """Compile into a temporary sibling of ``target``, then rename it into place (atomic)."""
    nrnivmodl = _find_nrnivmodl()
    _check_compiler()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        src = tmp / "mod"
        src.mkdir()
        for f in mod_files:
            shutil.copy2(f, src / f.name)
        env = dict(os.environ)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        try:
            proc = subprocess.run([nrnivmodl, "mod"], cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=_LOCK_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"running {nrnivmodl} failed: {exc}") from exc
        library = _find_library(tmp)
        if proc.returncode != 0 or library is None:
            output = (proc.stdout + "\n" + proc.stderr).strip()
            raise RuntimeError(
                f"nrnivmodl failed to compile the mechanisms in {source} (exit code {proc.returncode}"
                f"{'' if library else ', no library produced'}). Compiler output (last 6000 characters):\n"
                f"{output[-6000:]}")
        (tmp / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
        (tmp / "COMPLETE").write_text("built by neurodepth_lib.cells.mechanisms\n")
        if target.exists():  # a stale, incomplete directory left by a crashed run
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _as_libraries(libraries) -> tuple:
    libraries = (libraries,) if isinstance(libraries, str) else tuple(libraries)
    if not libraries:
        raise ValueError(f"libraries must name at least one of {', '.join(map(repr, LIBRARIES))}")
    for lib in libraries:
        _library_files(lib)  # a clear error for an unknown name
    return libraries


def ensure_mechanisms(cache_dir: str | os.PathLike | None = None, *, verbose: bool = False,
                      libraries=(HAY_CHANNELS, SYNAPSES)) -> Path:
    """Compile (once per machine and NEURON version) and load our mechanisms: by default both libraries, the
    paper's synapses and the Hay channels (what the L5PC and the teaching cell need; ``make`` and chapter 02
    call it so), or the ones named in ``libraries`` (``"synapses"``, ``"hay_channels"``).

    Cells load what they need themselves (:func:`ensure_cell_mechanisms`), so this call is only needed to
    compile ahead or to use our mechanisms in a cell of one's own. Safe to call from many processes at once and
    many times in one process; after the first success in a process it returns immediately.

    Parameters
    ----------
    cache_dir : path, optional
        Where compiled libraries are kept (default :func:`cache_root`).
    verbose : bool
        Print what is being done (compiling takes 20-60 s the first time).
    libraries : str or sequence of str
        Which of our libraries (:data:`LIBRARIES`).

    Returns
    -------
    Path
        The directory whose library is loaded, of the last library named (by default the synapses').

    The default order, channels then synapses, is the L5PC's: NEURON sums a compartment's currents in the
    order the mechanism types were loaded, and this order gives voltages equal to the last bit to those of
    the single library of earlier versions.

    Raises
    ------
    RuntimeError
        When compilation or loading fails (with the compiler's output), or when ``nrnivmodl`` or a compiler
        is missing (with the fix).
    MechanismClashError
        When this process already holds other mechanisms of the same names (a published model's ``Ih``, say),
        with what to do (a fresh process).
    """
    target = None
    for lib in _as_libraries(libraries):
        target = _ensure_library(lib, cache_dir, verbose)
    return target


def _ensure_library(library: str, cache_dir, verbose: bool) -> Path:
    import_neuron()
    files = _library_files(library)
    declared = _declared_in(files)
    present = _loaded_names(set(declared))
    if library in _libraries and present == set(declared):
        return _libraries[library]
    target = _load_sources(files, declared, present, kind=library, owner=_LABELS[library], source=MOD_DIR,
                           cache_dir=cache_dir, verbose=verbose)
    _libraries[library] = target
    return target


def ensure_model_mechanisms(mod_dir, cache_dir: str | os.PathLike | None = None, *,
                            verbose: bool = False) -> Path | None:
    """Compile (once per machine, content-hashed like ours) and load the ``.mod`` files of a published model.

    ``mod_dir`` is the directory holding them (not a compiled ``x86_64/``). Our synapses are loaded first
    (every cell carries them); our Hay channels are not. Before anything is compiled, every mechanism the files
    declare is checked against the names NEURON already has in this process. A file whose source is
    byte-identical to the one a loaded mechanism of that name came from (ours, or an earlier model's: a model
    that ships a copy of our synapses, say) is the same mechanism: it is not compiled again, and the loaded one
    serves. Any other clash raises :class:`MechanismClashError` naming the file, the mechanisms and what to do
    (a model that reuses the Hay channels' names, in a process that built an L5PC or a teaching cell: a fresh
    process). A failed compilation raises :class:`ModelMechanismError` with the compiler's output. A second
    call with the same files does nothing. Returns the directory whose library is loaded (the one already
    loaded when every file was a copy; None when ``mod_dir`` has no ``.mod`` file).
    """
    mod_dir = Path(mod_dir).expanduser().resolve()
    if not mod_dir.is_dir():
        raise FileNotFoundError(f"mod_dir {mod_dir} is not a directory")
    if not any(mod_dir.glob("*.mod")):
        return None
    ensure_mechanisms(cache_dir, verbose=verbose, libraries=(SYNAPSES,))
    digest = mechanisms_hash(mod_dir)
    if digest in _model_libraries:
        return _model_libraries[digest]
    files = _mod_files(mod_dir)
    declared = _declared_in(files)
    present = _loaded_names(set(declared))
    target = _load_sources(files, declared, present, kind="model", owner=f"the model's mechanisms in {mod_dir}",
                           source=mod_dir, cache_dir=cache_dir, verbose=verbose)
    _model_libraries[digest] = target
    return target


def ensure_cell_mechanisms(needs, cache_dir: str | os.PathLike | None = None, *, verbose: bool = False) -> dict:
    """Load what a cell declares it needs (its ``mechanisms``, :class:`~neurodepth_lib.cells.contract.NeuronCell`):
    names of our libraries (``"synapses"``, ``"hay_channels"``) and directories of a model's ``.mod`` files, in
    order. Returns ``{need: the directory loaded}``. :class:`~neurodepth_lib.cells.SynapticCell` calls it before
    it builds a cell."""
    needs = (needs,) if isinstance(needs, (str, os.PathLike)) else tuple(needs)
    out = {}
    for need in needs:
        if isinstance(need, str) and need in LIBRARIES:
            out[need] = ensure_mechanisms(cache_dir, verbose=verbose, libraries=(need,))
        elif isinstance(need, (str, os.PathLike)) and (os.sep in str(need) or Path(need).is_dir()):
            out[need] = ensure_model_mechanisms(need, cache_dir, verbose=verbose)
        else:
            raise ValueError(f"a cell's mechanisms must be names of our libraries ({', '.join(map(repr, LIBRARIES))}) "
                             f"or directories of .mod files, got {need!r}")
    return out


def loaded_mechanisms() -> dict:
    """``{mechanism name: (where it came from, compiled directory)}`` for every mechanism neurodepth loaded in
    this process (e.g. ``"Ih": ("neurodepth's Hay channels", PosixPath(...))``)."""
    return {name: (o.owner, o.library) for name, o in sorted(_origins.items())}


def _load_sources(files, declared: dict, present: set, *, kind: str, owner: str, source: Path, cache_dir,
                  verbose: bool) -> Path:
    """Check ``declared`` (name -> file) against the mechanisms this process has (``present``), then compile
    and load the files not already loaded from identical sources. ``kind``: one of our library names or
    ``"model"``."""
    h = import_neuron()
    same, clash, foreign = set(), [], []
    for name in sorted(present):
        origin = _origins.get(name)
        if origin is None:
            foreign.append(name)          # NEURON's built-in, or loaded outside neurodepth
        elif origin.source is not None and origin.source == declared[name].read_bytes():
            same.add(name)
        else:
            clash.append(name)
    if kind in LIBRARIES and foreign and set(foreign) == set(declared):
        # every one of our names is there and none was loaded by us: our files compiled by hand (nrnivmodl on
        # our mod/ folder) and loaded before neurodepth asked; accepted as before
        for name, path in declared.items():
            _origins[name] = _Origin(None, path, "mechanisms loaded before neurodepth asked", _BEFORE)
        return _BEFORE
    if clash or foreign:
        raise _clash_error(declared, clash, foreign, kind, owner)
    copies = {f for f in files if all(n in same for n, g in declared.items() if g == f)}
    todo = [f for f in files if f not in copies]
    if not todo:  # every file is a copy of a loaded mechanism
        return _origins[min(same)].library
    label = "the model's" if kind == "model" else _LABELS[kind]
    try:
        target, library = _compiled(source, cache_dir, verbose, label, files=todo)
    except RuntimeError as err:
        if kind == "model":
            raise ModelMechanismError(str(err)) from err
        raise
    new = {n: p for n, p in declared.items() if p in todo}
    _load_library(h, target, library, new, f"{owner} (NEURON mechanisms)", verbose)
    for name, path in new.items():
        _origins[name] = _Origin(path.read_bytes(), path, owner, target)
    return target


def _clash_error(declared: dict, clash: list, foreign: list, kind: str, owner: str) -> MechanismClashError:
    """The error for mechanisms of ``declared`` whose names this process already holds (see the module notes)."""
    names = sorted(clash) + sorted(foreign)
    first = names[0]
    holders = sorted({_origins[n].owner for n in clash})
    if first in clash:
        taken = _origins[first].owner + (f" ({_origins[first].file.name} in {_origins[first].file.parent})"
                                         if _origins[first].file is not None else "")
    else:
        taken = "NEURON (a built-in mechanism) or mechanisms loaded outside neurodepth"
    more = f" (and {len(names) - 1} more: {', '.join(names[1:])})" if len(names) > 1 else ""
    text = (f"{declared[first]} declares the mechanism {first!r}, a name already taken in this process by {taken}"
            f"{more}, with other contents. NEURON holds one mechanism per name in a process and cannot unload a "
            "library, so these cannot be loaded here.")
    hay_taken = _LABELS[HAY_CHANNELS] in holders
    fresh = (" The worker processes of generation, calibration and how_deep (spawn pool, Dask workers) are fresh "
             "processes that load only what their cell needs; the calling process builds the cell too.")
    if kind == "model":
        if hay_taken:
            text += (" neurodepth's Hay channels are loaded in this process because an L5PC or a TeachingCell was "
                     "built here (or ensure_mechanisms() was called); a published model needs only neurodepth's "
                     "synapses. Fix: use this model in a fresh Python process that builds no L5PC or teaching cell "
                     "before it (a new script, `neurodepth how-deep --cell spec.toml`, or restart the notebook "
                     "kernel)." + fresh)
        elif any(holder.startswith("the model's") for holder in holders):
            text += " Another model's mechanisms of those names were loaded here. Fix: use each model in its own Python process." + fresh
        ours = sorted(set(clash) & set(mechanism_names(library=SYNAPSES)))
        text += (" Or rename the mechanism in the .mod file (SUFFIX or POINT_PROCESS) and where the model's hoc "
                 "inserts it" + (f", or delete the model's {', '.join(n + '.mod' for n in ours)} to use neurodepth's "
                                 "(a byte-identical copy is accepted as the same mechanism)" if ours else "") + ".")
    else:
        who = _WHO_NEEDS[kind]
        if clash:
            text += (f" {_LABELS[kind]} are needed by {who}, and {', '.join(holders)} defined those names first "
                     "(a cell from from_neuron_model was built in this process). Fix: build the "
                     f"{'L5PC or teaching cell' if kind == HAY_CHANNELS else 'cell'} in a fresh Python process that "
                     "builds no such model before it (a new script, or restart the notebook kernel)." + fresh)
        if foreign:
            text += (" Were other mechanisms loaded outside neurodepth, e.g. an 'x86_64' directory found in the "
                     "working directory when NEURON was imported before neurodepth_lib? Start a fresh Python process "
                     "in a directory without compiled mechanisms, or import neurodepth_lib's cells before neuron.")
    return MechanismClashError(text)


def _load_library(h, target: Path, library: Path, names, what: str, verbose: bool) -> None:
    """Load a compiled mechanism library into NEURON and check that it defined every name in ``names``."""
    if verbose:
        print(f"loading {what} from {library}", flush=True)
    try:
        ok = h.nrn_load_dll(str(library))
    except RuntimeError as exc:
        raise RuntimeError(f"NEURON could not load {library}: {exc}") from exc
    missing = set(names) - _loaded_names(set(names))
    if not ok or missing:
        raise RuntimeError(f"loading {library} did not define the mechanisms {sorted(missing) or sorted(names)}; "
                           f"delete {target} to force a rebuild")


def _compiled(mod_dir: Path, cache_dir, verbose: bool, label: str, files=None) -> tuple[Path, Path]:
    """The cache directory and library of ``mod_dir``'s mechanisms (``files``: only these of its ``.mod``
    files), compiled first when not there yet (under a file lock, so that many processes compile once)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    files = _mod_files(mod_dir) if files is None else list(files)
    digest = _hash_files(files)
    target = root / digest
    library = _find_library(target) if (target / "COMPLETE").exists() else None
    if library is None:
        from filelock import FileLock, Timeout

        root.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(root / f"{digest}.lock"), timeout=_LOCK_TIMEOUT_S):
                library = _find_library(target) if (target / "COMPLETE").exists() else None
                if library is None:  # we hold the lock and nobody built it: build it
                    if verbose:
                        print(f"compiling {len(files)} of {label} NEURON mechanisms into {target} ...", flush=True)
                    _compile(files, target, Path(mod_dir))
                    library = _find_library(target)
        except Timeout as exc:
            raise RuntimeError(f"timed out after {_LOCK_TIMEOUT_S:.0f} s waiting for another process to "
                               f"compile the mechanisms (lock {root / (digest + '.lock')})") from exc
    if library is None:
        raise RuntimeError(f"compiled mechanisms in {target} have no library file; delete {target} and retry")
    return target, library
