"""Catching and trimming looping text."""

from __future__ import annotations

from orchestrator.local.loops import LOOP_STOPPED, LoopGuard, loop_period, trim_loop
from orchestrator.local.steps import (
    parse_text,
)
from tests.support.scripted_llama import (
    TokenIds,
    completion,
)


def test_loop_period_finds_a_loop_only_at_the_end() -> None:
    assert loop_period([1, 2, 3] * 20) == 3
    assert loop_period(list(range(100))) == 0
    assert loop_period([*([1, 2, 3] * 20), 4, 5, 6]) == 0
    assert loop_period([7] * 10) == 0  # shorter than min_span: could be a run of spaces
    sentence = list(range(50, 110))  # a 60-token sentence said twice in a row
    assert loop_period([*range(10), *sentence, *sentence]) == 60


def test_trim_loop_keeps_one_copy_of_the_repeated_passage() -> None:
    looping = "Intro. " + "The model handles many kinds of queries. " * 6 + "The model han"
    assert trim_loop(looping) == "Intro. The model handles many kinds of queries."
    fine = "A normal answer.\n- one\n- two\n"
    assert trim_loop(fine) == fine


def test_parse_text_trims_replies_that_looped_or_ran_out_of_tokens() -> None:
    looping = "Summary.\n" + "Risk: data drift, monitor it. " * 5
    stopped = {**completion(looping), LOOP_STOPPED: True}
    assert parse_text(stopped) == "Summary.\nRisk: data drift, monitor it."
    cut = completion("Line one.\nLine two.\nLine three is cut mid-", finish="length")
    assert parse_text(cut) == "Line one.\nLine two."
    assert parse_text(completion(looping)) == looping.strip()  # a natural stop is left alone


def test_loop_guard_forces_the_end_of_a_looping_generation() -> None:
    guard = LoopGuard(eos=0, max_period=10, min_span=8)
    prompt = [9, 9, 9]
    scores = [1.0, 2.0, 3.0]
    assert guard(TokenIds(prompt), list(scores)) == scores  # the first call learns the prompt length
    assert guard(TokenIds([*prompt, 1, 2, 3, 4]), list(scores)) == scores
    assert not guard.tripped
    out = guard(TokenIds([*prompt, *([1, 2] * 4)]), list(scores))
    assert guard.tripped
    assert out == [0.0, float("-inf"), float("-inf")]
