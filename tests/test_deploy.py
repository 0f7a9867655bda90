"""The deployment files: no cluster or Docker daemon is reachable here, so check what they say."""

import json
import re

from conftest import ROOT

DEPLOY = ROOT / "deploy"


def _manifest():
    return {item["kind"]: item for item in json.loads((DEPLOY / "kubernetes.json").read_text())["items"]}


def test_the_manifest_runs_several_ready_checked_replicas_with_the_cache_mounted():
    objects = _manifest()
    deployment = objects["Deployment"]
    assert deployment["apiVersion"] == "apps/v1" and deployment["spec"]["replicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = container["ports"][0]
    assert port["containerPort"] == 8501
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/_stcore/health" and probe["port"] in (port["name"], port["containerPort"])
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    env = {item["name"]: item["value"] for item in container["env"]}
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == env["KERAS_HOME"] and mount["readOnly"]
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    assert objects["PersistentVolumeClaim"]["metadata"]["name"] == claim


def test_the_service_is_sticky_because_streamlit_sessions_live_on_one_server():
    objects = _manifest()
    service = objects["Service"]
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert service["spec"]["selector"].items() <= objects["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_dockerfile_builds_the_pinned_app_on_slim_python_3_11():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert "pip install -r requirements.txt" in text
    assert re.search(r"KERAS_HOME=/keras", text)
    assert "EXPOSE 8501" in text and "/_stcore/health" in text
    assert re.search(r'^CMD \["streamlit", "run", "dashboard/app.py"', text, re.M)
    for folder in ("dashboard/", "assets/", ".streamlit/"):
        assert f"COPY {folder}" in text
    for line in (ROOT / "requirements.txt").read_text().splitlines():  # every pin is exact
        if line and not line.startswith("#"):
            assert "==" in line, line
