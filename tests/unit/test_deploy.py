"""
The deployment files: Kubernetes manifests validated against the API's
schemas (kubernetes-validate, in process), and what they promise checked.
"""

from __future__ import annotations

import io
import json
import os

import kubernetes_validate
import yaml
from twisted.logger import Logger, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import logs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFESTS = os.path.join(ROOT, "deploy", "kubernetes")


def load(name: str) -> dict:
    with open(os.path.join(MANIFESTS, name)) as f:
        return yaml.safe_load(f)


class Manifests(SynchronousTestCase):
    def test_validAgainstKubernetes(self) -> None:
        for name in ("statefulset.yaml", "service.yaml", "secret.yaml"):
            kubernetes_validate.validate(load(name), "1.37.0", strict=True)

    def test_onePodPerDesktop(self) -> None:
        spec = load("statefulset.yaml")["spec"]
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        # Probes on /healthz, which needs no token.
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            self.assertEqual(container[probe]["httpGet"]["path"], "/healthz")
        # The token comes from the Secret, as a file.
        args = container["args"]
        token = args[args.index("--auth-token-file") + 1]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        self.assertTrue(token.startswith(mounts["token"] + "/"))
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["token"]["secret"]["secretName"], load("secret.yaml")["metadata"]["name"])
        # Recordings on an emptyDir.
        self.assertEqual(args[args.index("--recordings-dir") + 1], mounts["recordings"])
        self.assertIn("emptyDir", volumes["recordings"])
        self.assertEqual(container["resources"]["requests"].keys(), {"cpu", "memory"})
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        # The Service addresses each pod (headless).
        self.assertEqual(load("service.yaml")["spec"]["clusterIP"], "None")
        self.assertEqual(spec["serviceName"], load("service.yaml")["metadata"]["name"])

    def test_secretHoldsNoToken(self) -> None:
        self.assertEqual(load("secret.yaml")["stringData"]["token"], "")


class JSONLogs(SynchronousTestCase):
    def test_oneObjectPerLine(self) -> None:
        out = io.StringIO()
        self.patch(logs.sys, "stdout", out)
        publisher = LogPublisher(logs.json())
        log = Logger(observer=publisher)
        log.info("{method} {path} status={status}", method="POST", path="/x", status=200)
        log.info("second")
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        event = json.loads(lines[0])
        self.assertEqual((event["method"], event["path"], event["status"]), ("POST", "/x", 200))
