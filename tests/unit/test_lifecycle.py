from collections import deque

import pytest

from burst.errors import IllegalTransitionError
from burst.lifecycle import FAILED, FINAL, TRANSITIONS, HostState, check_transition


def test_every_edge_has_a_reason_and_other_edges_are_refused():
    for current in HostState:
        for new in HostState:
            if new in TRANSITIONS[current]:
                assert check_transition(current, new)
            else:
                with pytest.raises(IllegalTransitionError, match=f"{current.value} -> {new.value}"):
                    check_transition(current, new)


def test_final_states_have_no_way_out_and_every_state_can_reach_one():
    for state in FINAL:
        assert TRANSITIONS[state] == {}
    for start in HostState:
        seen, todo = {start}, deque([start])
        while todo:
            for nxt in TRANSITIONS[todo.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & FINAL, f"{start} cannot reach a final state"


def test_every_state_is_reachable_from_requested():
    seen, todo = {HostState.REQUESTED}, deque([HostState.REQUESTED])
    while todo:
        for nxt in TRANSITIONS[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(HostState)


def test_a_failed_host_is_cleaned_up_before_it_is_final():
    # no failure state may jump straight to terminated: its instance must be terminated first
    for state in FAILED:
        assert HostState.TERMINATED not in TRANSITIONS[state]
