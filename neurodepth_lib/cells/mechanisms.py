"""Make the package's NEURON mechanisms (``cells/mod/*.mod``) available in this process.

One public function, :func:`ensure_mechanisms`, does everything:

1. returns at once when our mechanisms are already loaded in this process;
2. hashes the ``.mod`` sources together with the NEURON version and the platform;
3. compiles them with ``nrnivmodl`` into a per-user cache directory named after that hash
   (``$NEURODEPTH_CACHE_DIR/mechanisms/<hash>`` or ``~/.cache/neurodepth/mechanisms/<hash>``), under a file
   lock so that many worker processes starting together compile once and never see a half-built library;
4. loads the compiled library explicitly by its full path (never through a ``./x86_64`` that happens to
   be in the working directory, which papermill, nbval and worker pools do not agree on);
5. raises :class:`RuntimeError` with the compiler's output when anything fails, and with the fix when
   ``nrnivmodl`` or a C++ compiler is missing.

:func:`ensure_model_mechanisms` does the same for the ``.mod`` files of a published model (a directory of
yours), beside ours: the same content-hashed cache, and a clear error naming the file when one of its
mechanisms has the name of one NEURON already has (ours, NEURON's built-ins, or another model's).

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
from pathlib import Path  # noqa: E402

from .. import _project  # noqa: E402

__all__ = ["MOD_DIR", "ensure_mechanisms", "ensure_model_mechanisms", "mechanism_names", "mechanisms_hash",
           "cache_root", "import_neuron", "MechanismClashError", "ModelMechanismError"]

MOD_DIR = Path(__file__).resolve().parent / "mod"
# A name only our own files define: if it exists in NEURON, our library is loaded.
_SENTINEL = "SynAmpaNmda"
_LOCK_TIMEOUT_S = 900.0
_loaded_from: Path | None = None
_model_libraries: dict = {}  # digest of a model's .mod files -> the directory loaded (this process)
_model_sources: dict = {}    # mechanism name -> (source bytes, directory loaded) of the models' mechanisms loaded
# the directories NEURON looks in for compiled mechanisms when it is imported (neuron/__init__ and hoc's init)
_ARCH_DIRS = (platform.machine(), "i686", "x86_64", "powerpc", "umac", "arm64", "aarch64")


class ModelMechanismError(RuntimeError, ValueError):
    """A published model's mechanisms cannot be loaded (a compile failure, a name clash): the user can fix it
    (a ``ValueError`` too, so the command line reports it in one line)."""


class MechanismClashError(ModelMechanismError):
    """A model's mechanism has the name of one NEURON already has (NEURON cannot hold two of one name)."""


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


def _declared(mod_dir: Path) -> dict[str, Path]:
    """``{mechanism name: .mod file}`` for the SUFFIX / POINT_PROCESS / ARTIFICIAL_CELL names declared."""
    out = {}
    for path in _mod_files(mod_dir):
        for m in _DECLARATION.finditer(_COMMENT.sub("", path.read_text(errors="replace"))):
            out[m.group(2)] = path
    return out


def mechanism_names(mod_dir: Path = MOD_DIR) -> list[str]:
    """The SUFFIX / POINT_PROCESS names declared by the ``.mod`` files of ``mod_dir`` (default: ours)."""
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


def ensure_mechanisms(cache_dir: str | os.PathLike | None = None, *, verbose: bool = False) -> Path:
    """Compile (once per machine and NEURON version) and load the package's mechanisms.

    Safe to call from many processes at once and many times in one process; after the first success in a
    process it returns immediately.

    Parameters
    ----------
    cache_dir : path, optional
        Where compiled libraries are kept (default :func:`cache_root`).
    verbose : bool
        Print what is being done (compiling takes 20-60 s the first time).

    Returns
    -------
    Path
        The directory whose library is loaded.

    Raises
    ------
    RuntimeError
        When compilation or loading fails (with the compiler's output), when ``nrnivmodl`` or a compiler
        is missing (with the fix), or when other mechanisms with the same names are already loaded.
    """
    global _loaded_from
    h = import_neuron()

    names = mechanism_names()
    present = _loaded_names(names)
    if _SENTINEL in present:
        if _loaded_from is None:  # loaded by someone else (e.g. nrnivmodl run by hand on our mod/ dir)
            _loaded_from = Path("<loaded before neurodepth asked>")
        return _loaded_from
    if present:
        raise MechanismClashError(
            f"NEURON already has mechanisms named {sorted(present)} that are not neurodepth's (were other "
            "mechanisms loaded, e.g. an 'x86_64' directory found in the working directory when NEURON was "
            "imported before neurodepth_lib?). Their equations may differ from ours, and NEURON cannot load two "
            "mechanisms with one name. Start a fresh Python process in a directory without compiled mechanisms, "
            "or import neurodepth_lib's cells before neuron.")
    target, library = _compiled(MOD_DIR, cache_dir, verbose, "neurodepth's")
    _load_library(h, target, library, names, "NEURON mechanisms", verbose)
    _loaded_from = target
    return target


