"""Cosine thresholds for a target error rate, per recognizer model, from a calibration file.

A raw cosine threshold means nothing across models (0.22 suits one ArcFace file, 0.5 another),
and in 1:N search the false-alarm rate grows with the gallery. So the service takes a target
rate and turns it into a threshold with the model's calibration file:

- 1:1 verify: `threshold_for_far(far)` — the score above which at most `far` of impostor
  pairs fall.
- 1:N identify: `threshold_for_fpir(fpir, gallery_size)` — the score above which at most
  `fpir` of searches by people who are *not* enrolled return a candidate, for a gallery of
  `gallery_size` enrolled face vectors.

How the tables are computed (`build_calibration`), and why:

FAR (1:1). From n impostor scores, a target FAR f allows an expected b = f·n exceedances.
When b >= MIN_EMPIRICAL_EXCEEDANCES the threshold is the empirical quantile with a one-sided
95% sampling margin: at most floor(b − 1.645·√b) scores may pass, so a new sample of impostors
is unlikely to exceed f. Below that (small samples or very low FAR) the quantile is not
measurable and the impostor tail is extrapolated instead: an exponential tail
(peaks-over-threshold, GPD shape 0) fitted to the top TAIL_FIT_COUNT scores, with the anchor
rate and the scale both taken at their 95% upper bounds. Impostor cosine scores have a tail
lighter than exponential (close to Gaussian), so the extrapolation errs high: the threshold
is conservative, and more so the further it reaches beyond the data.

FPIR (1:N). Measured directly where the data can show it: with M calibration gallery entries
and P non-mated probes (people not enrolled), for a gallery of N <= M entries the expected
FPIR over random N-subsets is, per probe with k scores >= t, 1 − C(M−k, N)/C(M, N), averaged
over probes. This keeps what the independence model 1 − (1 − FAR(t))^N gets wrong: false
alarms cluster on a few probes (look-alikes), so the real FPIR is lower than that model
predicts. Where fewer than MIN_FPIR_EVENTS false alarms would be expected (fpir·P·M/N),
and beyond N = M, the independence model on the FAR tail is used instead: a threshold at the
pair rate 1 − (1 − fpir)^(1/N), beyond M shifted by the offset between the model and the
measurement at N = M (tables marked `extrapolated`). Thresholds thus rise with the gallery
size, roughly with log N; far beyond M they rest on the conservative tail extrapolation.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "facedb-calibration"
VERSION = 1
DEFAULT_VERIFY_FAR = 1e-3
DEFAULT_IDENTIFY_FPIR = 0.01
Z_95 = 1.645  # one-sided 95% normal quantile
MIN_EMPIRICAL_EXCEEDANCES = 50
TAIL_FIT_COUNT = 50
MIN_FPIR_EVENTS = 10  # expected false alarms needed to measure an FPIR directly
FAR_GRID = tuple(float(f"{10 ** (-e / 4):.3g}") for e in range(2, 29))  # 0.316 … 1e-7
FPIR_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
MEASURED_SIZES = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)
EXTRAPOLATED_SIZES = (3000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 10_000_000)
PACKAGE_DIR = Path(__file__).resolve().parent / "calibration_data"
ENV_DIRS = "FACEDB_CALIBRATION_DIRS"


# ---- file format ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TailModel:
    """Exponential impostor tail: FAR(t) = anchor_rate · exp(−(t − anchor) / scale), t >= anchor."""

    anchor: float  # threshold where the fit starts (the TAIL_FIT_COUNT-th highest score)
    anchor_rate: float  # FAR at the anchor (95% upper bound)
    scale: float  # mean excess over the anchor (95% upper bound)
    fit_count: int

    def threshold(self, far: float) -> float:
        if far >= self.anchor_rate:
            return self.anchor
        return self.anchor + self.scale * math.log(self.anchor_rate / far)

    def far(self, threshold: float) -> float:
        return self.anchor_rate * math.exp(-(threshold - self.anchor) / self.scale)


@dataclass(frozen=True)
class FarPoint:
    far: float
    threshold: float
    tar: float | None  # genuine pairs accepted at this threshold (calibration data)
    method: str  # "empirical" or "tail"


@dataclass(frozen=True)
class FpirTable:
    gallery_size: int
    extrapolated: bool
    points: tuple[tuple[float, float], ...]  # (fpir, threshold), fpir ascending

    def threshold(self, fpir: float) -> float:
        return _interpolate_log(fpir, [p[0] for p in self.points], [p[1] for p in self.points])


@dataclass(frozen=True)
class Calibration:
    model_name: str
    model_sha256: str
    far_points: tuple[FarPoint, ...]  # far descending
    tail: TailModel
    fpir_tables: tuple[FpirTable, ...]  # gallery_size ascending
    model_offsets: tuple[tuple[float, float], ...] = ()  # (fpir, measured − model) at size M
    provenance: dict[str, Any] = field(default_factory=dict)

    # ---- 1:1 ------------------------------------------------------------------------------

    def threshold_for_far(self, far: float) -> float:
        """Cosine threshold at which at most `far` of impostor pairs are accepted."""
        if not 0.0 < far < 1.0:
            raise ValueError(f"far must be in (0, 1), got {far}")
        fars = [p.far for p in self.far_points]
        if far < fars[-1]:
            return max(self.far_points[-1].threshold, self.tail.threshold(far))
        return _interpolate_log(far, fars[::-1], [p.threshold for p in self.far_points][::-1])

    def default_verify_threshold(self) -> float:
        return self.threshold_for_far(DEFAULT_VERIFY_FAR)

    # ---- 1:N ------------------------------------------------------------------------------

    def threshold_for_fpir(self, fpir: float, gallery_size: int) -> float:
        """Cosine threshold at which at most `fpir` of non-mated searches return a candidate."""
        if not 0.0 < fpir < 1.0:
            raise ValueError(f"fpir must be in (0, 1), got {fpir}")
        size = max(int(gallery_size), 1)
        tables = self.fpir_tables
        if size >= tables[-1].gallery_size:
            return self._model_threshold(fpir, size)
        upper = next(i for i, t in enumerate(tables) if t.gallery_size > size)
        low, high = tables[max(upper - 1, 0)], tables[upper]
        if size <= low.gallery_size:
            return low.threshold(fpir)
        weight = math.log(size / low.gallery_size) / math.log(high.gallery_size / low.gallery_size)
        return (1 - weight) * low.threshold(fpir) + weight * high.threshold(fpir)

    def default_identify_threshold(self, gallery_size: int) -> float:
        return self.threshold_for_fpir(DEFAULT_IDENTIFY_FPIR, gallery_size)

    def _model_threshold(self, fpir: float, size: int) -> float:
        """Independence model beyond the tables, shifted to agree with the direct measurement."""
        pair_rate = -math.expm1(math.log1p(-fpir) / size)  # 1 − (1 − fpir)^(1/N), stably
        offset = _interpolate_log(
            fpir, [o[0] for o in self.model_offsets], [o[1] for o in self.model_offsets]
        )
        threshold = self.threshold_for_far(pair_rate) + offset
        # Never below the largest table's threshold: FPIR can only grow with the gallery.
        return max(threshold, self.fpir_tables[-1].threshold(fpir))

    # ---- serialisation --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "verify": {
                "far_table": [asdict(p) for p in self.far_points],
                "tail": asdict(self.tail),
            },
            "identify": {
                "fpir_tables": [
                    {
                        "gallery_size": t.gallery_size,
                        "extrapolated": t.extrapolated,
                        "points": [{"fpir": f, "threshold": th} for f, th in t.points],
                    }
                    for t in self.fpir_tables
                ],
                "model_offsets": [{"fpir": f, "offset": o} for f, o in self.model_offsets],
            },
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError("not a facedb calibration file of a supported version")
        tables = tuple(
            FpirTable(
                int(t["gallery_size"]),
                bool(t["extrapolated"]),
                tuple((float(p["fpir"]), float(p["threshold"])) for p in t["points"]),
            )
            for t in data["identify"]["fpir_tables"]
        )
        return cls(
            model_name=data["model"]["name"],
            model_sha256=data["model"]["sha256"].lower(),
            far_points=tuple(FarPoint(**p) for p in data["verify"]["far_table"]),
            tail=TailModel(**data["verify"]["tail"]),
            fpir_tables=tables,
            model_offsets=tuple(
                (float(o["fpir"]), float(o["offset"])) for o in data["identify"]["model_offsets"]
            ),
            provenance=data.get("provenance", {}),
        )

    def file_name(self) -> str:
        return f"{_slug(self.model_name)}-{self.model_sha256[:12]}.json"

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.file_name()
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "model"


def _interpolate_log(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Linear interpolation in log(x) over ascending xs; clamped at both ends."""
    if not xs:
        return 0.0
    return float(np.interp(math.log(x), np.log(np.asarray(xs)), np.asarray(ys)))


