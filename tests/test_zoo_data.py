"""The shipped teacher is read-only data whose evaluation cache says what its card says: a 100-episode greedy
evaluation, named by its zoo name (not a machine's install path); files about it are written under --train_dir."""

import os
import re

import pytest

from sf_kickstart import evaluation_cache, sources
from sf_kickstart.sources import ZOO_DIR

TEACHER = os.path.join(ZOO_DIR, "minigrid_suite_small")


def _card_rows(card: str) -> dict:
    """{task: (score, lo, hi)} from the card's per-task table (its last column) and the suite score row."""
    rows = {}
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", cells[-1]) if len(cells) >= 2 else None
        if m:
            rows[cells[0]] = tuple(float(x) for x in m.groups())
    return rows


@pytest.mark.parametrize("name", sorted(sources.shipped()))
def test_the_cache_agrees_with_the_card(name):
    teacher = sources.shipped()[name]
    data = evaluation_cache.read_scores(teacher)
    card = open(os.path.join(teacher, "README.md")).read()
    rows = _card_rows(card)
    assert data["episodes"] == 100 and "--episodes=100" in card
    headline = "evaluated suite score" if data["score_kind"] == "capped_normalized" else "evaluated mean return"
    assert rows[headline] == pytest.approx(
        (round(data["suite_score"], 1), *(round(x, 1) for x in data["suite_score_ci"])), abs=0.051)
    for task, v in data["tasks"].items():
        assert len(v["returns"]) == 100, task
        assert rows[task] == pytest.approx((round(v["score"], 1), *(round(x, 1) for x in v["score_ci"])), abs=0.051), task
    assert data["experiment"] == f"zoo:{name}"  # no absolute path of the machine it was made on


def test_files_about_a_shipped_teacher_go_under_train_dir(tmp_path):
    train_dir = str(tmp_path / "td")
    written = evaluation_cache.cache_path(TEACHER, train_dir=train_dir)
    assert written == os.path.join(train_dir, "zoo", "minigrid_suite_small", "evaluation", "scores_greedy_p0.json")
    assert sources.writable_dir(TEACHER, train_dir) == os.path.join(train_dir, "zoo", "minigrid_suite_small")
    # nothing written yet: readers fall back to the shipped cache; once written, the train_dir one wins
    assert evaluation_cache.read_scores(TEACHER, train_dir=train_dir)["episodes"] == 100
    assert evaluation_cache.write_json(written, dict(format=evaluation_cache.FORMAT, episodes=3, tasks={}))
    assert evaluation_cache.read_scores(TEACHER, train_dir=train_dir)["episodes"] == 3
    assert evaluation_cache.read_scores(TEACHER)["episodes"] == 100
    # an experiment of the user's keeps its files in its own dir
    mine = str(tmp_path / "mine")
    assert evaluation_cache.cache_path(mine, train_dir=train_dir) == os.path.join(mine, "evaluation", "scores_greedy_p0.json")
    assert sources.label(mine) == os.path.abspath(mine) and sources.label(TEACHER) == "zoo:minigrid_suite_small"