def _load_library(h, target: Path, library: Path, names, what: str, verbose: bool) -> None:
    """Load a compiled mechanism library into NEURON and check that it defined every name in ``names``."""
    if verbose:
        print(f"loading {what} from {library}", flush=True)
    try:
        ok = h.nrn_load_dll(str(library))
    except RuntimeError as exc:
        raise RuntimeError(f"NEURON could not load {library}: {exc}") from exc
    missing = set(names) - _loaded_names(names)
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
                        print(f"compiling {len(files)} {label} NEURON mechanisms into {target} ...", flush=True)
                    _compile(files, target, Path(mod_dir))
                    library = _find_library(target)
        except Timeout as exc:
            raise RuntimeError(f"timed out after {_LOCK_TIMEOUT_S:.0f} s waiting for another process to "
                               f"compile the mechanisms (lock {root / (digest + '.lock')})") from exc
    if library is None:
        raise RuntimeError(f"compiled mechanisms in {target} have no library file; delete {target} and retry")
    return target, library


def ensure_model_mechanisms(mod_dir, cache_dir: str | os.PathLike | None = None, *,
                            verbose: bool = False) -> Path | None:
    """Compile (once per machine, content-hashed like ours) and load the ``.mod`` files of a published model.

    ``mod_dir`` is the directory holding them (not a compiled ``x86_64/``). Our mechanisms are loaded first
    (:func:`ensure_mechanisms`). Before anything is compiled, every mechanism the files declare is checked
    against the names NEURON already has. A file whose source is byte-identical to the one a loaded mechanism
    of that name came from (ours, or an earlier model's: a model that ships a copy of the Hay cell's channels,
    say) is the same mechanism: it is not compiled again, and the loaded one serves. Any other clash raises
    :class:`MechanismClashError` naming the file and the mechanism (NEURON cannot hold two mechanisms of one
    name, and the two differ). A failed compilation raises ``RuntimeError`` with the compiler's output. A
    second call with the same files does nothing. Returns the directory whose library is loaded (the one
    already loaded when every file was a copy; None when ``mod_dir`` has no ``.mod`` file).
    """
    mod_dir = Path(mod_dir).expanduser().resolve()
    if not mod_dir.is_dir():
        raise FileNotFoundError(f"mod_dir {mod_dir} is not a directory")
    if not any(mod_dir.glob("*.mod")):
        return None
    ensure_mechanisms(cache_dir, verbose=verbose)
    digest = mechanisms_hash(mod_dir)
    if digest in _model_libraries:
        return _model_libraries[digest]
    declared = _declared(mod_dir)
    ours = _declared(MOD_DIR)
    # the source each loaded mechanism came from: ours, then the models' loaded before
    sources = {name: (path.read_bytes(), _loaded_from) for name, path in ours.items()}
    sources.update(_model_sources)
    taken = set(declared) & _loaded_names()
    same = {n for n in taken if n in sources and declared[n].read_bytes() == sources[n][0]}
    clash = sorted(taken - same)
    if clash:
        name = clash[0]
        whose = (f"neurodepth's synapses and channels ({ours[name].name} in {MOD_DIR})" if name in ours
                 else "NEURON (a built-in mechanism) or mechanisms loaded earlier in this process")
        raise MechanismClashError(
            f"{declared[name]} declares the mechanism {name!r}, a name already taken by {whose}"
            + (f" (and {len(clash) - 1} more: {', '.join(clash[1:])})" if len(clash) > 1 else "")
            + ". NEURON cannot hold two mechanisms of one name. Rename it in the .mod file (SUFFIX or "
            "POINT_PROCESS) and where the model's hoc inserts it, or delete the file to use the one loaded.")
    # a file is left out when every mechanism it declares is already loaded from an identical source
    copies = {f for f in set(declared.values()) if all(n in same for n, g in declared.items() if g == f)}
    files = [f for f in _mod_files(mod_dir) if f not in copies]
    h = import_neuron()
    if not files:  # every file is a copy of a loaded mechanism
        target = sources[sorted(same)[0]][1]
        _model_libraries[digest] = target
        return target
    try:
        target, library = _compiled(mod_dir, cache_dir, verbose, "the model's", files=files)
    except RuntimeError as err:
        raise ModelMechanismError(str(err)) from err
    new = {n: p for n, p in declared.items() if p in files}
    _load_library(h, target, library, new, "the model's NEURON mechanisms", verbose)
    for name, path in new.items():
        _model_sources[name] = (path.read_bytes(), target)
    _model_libraries[digest] = target
    return target