# ---- lookup ---------------------------------------------------------------------------------


def default_search_dirs() -> list[Path]:
    """FACEDB_CALIBRATION_DIRS (os.pathsep-separated) first, then the files shipped here."""
    extra = [Path(p) for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p]
    return [*extra, PACKAGE_DIR]


def load_calibration(
    model_sha256: str, search_dirs: Iterable[Path | str] | None = None
) -> Calibration | None:
    """The calibration for the model file with this SHA-256, or None when there is none."""
    wanted = model_sha256.lower()
    dirs = default_search_dirs() if search_dirs is None else [Path(d) for d in search_dirs]
    for directory in dirs:
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            data = _read_json(path)
            if data and data.get("model", {}).get("sha256", "").lower() == wanted:
                return Calibration.from_json(data)
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # an unreadable file is somebody else's; keep looking
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


# ---- computation ----------------------------------------------------------------------------


def fit_tail(impostor_desc: np.ndarray) -> TailModel:
    """Exponential tail over the top TAIL_FIT_COUNT scores, anchor rate and scale at 95% UB."""
    n = len(impostor_desc)
    count = min(TAIL_FIT_COUNT, n - 1)
    if count < 2:
        raise ValueError("at least 3 impostor scores are needed to calibrate")
    anchor = float(impostor_desc[count])
    excess = impostor_desc[:count] - anchor
    scale = max(float(excess.mean()), 1e-4) * (1.0 + Z_95 / math.sqrt(count))
    anchor_rate = min(1.0, (count + Z_95 * math.sqrt(count)) / n)
    return TailModel(anchor, anchor_rate, scale, count)


