from benchmarks.robustness import DEFAULT, PACKNET, _time_gap


def _spent(search: float, epochs: int, per_epoch: float) -> dict:
    return {"time_spent": {"search": search, "epochs": epochs, "per_epoch": per_epoch}}


def test_the_gap_to_packnet_names_the_search_the_epochs_and_the_time_per_epoch():
    rows = {DEFAULT: _spent(16.7, 95, 4.4), PACKNET: _spent(1.5, 93, 3.8)}
    assert _time_gap(rows) == "search 17 vs 1.5 s; epochs 95 vs 93; per epoch 1.16×"


def test_no_gap_is_given_for_runs_without_a_breakdown():
    rows = {DEFAULT: {"time_spent": None}, PACKNET: _spent(1.5, 93, 3.8)}
    assert _time_gap(rows) == "–"
    older = {DEFAULT: {"time_spent": {"search": 1.0}}, PACKNET: _spent(1.5, 93, 3.8)}
    assert _time_gap(older) == "–"
