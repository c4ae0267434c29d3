"""
The deployment files: Kubernetes manifests validated against the API's
schemas (kubernetes-validate, in process), and what they promise checked;
docs/operations.md's table of every option.
"""

from __future__ import annotations

import io
import json
import os

import kubernetes_validate
import yaml
from twisted.logger import Logger, LogPublisher
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import logs, tap

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


def optionsOf(options: usage.Options) -> dict[str, str | None]:
    """
    Every option of OPTIONS (parameters, flags, and the C{opt_} methods)
    with its default as the documentation writes it (C{None}: no default).
    """
    found: dict[str, str | None] = {}
    for name, _, default, *_ in options.optParameters:
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        found[name] = "none" if default is None else str(default)
    for name, *_ in options.optFlags:
        found[name] = "off"
    for attribute in dir(options):
        if attribute.startswith("opt_") and len(attribute) > 5:
            found.setdefault(attribute[4:].replace("_", "-"), None)
    found["listen"] = tap.DEFAULT_LISTEN
    found["autostart"] = "none"
    return found


class OperationsDoc(SynchronousTestCase):
    """docs/operations.md has a row, with the right default, for every option."""

    def rows(self) -> dict[str, str]:
        with open(os.path.join(ROOT, "docs", "operations.md")) as f:
            text = f.read()
        table = text.split("## Every option", 1)[1]
        rows = {}
        for line in table.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[0].startswith("`--"):
                rows[cells[0].strip("`")[2:]] = cells[1].strip("`")
        return rows

    def test_everyOptionWithItsDefault(self) -> None:
        rows = self.rows()
        for name, default in optionsOf(tap.Options()).items():
            self.assertIn(name, rows, f"--{name} is missing from docs/operations.md")
            if default is not None:
                self.assertEqual(rows[name], default, f"--{name}'s default in docs/operations.md")

    def test_theTestSeesTheTable(self) -> None:
        self.assertGreater(len(self.rows()), 25)
