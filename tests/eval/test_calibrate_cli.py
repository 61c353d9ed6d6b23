"""`facedb calibrate` end to end on a tiny LFW-shaped folder (real photos, linked not copied)."""

from __future__ import annotations

import csv
from pathlib import Path

from facedb.calibration import load_calibration
from facedb.cli import main
from facedb.vision.embed import load_embedder
from tests.paths import ARCFACE, LFW, SCRFD


def tiny_lfw(root: Path) -> Path:
    """Fold 1: 4+4 pairs, 15 enrolled people, 30 distractors; fold 2 is present but unused."""
    lfw = root / "lfw"
    lfw.mkdir()
    (lfw / "images").symlink_to(LFW / "images", target_is_directory=True)
    pair_lines = (LFW / "pairs.txt").read_text().splitlines()[1:]
    fold_pairs = pair_lines[:4] + pair_lines[300:304]  # 4 mated, then 4 non-mated
    (lfw / "pairs.txt").write_text("2\t4\n" + "\n".join(fold_pairs * 2) + "\n")
    with (LFW / "gallery_probe.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    gallery = [r for r in table if r["role"] == "gallery"][:20]
    distractors = [r for r in table if r["role"] == "distractor"][:40]
    fold1 = gallery[:15] + distractors[:30]
    fold2 = gallery[15:] + distractors[30:]
    with (lfw / "gallery_probe.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "identity", "role"])
        writer.writeheader()
        writer.writerows(fold1 + fold2)
    lines = ["2", str(len(fold1))] + [f"{r['identity']}\t1" for r in fold1]
    lines += [str(len(fold2))] + [f"{r['identity']}\t1" for r in fold2]
    (lfw / "people.txt").write_text("\n".join(lines) + "\n")
    return lfw


def test_calibrate_writes_a_file_the_service_can_load(tmp_path: Path, shared_dir, capsys):
    lfw = tiny_lfw(tmp_path)
    out = tmp_path / "out"
    args = ["calibrate", "--recognizer", ARCFACE, "--detector", SCRFD, "--lfw", str(lfw)]
    args += ["--folds", "1", "--threads", "1", "--detector-input", "256x256", "--out", str(out)]
    assert main(args) == 0
    assert "verify threshold (FAR 1e-3)" in capsys.readouterr().out
    written = list(out.glob("*.json"))
    # The int8 fixture ran as its float32 rewrite (the default graph): the file is that
    # graph's, found by the SHA-256 the server's recognizer has.
    assert [p.name for p in written] == ["arcface_w600k_mbf_int8-float32-3116935fcae0.json"]
    calibration = load_calibration(load_embedder(ARCFACE).sha256, [out])
    assert calibration is not None and calibration.provenance["recognizer_graph"] == "float32"
    counts = calibration.provenance["counts"]
    assert counts["gallery_entries"] == 15 and counts["nonmated_probes"] == 30
    assert counts["impostor_pairs"] == 4 + 15 * 30 and counts["genuine_pairs"] == 4
    assert "folds 1:" in calibration.provenance["data"]
    # 454 impostors cannot measure FAR 1e-3: the threshold comes from the fitted tail.
    assert calibration.threshold_for_far(1e-3) > calibration.threshold_for_far(1e-2)
    assert calibration.far_points[-1].method == "tail"
