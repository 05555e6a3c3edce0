"""What the lab assets' records say: byte-level verification, a table of what is shipped, and the commands that
made each asset (from its provenance record), turned back into commands that remake it.

On the command line: ``neurodepth assets verify | list | regenerate NAME``. Where assets are and how they
are found or downloaded is :mod:`neurodepth_lib.data.assets`.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from .._io import file_sha256
from .assets import ASSETS, data_root, get_asset, manifest_of, path_of, pin_file, status
from .generation import ood_input_settings, plan_generation, plan_ood_kinds
from .shards import plan_id

__all__ = ["VerifyResult", "verify", "describe", "provenance_path", "regenerate_command", "recorded_commands",
           "regeneration_note"]


def provenance_path(name: str) -> Path:
    """The file that records how asset ``name`` was made (see the module notes)."""
    asset, where = get_asset(name), path_of(name)
    if asset.kind == "dataset":
        return where / "provenance.jsonl"
    if asset.kind == "model":
        return where.with_name(where.name + ".json")
    return where.with_name(where.name + ".provenance.json")


# ----------------------------------------------------------------------------------------------------
# Verification and description
# ----------------------------------------------------------------------------------------------------

@dataclass
class VerifyResult:
    """The outcome of checking one asset: ``state`` is ``"ok"``, ``"partial"`` (a dataset still being
    generated whose finished shards are all intact), ``"missing"`` or ``"FAILED"``; ``problems`` names every
    file that does not match."""

    name: str
    kind: str
    state: str
    size_bytes: int
    detail: str
    problems: list

    @property
    def failed(self) -> bool:
        return self.state == "FAILED"

    def __str__(self) -> str:
        text = f"{self.name:<22} {self.kind:<8} {self.state:<8} {self.size_bytes / 1e6:7.2f} MB  {self.detail}"
        return text + "".join(f"\n    {p}" for p in self.problems)


def _verify_dataset(where: Path) -> tuple[str, int, str, list]:
    manifest = manifest_of(where)
    if manifest is None:
        return "FAILED", 0, "", [f"{where / 'manifest.json'} is not readable JSON"]
    problems, size, done, spikes = [], (where / "manifest.json").stat().st_size, 0, []
    for entry in manifest.get("shards", []):
        if not entry.get("sha256"):
            continue
        shard = where / entry["name"]
        if not shard.exists():
            problems.append(f"{shard.name}: listed as finished but missing")
            continue
        size += shard.stat().st_size
        digest = file_sha256(shard)
        if digest != entry["sha256"]:
            problems.append(f"{shard.name}: sha256 {digest[:12]}... != manifest {entry['sha256'][:12]}...")
            continue
        done += entry["n_trials"]
        spikes += list(entry.get("n_spikes") or [])
    planned = int(manifest.get("plan", {}).get("n_trials", 0))
    duration_s = manifest.get("plan", {}).get("duration_ms", 0) / 1000.0
    rate = (sum(spikes) / (len(spikes) * duration_s)) if spikes and duration_s else float("nan")
    detail = f"{done}/{planned} trials, {done * duration_s / 3600:.2f} h simulated" + \
        (f", {rate:.2f} Hz mean rate" if spikes else "")
    if problems:
        return "FAILED", size, detail, problems
    return ("ok" if manifest.get("complete") else "partial"), size, detail, []


def _verify_model(where: Path) -> tuple[str, int, str, list]:
    card_path, weights = where.with_name(where.name + ".json"), where.with_name(where.name + ".pt")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as err:
        return "FAILED", 0, "", [f"{card_path.name}: unreadable model card ({err})"]
    if not weights.exists():
        return "FAILED", card_path.stat().st_size, "", [f"{weights.name}: missing"]
    size = card_path.stat().st_size + weights.stat().st_size
    digest = file_sha256(weights)
    detail = f"{card.get('name', '?')}, {card.get('n_parameters', '?')} parameters"
    test = (card.get("metrics") or {}).get("test") or {}
    if "auc" in test:
        detail += f", test AUC {test['auc']:.4f}"
    if card.get("weights_sha256") != digest:
        return "FAILED", size, detail, [f"{weights.name}: sha256 {digest[:12]}... != card "
                                        f"{str(card.get('weights_sha256'))[:12]}..."]
    return "ok", size, detail, []


def verify(names=None) -> list[VerifyResult]:
    """Check every byte of the shipped assets (all registered ones, or ``names``) against the sha256s
    recorded for them: the registry pin, each dataset shard against its manifest, each model's weights
    against its card. Nothing is trusted from file sizes or dates."""
    results = []
    for name in (sorted(ASSETS) if names is None else list(names)):
        asset, where = get_asset(name), path_of(name)
        pin = pin_file(asset, where)
        if not pin.exists():
            results.append(VerifyResult(name, asset.kind, "missing", 0, "not shipped", []))
            continue
        if asset.kind == "dataset":
            state, size, detail, problems = _verify_dataset(where)
        elif asset.kind == "model":
            state, size, detail, problems = _verify_model(where)
        else:
            state, size, detail, problems = "ok", pin.stat().st_size, f"{file_sha256(pin)[:12]}...", []
        if asset.sha256 is not None and file_sha256(pin) != asset.sha256:
            state, problems = "FAILED", problems + [f"{pin.name}: does not match the sha256 pinned in "
                                                    f"neurodepth_lib.data.assets.ASSETS"]
        elif asset.sha256 is None and state == "ok":
            detail += " (not pinned yet)"
        results.append(VerifyResult(name, asset.kind, state, size, detail, problems))
    return results


def describe() -> str:
    """A table of the registered assets: kind, state, size and what they are (no checksums computed)."""
    lines = [f"{'asset':<22} {'kind':<8} {'state':<11} {'MB':>7}  description"]
    for name in sorted(ASSETS):
        asset, where = ASSETS[name], path_of(name)
        files = ([p for p in where.iterdir() if p.is_file()] if where.is_dir() else
                 [p for p in (where.with_name(where.name + ".json"), where.with_name(where.name + ".pt"), where)
                  if p.is_file()])
        size = sum(p.stat().st_size for p in files)
        lines.append(f"{name:<22} {asset.kind:<8} {status(name):<11} {size / 1e6:7.2f}  {asset.description}")
    lines.append(f"data root: {data_root()}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Regeneration
# ----------------------------------------------------------------------------------------------------

def _dataset_argv(manifest: dict, out: Path) -> list[str]:
    plan = manifest["plan"]
    argv = ["neurodepth", "generate", "--cell", plan["cell"]]
    if plan.get("condition"):
        argv += ["--condition", plan["condition"]]
    argv += ["--trials", str(plan["n_trials"]), "--duration-ms", str(plan["duration_ms"]), "--seed",
             str(plan["seed"]), "--trials-per-shard", str(plan["trials_per_shard"])]
    if "dend_1ms" in plan.get("record", []):
        argv.append("--record-dendrites")
    if plan_ood_kinds(plan):
        argv += ["--ood", ",".join(plan_ood_kinds(plan))]
    return argv + ["--out", str(out)]


def _provenance_record(name: str) -> dict:
    path = provenance_path(name)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"asset {name!r} has no readable provenance record ({path})") from None


def _recorded_argv(name: str) -> list[str]:
    path = provenance_path(name)
    record = _provenance_record(name)
    argv = (record.get("provenance") or record).get("argv")
    script = record.get("made_by")
    if not argv and isinstance(script, list) and script:  # a study script, not one neurodepth command
        raise ValueError(f"asset {name!r} is made by a script, not by one neurodepth command: run "
                         f"{shlex.join(script)} from the repository root (its provenance: {path})")
    if not argv:
        raise ValueError(f"the provenance record of {name!r} ({path}) holds no command")
    return list(argv)


def recorded_commands(name: str) -> list[list[str]]:
    """Every command recorded as making asset ``name``, in order. A merged result (the Hay sweep: several
    ``neurodepth sweep`` commands per condition, then a merge) records them all under ``commands``
    (``{condition: [argv, ...]}``) and ``made_by`` (the script that runs them and merges); anything else
    records one command."""
    record = _provenance_record(name) if get_asset(name).kind == "file" else {}
    return _merged_commands(record) or [regenerate_command(name)]


def _merged_commands(record: dict) -> list[list[str]]:
    commands = record.get("commands")
    return [list(argv) for group in commands.values() for argv in group] if isinstance(commands, dict) else []


def regeneration_note(name: str) -> str | None:
    """For an asset made by several commands and a merge, a note listing them all: what
    :func:`regenerate_command` gives remakes one part only. None for an asset made by one command."""
    if get_asset(name).kind != "file":
        return None
    record = _provenance_record(name)
    commands, made_by = _merged_commands(record), record.get("made_by")
    if len(commands) < 2:
        return None
    return "\n".join([f"note: {name} was made by {len(commands)} commands and a merge"
                      + (f" ({made_by})" if made_by else "")
                      + "; the command below remakes one part only. All of them:"]
                     + ["  " + shlex.join(argv) for argv in commands])


def _replace_out(argv: list[str], out) -> list[str]:
    argv = list(argv)
    if out is not None:
        if "--out" not in argv:
            raise ValueError(f"the recorded command has no --out: {shlex.join(argv)}")
        argv[argv.index("--out") + 1] = str(out)
    return argv


def _anchored(token: str) -> str:
    """A recorded command's argument with the repository paths in it made absolute: commands were recorded
    from the repository root (``data/lab/...``), and must run from any directory. ``data/...`` is read
    under :func:`data_root`; ``LABEL=a,b`` lists (``sweep --data``) are anchored piece by piece."""
    label, sep, rest = token.rpartition("=") if "=" in token and not token.startswith("-") else ("", "", token)
    pieces = []
    for piece in rest.split(","):
        parts = Path(piece).parts
        if piece and not Path(piece).is_absolute() and len(parts) > 1 and parts[0] == "data":
            piece = str(data_root().joinpath(*parts[1:]))
        pieces.append(piece)
    return label + sep + ",".join(pieces)


def regenerate_command(name: str, out=None) -> list[str]:
    """The command (argv, starting with ``neurodepth``) that remakes asset ``name`` into ``out`` (default:
    where it lives, which resumes or repairs it). For a dataset it is rebuilt from the manifest's plan and
    checked to give the same plan id; for a model or a file it is the command recorded when it was made
    (its ``data/...`` paths made absolute, so it runs from any directory; a sweep's ``--out`` is a directory
    whose ``results.csv`` is the file).
    ``neurodepth assets regenerate NAME`` runs it."""
    asset = get_asset(name)
    if asset.kind == "dataset":
        manifest = manifest_of(path_of(name))
        if manifest is None:
            raise ValueError(f"asset {name!r} is not present: nothing records how to make it "
                             f"(see data/lab/make_lab_datasets.sh)")
        plan = manifest["plan"]
        ood = plan_ood_kinds(plan)  # named OOD settings at their defaults: neurodepth generate --ood
        remade, _, _ = plan_generation(
            cell=plan["cell"], condition=plan.get("condition"), n_trials=plan["n_trials"],
            duration_ms=plan["duration_ms"], seed=plan["seed"], trials_per_shard=plan["trials_per_shard"],
            record=list(plan.get("record", [])),
            input_settings=ood_input_settings(plan["cell"], plan.get("condition"), ood) if ood else None)
        if plan_id(remade) != manifest["plan_id"]:
            raise ValueError(f"asset {name!r} was made with settings the command line cannot express "
                             f"(cell, input or simulation overrides): regenerate it with "
                             f"neurodepth_lib.data.generate_dataset and the manifest's plan")
        return _dataset_argv(manifest, path_of(name) if out is None else Path(out))
    return _replace_out([_anchored(a) for a in _recorded_argv(name)], out)
