# pods.py NS PREFIX FIRST LAST [HOOK-ARGS...]
#
# For i in FIRST..LAST: creates pod PREFIX-i in namespace NS in the test API
# server (bound to guest-node, Running, Burstable) and writes the runc config
# /bundle/configs/PREFIX-i.json for its one container (run.sh copies it to
# /bundle/config.json: runc with --no-pivot wants the root inside the
# bundle; a root elsewhere locked the guest's CPUs up): busybox root, first command a shell that leaves /out/PREFIX-i behind,
# cgroup /kubepods/burstable/pod<uid>/PREFIX-i (runc makes it), the pod's
# annotations as CRI-O sets them, bulwark-oci-hook as createRuntime hook.
# One python for the whole batch: in the emulated guest each interpreter
# start costs a good fraction of a second.
import json, os, ssl, sys, urllib.request

ns, prefix, first, last, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
api = "/run/api"
port = open(api + "/port").read().strip()
token = open(api + "/token").read().strip()
ctx = ssl.create_default_context(cafile=api + "/ca.crt")
spec0 = json.load(open("/run/spec.json"))
for i in range(first, last + 1):
    name = "%s-%d" % (prefix, i)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"nodeName": "guest-node", "containers": [{"name": "main", "image": "busybox"}]},
           "status": {"phase": "Running", "qosClass": "Burstable"}}
    req = urllib.request.Request("https://127.0.0.1:%s/api/v1/namespaces/%s/pods" % (port, ns),
                                 data=json.dumps(pod).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    uid = json.load(urllib.request.urlopen(req, context=ctx))["metadata"]["uid"]
    spec = json.loads(json.dumps(spec0))
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/sh", "-c", "echo ran > /out/" + name]
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["linux"]["cgroupsPath"] = "/kubepods/burstable/pod%s/%s" % (uid, name)
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    spec["annotations"] = {"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": name,
                           "io.kubernetes.container.name": "main"}
    spec["hooks"] = {"createRuntime": [{"path": "/usr/bin/bulwark-oci-hook",
                                        "args": ["bulwark-oci-hook", "--socket", "/run/bulwark/hook.sock",
                                                 "--timeout-ms", "3000", "--log", "/run/hook.log"] + extra}]}
    os.makedirs("/bundle/configs", exist_ok=True)
    json.dump(spec, open("/bundle/configs/%s.json" % name, "w"))