def far_points(
    genuine: np.ndarray, impostor: np.ndarray, grid: Sequence[float] = FAR_GRID
) -> tuple[tuple[FarPoint, ...], TailModel]:
    """The FAR→threshold table (conservative, see the module docstring) and the tail model."""
    desc = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    tail = fit_tail(desc)
    genuine = np.asarray(genuine, dtype=np.float64)
    points: list[FarPoint] = []
    previous = -np.inf
    for far in grid:
        budget = far * len(desc)
        if budget >= MIN_EMPIRICAL_EXCEEDANCES:
            allowed = int(budget - Z_95 * math.sqrt(budget))
            threshold, method = float(np.nextafter(desc[allowed], np.inf)), "empirical"
        else:
            threshold, method = tail.threshold(far), "tail"
        threshold = max(threshold, previous)  # monotone: a lower FAR never gets a lower bar
        previous = threshold
        tar = float(np.mean(genuine >= threshold)) if len(genuine) else None
        points.append(FarPoint(far, threshold, tar, method))
    return tuple(points), tail


def expected_fpir(exceed_counts: np.ndarray, gallery_entries: int, size: int) -> float:
    """Mean over probes of P(a random `size`-subset holds one of the probe's k exceedances).

    1 − C(M−k, N)/C(M, N) = 1 − Π_{i<k} (M−N−i)/(M−i); exact, no resampling noise.
    """
    m = gallery_entries
    if size >= m:
        return float(np.mean(exceed_counts > 0))
    kmax = int(exceed_counts.max(initial=0))
    i = np.arange(kmax)
    factors = np.clip((m - size - i) / (m - i), 0.0, None)
    miss = np.concatenate([[1.0], np.cumprod(factors)])  # miss[k] = P(no exceedance drawn)
    return float(np.mean(1.0 - miss[exceed_counts]))


