"""Print "ours vs baseline" per benchmark group after a pytest-benchmark run."""

import pytest


def _variant(name: str) -> str:
    """'test_mix_ours[case]' -> 'ours'; benchmarks are named test_<group>_<variant>."""
    return name.split("[", 1)[0].rsplit("_", 1)[-1]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return
    groups: dict[str, dict[str, float]] = {}
    for bench in session.benchmarks:
        if bench.stats is None or not bench.stats.data:
            continue
        groups.setdefault(bench.group or bench.name, {})[_variant(bench.name)] = bench.stats.median
    if not groups:
        return
    terminalreporter.section("ours vs baseline (median times)")
    for group, medians in sorted(groups.items()):
        ours = medians.get("ours")
        baseline = medians.get("baseline")
        if ours and baseline:
            terminalreporter.write_line(
                f"{group}: ours {ours * 1e6:9.1f} µs, baseline {baseline * 1e6:9.1f} µs"
                f" -> ours vs baseline: {baseline / ours:.1f}x"
            )
        elif ours:
            terminalreporter.write_line(f"{group}: ours {ours * 1e6:9.1f} µs (no baseline)")
