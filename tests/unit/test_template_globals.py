"""The templates look their globals up in the environment's own dict (idp._Templates): what a
ChainMap over it would show, without its Python-level look-ups on every render and import."""

from __future__ import annotations

from flask import render_template_string


def test_a_global_added_to_the_environment_later_is_seen_by_templates_loaded_before(app):
    with app.test_request_context("/"):
        template = app.jinja_env.from_string("{{ late_global | default('missing') }}")
        assert template.render() == "missing"
        app.jinja_env.globals["late_global"] = "seen"
        try:
            assert template.render() == "seen"
            assert render_template_string("{% from '_macros.html' import alert %}{{ late_global }}") == "seen"
        finally:
            del app.jinja_env.globals["late_global"]


def test_a_template_with_globals_of_its_own_keeps_them_to_itself(app):
    with app.app_context():
        own = app.jinja_env.from_string("{{ mine }}", globals={"mine": "only here"})
        other = app.jinja_env.from_string("{{ mine | default('not here') }}")
        assert own.render() == "only here"
        assert other.render() == "not here"
        assert "mine" not in app.jinja_env.globals


def test_an_imported_macro_sees_the_globals_and_renders_the_same_on_every_page(app):
    with app.test_request_context("/?lang=en"):
        page = "{% from '_macros.html' import alert %}{{ alert('Wrong code', []) }}"
        first, second = render_template_string(page), render_template_string(page)
    assert "Wrong code" in first and first == second


def test_globals_asked_for_with_a_loaded_template_stay_with_that_template(app):
    with app.test_request_context("/"):
        plain = app.jinja_env.get_template("message.html")
        again = app.jinja_env.get_template("message.html", globals={"asked_for": "here"})
        assert again is plain and again.globals["asked_for"] == "here"
        assert "asked_for" not in app.jinja_env.globals
        assert app.jinja_env.get_template("logged_out.html").globals is app.jinja_env.globals
