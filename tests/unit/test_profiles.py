"""Testbed profiles: the RSpec per system, and the portal script producing the same RSpec."""

from __future__ import annotations

import ipaddress
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator import profiles
from orchestrator.cli import app

NS = {"r": "http://www.geni.net/resources/rspec/3",
      "emulab": "http://www.protogeni.net/resources/rspec/ext/emulab/1"}

# The seed README's largest configurations: (sequencers, proxies, clients, servers).
LARGEST = {
    "mason": (2, 48, 16, 0),
    "master": (2, 48, 16, 0),
    "corfu": (2, 0, 16, 8),
    "corfumason": (2, 72, 24, 8),
    "rsmkeeper": (0, 3, 1, 0),
    "zkmason": (2, 48, 16, 24),
    "zk-mason": (2, 48, 16, 24),
}


def _expected_names(counts: tuple[int, int, int, int]) -> list[str]:
    roles = ("sequencer", "proxy", "client", "server")
    return [f"{role}-{i}" for role, n in zip(roles, counts, strict=True) for i in range(n)]


def _get(element: ET.Element, path: str, attr: str) -> str | None:
    found = element.find(path, NS)
    assert found is not None, f"no {path} in {element.tag}"
    return found.get(attr)


def _check_rspec(xml: str, names: list[str], hardware: str,
                 subnets: tuple[str, ...] = ("10.1.1",)) -> ET.Element:
    """Every node raw on `hardware`, with one interface per subnet at .k (k = its position
    from 1), all of them on the one link, which is not shaped; returns that link."""
    root = ET.fromstring(xml)
    assert root.get("type") == "request"
    nodes = root.findall("r:node", NS)
    assert [n.get("client_id") for n in nodes] == names
    for k, node in enumerate(nodes, start=1):
        assert node.get("exclusive") == "true"
        assert _get(node, "r:sliver_type", "name") == "raw"
        assert _get(node, "r:hardware_type", "name") == hardware
        ifaces = node.findall("r:interface", NS)
        assert [i.get("client_id") for i in ifaces] == [
            f"{node.get('client_id')}:if{n}" for n in range(1, len(subnets) + 1)]
        for iface, subnet in zip(ifaces, subnets, strict=True):
            assert _get(iface, "r:ip", "netmask") == "255.255.255.0"
            assert _get(iface, "r:ip", "type") == "ipv4"
            assert _get(iface, "r:ip", "address") == f"{subnet}.{k}"
            ipaddress.IPv4Address(f"{subnet}.{k}")
    (lan,) = root.findall("r:link", NS)
    refs = [ref.get("client_id") for ref in lan.findall("r:interface_ref", NS)]
    assert refs == [f"{n}:if{i}" for n in names for i in range(1, len(subnets) + 1)]
    assert lan.find("emulab:force_nobwshaping", NS) is not None
    assert _get(root, "emulab:routing_style", "style") == "static"
    return lan


@pytest.mark.parametrize("system", sorted(LARGEST))
def test_rspec_per_system_largest_configuration(system: str):
    chosen = profiles.system_named(system)
    counts = profiles.resolve_counts(chosen)
    assert (counts.nsequencers, counts.nproxies, counts.nclients, counts.nservers) == (
        LARGEST[system])
    lan = _check_rspec(profiles.build_rspec(counts), _expected_names(LARGEST[system]), "d430")
    assert _get(lan, "r:link_type", "name") == "lan"


def test_counts_and_hardware_override():
    chosen = profiles.system_named("corfumason")
    counts = profiles.resolve_counts(chosen, nproxies=6, nclients=2)
    assert counts == profiles.Counts(2, 6, 2, 8)
    _check_rspec(profiles.build_rspec(counts, "c6525-25g"), _expected_names((2, 6, 2, 8)),
                 "c6525-25g")


@pytest.mark.parametrize("kwargs,why", [
    ({"nproxies": -1}, r"--nproxies \(--p\) must not be negative"),
    ({"nsequencers": 0, "nproxies": 0, "nclients": 0, "nservers": 0}, "1 to 253 nodes"),
    ({"nproxies": 300}, "1 to 253 nodes"),
])
def test_bad_counts(kwargs, why):
    with pytest.raises(profiles.ProfileError, match=why):
        profiles.resolve_counts(profiles.system_named("mason"), **kwargs)


def test_unknown_system_and_bad_text():
    with pytest.raises(profiles.ProfileError, match="unknown system 'paxos'"):
        profiles.system_named("paxos")
    counts = profiles.resolve_counts(profiles.system_named("rsmkeeper"))
    with pytest.raises(profiles.ProfileError, match="bad hardware type"):
        profiles.build_rspec(counts, 'd430"); import os #')
    with pytest.raises(profiles.ProfileError, match="bad image"):
        profiles.render_script(profiles.system_named("rsmkeeper"), counts, "d430", "a\nb")


