"""Review queues, pure parts: harmful classes, routing, ordering, the threshold chooser, PSI and slice rates,
each on hand-computed tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backend.errors import UnsupportedLabelConfig
from backend.labelstudio.label_config import parse_label_config
from backend.review import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    LABEL_ERROR,
    LOW_CONFIDENCE,
    Moderation,
    choose_threshold,
    harmful_labels,
    label_error,
    moderation_control,
    moderation_for,
    near_threshold,
    order_items,
    psi,
    psi_band,
    route_disagreement,
    slice_rates,
)
from backend.review.drift import drift_report
from backend.review.moderation import stored_thresholds
from backend.review.thresholds import rates_at
from backend.training.evaluation import out_of_fold
from tests.conftest import config_xml

MODERATION = parse_label_config(config_xml("content_moderation"))
TOXICITY = parse_label_config(config_xml("toxicity_types"))


def single(thresholds: dict[str, float] | None = None) -> Moderation:
    control = MODERATION.controls[0]
    return Moderation(control, harmful_labels(control), thresholds or {})


# harmful classes -------------------------------------------------------------------------------------------
def test_harmful_classes_come_from_the_shipped_configs() -> None:
    assert harmful_labels(MODERATION.controls[0]) == ("Potentially Harmful", "Violating")
    assert harmful_labels(TOXICITY.controls[0]) == TOXICITY.controls[0].labels
    news = parse_label_config(config_xml("news_topics"))
    assert moderation_control(news) is None
    assert harmful_labels(news.controls[0], frozenset({"World", "Nope"})) == ("World",)  # named in settings


def test_harmful_marker_on_a_choice_and_unknown_names_are_refused() -> None:
    xml = """<View><Text name="t" value="$text"/>
      <Choices name="c" toName="t"><Choice value="ok"/><Choice value="spam" harmful="true"/></Choices></View>"""
    assert parse_label_config(xml).controls[0].harmful == ("spam",)
    bad = xml.replace('<Choices name="c"', '<Choices name="c" harmful="spam,scam"')
    with pytest.raises(UnsupportedLabelConfig, match=r"\['scam'\].*\['ok', 'spam'\]"):
        parse_label_config(bad)


def test_thresholds_are_read_from_version_metrics() -> None:
    metrics = {"review": {"thresholds": {"Violating": {"threshold": 0.7}, "Potentially Harmful": {"threshold": None}}}}
    assert stored_thresholds(metrics) == {"Violating": 0.7}
    mod = moderation_for(MODERATION, frozenset(), metrics)
    assert mod is not None and mod.threshold("Violating") == 0.7 and mod.threshold("Potentially Harmful") == 0.5
    proba = np.array([[0.2, 0.1, 0.7], [0.3, 0.55, 0.15], [0.9, 0.05, 0.05]])
    assert mod.flag_matrix(proba).tolist() == [True, True, False]
    assert mod.harm_scores(proba).tolist() == [0.7, 0.55, 0.05]


# routing ----------------------------------------------------------------------------------------------------
def test_a_flag_the_human_overturns_is_a_false_positive_with_its_margin() -> None:
    mod = single({"Violating": 0.6})
    route = route_disagreement(mod, ["Violating"], ["Safe"], {"Violating": 0.9, "Potentially Harmful": 0.05})
    assert route is not None and route.queue == FALSE_POSITIVE and route.labels == ("Violating",)
    assert route.margin == pytest.approx(0.3)


def test_a_missed_harmful_label_is_a_false_negative() -> None:
    mod = single({"Violating": 0.6})
    route = route_disagreement(mod, [], ["Violating"], {"Violating": 0.1, "Potentially Harmful": 0.2})
    assert route is not None and route.queue == FALSE_NEGATIVE and route.margin == pytest.approx(0.5)


def test_agreement_and_external_reports() -> None:
    mod = single()
    assert route_disagreement(mod, ["Violating"], ["Violating"], {"Violating": 0.9}) is None
    assert route_disagreement(mod, [], ["Safe"], {"Violating": 0.1}) is None
    assert route_disagreement(mod, ["Violating"], ["Potentially Harmful"], {"Violating": 0.9}) is None  # flag was right
    reported = route_disagreement(mod, ["Violating"], ["Safe"])  # no probabilities: no margin
    assert reported is not None and reported.queue == FALSE_POSITIVE and reported.margin is None


def test_multi_label_routes_on_whether_the_text_is_flagged() -> None:
    control = TOXICITY.controls[0]
    mod = Moderation(control, harmful_labels(control), {})
    fp = route_disagreement(mod, ["toxic", "insult"], [], {"toxic": 0.6, "insult": 0.8})
    assert fp is not None and fp.queue == FALSE_POSITIVE and fp.labels == ("toxic", "insult")
    assert fp.margin == pytest.approx(0.3) and "no label" in fp.reason
    fn = route_disagreement(mod, [], ["obscene"], {"obscene": 0.2})
    assert fn is not None and fn.queue == FALSE_NEGATIVE and fn.labels == ("obscene",)
    assert route_disagreement(mod, ["insult"], ["toxic"], {"insult": 0.8}) is None


def test_near_threshold_either_side_within_the_band() -> None:
    mod = single({"Violating": 0.6, "Potentially Harmful": 0.5})
    route = near_threshold(mod, {"Violating": 0.55, "Potentially Harmful": 0.1}, band=0.1)
    assert route is not None and route.queue == LOW_CONFIDENCE and route.labels == ("Violating",)
    assert route.margin == pytest.approx(0.05) and "not flagged" in route.reason
    assert near_threshold(mod, {"Violating": 0.95, "Potentially Harmful": 0.1}, band=0.1) is None


def test_label_error_needs_a_confident_contradiction() -> None:
    labels = ("Safe", "Potentially Harmful", "Violating")
    route = label_error(labels, False, ["Safe"], np.array([0.03, 0.95, 0.02]), 0.9)
    assert route is not None and route.queue == LABEL_ERROR and route.labels == ("Potentially Harmful",)
    assert label_error(labels, False, ["Safe"], np.array([0.2, 0.7, 0.1]), 0.9) is None
    multi = label_error(("a", "b"), True, ["a"], np.array([0.02, 0.97]), 0.9)
    assert multi is not None and multi.margin == pytest.approx(0.98) and multi.labels == ("b",)


def test_ordering_confident_and_uncertain_with_unscored_last() -> None:
    items: list[dict[str, Any]] = [{"id": 1, "m": 0.2}, {"id": 2, "m": None}, {"id": 3, "m": 0.9}, {"id": 4, "m": 0.05}]
    ids = lambda xs: [x["id"] for x in xs]  # noqa: E731
    assert ids(order_items(items, lambda x: x["m"], "confident")) == [3, 1, 4, 2]
    assert ids(order_items(items, lambda x: x["m"], "uncertain")) == [4, 1, 3, 2]
    with pytest.raises(ValueError, match="confident"):
        order_items(items, lambda x: x["m"], "random")


# thresholds -------------------------------------------------------------------------------------------------
SCORES = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
POSITIVE = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
# flag >= cut: 0.95 P1, 0.9 P1, 0.8 P2/3, 0.7 P3/4, 0.6 P4/5, 0.5 P4/6, 0.4 P5/7, ...


def test_lowest_threshold_reaching_the_target_precision() -> None:
    choice = choose_threshold(SCORES, POSITIVE, target_precision=0.8, min_positives=2, z=0)
    assert choice.met and choice.threshold == pytest.approx(0.55)  # between 0.6 (P 0.8) and 0.5
    assert (choice.precision, choice.recall, choice.fp_rate, choice.flagged) == (0.8, 0.8, 0.2, 5)
    strict = choose_threshold(SCORES, POSITIVE, target_precision=0.95, min_positives=2, z=0)
    assert strict.threshold == pytest.approx(0.85) and strict.recall == 0.4


def test_fp_rate_target_and_an_unreachable_target() -> None:
    choice = choose_threshold(SCORES, POSITIVE, max_fp_rate=0.2, min_positives=2, z=0)
    assert choice.met and choice.fp_rate <= 0.2 and choice.threshold == pytest.approx(0.55)
    unreachable = choose_threshold(1 - SCORES, POSITIVE, target_precision=0.99, min_positives=2, z=0)
    assert not unreachable.met and unreachable.threshold is not None
    assert rates_at(1 - SCORES, POSITIVE, unreachable.threshold)[0] == unreachable.precision


def test_a_lucky_top_does_not_meet_the_target_under_the_wilson_bound() -> None:
    # 3 top scores all positive, then a 50/50 mix: the point estimate "reaches" 0.9 at the top, the bound does not
    scores = np.linspace(1, 0, 203)
    positive = np.array([True] * 3 + [i % 2 == 1 for i in range(200)])
    naive = choose_threshold(scores, positive, target_precision=0.9, z=0)
    assert naive.met and naive.flagged == 3
    judged = choose_threshold(scores, positive, target_precision=0.9)
    assert not judged.met and judged.bound == pytest.approx(0.5258, abs=1e-4)  # 3/3 is the best bound here
    # 40 positives in a row are evidence enough: 40/40 has a lower bound of 0.94
    strong = choose_threshold(scores, np.array([True] * 40 + [i % 2 == 0 for i in range(163)]), target_precision=0.9)
    assert strong.met and strong.precision >= 0.9 and strong.bound >= 0.9 and strong.flagged >= 40


def test_too_few_positives_choose_nothing() -> None:
    choice = choose_threshold(SCORES, POSITIVE, target_precision=0.8)  # 5 positives, 5 negatives: enough
    assert choice.threshold is not None
    few = choose_threshold(SCORES[:4], POSITIVE[:4], target_precision=0.8)
    assert few.threshold is None and not few.met and "at least 5" in few.note
    with pytest.raises(ValueError, match="exactly one"):
        choose_threshold(SCORES, POSITIVE)


def test_out_of_fold_rows_come_from_heads_that_did_not_see_them() -> None:
    rng = np.random.default_rng(0)
    emb = np.vstack([rng.normal(1, 0.3, (20, 8)), rng.normal(-1, 0.3, (20, 8))])
    targets = [["a"]] * 20 + [["b"]] * 20
    oof = out_of_fold(("a", "b"), False, emb, targets, seed=0)
    proba = oof.proba
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1) and oof.seen.all()
    assert (proba.argmax(axis=1) == np.array([0] * 20 + [1] * 20)).mean() > 0.9


# drift ------------------------------------------------------------------------------------------------------
def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(1)
    reference = rng.beta(2, 5, 2000)
    assert psi(reference, rng.beta(2, 5, 2000)) < 0.02
    assert psi(reference, rng.beta(5, 2, 2000)) > 1.0


def test_psi_by_hand_on_two_bins() -> None:
    reference = np.array([0.0] * 50 + [1.0] * 50)  # deciles collapse to one cut at 0.0/1.0: two bins, 50/50
    current = np.array([0.0] * 80 + [1.0] * 20)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(reference, current) == pytest.approx(expected)


def test_psi_bands_and_too_few_scores() -> None:
    assert [psi_band(v, (0.1, 0.25)) for v in (0.05, 0.1, 0.25, 0.3)] == ["stable", "moderate", "moderate", "major"]
    report = drift_report("v1", np.zeros(10), np.zeros(100), (0.1, 0.25))
    assert report.psi is None and "at least 50" in report.note


# slices -----------------------------------------------------------------------------------------------------
def test_slice_rates_by_hand() -> None:
    texts = ["Muslims are fine", "muslims rock", "I hate Muslims", "cats", "dogs are bad", "Muslimsomething"]
    harmful = np.array([0, 0, 1, 0, 1, 0], dtype=bool)
    flagged = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    out = slice_rates(texts, harmful, flagged, ["muslims"])
    overall, muslims = out["overall"], out["slices"]["muslims"]
    assert (overall["n"], overall["false_positives"], overall["false_negatives"]) == (6, 2, 1)
    assert overall["fp_rate"] == 0.5 and overall["fn_rate"] == 0.5
    assert (muslims["n"], muslims["false_positives"], muslims["fp_rate"], muslims["fn_rate"]) == (3, 1, 0.5, 0.0)
    assert muslims["fp_rate_ratio"] == 1.0  # whole words only: "Muslimsomething" is not in the slice
