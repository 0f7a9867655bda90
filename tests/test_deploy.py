"""The deployment files: no cluster or Docker daemon is reachable here, so check what they say; the
load balancer (HAProxy) runs for real, with two replicas."""

import json
import os
import re
import shutil

import pytest

import local_server
from conftest import ROOT, needs_weights
from streamlit_session import StreamlitSession
from dashboard.url_state import MOVED

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
    assert re.search(r'^CMD \["python", "-m", "dashboard.serve"', text, re.M)
    for folder in ("dashboard/", "assets/", ".streamlit/"):
        assert f"COPY {folder}" in text
    for line in (ROOT / "requirements.txt").read_text().splitlines():  # every pin is exact
        if line and not line.startswith("#"):
            assert "==" in line, line


ON_CI = os.environ.get("CI") == "true"


@needs_weights
@pytest.mark.skipif(not ON_CI and not shutil.which("haproxy"), reason="no haproxy here (CI installs it)")
def test_two_replicas_behind_haproxy_keep_each_student_and_take_over_when_one_stops():
    """deploy/haproxy.cfg on this machine, driven by the load client: sessions spread over both
    replicas, each student's maps come from its own (a map exists only where it was made), and a
    student whose replica stops comes back on the other, from its link, told once."""
    processes, replicas, url = local_server.start_balanced()
    try:
        students = [StreamlitSession(url) for _ in range(6)]
        pages = [student.run("") for student in students]
        assert {student.replica for student in students} == {"a", "b"}
        for student, page in zip(students, pages):
            assert not page.errors and student.fetch(page.overlay_urls) > 0
            assert not page.notices  # a first visit is not a move
        moving = next(student for student in students if student.replica == "a")
        page = moving.choose(pages[students.index(moving)], "Layer", "Conv_1 · 7×7")
        moving.fetch(page.overlay_urls)
        assert "layer=Conv_1" in moving.query  # the view is in the page's link

        processes[1].kill()  # replica a stops mid-lesson
        processes[1].wait(timeout=30)
        back = StreamlitSession(url, resume=moving)  # its page reconnects, as Streamlit's page does
        page = back.run()
        assert back.replica == "b"
        assert page.notices == [MOVED] and not page.errors
        assert back.fetch(page.overlay_urls) > 0 and "layer=Conv_1" in back.query
        assert page.widgets["Layer"].raw_value == "Conv_1 · 7×7"
        assert not back.run().notices  # said once
        stayed = next(student for student in students if student.replica == "b")
        assert not stayed.run().errors  # the other replica's students never noticed
    finally:
        for process in processes:
            process.kill()
