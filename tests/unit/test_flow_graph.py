"""The state graphs of the stored flows: every action is an edge, and links only show pages."""

from __future__ import annotations

import pytest

from idp.errors import StepOutOfOrder
from idp.flows import ConnectorResetFlow, Context, EmailChangeFlow, InvitationFlow, LoginFlow, SignupFlow


@pytest.mark.parametrize("machine", [LoginFlow, InvitationFlow, ConnectorResetFlow, EmailChangeFlow, SignupFlow])
def test_every_action_is_an_edge_of_the_table(machine):
    for state, actions in machine.ACTIONS.items():
        for action, target in actions.items():
            assert target in machine.TRANSITIONS[state], (machine.kind, state, action)


def test_every_step_result_is_an_edge_of_the_table():
    edges = LoginFlow.TRANSITIONS
    assert edges["password"] >= {"email", "forgot_email", "totp", "totp_enroll", "verify_email"}
    assert edges["totp"] >= {"reset_email", "resume"}
    assert "forgot_email" not in edges["totp"] and "reset_email" not in edges["password"]


def test_a_link_shows_a_page_without_moving_the_flow(app):
    with app.app_context():
        flow = LoginFlow.create(state="password", data={"email": "a@example.com"})
        assert flow.linked_page("forgot") == "forgot_email"
        assert flow.state == "password"
        with pytest.raises(StepOutOfOrder):
            flow.linked_page("reset_2fa")
        with pytest.raises(StepOutOfOrder):
            flow.linked_page("restart")  # an action, but not one a link shows


def test_posting_a_linked_page_takes_its_action_then_the_step(app):
    ctx = Context(ip="192.0.2.1", locale="en")
    with app.test_request_context():
        flow = LoginFlow.create(state="password", data={"email": "a@example.com"})
        assert flow.advance("forgot_email", {"email": "nobody@example.com"}, ctx) == "forgot_code"
        with pytest.raises(StepOutOfOrder):
            flow.advance("reset_email", {"email": "nobody@example.com"}, ctx)
