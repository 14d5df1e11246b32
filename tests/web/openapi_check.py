#!/usr/bin/python3
# The OpenAPI document against the running gateway: every operation it
# describes is called, and each answer's status, media type and required
# fields must be ones the document gives for it.  Prints one line per check,
# "ok DESCRIPTION" or "not ok DESCRIPTION: why", for the TAP test to count.
# usage: openapi_check.py URL IMAGE
import json, sys, urllib.error, urllib.request

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

def call(method, path, body=None, ctype=None):
    req = urllib.request.Request(base + path, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()

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
    if media not in content:
        check(False, desc, "%s is not a documented media type of %d" % (media, status))
        return
    schema = content[media].get("schema", {})
    why = ""
    if media.endswith("json"):
        try:
            why = required_ok(schema, json.loads(body), "the body")
        except ValueError as e:
            why = "not JSON: %s" % e
    check(not why, desc, why)

check(doc.get("openapi") == "3.1.0", "the document is OpenAPI 3.1.0", str(doc.get("openapi")))
photo = open(image, "rb").read()
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
    ("POST", "/RPC2", b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName>"
     b"<params></params></methodCall>", "text/xml", 200, "POST /RPC2 system.listMethods"),
]
for method, path, body, ctype, want, desc in cases:
    status, got_type, data = call(method, path, body, ctype)
    bare = path.split("?")[0]
    exercised.add((bare, method.lower()))
    check(status == want, desc + ": %d" % want, "got %d %s" % (status, data[:200]))
    answered(method, bare, status, got_type, data, desc + ": as documented")
for path, ops in doc["paths"].items():
    for method in ops:
        check((path, method) in exercised, "%s %s was called" % (method.upper(), path), "not called")
print("summary %d %d" % (sum(results), len(results)))