def _fake_portal(captured: dict[str, Any]) -> types.ModuleType:
    """geni.portal as the Emulab portal provides it (the PyPI one is Python 2 code)."""
    import geni.rspec.pg as pg

    portal = types.ModuleType("geni.portal")

    class ParameterType:
        INTEGER, STRING, NODETYPE, IMAGE = "integer", "string", "nodetype", "image"

    class ParameterError(Exception):
        def __init__(self, message, params):
            super().__init__(message)
            self.params = params

    class Context:
        def __init__(self):
            self.defaults = {}

        def defineParameter(self, name, _desc, _typ, default, *args, **kwargs):
            self.defaults[name] = default

        def bindParameters(self):
            return types.SimpleNamespace(**self.defaults)

        def reportError(self, error):
            raise error

        def verifyParameters(self):
            pass

        def makeRequestRSpec(self):
            return pg.Request()

        def printRequestRSpec(self, request):
            captured["xml"] = request.toXMLString(pretty_print=True, ucode=True)
            captured["defaults"] = dict(self.defaults)

    for name, value in (("ParameterType", ParameterType), ("ParameterError", ParameterError),
                        ("Context", Context)):
        setattr(portal, name, value)
    return portal


@pytest.mark.parametrize("original_links", [False, True])
@pytest.mark.parametrize("system", ["mason", "corfu", "corfumason", "rsmkeeper", "zkmason"])
def test_portal_script_produces_the_same_rspec(system: str, original_links: bool, monkeypatch):
    import geni

    chosen = profiles.system_named(system)
    # The original's link states its bandwidth per pair of interfaces: a few nodes will do.
    counts = profiles.resolve_counts(chosen, nproxies=3) if original_links else (
        profiles.resolve_counts(chosen))
    script = profiles.render_script(chosen, counts, "d430", original_links=original_links)
    compile(script, f"{system}.profile.py", "exec")  # valid Python 3
    captured: dict[str, Any] = {}
    fake = _fake_portal(captured)
    monkeypatch.setitem(sys.modules, "geni.portal", fake)
    monkeypatch.setattr(geni, "portal", fake, raising=False)
    exec(compile(script, f"{system}.profile.py", "exec"), {"__name__": "__main__"})
    assert captured["xml"] == profiles.build_rspec(counts, "d430", original_links=original_links)
    # The original profile's parameter names and meanings.
    assert captured["defaults"] == {
        "s": counts.nsequencers, "p": counts.nproxies, "c": counts.nclients,
        "cs": counts.nservers, "hardware_type": "d430", "image": profiles.DEFAULT_IMAGE}


def test_original_links_give_each_node_two_interfaces_on_one_10g_link():
    counts = profiles.Counts(2, 3, 1, 3)  # the original profile's defaults
    xml = profiles.build_rspec(counts, original_links=True)
    lan = _check_rspec(xml, _expected_names((2, 3, 1, 3)), "d430", ("10.1.1", "10.1.2"))
    assert lan.get("client_id") == "tblink-l3"
    assert lan.find("r:link_type", NS) is None  # a link, not an Emulab LAN
    props = lan.findall("r:property", NS)
    assert props and all(p.get("capacity") == "10000000" for p in props)
    assert lan.find("emulab:trivial_ok", NS) is not None


def test_cli_profile_writes_both_files(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["profile", "zk-mason", "--nproxies", "6", "--nservers", "3", "--nclients", "2",
              "--hardware-type", "d710", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    script = tmp_path / "zkmason.profile.py"
    rspec = tmp_path / "zkmason.rspec.xml"
    assert "zkmason" in result.output and script.exists() and rspec.exists()
    _check_rspec(rspec.read_text(), _expected_names((2, 6, 2, 3)), "d710")
    assert '"d710"' in script.read_text()


def test_cli_profile_original_parameters_and_links(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["profile", "corfumason", "--s", "1", "--p", "3", "--c", "2", "--cs", "4",
              "--original-links", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = _expected_names((1, 3, 2, 4))
    rspec = (tmp_path / "corfumason.rspec.xml").read_text()
    lan = _check_rspec(rspec, names, "d430", ("10.1.1", "10.1.2"))
    assert lan.get("client_id") == "tblink-l3"
    script = (tmp_path / "corfumason.profile.py").read_text()
    assert 'defineParameter("cs", "Number of service servers"' in script


def test_cli_profile_bad_input_is_one_line(tmp_path: Path):
    result = CliRunner().invoke(app, ["profile", "paxos", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown system 'paxos'" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["profile", "mason", "--nclients", "-3"])
    assert result.exit_code == 2 and "must not be negative" in result.output
