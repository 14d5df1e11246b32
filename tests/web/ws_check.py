#!/usr/bin/python3
"""ws_check.py URL EXPECT NONIMAGE

The /v1/events WebSocket against a running gateway (started with
--max-websockets 2), with Python's websockets.  EXPECT holds one line per
real photo: "PATH MD5" of what `imgproc process --steps grayscale` gives.
Prints "ok DESCRIPTION" or "not ok DESCRIPTION: why" per check and a last
line "summary PASSED TOTAL", for the TAP test to count.
"""
import asyncio
import hashlib
import json
import secrets
import sys
import urllib.request

import websockets

base, expect_file, nonimage = sys.argv[1], sys.argv[2], sys.argv[3]
ws_base = "ws" + base[4:]
expect = [line.split() for line in open(expect_file)]
results = []


def check(cond, desc, why=""):
    results.append(bool(cond))
    print("ok %s" % desc if cond else "not ok %s: %s" % (desc, why), flush=True)


async def refused(url, **kw):
    """The HTTP status the handshake is refused with, or None when it is taken."""
    try:
        async with websockets.connect(url, **kw) as ws:
            await asyncio.wait_for(ws.recv(), 5)
            return None
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    except (websockets.exceptions.InvalidMessage, websockets.exceptions.ConnectionClosed,
            ConnectionError, EOFError):
        return "no HTTP answer"


async def lab_flow():
    """The labs' flow: every photo in, as binary messages, before any answer is read."""
    async with websockets.connect(ws_base + "/v1/events", max_size=None) as ws:
        hello = json.loads(await ws.recv())
        check(hello["type"] == "hello" and hello["in_flight"] >= len(expect),
              "hello says how many images may be in flight", hello)
        for path, _ in expect:
            await ws.send(open(path, "rb").read())
        await ws.send(open(nonimage, "rb").read())
        await ws.send("not an image but text")
        got, errors, order = {}, [], []
        while len(got) < len(expect) + 1 or not errors:
            m = await asyncio.wait_for(ws.recv(), 120)
            e = json.loads(m)
            if e["type"] == "error":
                errors.append(e)
                continue
            check(e["type"] == "result", "a result's description first", e)
            order.append(e["seq"])
            if e["ok"]:
                image = await asyncio.wait_for(ws.recv(), 120)
                check(isinstance(image, bytes) and len(image) == e["bytes"],
                      "seq %d: then its image, %d bytes" % (e["seq"], e["bytes"]),
                      type(image))
                got[e["seq"]] = (e, image)
            else:
                got[e["seq"]] = (e, None)
        for i, (path, md5) in enumerate(expect, 1):
            e, image = got[i]
            check(e["ok"] and hashlib.md5(image).hexdigest() == md5,
                  "seq %d (%s): byte for byte what imgproc process gives" % (i, path.split("/")[-1]),
                  e)
            # WebP has no gray mode: libvips reads gray WebP back as RGB(A).
            check(e["bands"] in (1, 2) or e["format"] == "webp",
                  "seq %d: grayscale, %d band(s)" % (i, e["bands"]), e)
        e, _ = got[len(expect) + 1]
        check(not e["ok"] and e["status"] == "unsupported-format",
              "not an image: ok false, unsupported-format, and no image", e)
        check(errors and errors[0]["status"] == "invalid-argument",
              "a text message: an error event", errors)
        check(sorted(order) == list(range(1, len(expect) + 2)), "every image answered once", order)


async def steps_query():
    async with websockets.connect(ws_base + "/v1/events?steps=resize=100x100,flip&format=png",
                                  max_size=None) as ws:
        await ws.recv()
        await ws.send(open(expect[0][0], "rb").read())
        e = json.loads(await ws.recv())
        image = await ws.recv()
        check(e["ok"] and e["format"] == "png" and max(e["width"], e["height"]) == 100 and
              image[:8] == b"\x89PNG\r\n\x1a\n", "?steps= and ?format= set the socket's pipeline", e)


async def refusals():
    got = await refused(ws_base + "/v1/events?steps=blurr=2")
    check(got == 400, "steps that are not a pipeline: refused, 400", got)
    got = await refused(ws_base + "/v1/events", origin="http://evil.example")
    check(got == 403, "another site's page (Origin): refused, 403", got)
    got = await refused(ws_base + "/v1/events", extra_headers={"Authorization": "Bearer 12"})
    check(got == 401, "a bearer token that is not a session's: refused, 401", got)
    host = base.split("//")[1]
    async with websockets.connect(ws_base + "/v1/events", origin="http://" + host) as ws:
        check(json.loads(await ws.recv())["type"] == "hello", "this gateway's own page (Origin): taken")
    a = await websockets.connect(ws_base + "/v1/events")
    b = await websockets.connect(ws_base + "/v1/events")
    await a.recv(), await b.recv()
    got = await refused(ws_base + "/v1/events")
    check(got == 503, "a third socket over --max-websockets 2: refused, 503 (busy)", got)
    await a.close()
    await a.wait_closed()
    # The gateway has let a go once a new one is taken: try until it is.
    taken = False
    for _ in range(50):
        if await refused(ws_base + "/v1/events") is None:
            taken = True
            break
        await asyncio.sleep(0.1)
    check(taken, "... and taken again once one has closed")
    await b.close()


def rest(method, path, token, body=None):
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


async def task_events():
    """A session's socket hears of its own tasks, to the end, and of no one else's."""
    mine, other = secrets.token_hex(32), secrets.token_hex(32)
    async with websockets.connect(ws_base + "/v1/events", max_size=None,
                                  extra_headers={"Cookie": "imgproc_session=" + mine}) as ws:
        hello = json.loads(await ws.recv())
        check(hello["session"] is True, "a socket with a session says so", hello)
        ids = []
        for path, _ in expect[:3]:
            ids += [t["id"] for t in rest("POST", "/v1/tasks?steps=grayscale,blur=3", mine,
                                          open(path, "rb").read())["tasks"]]
        theirs = rest("POST", "/v1/tasks?steps=flip", other,
                      open(expect[0][0], "rb").read())["tasks"][0]["id"]
        seen = {i: [] for i in ids}
        strangers = []
        while not all(s and s[-1]["state"] == "done" for s in seen.values()):
            e = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if e["type"] != "task":
                continue
            t = e["task"]
            (seen[t["id"]] if t["id"] in seen else strangers).append(t)
        for i in ids:
            last = seen[i][-1]
            check(last["state"] == "done" and last["width"] > 0 and last["result_size"] > 0,
                  "task %d: told of, to done, with its result's size" % i, seen[i])
            progress = [t["progress"] for t in seen[i]]
            check(progress == sorted(progress), "task %d: progress never goes back" % i, progress)
        check(theirs not in [t["id"] for t in strangers] and not strangers,
              "another session's task is never told of", strangers)


async def keepalive():
    """The client's pings are answered: a socket idle past its ping timeout stays open."""
    async with websockets.connect(ws_base + "/v1/events", ping_interval=0.2,
                                  ping_timeout=2) as ws:
        await ws.recv()
        pong = await ws.ping()
        await asyncio.wait_for(pong, 5)
        check(True, "a ping is answered with a pong")


async def main():
    await keepalive()
    await lab_flow()
    await steps_query()
    await refusals()
    await task_events()
    print("summary %d %d" % (sum(results), len(results)))


asyncio.run(main())