class SortedRows:
    """Per-probe scores sorted and laid end to end, so one `searchsorted` counts every row.

    Row p is shifted by ROW_STRIDE·p; cosines lie in [-1, 1], so the shifted rows never
    overlap and the flattened array is sorted.
    """

    ROW_STRIDE = 4.0

    def __init__(self, scores: np.ndarray):
        rows = np.sort(np.asarray(scores, dtype=np.float64), axis=1)
        self.probes, self.entries = rows.shape
        self.offsets = self.ROW_STRIDE * np.arange(self.probes)
        self.flat = (rows + self.offsets[:, None]).ravel()
        self.low, self.high = float(rows.min()), float(rows.max())

    def exceed_counts(self, threshold: float) -> np.ndarray:
        """Per probe, how many scores are >= threshold."""
        below = np.searchsorted(self.flat, threshold + self.offsets, side="left")
        return self.entries - (below - self.entries * np.arange(self.probes))


def measured_fpir_threshold(rows: SortedRows, fpir: float, size: int) -> float:
    """The lowest threshold whose expected FPIR at `size` entries is <= fpir (bisection)."""
    low, high = rows.low - 1e-6, rows.high + 1e-6
    for _ in range(30):  # cosine range / 2^30: below float32 resolution near 0.3
        middle = 0.5 * (low + high)
        if expected_fpir(rows.exceed_counts(middle), rows.entries, size) <= fpir:
            high = middle
        else:
            low = middle
    return high


def _measurable(rows: SortedRows, fpir: float, size: int) -> bool:
    """Enough expected false alarms to measure: each probe meets about M/N distinct subsets."""
    return fpir * rows.probes * rows.entries / size >= MIN_FPIR_EVENTS


def _measured_table(rows: SortedRows, base: Calibration, size: int) -> FpirTable:
    """Measured where the data can show the rate, the independence model where it cannot."""
    thresholds = [
        measured_fpir_threshold(rows, f, size)
        if _measurable(rows, f, size)
        else independence_fpir_threshold(base, f, size)
        for f in FPIR_GRID
    ]
    # A lower FPIR never gets a lower threshold (running max from the highest FPIR down).
    monotone = np.maximum.accumulate(np.array(thresholds)[::-1])[::-1]
    return FpirTable(size, False, tuple(zip(FPIR_GRID, monotone.tolist(), strict=True)))


def _measured_offset(rows: SortedRows, base: Calibration, fpir: float, table: FpirTable) -> float:
    """Measured minus modelled threshold at the largest gallery (0 where not measurable)."""
    if not _measurable(rows, fpir, table.gallery_size):
        return 0.0
    return table.threshold(fpir) - independence_fpir_threshold(base, fpir, table.gallery_size)


def independence_fpir_threshold(calibration: Calibration, fpir: float, size: int) -> float:
    pair_rate = -math.expm1(math.log1p(-fpir) / size)
    return calibration.threshold_for_far(pair_rate)


def build_calibration(
    model_name: str,
    model_sha256: str,
    genuine: np.ndarray,
    impostor: np.ndarray,
    nonmated_scores: np.ndarray,
    provenance: dict[str, Any],
) -> Calibration:
    """Calibrate from 1:1 genuine / impostor scores and a (probes, gallery) non-mated matrix."""
    points, tail = far_points(genuine, impostor)
    base = Calibration(model_name, model_sha256.lower(), points, tail, ())
    rows = SortedRows(nonmated_scores)
    m = rows.entries
    sizes = sorted({s for s in MEASURED_SIZES if s < m} | {m})
    measured = tuple(_measured_table(rows, base, n) for n in sizes)
    offsets = tuple((f, _measured_offset(rows, base, f, measured[-1])) for f in FPIR_GRID)
    with_measured = Calibration(
        model_name, base.model_sha256, points, tail, measured, offsets, dict(provenance)
    )
    extrapolated = tuple(
        FpirTable(n, True, tuple((f, with_measured._model_threshold(f, n)) for f in FPIR_GRID))
        for n in EXTRAPOLATED_SIZES
        if n > m
    )
    counts = {
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "gallery_entries": m,
        "nonmated_probes": rows.probes,
    }
    provenance = {**provenance, "counts": counts}
    return Calibration(
        model_name,
        base.model_sha256,
        points,
        tail,
        measured + extrapolated,
        offsets,
        provenance,
    )
