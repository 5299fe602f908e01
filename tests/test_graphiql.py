"""The GraphiQL page: served to browsers on GET /graphql, self-contained (no outside host), key kept out of storage."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

FETCH_HINT = "run `bash web/fetch-assets.sh` (make test runs it before pytest)"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class _Page(HTMLParser):
    """Collects the page's references (src/href), its inline scripts and its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self.inline_scripts: list[str] = []
        self.inputs: dict[str, dict[str, str | None]] = {}
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href"):
            if attributes.get(name):
                self.references.append(attributes[name])
        if tag == "input" and attributes.get("id"):
            self.inputs[attributes["id"]] = attributes
        if tag == "script" and not attributes.get("src"):
            self._in_inline_script = True
            self.inline_scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data):
        if self._in_inline_script:
            self.inline_scripts[-1] += data


async def _page(api) -> tuple[str, _Page]:
    response = await api.client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200, response.text
    parser = _Page()
    parser.feed(response.text)
    return response.text, parser


async def test_browser_get_returns_the_graphiql_page(api):
    response = await api.client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>govshare 数据共享查询 · GraphiQL</title>" in response.text
    assert response.text == (api.world.settings.web_dir / "graphiql.html").read_text(encoding="utf-8")


async def test_root_redirects_to_the_page(api):
    response = await api.client.get("/")
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/graphql"


async def test_page_references_no_outside_host(api):
    html, page = await _page(api)
    assert "http://" not in html and "https://" not in html
    assert page.references, "the page should load its scripts and styles"
    for reference in page.references:
        assert reference.startswith(("/static/vendor/", "data:")), reference
    scripts = [r for r in page.references if r.endswith(".js")]
    styles = [r for r in page.references if r.endswith(".css")]
    assert {
        "/static/vendor/react.production.min.js",
        "/static/vendor/react-dom.production.min.js",
        "/static/vendor/graphiql.min.js",
    } <= set(scripts)
    assert styles == ["/static/vendor/graphiql.min.css"]
    # The browser is told to refuse any other origin, including for requests the page makes.
    csp = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html)
    assert csp, "the page sets a Content-Security-Policy"
    assert "default-src 'self'" in csp.group(1) and "connect-src 'self'" in csp.group(1)


async def test_every_vendor_asset_the_page_references_is_served(api):
    _, page = await _page(api)
    web_dir = api.world.settings.web_dir
    vendored = [r for r in page.references if r.startswith("/static/vendor/")]
    missing = [r for r in vendored if not (web_dir / r.removeprefix("/static/")).is_file()]
    assert not missing, f"GraphiQL assets missing from {web_dir / 'vendor'}: {missing}; {FETCH_HINT}"
    for reference in vendored:
        response = await api.client.get(reference)
        assert response.status_code == 200, reference
        on_disk = (web_dir / reference.removeprefix("/static/")).read_bytes()
        assert len(on_disk) > 1000, f"{reference} looks truncated; {FETCH_HINT}"
        assert response.content == on_disk
        kind = "text/css" if reference.endswith(".css") else "javascript"
        assert kind in response.headers["content-type"], (reference, response.headers["content-type"])


async def test_key_purpose_and_operator_inputs(api):
    _, page = await _page(api)
    assert page.inputs["gs-key"]["type"] == "password"
    assert page.inputs["gs-key"]["autocomplete"] == "off"
    assert "gs-purpose" in page.inputs
    assert "gs-operator" in page.inputs


async def test_page_never_refers_to_session_storage_or_cookies_in_code(api):
    _, page = await _page(api)
    (script,) = page.inline_scripts
    assert "sessionStorage" not in script
    assert "document.cookie" not in script
    assert "shouldPersistHeaders: false" in script


