"""The pinning service API at /psa, in-process: tokens, every endpoint and
filter, replace and delete, and bad input of every kind, each answered in
the spec's error shape."""

import base64
import hashlib
import json

import pytest

import console.psa
import console.tokens
import console.web.app
import console.web.psa
from support import Client

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data):
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, rest = divmod(number, 58)
        out = B58[rest] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def cid_pair(seed):
    """(CIDv0, the CIDv1 of the same dag-pb multihash) of some bytes."""
    multihash = b"\x12\x20" + hashlib.sha256(seed.encode()).digest()
    v1 = "b" + base64.b32encode(b"\x01\x70" + multihash).decode().lower().rstrip("=")
    return b58encode(multihash), v1


def cid(seed):
    return cid_pair(seed)[1]


@pytest.fixture
def token(db):
    return console.tokens.add_token(db, "laptop")


@pytest.fixture
def psa(client, token, spawned):
    """A client of /psa with the token."""
    class PSA:
        spawned_ids = spawned

        def call(self, method, path, body=None, headers=None, raw=None, token=token):
            heads = {"Authorization": "Bearer " + token} if token else {}
            heads.update(headers or {})
            data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
            if data:
                heads.setdefault("Content-Type", "application/json")
            return client.request(method, "/psa" + path, body=data, headers=heads)

        def add(self, cid_text, **fields):
            r = self.call("POST", "/pins", dict(fields, cid=cid_text))
            assert r.status == 202, r.body
            return r.json

        def ls(self, query=""):
            r = self.call("GET", "/pins" + ("?" + query if query else ""))
            assert r.status == 200, r.body
            return r.json
    return PSA()


def set_status(db, requestid, status, error=None):
    db.execute("UPDATE psa_requests SET status = ?, error = ? WHERE requestid = ?", (status, error, requestid))


def assert_failure(r, status):
    assert r.status == status, (r.status, r.body)
    body = r.json
    assert set(body) == {"error"} and set(body["error"]) == {"reason", "details"}
    assert body["error"]["reason"] and body["error"]["details"]
    assert "success" not in body
    return body["error"]


# -- tokens --------------------------------------------------------------------

def test_a_token_is_stored_hashed_listed_without_itself_and_revocable(db):
    token = console.tokens.add_token(db, "phone")
    assert len(token) >= 40
    row = db.execute("SELECT * FROM psa_tokens").fetchone()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest() and token not in tuple(row)
    assert [t["name"] for t in console.tokens.list_tokens(db)] == ["phone"]
    assert console.tokens.list_tokens(db)[0]["last_used_at"] is None
    assert console.tokens.token_owner(db, token) == "phone"
    assert console.tokens.list_tokens(db)[0]["last_used_at"] is not None
    with pytest.raises(console.tokens.TokenNameTaken):
        console.tokens.add_token(db, "phone")
    with pytest.raises(ValueError):
        console.tokens.add_token(db, "bad\nname")
    assert console.tokens.remove_token(db, "phone") and not console.tokens.remove_token(db, "phone")
    assert console.tokens.token_owner(db, token) is None


def test_it_rejects_no_token_a_wrong_one_and_a_revoked_one(psa, db, token):
    error = assert_failure(psa.call("GET", "/pins", token=None), 401)
    assert error["reason"] == "UNAUTHORIZED"
    assert_failure(psa.call("GET", "/pins", token="not-a-token"), 401)
    console.tokens.remove_token(db, "laptop")
    assert_failure(psa.call("GET", "/pins", token=token), 401)
    assert_failure(psa.call("POST", "/pins", {"cid": cid("x")}, token=token), 401)


def test_wrong_tokens_count_toward_the_lock_out(psa):
    for _ in range(console.web.auth.Authenticator.MAX_FAILURES):
        assert_failure(psa.call("GET", "/pins", token="wrong"), 401)
    r = psa.call("GET", "/pins")      # even the right token waits now
    assert assert_failure(r, 429)["reason"] == "TOO_MANY_REQUESTS" and r.header("Retry-After")


def test_the_console_password_does_not_open_the_api_and_a_token_opens_nothing_else(settings, db):
    settings.password = "s3cret"
    client = Client(console.web.app.App(settings))
    token = console.tokens.add_token(db, "laptop")
    assert_failure(client.get("/psa/pins", headers={"Authorization": "Bearer s3cret"}), 401)
    assert client.get("/psa/pins", headers={"Authorization": "Bearer " + token}).status == 200
    assert client.get("/api/pins", headers={"Authorization": "Bearer " + token}).status == 401
    assert client.get("/api/tasks", headers={"Authorization": "Bearer " + token}).status == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer " + token}).status == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status == 401


