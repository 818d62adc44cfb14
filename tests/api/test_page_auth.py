"""The call pages' login: the API token typed into a form sets a signed session cookie (HttpOnly,
SameSite=Strict, path /ui) that only the pages read; the JSON API keeps its bearer token."""
import requests

from tests.api.test_call_pages import report_call


def _login(api, token=None, next_="/ui/calls"):
    s = requests.Session()
    r = s.post(api.url + "/ui/login", data={"token": token or api.settings.api_token.get_secret_value(),
                                            "next": next_}, allow_redirects=False)
    return s, r


def test_every_page_but_the_login_and_its_stylesheet_needs_the_cookie(api):
    call_id = report_call(api)
    for path in ("/ui/", "/ui/calls", f"/ui/calls/{call_id}", f"/ui/calls/{call_id}/recording"):
        r = requests.get(api.url + path)
        assert r.status_code == 401 and 'id="login"' in r.text and call_id not in r.text.replace(
            f'value="/ui/calls/{call_id}', ""), path
    assert requests.get(api.url + "/ui/login").status_code == 200
    css = requests.get(api.url + "/ui/style.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")


def test_a_wrong_token_sets_no_cookie_and_the_right_one_opens_the_pages_not_the_api(api):
    s, r = _login(api, token="wrong")
    assert r.status_code == 401 and "not the API token" in r.text and "Set-Cookie" not in r.headers
    s, r = _login(api, next_="/ui/calls?direction=inbound")
    assert r.status_code == 303 and r.headers["Location"].endswith("/ui/calls?direction=inbound")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("voiceagent_ui=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    page = s.get(api.url + "/ui/calls")
    assert page.status_code == 200 and 'id="calls"' in page.text
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none': no script at all
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert s.get(api.url + "/calls").status_code == 401  # the JSON API never takes the cookie
    anywhere = requests.Session()
    anywhere.cookies.set("voiceagent_ui", s.cookies.get("voiceagent_ui"), path="/")  # even when sent everywhere
    assert anywhere.get(api.url + "/calls").status_code == 401
    assert s.post(api.url + "/ui/logout", allow_redirects=False).status_code == 303
    assert s.get(api.url + "/ui/calls").status_code == 401


def test_login_never_sends_the_browser_to_another_site(api):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/calls"):
        _, r = _login(api, next_=target)
        assert r.status_code == 303 and r.headers["Location"] == "/ui/calls", target


def test_a_new_api_token_logs_every_browser_out(start_api):
    old = start_api()
    s, _ = _login(old)
    assert s.get(old.url + "/ui/calls").status_code == 200
    new = start_api(api_token="another-token-7d2a")
    assert s.get(new.url + "/ui/calls").status_code == 401
    same_secret = start_api(api_token="another-token-7d2a", api_session_secret="fixed-secret")
    s2, _ = _login(same_secret)
    rotated = start_api(api_token="third-token-99aa", api_session_secret="fixed-secret")
    assert s2.get(rotated.url + "/ui/calls").status_code == 401  # the cookie names the token it was made with


def test_without_an_api_token_the_pages_are_open_like_the_api(start_api):
    api = start_api(api_token="")
    assert requests.get(api.url + "/ui/calls").status_code == 200


def test_an_unknown_call_is_a_404_page_and_a_bad_filter_a_422_naming_it(api):
    s, _ = _login(api)
    r = s.get(api.url + "/ui/calls/no-such-call")
    assert r.status_code == 404 and "No such call" in r.text
    r = s.get(api.url + "/ui/calls?state=flying&direction=inbound")
    assert r.status_code == 422 and "state:" in r.text
    r = s.get(api.url + "/ui/calls?since=yesterday-ish")
    assert r.status_code == 422 and "since:" in r.text
    r = s.get(api.url + "/ui/calls?state=&direction=&number=")  # the form's empty fields mean "any"
    assert r.status_code == 200