# Runs the page's own script in Node with a stand-in browser: whatever GraphiQL asks its storage to keep,
# nothing containing the key may reach localStorage; sessionStorage and cookies are never touched.
HARNESS = r"""
const fs = require('fs');
const script = fs.readFileSync(0, 'utf8');
const KEY = 'gs_0badc0de_THE-SECRET-KEY-VALUE';
const stored = {};
const localStorage = {};
Object.defineProperties(localStorage, {
  getItem: {value: (k) => (k in stored ? stored[k] : null)},
  setItem: {value: (k, v) => { stored[k] = String(v); localStorage[k] = String(v); }},
  removeItem: {value: (k) => { delete stored[k]; delete localStorage[k]; }},
});
const touched = [];
const sessionStorage = new Proxy({}, {get: (t, p) => { touched.push('sessionStorage.' + String(p)); return () => null; }});
function element(id) {
  const listeners = {}, attributes = {};
  return {id, value: '', innerHTML: '', textContent: '', addEventListener: (e, f) => { (listeners[e] = listeners[e] || []).push(f); },
          fire: (e) => (listeners[e] || []).forEach((f) => f()),
          setAttribute: (n, v) => { attributes[n] = String(v); }, getAttribute: (n) => (n in attributes ? attributes[n] : null)};
}
const elements = {};
for (const id of ['graphiql', 'gs-key', 'gs-purpose', 'gs-operator', 'gs-lang', 'gs-hint', 'gs-precedence', 'gs-used']) {
  elements[id] = element(id);
}
elements['gs-lang'].value = 'zh-CN';
const document = {getElementById: (id) => elements[id]};
Object.defineProperty(document, 'cookie', {set: () => touched.push('document.cookie'), get: () => ''});
let props = null, fetchOptions = null;
const sent = [];
const window = {
  localStorage, sessionStorage, document,
  fetch: (url, init) => { sent.push({url, headers: Object.fromEntries(init.headers.entries()), credentials: init.credentials}); return Promise.resolve({}); },
};
window.React = {createElement: (component, p) => { props = p; return {}; }};
window.ReactDOM = {createRoot: () => ({render: () => {}})};
window.GraphiQL = {createFetcher: (options) => { fetchOptions = options; return () => {}; }};
new Function('window', 'document', 'React', 'ReactDOM', 'GraphiQL', 'localStorage', 'sessionStorage', script)(
  window, document, window.React, window.ReactDOM, window.GraphiQL, localStorage, sessionStorage);

elements['gs-key'].value = KEY;
elements['gs-purpose'].value = 'market.licence-review';
elements['gs-operator'].value = 'wang.li';
elements['gs-key'].fire('change');
const storage = props.storage;
storage.setItem('graphiql:query', '{ caller { department } }');
storage.setItem('graphiql:headers', JSON.stringify({Authorization: 'Bearer ' + KEY}));
storage.setItem('graphiql:tabState', JSON.stringify({activeTabIndex: 0, tabs: [
  {id: 't1', query: '{ caller { department } }', headers: JSON.stringify({Authorization: 'Bearer ' + KEY}), variables: null}]}));
storage.setItem('graphiql:variables', JSON.stringify({note: 'my key is ' + KEY}));
storage.setItem('graphiql:queries', JSON.stringify({queries: [{query: '# ' + KEY + '\n{ caller { application } }'}]}));
const read = storage.getItem('graphiql:query');
// GraphiQL hands the fetcher its Headers tab's JSON as headers: the tab wins over the bar, header by header.
const TAB_KEY = 'gs_0badc0de_TYPED-IN-THE-HEADERS-TAB';
fetchOptions.fetch('/graphql', {method: 'POST', body: '{}', headers: {'content-type': 'application/json'}});
const fromBar = elements['gs-used'].textContent;
fetchOptions.fetch('/graphql', {method: 'POST', body: '{}',
                                headers: {'content-type': 'application/json', authorization: 'Bearer ' + TAB_KEY, 'X-Purpose': 'other.purpose'}});
const fromTab = elements['gs-used'].textContent;
storage.setItem('graphiql:query', '# ' + TAB_KEY + '\n{ caller { department } }');
storage.setItem('graphiql:variables', JSON.stringify({note: 'tab key ' + TAB_KEY}));
// Neither the bar nor the tab gives a key: nothing is sent.
elements['gs-key'].value = '';
const unsent = fetchOptions.fetch('/graphql', {method: 'POST', body: '{}', headers: {'X-Purpose': 'market.licence-review'}});
unsent.then((r) => r.json()).then((body) => {
  process.stdout.write(JSON.stringify({key: KEY, tabKey: TAB_KEY, stored, touched, sent, url: fetchOptions.url, fromBar, fromTab,
                                       unsent: body, shouldPersistHeaders: props.shouldPersistHeaders, read}));
});
"""