def test_the_cli_makes_lists_and_revokes_tokens(settings, capsys):
    from console.cli.commands import main
    assert main(["token", "add", "desktop", "--db", settings.db]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    conn = console.store.connect(settings.db)
    try:
        assert console.tokens.token_owner(conn, token) == "desktop"
    finally:
        conn.close()
    assert main(["token", "add", "desktop", "--db", settings.db]) == 3
    assert main(["token", "ls", "--json", "--db", settings.db]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [t["name"] for t in listed["tokens"]] == ["desktop"] and token not in json.dumps(listed)
    assert main(["token", "ls", "--db", settings.db]) == 0
    assert "desktop" in capsys.readouterr().out
    assert main(["token", "rm", "desktop", "--db", settings.db]) == 0
    assert main(["token", "rm", "desktop", "--db", settings.db]) == 4


# -- adding and reading ----------------------------------------------------------

def test_a_post_answers_202_with_a_pin_status_and_starts_the_queue(psa):
    status = psa.add(cid("a"), name="photo.jpg", origins=["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWFake"],
                     meta={"app": "x"})
    assert set(status) == {"requestid", "status", "created", "pin", "delegates", "info"}
    assert status["status"] == "queued" and status["created"].endswith("Z")
    assert status["pin"] == {"cid": cid("a"), "name": "photo.jpg",
                             "origins": ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWFake"], "meta": {"app": "x"}}
    assert len(psa.spawned_ids) == 1
    psa.add(cid("b"))
    assert len(psa.spawned_ids) == 1      # one queue task drains them all
    r = psa.call("GET", "/pins/" + status["requestid"])
    assert r.status == 200 and r.json == status


def test_delegates_are_the_nodes_own_p2p_addresses(psa, settings, fake_node):
    settings.ipfs_api = fake_node.url
    console.web.psa._delegates.clear()
    status = psa.add(cid("d"))
    assert status["delegates"] == ["/p2p/12D3KooWFake"]


def test_created_is_unique_and_the_listing_newest_first(psa, db):
    ids = [psa.add(cid("n%d" % n))["requestid"] for n in range(30)]
    for requestid in ids:
        set_status(db, requestid, "pinned")
    listing = psa.ls("limit=1000")
    assert listing["count"] == 30 and [p["requestid"] for p in listing["results"]] == ids[::-1]
    assert len({p["created"] for p in listing["results"]}) == 30


def test_paging_with_before_the_oldest_created_sees_each_once(psa, db):
    ids = [psa.add(cid("p%d" % n))["requestid"] for n in range(25)]
    for requestid in ids:
        set_status(db, requestid, "pinned")
    seen, query = [], ""
    while True:
        page = psa.ls(query)
        assert page["results"] or page["count"] == 0
        seen += [p["requestid"] for p in page["results"]]
        if page["count"] == len(page["results"]):
            break
        query = "before=" + page["results"][-1]["created"]
    assert seen == ids[::-1]


def test_status_defaults_to_pinned_and_takes_a_list(psa, db):
    a, b, c = (psa.add(cid(s))["requestid"] for s in "abc")
    set_status(db, a, "pinned")
    set_status(db, b, "failed", "no such block")
    assert [p["requestid"] for p in psa.ls()["results"]] == [a]
    listing = psa.ls("status=queued,failed")
    assert listing["count"] == 2 and {p["requestid"] for p in listing["results"]} == {b, c}
    failed = psa.ls("status=failed")["results"][0]
    assert failed["info"] == {"status_details": "no such block"}


def test_cid_filter_takes_up_to_ten_and_v0_equals_v1(psa):
    v0, v1 = cid_pair("same")
    first = psa.add(v0)["requestid"]
    psa.add(cid("other"))
    listing = psa.ls("status=queued&cid=" + v1)
    assert listing["count"] == 1 and listing["results"][0]["requestid"] == first
    ten = ",".join([v1] + [cid("c%d" % n) for n in range(9)])
    assert psa.ls("status=queued&cid=" + ten)["count"] == 1


@pytest.mark.parametrize("match, name, found", [
    ("exact", "Holiday Photo", True), ("exact", "holiday photo", False), ("iexact", "HOLIDAY PHOTO", True),
    ("partial", "day Pho", True), ("partial", "day pho", False), ("ipartial", "DAY PHO", True),
    (None, "Holiday", False), (None, "Holiday Photo", True)])
def test_name_filter_matches_as_asked(psa, match, name, found):
    requestid = psa.add(cid("named"), name="Holiday Photo")["requestid"]
    psa.add(cid("unnamed"))
    query = "status=queued&name=" + name.replace(" ", "%20") + ("&match=" + match if match else "")
    listing = psa.ls(query)
    assert [p["requestid"] for p in listing["results"]] == ([requestid] if found else [])


def test_case_folding_is_not_only_ascii(psa):
    requestid = psa.add(cid("u"), name="Straße ÄPFEL")["requestid"]
    assert psa.ls("status=queued&match=iexact&name=STRASSE%20%C3%A4pfel")["count"] == 1
    assert [p["requestid"] for p in psa.ls("status=queued&match=ipartial&name=%C3%A4pfel")["results"]] == [requestid]


def test_before_and_after_and_limit_and_count(psa, db):
    ids = [psa.add(cid("t%d" % n))["requestid"] for n in range(12)]
    statuses = {p["requestid"]: p for p in psa.ls("status=queued&limit=1000")["results"]}
    middle = statuses[ids[5]]["created"]
    before = psa.ls("status=queued&limit=1000&before=" + middle)
    assert [p["requestid"] for p in before["results"]] == ids[:5][::-1] and before["count"] == 5
    after = psa.ls("status=queued&limit=1000&after=" + middle)
    assert [p["requestid"] for p in after["results"]] == ids[6:][::-1]
    page = psa.ls("status=queued")
    assert page["count"] == 12 and len(page["results"]) == 10
    page = psa.ls("status=queued&limit=3")
    assert page["count"] == 12 and len(page["results"]) == 3


def test_meta_filter_is_a_subset_match(psa):
    a = psa.add(cid("m1"), meta={"app": "x", "kind": "photo"})["requestid"]
    psa.add(cid("m2"), meta={"app": "y"})
    psa.add(cid("m3"))
    assert [p["requestid"] for p in psa.ls('status=queued&meta={"app":"x"}')["results"]] == [a]
    assert psa.ls('status=queued&meta={"app":"x","kind":"video"}')["count"] == 0
    assert psa.ls("status=queued&meta={}")["count"] == 3


def test_each_token_sees_its_own_requests(psa, db):
    mine = psa.add(cid("mine"))["requestid"]
    other = console.tokens.add_token(db, "phone")
    assert psa.call("GET", "/pins?status=queued", token=other).json["count"] == 0
    assert_failure(psa.call("GET", "/pins/" + mine, token=other), 404)
    assert_failure(psa.call("DELETE", "/pins/" + mine, token=other), 404)


# -- replace and delete ----------------------------------------------------------

def test_replace_gives_a_new_id_and_the_old_one_is_gone(psa, db):
    old = psa.add(cid("r1"), name="first")
    set_status(db, old["requestid"], "pinned")
    r = psa.call("POST", "/pins/" + old["requestid"], {"cid": cid("r2"), "name": "second"})
    assert r.status == 202
    new = r.json
    assert new["requestid"] != old["requestid"] and new["pin"]["cid"] == cid("r2") and new["status"] == "queued"
    assert_failure(psa.call("GET", "/pins/" + old["requestid"]), 404)
    assert [row["cid"] for row in db.execute("SELECT cid FROM psa_unpins")] == [cid("r1")]


def test_delete_answers_202_and_unpins_only_what_nothing_else_holds(psa, db):
    v0, v1 = cid_pair("shared")
    a = psa.add(v0)["requestid"]
    b = psa.add(v1)["requestid"]
    set_status(db, a, "pinned")
    set_status(db, b, "pinned")
    r = psa.call("DELETE", "/pins/" + a)
    assert r.status == 202 and r.body == b""
    assert_failure(psa.call("GET", "/pins/" + a), 404)
    assert_failure(psa.call("DELETE", "/pins/" + a), 404)
    # b still holds the same multihash: taking the unpin finds it held.
    assert console.psa.take_unpin(db) is None
    psa.call("DELETE", "/pins/" + b)
    assert console.psa.take_unpin(db) == v1


def test_a_pin_the_node_had_before_is_never_unpinned(psa, db):
    a = psa.add(cid("held"))["requestid"]
    db.execute("UPDATE psa_requests SET status = 'pinned', held_before = 1 WHERE requestid = ?", (a,))
    assert psa.call("DELETE", "/pins/" + a).status == 202
    assert db.execute("SELECT COUNT(*) FROM psa_unpins").fetchone()[0] == 0


def test_a_queued_or_failed_request_leaves_nothing_to_unpin(psa, db):
    a = psa.add(cid("q"))["requestid"]
    b = psa.add(cid("f"))["requestid"]
    set_status(db, b, "failed", "oops")
    psa.call("DELETE", "/pins/" + a)
    psa.call("DELETE", "/pins/" + b)
    assert db.execute("SELECT COUNT(*) FROM psa_unpins").fetchone()[0] == 0


# -- bad input -------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"{", b"[]", b'"cid"', b"null", b"\xff\xfe", b'{"cid": 5}', b'{"cid": "nope"}',
                                 b'{"name": "x"}', b'{"cid": "%s", "colour": "red"}' % cid("u").encode(),
                                 b'{"cid": "%s", "name": "%s"}' % (cid("u").encode(), b"n" * 256),
                                 b'{"cid": "%s", "name": 7}' % cid("u").encode(),
                                 b'{"cid": "%s", "origins": "/ip4/1.2.3.4"}' % cid("u").encode(),
                                 b'{"cid": "%s", "origins": ["x"]}' % cid("u").encode(),
                                 b'{"cid": "%s", "meta": {"a": 1}}' % cid("u").encode(),
                                 b'{"cid": "%s", "meta": []}' % cid("u").encode(), b"[" * 200000,
                                 b'{"cid": "%s", "meta": ' % cid("u").encode() + b'{"a":' * 5000])
def test_it_rejects_a_bad_pin_with_400(psa, raw):
    assert_failure(psa.call("POST", "/pins", raw=raw), 400)
    assert psa.ls("status=queued,pinning,pinned,failed")["count"] == 0


def test_it_takes_a_name_of_255_characters(psa):
    assert psa.add(cid("long"), name="n" * 255)["pin"]["name"] == "n" * 255


def test_it_rejects_a_bad_replace_and_an_unknown_id(psa):
    requestid = psa.add(cid("x"))["requestid"]
    assert_failure(psa.call("POST", "/pins/" + requestid, raw=b"{"), 400)
    assert_failure(psa.call("POST", "/pins/" + requestid, {"cid": cid("y"), "extra": 1}), 400)
    assert psa.call("GET", "/pins/" + requestid).status == 200     # a bad replace changes nothing
    for method in ("GET", "DELETE"):
        assert assert_failure(psa.call(method, "/pins/nosuchrequest"), 404)["reason"] == "NOT_FOUND"
    assert_failure(psa.call("POST", "/pins/nosuchrequest", {"cid": cid("y")}), 404)


@pytest.mark.parametrize("query", [
    "cid=" + ",".join(cid("e%d" % n) for n in range(11)), "cid=notacid", "cid=", "status=done", "status=",
    "match=fuzzy&name=x", "name=" + "n" * 256, "before=yesterday", "before=2020-13-45T00:00:00Z",
    "after=2020-07-27", "limit=0", "limit=1001", "limit=ten", "limit=-1", "meta=notjson", "meta=[1]",
    'meta={"a":1}', "colour=red", "meta=" + "[" * 5000, "before=2020-07-27T17:32:28.276%2B25:99"])
def test_it_rejects_bad_filters_with_400(psa, query):
    assert assert_failure(psa.call("GET", "/pins?" + query), 400)["reason"] == "BAD_REQUEST"


def test_wrong_methods_unknown_paths_and_big_bodies_get_the_spec_shape(psa):
    r = psa.call("PUT", "/pins")
    assert assert_failure(r, 405)["reason"] == "METHOD_NOT_ALLOWED" and r.header("Allow") == "GET, POST"
    assert_failure(psa.call("GET", "/nothing"), 404)
    assert_failure(psa.call("GET", "/psa"), 404)
    assert_failure(psa.call("POST", "/pins", raw=b'{"cid": "' + b"x" * 300000 + b'"}'), 413)
    assert_failure(psa.call("POST", "/pins", raw=b'{"cid": "x"}', headers={"Content-Type": "text/plain"}), 415)


def test_errors_speak_the_readers_language(psa):
    r = psa.call("GET", "/pins?limit=0", headers={"Accept-Language": "zh-CN"})
    assert assert_failure(r, 400)["details"] == "limit 必须是 1 到 1000 之间的整数。"


# -- the console's side: tokens and requests --------------------------------------

def test_the_console_makes_lists_and_revokes_tokens(client):
    r = client.post("/api/tokens", body=b'{"name": "tablet"}', headers={"Content-Type": "application/json"})
    assert r.status == 201 and r.json["name"] == "tablet" and len(r.json["token"]) >= 40
    token = r.json["token"]
    listed = client.get("/api/tokens").json["tokens"]
    assert [t["name"] for t in listed] == ["tablet"] and token not in json.dumps(listed)
    assert client.post("/api/tokens", body=b'{"name": "tablet"}').status == 409
    for body in (b'{"name": ""}', b'{"name": 5}', b"{}", b"nope", b'{"name": "' + b"x" * 65 + b'"}'):
        r = client.post("/api/tokens", body=body)
        assert r.status == 400 and r.json["success"] is False
    assert client.post("/api/tokens/revoke", body=b'{"name": "tablet"}').json == {"success": True}
    assert client.post("/api/tokens/revoke", body=b'{"name": "tablet"}').status == 404
    assert client.get("/psa/pins", headers={"Authorization": "Bearer " + token}).status == 401


def test_the_console_lists_cancels_and_retries_every_tokens_requests(psa, client, db):
    first = psa.add(cid("c1"), name="one")["requestid"]
    other = console.tokens.add_token(db, "phone")
    second = psa.call("POST", "/pins", {"cid": cid("c2")}, token=other).json["requestid"]
    listed = client.get("/api/psa/requests").json
    assert listed["total"] == 2 and [r["requestid"] for r in listed["requests"]] == [second, first]
    assert {r["token"] for r in listed["requests"]} == {"laptop", "phone"}
    assert listed["counts"] == {"queued": 2, "pinning": 0, "pinned": 0, "failed": 0}
    assert listed["requests"][1]["created_at"][:4].isdigit() and listed["requests"][1]["name"] == "one"
    assert client.post("/api/psa/requests/cancel?id=" + first).json == {"success": True, "status": "failed"}
    assert client.post("/api/psa/requests/cancel?id=" + first).status == 409
    assert client.get("/api/psa/requests?status=failed").json["requests"][0]["error"] == console.psa.CANCELLED
    assert client.post("/api/psa/requests/retry?id=" + first).status == 202
    assert client.post("/api/psa/requests/retry?id=" + first).status == 409
    assert client.post("/api/psa/requests/retry?id=nope").status == 404
    assert client.post("/api/psa/requests/cancel").status == 400
    assert client.get("/api/psa/requests?status=done").status == 400


def test_metrics_count_the_requests_by_status(psa, client, db):
    from prometheus_client.parser import text_string_to_metric_families
    a = psa.add(cid("m1"))["requestid"]
    psa.add(cid("m2"))
    set_status(db, a, "failed", "no")
    text = client.get("/metrics").text
    family = [f for f in text_string_to_metric_families(text) if f.name == "ipfsmaster_psa_requests"][0]
    assert family.type == "gauge"
    assert {s.labels["status"]: s.value for s in family.samples} == {"queued": 1, "pinning": 0, "pinned": 0,
                                                                    "failed": 1}


def test_a_rebound_name_gets_nothing_without_a_password(psa):
    r = psa.call("GET", "/pins", headers={"Host": "evil.example:8080"})
    assert assert_failure(r, 421)["details"].startswith("This console answers only at its own address")


def test_deep_json_to_the_console_is_a_400_too(client):
    r = client.post("/api/tokens", body=b"[" * 4000)
    assert r.status == 400 and r.json["success"] is False


def test_times_with_an_offset_are_the_same_instant(psa):
    created = psa.add(cid("z"))["created"]
    ms = console.psa.parse_time(created, "before")
    local = console.psa.format_time(int(ms) + 2 * 3600 * 1000)[:-1].replace("Z", "") + "+02:00"
    assert console.psa.parse_time(local, "before") == ms
    assert psa.ls("status=queued&before=" + local.replace("+", "%2B"))["count"] == 0
    assert psa.ls("status=queued&before=" + local)["count"] == 0        # "+" left unescaped: read as one
    later = console.psa.format_time(int(ms) + 1)
    assert psa.ls("status=queued&before=" + later)["count"] == 1
