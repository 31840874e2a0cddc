"""The nginx router over a real nginx on a loopback port: the live split is what the running nginx answers."""

from __future__ import annotations

import socket

import httpx
import pytest

from sap_llm_release.routers.base import ALL_BLUE, RouterError, Weights
from sap_llm_release.routers.nginx import NginxRouter
from tests.support.nginx import BLUE, GREEN, STATE_URL, nginx, nginx_conf, nginx_router, running, until


@pytest.fixture
def router(tmp_path) -> NginxRouter:
    return nginx_router(tmp_path)


@pytest.fixture
def live(router):
    with running(router):
        yield router


@pytest.mark.parametrize(("blue", "green"), [(100, 0), (95, 5), (50, 50), (0, 100)])
def test_render_parse_round_trip(live, blue, green):
    weights = Weights(blue, green)
    assert live.set_weights(weights) is (weights != ALL_BLUE)
    assert live.get_weights() == weights
    text = live.upstream_file.read_text()
    assert text == live.render(weights)
    assert text.startswith(f"# managed by sap-llm-release: blue {blue}% / green {green}%\nupstream sap_llm {{\n")
    assert (f"server {BLUE} weight={blue};" in text) is (blue > 0)
    assert (f"server {GREEN} weight={green};" in text) is (green > 0)
    assert "weight=0" not in text  # nginx has no weight 0


def test_render_all_blue_exactly(router):
    assert router.render(Weights(95, 5)) == (
        "# managed by sap-llm-release: blue 95% / green 5%\n"
        "upstream sap_llm {\n"
        f"    server {BLUE} weight=95;\n"
        f"    server {GREEN} weight=5;\n"
        "    keepalive 32;\n"
        "}\n"
        "# the split this configuration routes, answered by the running nginx (see nginx.conf)\n"
        "map $host $sap_llm_router_state {\n"
        f"    default '{{\"upstream\": \"sap_llm\", \"servers\": {{\"{BLUE}\": 95, \"{GREEN}\": 5}}}}';\n"
        "}\n"
    )


def test_set_weights_steps_through_a_release(live):
    for green in (5, 20, 50, 100):
        assert live.set_weights(Weights.green_percent(green)) is True
        assert live.get_weights().green == green


def test_unchanged_weights_are_not_rewritten(live):
    assert live.set_weights(Weights(95, 5)) is True
    before = live.upstream_file.stat()
    assert live.set_weights(Weights(95, 5)) is False
    after = live.upstream_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_the_live_split_is_the_running_configuration_not_the_file(live):
    live.upstream_file.write_text(live.render(Weights(50, 50)))  # written, never reloaded
    assert live.get_weights() == ALL_BLUE
    nginx(live, "-s", "reload")
    assert until(lambda: [live.get_weights() for _ in range(5)], [Weights(50, 50)] * 5)


def test_a_reload_the_master_does_not_apply_raises_naming_both_splits(live):
    """``nginx -t`` passes and ``nginx -s reload`` exits 0, but the master cannot bind a listen address a socket
    here holds, and keeps serving the old configuration."""
    assert live.set_weights(Weights(95, 5)) is True
    applied = live.upstream_file.read_text()
    with socket.create_server(("127.0.0.1", 0)) as holder:
        taken = holder.getsockname()[1]
        live.nginx_conf.write_text(nginx_conf(live.nginx_conf.parent,
                                              extra=f"server {{ listen 127.0.0.1:{taken}; return 204; }}"))
        with pytest.raises(RouterError) as excinfo:
            live.set_weights(Weights(80, 20))
        message = str(excinfo.value)
        assert message.startswith(f"nginx upstream sap_llm ({live.upstream_file}): the reload did not take effect")
        assert "wanted blue 80% / green 20%, live blue 95% / green 5%" in message
        assert f"bind() to 127.0.0.1:{taken} failed (98: Address already in use)" in message
        assert "still could not bind()" in message
        assert live.get_weights() == Weights(95, 5)
        assert live.upstream_file.read_text() == applied  # the file holds what nginx serves
        with pytest.raises(RouterError, match="wanted blue 100% / green 0%, live blue 95% / green 5%"):
            live.set_weights(ALL_BLUE)  # a rollback through the same broken reload is not recorded as done either
    assert live.set_weights(Weights(80, 20)) is True  # the address is free again: the reload applies
    assert live.get_weights() == Weights(80, 20)