async def test_page_keeps_the_key_out_of_browser_storage(api):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (it is needed by web/fetch-assets.sh as well)")
    _, page = await _page(api)
    (script,) = page.inline_scripts
    run = subprocess.run([node, "-e", HARNESS], input=script, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)
    key = outcome["key"]

    assert outcome["touched"] == []  # no sessionStorage, no cookie
    assert outcome["shouldPersistHeaders"] is False
    for secret in (key, outcome["tabKey"]):  # neither the bar's key nor the one typed into the Headers tab
        assert all(secret not in name and secret not in value for name, value in outcome["stored"].items())
    # Storage still works for what does not carry the key: the query text, and the tabs without their headers.
    assert outcome["read"] == "{ caller { department } }"
    tabs = json.loads(outcome["stored"]["govshare:graphiql:tabState"])
    assert tabs["tabs"][0]["query"] == "{ caller { department } }" and tabs["tabs"][0]["headers"] is None
    assert "govshare:graphiql:headers" not in outcome["stored"]

    # Without headers in GraphiQL's Headers tab, requests carry the bar's values; the tab's win where it gives one.
    bar, tab = outcome["sent"]  # and nothing at all was sent without a key
    assert outcome["url"] == "/graphql" and bar["url"] == tab["url"] == "/graphql"
    assert bar["headers"] == {
        "authorization": f"Bearer {key}",
        "x-purpose": "market.licence-review",
        "x-operator": "wang.li",
        "accept-language": "zh-CN",
        "content-type": "application/json",
    }
    assert tab["headers"] == bar["headers"] | {
        "authorization": f"Bearer {outcome['tabKey']}",
        "x-purpose": "other.purpose",
    }
    assert bar["credentials"] == tab["credentials"] == "same-origin"
    # The page says where each came from, and never the key itself.
    assert outcome["fromBar"] == "上次请求：应用密钥 ← 上方栏；用途 ← 上方栏；经办人 ← 上方栏"
    assert outcome["fromTab"] == "上次请求：应用密钥 ← Headers 标签页；用途 ← Headers 标签页；经办人 ← 上方栏"
    assert outcome["unsent"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("accept", "language", "text"),
    [
        ("application/json", None, "请求无法解析：缺少字符串参数 query。"),
        (None, None, "请求无法解析：缺少字符串参数 query。"),
        ("*/*", "en", "The request cannot be read: expected a 'query' string."),
        ("text/html;q=0.5, application/json", "en", "The request cannot be read: expected a 'query' string."),
    ],
)
async def test_get_without_html_and_without_a_query_is_a_bad_request_with_a_code(api, accept, language, text):
    """GET /graphql is GraphQL over HTTP's GET form unless a browser prefers the page: without a query it is a
    request that cannot be read (after the key, as every request is)."""
    headers = {"Authorization": f"Bearer {api.world.keys['hrss']}"}
    if accept:
        headers["Accept"] = accept
    if language:
        headers["Accept-Language"] = language
    response = await api.client.get("/graphql", headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["message"] == text
    anonymous = await api.client.get("/graphql", headers={k: v for k, v in headers.items() if k != "Authorization"})
    assert anonymous.status_code == 401 and anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
