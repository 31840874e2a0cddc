"""The nginx router over a real ``nginx -t`` (nginx itself is not started)."""

from __future__ import annotations

import os

import pytest

from sap_llm_release.routers.base import RouterError, Weights
from sap_llm_release.routers.nginx import NginxRouter

BLUE, GREEN = "127.0.0.1:28081", "127.0.0.1:28082"


def nginx_conf(directory, extra: str = "") -> str:
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 16; }}
http {{
    access_log off;
    client_body_temp_path {directory}/tmp/body;
    proxy_temp_path {directory}/tmp/proxy;
    fastcgi_temp_path {directory}/tmp/fastcgi;
    uwsgi_temp_path {directory}/tmp/uwsgi;
    scgi_temp_path {directory}/tmp/scgi;
    include {directory}/upstream.conf;
    server {{
        listen 127.0.0.1:28080;
        location / {{ proxy_pass http://sap_llm; }}
    }}
    {extra}
}}
"""


@pytest.fixture
def router(tmp_path) -> NginxRouter:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "nginx.conf").write_text(nginx_conf(tmp_path))
    return NginxRouter(
        nginx_conf=tmp_path / "nginx.conf",
        upstream_file=tmp_path / "upstream.conf",
        addresses={"blue": BLUE, "green": GREEN},
    )


@pytest.mark.parametrize(("blue", "green"), [(100, 0), (95, 5), (50, 50), (0, 100)])
def test_render_parse_round_trip(router, blue, green):
    weights = Weights(blue, green)
    assert router.set_weights(weights) is True
    assert router.get_weights() == weights
    text = router.upstream_file.read_text()
    assert text == router.render(weights)
    assert text.startswith(f"# managed by sap-llm-release: blue {blue}% / green {green}%\nupstream sap_llm {{\n")
    assert (f"server {BLUE} weight={blue};" in text) is (blue > 0)
    assert (f"server {GREEN} weight={green};" in text) is (green > 0)
    assert "weight=0" not in text  # nginx has no weight 0


def test_render_all_blue_exactly(router):
    assert router.render(Weights(100, 0)) == (
        "# managed by sap-llm-release: blue 100% / green 0%\n"
        "upstream sap_llm {\n"
        f"    server {BLUE} weight=100;\n"
        "    keepalive 32;\n"
        "}\n"
    )


def test_set_weights_steps_through_a_release(router):
    for green in (0, 5, 20, 50, 100):
        assert router.set_weights(Weights.green_percent(green)) is True
        assert router.get_weights().green == green


def test_unchanged_weights_are_not_rewritten(router):
    assert router.set_weights(Weights(95, 5)) is True
    before = router.upstream_file.stat()
    assert router.set_weights(Weights(95, 5)) is False
    after = router.upstream_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_broken_nginx_conf_raises_and_restores_the_upstream(router):
    assert router.set_weights(Weights(100, 0)) is True
    previous = router.upstream_file.read_text()
    router.nginx_conf.write_text(nginx_conf(router.nginx_conf.parent, extra="no_such_directive on;"))
    with pytest.raises(RouterError) as excinfo:
        router.set_weights(Weights(95, 5))
    message = str(excinfo.value)
    assert message.startswith(f"nginx upstream sap_llm ({router.upstream_file}): nginx -c {router.nginx_conf}")
    assert "-t failed" in message
    assert 'unknown directive "no_such_directive"' in message
    assert router.upstream_file.read_text() == previous
    assert router.get_weights() == Weights(100, 0)
    assert not router.upstream_file.with_suffix(".tmp").exists()


def test_invalid_address_is_refused_by_nginx(tmp_path, router):
    broken = NginxRouter(
        nginx_conf=router.nginx_conf,
        upstream_file=router.upstream_file,
        addresses={"blue": BLUE, "green": "127.0.0.1:notaport"},
    )
    assert broken.set_weights(Weights(100, 0)) is True
    with pytest.raises(RouterError, match="-t failed"):
        broken.set_weights(Weights(50, 50))
    assert broken.get_weights() == Weights(100, 0)


def test_unexpected_server_address(router):
    router.upstream_file.write_text(
        f"upstream sap_llm {{\n    server {BLUE} weight=90;\n    server 10.0.0.9:8080 weight=10;\n}}\n"
    )
    with pytest.raises(RouterError, match=r"has unexpected servers \['10.0.0.9:8080'\]"):
        router.get_weights()


def test_no_servers(router):
    router.upstream_file.write_text("upstream sap_llm {\n    keepalive 32;\n}\n")
    with pytest.raises(RouterError, match="has unexpected servers none"):
        router.get_weights()


def test_weights_not_adding_up(router):
    router.upstream_file.write_text(
        f"upstream sap_llm {{\n    server {BLUE} weight=3;\n    server {GREEN} weight=1;\n}}\n"
    )
    with pytest.raises(RouterError, match="holds an invalid split: weights: blue \\+ green must be 100, got 3 \\+ 1"):
        router.get_weights()


def test_missing_upstream_file(router):
    with pytest.raises(RouterError, match=f"nginx upstream sap_llm \\({router.upstream_file}\\) read error"):
        router.get_weights()


def test_not_running_without_pid(router):
    assert router.is_running() is False
    (router.nginx_conf.parent / "nginx.pid").write_text("not a pid")
    assert router.is_running() is False
    (router.nginx_conf.parent / "nginx.pid").write_text(str(os.getpid()))
    assert router.is_running() is True


def test_describe(router):
    assert router.describe() == f"nginx upstream sap_llm ({router.upstream_file})"
