"""Load a reconstructed morphology into NEURON sections with Import3d.

Neurolucida text files (``.asc``) and SWC files (``.swc``) are read by NEURON's own Import3d readers and
instantiated into a Python object, which then owns the sections: ``owner.soma``, ``owner.dend`` (basal),
``owner.apic`` (apical), ``owner.axon`` and ``owner.all`` are Python lists of sections. When the owner's lists
are emptied the sections are freed, so nothing lingers in ``h.allsec()``.
"""
from __future__ import annotations

from pathlib import Path

from .mechanisms import import_neuron

h = import_neuron()  # NEURON, imported away from a stray x86_64/ in the working directory

__all__ = ["DEFAULT_MORPHOLOGY", "MORPHOLOGY_DIR", "load_morphology", "READERS"]

MORPHOLOGY_DIR = Path(__file__).resolve().parent / "morphologies"
DEFAULT_MORPHOLOGY = MORPHOLOGY_DIR / "hay2011_cell1.asc"
# file extension -> Import3d reader template
READERS = {".asc": "Import3d_Neurolucida3", ".swc": "Import3d_SWC_read"}


def load_morphology(path: str | Path, owner) -> dict:
    """Instantiate the morphology in ``path`` into ``owner`` (any Python object).

    Parameters
    ----------
    path : str or Path
        A Neurolucida ``.asc`` or an ``.swc`` file.
    owner : object
        Receives the section lists as attributes (``soma``, ``dend``, ``apic``, ``axon``, ``all``); its
        ``str()`` prefixes the section names.

    Returns
    -------
    dict
        ``{"soma": [...], "dend": [...], "apic": [...], "axon": [...]}``, missing types as empty lists.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"morphology file {str(path)!r} does not exist")
    reader_name = READERS.get(path.suffix.lower())
    if reader_name is None:
        raise ValueError(f"morphology file {path.name!r}: unknown extension {path.suffix!r}; "
                         f"supported: {', '.join(sorted(READERS))}")
    h.load_file("stdlib.hoc")
    h.load_file("import3d.hoc")
    reader = getattr(h, reader_name)()
    if hasattr(reader, "quiet"):
        reader.quiet = 1
    reader.input(str(path))
    gui = h.Import3d_GUI(reader, False)
    gui.instantiate(owner)
    lists = {}
    for kind in ("soma", "dend", "apic", "axon"):
        value = getattr(owner, kind, None)
        lists[kind] = list(value) if value is not None else []
        setattr(owner, kind, lists[kind])
    if not lists["soma"]:
        raise ValueError(f"morphology {path.name!r} has no soma")
    return lists
