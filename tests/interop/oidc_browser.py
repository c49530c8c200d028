"""The browser's part of the authorization code flow, done with plain `requests`.

A client library (authlib) builds the authorization URL and later redeems the code; in between
a user agent has to follow the IdP's redirects and sign in on its HTML login form. `Browser`
does that the way a person's browser would: it keeps cookies, follows each `Location` by hand
(`allow_redirects=False`, so every hop is visible), fills in the form from the page it was
served (hidden `csrf_token` and `return_to` included), and stops at the first redirect to the
client's redirect URI, which it does not fetch: nothing listens there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

TIMEOUT = 10  # seconds, for every request
MAX_HOPS = 10  # redirects and form posts in one authorization


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    input_types: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Collects every <form> with its <input> names, values and types."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current.fields[a["name"]] = a.get("value", "")
            self._current.input_types[a["name"]] = a.get("type", "text").lower()

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def login_form(html: str) -> Form | None:
    """The form with a password field, if the page has one."""
    for form in parse_forms(html):
        if "password" in form.input_types.values():
            return form
    return None


@dataclass
class Hop:
    method: str
    url: str
    status: int


@dataclass
class AuthorizationResult:
    callback_url: str  # the redirect to the client, as the browser would have followed it
    params: dict[str, str]  # its query parameters (code, state, iss, or error)
    hops: list[Hop]
    signed_in: bool  # whether the login form was filled in on the way

    def describe(self) -> str:
        return "\n".join(f"  {h.method} {h.url} -> {h.status}" for h in self.hops)


def _same_endpoint(a: str, b: str) -> bool:
    """Scheme, host, port and path equal (the query differs: it carries the response)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc, pa.path) == (pb.scheme, pb.netloc, pb.path)


class Browser:
    """One user agent: its own cookie jar, so its own IdP session."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def authorize(
        self, authorization_url: str, redirect_uri: str, username: str, password: str
    ) -> AuthorizationResult:
        """Follows `authorization_url` until the IdP redirects to `redirect_uri`, signing in
        with the form if asked to. Raises AssertionError on anything else."""
        method, url, data = "GET", authorization_url, None
        hops: list[Hop] = []
        signed_in = False
        for _ in range(MAX_HOPS):
            resp = self.http.request(method, url, data=data, allow_redirects=False, timeout=TIMEOUT)
            hops.append(Hop(method, url, resp.status_code))
            if resp.is_redirect:
                target = urljoin(url, resp.headers["Location"])
                if _same_endpoint(target, redirect_uri):
                    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
                    assert all(len(v) == 1 for v in query.values()), f"repeated parameter in {target}"
                    params = {k: v[0] for k, v in query.items()}
                    return AuthorizationResult(target, params, hops, signed_in)
                method, url, data = "GET", target, None
                continue
            form = login_form(resp.text) if resp.status_code == 200 else None
            if form is None:
                raise AssertionError(
                    f"expected a redirect or the login form, got {resp.status_code} from "
                    f"{method} {url}:\n{resp.text[:2000]}\nhops so far:\n"
                    + "\n".join(f"  {h.method} {h.url} -> {h.status}" for h in hops)
                )
            if signed_in:
                raise AssertionError(f"the login form came back after signing in:\n{resp.text[:2000]}")
            assert form.method == "post", f"login form method is {form.method!r}"
            assert form.fields.get("csrf_token"), f"login form has no csrf_token: {form.fields}"
            data = dict(form.fields)  # hidden fields as served: csrf_token, return_to
            data["username"] = username
            data["password"] = password
            method, url = "POST", urljoin(url, form.action)
            signed_in = True
        raise AssertionError(f"no redirect to {redirect_uri} after {MAX_HOPS} hops")
