"""The results table: Cabinet beside its reference, the ratio, the target and PASS or MISS."""

from dataclasses import dataclass

from bench.measure import Measurement

HEADER = (
    "scenario",
    "Cabinet req/s",
    "p50 ms",
    "p99 ms",
    "CPU s/1k",
    "reference",
    "ref req/s",
    "ref p50 ms",
    "ref p99 ms",
    "ref CPU s/1k",
    "compared",
    "ratio",
    "target",
    "result",
)
DASH = "-"


@dataclass(frozen=True)
class Figures:
    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_per_1k: float | None = None

    @classmethod
    def of(cls, measurement: Measurement) -> "Figures":
        load = measurement.load
        return cls(load.per_second, load.p50_ms, load.p99_ms, measurement.cpu_per_1k)

    def cells(self) -> list[str]:
        return [
            f"{self.per_second:,.0f}" if self.per_second >= 100 else f"{self.per_second:.1f}",
            _number(self.p50_ms, 1),
            _number(self.p99_ms, 1),
            _number(self.cpu_per_1k, 3),
        ]


def _number(value: float | None, places: int) -> str:
    return DASH if value is None else f"{value:.{places}f}"


@dataclass(frozen=True)
class Row:
    scenario: str
    cabinet: Figures | None
    reference: str
    reference_figures: Figures | None
    compared: str
    ratio: float
    target: str
    passed: bool | None  # None: reported, with no target to meet

    def cells(self) -> list[str]:
        empty = [DASH] * 4
        return [
            self.scenario,
            *(self.cabinet.cells() if self.cabinet else empty),
            self.reference,
            *(self.reference_figures.cells() if self.reference_figures else empty),
            self.compared,
            f"{self.ratio:.2f}",
            self.target,
            DASH if self.passed is None else "PASS" if self.passed else "MISS",
        ]


def cpu_row(scenario: str, cabinet: Measurement, baseline: Measurement, limit: float | None) -> Row:
    ratio = cabinet.cpu_per_1k / baseline.cpu_per_1k
    return Row(
        scenario,
        Figures.of(cabinet),
        "baseline app",
        Figures.of(baseline),
        "CPU/request",
        ratio,
        DASH if limit is None else f"<= {limit}x",
        None if limit is None else ratio <= limit,
    )


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def plain_text(rows: list[Row]) -> str:
    table = [list(HEADER), *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in table
    )
