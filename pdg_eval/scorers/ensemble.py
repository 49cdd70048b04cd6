"""Build an NLI scorer that averages trained NLI scorers (``pdg-eval scorers ensemble``): its folder holds only a
``manifest.json`` naming the members (:class:`pdg_eval.models.runtime.EnsemblePairClassifier` runs it), with the
held-out report of the averaged scorer, so signatures and ``scorers eval`` treat it like any other scorer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from ..models.nli_labels import NLI_SCORER
from .nli import CHECK_SLICE, evaluate, in_order, read_nli_source


def build_nli_ensemble(members: Sequence[str], out_dir: str | Path, valid: Sequence[str],
                       command: str | None = None) -> dict:
    """Check that the members are pdg-eval NLI scorers trained on one premise order, evaluate their average on each
    ``valid`` file (and its first :data:`CHECK_SLICE` pairs), and write the folder (all or nothing)."""
    from ..files import file_sha256
    from ..models.runtime import ModelFolder, select_device
    from .training import device_description

    if len(members) < 2:
        raise ConfigError("an ensemble needs at least two --member scorers")
    folders = [ModelFolder(m) for m in members]
    for folder in folders:
        if folder.manifest.get("scorer") != NLI_SCORER:
            raise ConfigError(f"--member {folder.name}: not a pdg-eval NLI scorer (its manifest.json names none)")
    orders = {folder.premise_order for folder in folders}
    if len(orders) != 1:
        raise ConfigError(f"the members were trained on different premise orders ({', '.join(sorted(orders))})")
    out = Path(out_dir)
    if out.exists():
        raise ConfigError(f"{out} exists: choose another --out")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    order = orders.pop()
    manifest = {"scorer": NLI_SCORER, "premise_order": order, "command": command,
                "ensemble": {"members": list(members), "combine": "mean of the members' class probabilities"},
                "members": [{"scorer": f.name, "weights_sha256": f.weights_sha256, "backbone_id": f.manifest.get(
                    "backbone_id"), "backbone_sha256": f.backbone_sha256} for f in folders]}
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    pairs = {path: in_order(read_nli_source(path), order) for path in valid}
    heldout = {Path(path).name: evaluate(partial, examples) for path, examples in pairs.items()}
    first = valid[0]
    heldout[f"{Path(first).name}[:{CHECK_SLICE}]"] = evaluate(partial, pairs[first][:CHECK_SLICE])
    manifest.update({"heldout": heldout, "weights_sha256": ModelFolder(str(partial)).weights_sha256,
                     "device": device_description(select_device()),
                     "data": {"valid": [{"path": p, "sha256": file_sha256(p)} for p in valid]}})
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    partial.rename(out)
    return manifest
