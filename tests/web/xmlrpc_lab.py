#!/usr/bin/python3
# A course lab's XML-RPC client, as students write it (xmlrpc.client, images
# as base64 strings, MultiCall), against imgproc-web's /RPC2.  Writes each
# result to OUTDIR/NAME.jpg and prints one JSON object of what it saw.
# usage: xmlrpc_lab.py URL IMAGE OUTDIR
import base64, json, sys, xmlrpc.client

url, image, outdir = sys.argv[1:4]
s = xmlrpc.client.ServerProxy(url)
seen = {"methods": s.system.listMethods()}
data = base64.b64encode(open(image, "rb").read()).decode()

for name, call in [("grayscale", lambda: s.convert_to_grayscale(data)),
                   ("resize", lambda: s.resize_image(data, 300, 200)),
                   ("rotate", lambda: s.rotate_image(data, 90)),
                   ("blur", lambda: s.apply_blur(data))]:
    with open("%s/%s.jpg" % (outdir, name), "wb") as f:
        f.write(base64.b64decode(call()))

m = xmlrpc.client.MultiCall(s)
m.convert_to_grayscale(data)
m.rotate_image(data, 45.5)
results = list(m())
seen["multicall"] = len(results)
with open("%s/multi-rotate.jpg" % outdir, "wb") as f:
    f.write(base64.b64decode(results[1]))

for key, call in [("fault_not_image", lambda: s.convert_to_grayscale(
                       base64.b64encode(b"not an image").decode())),
                  ("fault_size", lambda: s.resize_image(data, 0, 10)),
                  ("fault_no_method", lambda: s.sharpen_image(data))]:
    try:
        call()
        seen[key] = None
    except xmlrpc.client.Fault as f:
        seen[key] = [f.faultCode, f.faultString]
# The lab's task: create (the image as binary), start, complete, fetch.
raw = open(image, "rb").read()
tid = s.create_task(xmlrpc.client.Binary(raw))
seen["task_id_is_string"] = isinstance(tid, str)
seen["task_states"] = [s.get_task_status(tid)]
seen["task_jump"] = s.change_task_status(tid, "Completed")     # Created -> Completed: no
seen["task_states"].append(s.get_task_status(tid))
seen["task_start"] = s.change_task_status(tid, "In Progress")
seen["task_complete"] = s.change_task_status(tid, "Completed")
seen["task_states"].append(s.get_task_status(tid))
with open("%s/task.jpg" % outdir, "wb") as f:
    f.write(s.get_processed_image(tid).data)
seen["task_unknown"] = s.get_task_status("999999")
seen["task_not_an_id"] = s.get_task_status("abc")
try:
    s.change_task_status(tid, "Done")
    seen["task_bad_state"] = None
except xmlrpc.client.Fault as f:
    seen["task_bad_state"] = [f.faultCode, f.faultString]
print(json.dumps(seen))
