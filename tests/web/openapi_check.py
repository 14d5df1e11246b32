#!/usr/bin/python3
# The OpenAPI document against the running gateway: every operation it
# describes is called, and each answer's status, media type and required
# fields must be ones the document gives for it.  Prints one line per check,
# "ok DESCRIPTION" or "not ok DESCRIPTION: why", for the TAP test to count.
# usage: openapi_check.py URL IMAGE
import http.client, http.cookiejar, json, re, sys, urllib.error, urllib.parse, urllib.request

base, image = sys.argv[1], sys.argv[2]
doc = json.load(urllib.request.urlopen(base + "/v1/openapi.json"))
results = []

def check(cond, desc, why=""):
    results.append(cond)
    print("ok %s" % desc if cond else "not ok %s: %s" % (desc, why))

def deref(node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node

# One session for every call, kept as a browser keeps it: a cookie.
session = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

def call(method, path, body=None, ctype=None):
    if path == "/v1/events":
        # A WebSocket handshake: the document says 101.
        u = urllib.parse.urlsplit(base)
        c = http.client.HTTPConnection(u.hostname, u.port)
        c.request("GET", path, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
        r = c.getresponse()
        c.close()
        return r.status, r.headers.get("Content-Type", ""), b""
    req = urllib.request.Request(base + path, data=body, method=method)
    if ctype == "bearer":
        req.add_header("Authorization", "Bearer not-a-token")
    elif ctype:
        req.add_header("Content-Type", ctype)
    try:
        with session.open(req) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()

def template(path):
    """The document's path for a called one: /v1/tasks/7/wait -> /v1/tasks/{id}/wait."""
    for t in doc["paths"]:
        if re.fullmatch(re.sub(r"\\\{[a-z]+\\\}", "[0-9]+", re.escape(t)), path):
            return t
    return path

def multipart(files):
    """A multipart/form-data body of (name, bytes) files, and its Content-Type."""
    out = b""
    for name, data in files:
        out += (b"--XyZzY\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" +
                name.encode() + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
                data + b"\r\n")
    return out + b"--XyZzY--\r\n", "multipart/form-data; boundary=XyZzY"

def required_ok(schema, value, where):
    schema = deref(schema)
    for key in schema.get("required", []):
        if not isinstance(value, dict) or key not in value:
            return "%s lacks %s" % (where, key)
    for key, sub in schema.get("properties", {}).items():
        sub = deref(sub)
        if isinstance(value, dict) and key in value and sub.get("type") == "array" and "items" in sub:
            for i, item in enumerate(value[key]):
                why = required_ok(sub["items"], item, "%s.%s[%d]" % (where, key, i))
                if why:
                    return why
    return ""

def answered(method, path, status, ctype, body, desc):
    if path not in doc["paths"]:
        check(False, desc, "%s is not in the document" % path)
        return
    if method.lower() not in doc["paths"][path]:
        # A method the document does not give: refused, as a problem.
        check(status == 405 and ctype.startswith("application/problem+json"), desc,
              "%d %s for an undocumented method" % (status, ctype))
        return
    op = doc["paths"][path][method.lower()]
    resp = op["responses"].get(str(status))
    if resp is None:
        check(False, desc, "status %d is not in the document for %s %s" % (status, method, path))
        return
    resp = deref(resp)
    media = ctype.split(";")[0].strip()
    content = resp.get("content", {})
    if status != 101 and media not in content:
        check(False, desc, "%s is not a documented media type of %d" % (media, status))
        return
    schema = content[media].get("schema", {}) if status != 101 else {}
    why = ""
    if status == 101:
        why = ""
    elif media.endswith("json"):
        try:
            why = required_ok(schema, json.loads(body), "the body")
        except ValueError as e:
            why = "not JSON: %s" % e
    check(not why, desc, why)

check(doc.get("openapi") == "3.1.0", "the document is OpenAPI 3.1.0", str(doc.get("openapi")))
photo = open(image, "rb").read()
form, form_type = multipart([("a.jpg", photo), ("b.txt", b"not an image")])
exercised = set()
cases = [
    ("GET", "/v1/info", None, None, 200, "GET /v1/info"),
    ("GET", "/v1/openapi.json", None, None, 200, "GET /v1/openapi.json"),
    ("POST", "/v1/process?steps=grayscale,resize=200x200", photo, "image/jpeg", 200, "POST /v1/process"),
    ("POST", "/v1/process?steps=grayscale&format=png", photo, "image/jpeg", 200, "POST /v1/process as PNG"),
    ("POST", "/v1/process?steps=blur=0", photo, "image/jpeg", 400, "POST /v1/process, a step out of range"),
    ("POST", "/v1/process", photo, "image/jpeg", 400, "POST /v1/process without steps"),
    ("POST", "/v1/process?steps=flip", b"not an image", "image/jpeg", 415, "POST /v1/process, not an image"),
    ("GET", "/v1/process", None, None, 405, "GET /v1/process"),
    ("POST", "/v1/process?steps=flop", multipart([("a.jpg", photo)])[0], form_type, 200,
     "POST /v1/process, the image as a form's file"),
    ("POST", "/v1/tasks?steps=grayscale", photo, "image/jpeg", 201, "POST /v1/tasks, one image"),
    ("POST", "/v1/tasks?steps=resize=100x100", form, form_type, 201,
     "POST /v1/tasks, a form of two files (one not an image)"),
    ("POST", "/v1/tasks?steps=flip", b"not an image", "image/jpeg", 415,
     "POST /v1/tasks, no image in it"),
    ("POST", "/v1/tasks", photo, "image/jpeg", 400, "POST /v1/tasks without steps"),
    ("GET", "/v1/tasks", None, None, 200, "GET /v1/tasks"),
    ("GET", "/v1/tasks", None, "bearer", 401, "GET /v1/tasks, a bearer token that is not one"),
    ("GET", "/v1/tasks?state=bogus", None, None, 400, "GET /v1/tasks, a state that is not one"),
    ("GET", "/v1/tasks/{A}/wait?timeout=30", None, None, 200, "GET /v1/tasks/A/wait"),
    ("GET", "/v1/tasks/{A}/wait?timeout=99", None, None, 400, "GET /v1/tasks/A/wait, timeout too long"),
    ("GET", "/v1/tasks/{A}", None, None, 200, "GET /v1/tasks/A"),
    ("GET", "/v1/tasks/{A}/result", None, None, 200, "GET /v1/tasks/A/result"),
    ("GET", "/v1/tasks/999999", None, None, 404, "GET /v1/tasks/999999"),
    ("POST", "/v1/tasks/{A}/cancel", None, None, 409, "POST /v1/tasks/A/cancel, done already"),
    ("PUT", "/v1/tasks/{A}", None, None, 405, "PUT /v1/tasks/A"),
    ("DELETE", "/v1/tasks/{A}", None, None, 200, "DELETE /v1/tasks/A"),
    ("GET", "/v1/tasks/{A}/result", None, None, 404, "GET /v1/tasks/A/result, deleted"),
    ("POST", "/v1/tasks/{B}/cancel", None, None, 200, "POST /v1/tasks/B/cancel (or 409 when done)"),
    ("GET", "/v1/events", None, None, 101, "GET /v1/events, a WebSocket handshake"),
    ("GET", "/", None, None, 200, "GET /, the page"),
    ("GET", "/metrics", None, None, 200, "GET /metrics"),
    ("POST", "/metrics", b"", "text/plain", 405, "POST /metrics"),
    ("POST", "/RPC2", b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName>"
     b"<params></params></methodCall>", "text/xml", 200, "POST /RPC2 system.listMethods"),
]
ids = {}     # A: the one image's task, B: the form's first
for method, path, body, ctype, want, desc in cases:
    path = path.format(**ids)
    status, got_type, data = call(method, path, body, ctype)
    if status == 201 and "A" not in ids:
        ids["A"] = json.loads(data)["tasks"][0]["id"]
    elif status == 201:
        ids["B"] = json.loads(data)["tasks"][0]["id"]
    bare = template(path.split("?")[0])
    if desc.endswith("(or 409 when done)") and status == 409:
        want = 409     # task 2 may have run before the cancel came
    exercised.add((bare, method.lower()))
    check(status == want, desc + ": %d" % want, "got %d %s" % (status, data[:200]))
    answered(method, bare, status, got_type, data, desc + ": as documented")
for path, ops in doc["paths"].items():
    for method in ops:
        if method == "parameters":
            continue    # shared by the path's operations, not one
        check((path, method) in exercised, "%s %s was called" % (method.upper(), path), "not called")
print("summary %d %d" % (sum(results), len(results)))