def test_broken_nginx_conf_raises_and_restores_the_upstream(live):
    previous = live.upstream_file.read_text()
    live.nginx_conf.write_text(nginx_conf(live.nginx_conf.parent, extra="no_such_directive on;"))
    with pytest.raises(RouterError) as excinfo:
        live.set_weights(Weights(95, 5))
    message = str(excinfo.value)
    assert message.startswith(f"nginx upstream sap_llm ({live.upstream_file}): nginx -c {live.nginx_conf}")
    assert "-t failed" in message
    assert 'unknown directive "no_such_directive"' in message
    assert live.upstream_file.read_text() == previous
    assert live.get_weights() == ALL_BLUE
    assert not live.upstream_file.with_suffix(".tmp").exists()


def test_invalid_address_is_refused_by_nginx(live):
    broken = NginxRouter(
        nginx_conf=live.nginx_conf,
        upstream_file=live.upstream_file,
        addresses={"blue": BLUE, "green": "127.0.0.1:notaport"},
        state_url=STATE_URL,
    )
    with pytest.raises(RouterError, match="-t failed"):
        broken.set_weights(Weights(50, 50))
    assert live.get_weights() == ALL_BLUE


def _serve(router: NginxRouter, upstream: str, state: str) -> None:
    router.upstream_file.write_text(f"upstream sap_llm {{\n{upstream}}}\n"
                                    f"map $host $sap_llm_router_state {{ default '{state}'; }}\n")
    nginx(router, "-s", "reload")
    answers = lambda: [httpx.get(STATE_URL, headers={"Connection": "close"}).text for _ in range(5)]  # noqa: E731
    until(answers, [state] * 5)  # for a moment after a reload, workers of both configurations answer


def test_unexpected_server_address(live):
    _serve(live, f"    server {BLUE} weight=90;\n    server 10.0.0.9:8080 weight=10;\n",
           f'{{"servers": {{"{BLUE}": 90, "10.0.0.9:8080": 10}}}}')
    with pytest.raises(RouterError, match=r"has unexpected servers \['10.0.0.9:8080'\]"):
        live.get_weights()


def test_no_servers(live):
    _serve(live, f"    server {BLUE};\n", '{"servers": {}}')
    with pytest.raises(RouterError, match="has unexpected servers none"):
        live.get_weights()


def test_weights_not_adding_up(live):
    _serve(live, f"    server {BLUE} weight=3;\n    server {GREEN} weight=1;\n",
           f'{{"servers": {{"{BLUE}": 3, "{GREEN}": 1}}}}')
    with pytest.raises(RouterError, match="holds an invalid split: weights: blue \\+ green must be 100, got 3 \\+ 1"):
        live.get_weights()


def test_an_nginx_that_is_not_running_has_no_live_split(router):
    router.prepare(ALL_BLUE)  # written and tested, as before nginx starts
    assert router.upstream_file.read_text() == router.render(ALL_BLUE)
    with pytest.raises(RouterError, match=f"nginx upstream sap_llm \\({router.upstream_file}\\): cannot read the "
                                          f"live split from {STATE_URL}"):
        router.get_weights()
    with pytest.raises(RouterError, match="cannot read the live split"):
        router.set_weights(Weights(95, 5))
    assert router.upstream_file.read_text() == router.render(ALL_BLUE)


def test_describe(router):
    assert router.describe() == f"nginx upstream sap_llm ({router.upstream_file})"

