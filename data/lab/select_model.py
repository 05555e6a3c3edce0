"""Ship the candidate with the best validation AUC (step 2 of make_lab_models.sh and make_lab_elms.sh).

    python data/lab/select_model.py CANDIDATE_DIR OUT_PREFIX NAME [NAME ...]

The model cards ``CANDIDATE_DIR/<NAME>.json`` compete on their ``metrics.valid`` AUC (written by ``neurodepth
train`` on the held-out training trials or the validation dataset); the winner's weights and card are copied to OUT_PREFIX.pt / .json, and the card records
the competition under ``selection``. Test data play no part.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from neurodepth_lib.nets import update_model_card


def _first_learning_rate(card: dict) -> float | None:
    """The learning rate of the card's first schedule stage (the candidates may differ only in it)."""
    stages = (((card.get("training") or {}).get("config") or {}).get("schedule") or {}).get("stages") or []
    return stages[0].get("learning_rate") if stages else None


def main(candidate_dir: str, out_prefix: str, *names: str) -> str:
    cand, out = Path(candidate_dir), Path(out_prefix)
    cards = {k: json.loads((cand / f"{k}.json").read_text()) for k in names}
    scored = {k: c["metrics"]["valid"]["auc"] for k, c in cards.items()
              if ((c.get("metrics") or {}).get("valid") or {}).get("auc") is not None}
    if not scored:
        raise SystemExit(f"no candidate in {cand} has a validation AUC")
    best = max(scored, key=scored.get)
    for k, auc in sorted(scored.items(), key=lambda kv: -kv[1]):
        print(f"candidate {k} ({cards[k]['name']}): validation AUC {auc:.4f}{'  <- shipped' if k == best else ''}")
    for suffix in (".pt", ".json"):
        shutil.copyfile(cand / (best + suffix), out.with_name(out.name + suffix))
    train, valid = cards[best].get("dataset") or {}, cards[best].get("valid_dataset") or {}
    held_out = valid.get("plan_id") is not None and valid.get("plan_id") == train.get("plan_id")
    on = "held-out training trials" if held_out else f"the {valid.get('name', 'validation')} dataset"
    update_model_card(out, selection={
        "by": f"validation AUC ({on}, all of its {len(valid.get('trials', []))} trials)", "chosen": best,
        "candidates": {k: {"name": cards[k]["name"], "n_parameters": cards[k]["n_parameters"],
                           "first_learning_rate": _first_learning_rate(cards[k]), "valid_auc": a}
                       for k, a in scored.items()}})
    return best


if __name__ == "__main__":
    main(*sys.argv[1:])
