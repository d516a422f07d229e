from tests.helpers import exchange_code


def test_first_login_then_token(browser, portal, person):
    browser.authorize(portal["client_id"], login_hint=person["email"])
    assert browser.status == 200, browser.text
    assert browser.step_state == "email"
    browser.sign_in(person["email"], person["password"], first_time=True)
    assert browser.status == 302, (browser.url, browser.step_state, browser.alert, browser.text[:2000])
    params = browser.callback_params()
    assert "code" in params, params
    response = exchange_code(browser.http, portal, params["code"], browser.verifier)
    assert response.status_code == 200, response.get_json()
    assert "id_token" in response.get_json()
